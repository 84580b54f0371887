package ranges

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// maxBody bounds one list. The largest (AWS) is a few MiB; anything near
// this is not a range list.
const maxBody = 32 << 20

// Update fetches every provider's lists and parses them into a new snapshot
// stamped with now. from overrides Sources per provider; each value is an
// http(s) URL or a file path, and values may also be given comma-separated
// in one string ("v4.txt,v6.txt" for cloudflare). A nil client means
// http.DefaultClient; ctx bounds the whole update. Any provider failing
// fails the update, naming every provider that failed, so that the caller
// keeps its old snapshot rather than saving a partial one.
func Update(ctx context.Context, client *http.Client, from map[string][]string, now time.Time) (Snapshot, error) {
	if client == nil {
		client = http.DefaultClient
	}
	srcs := Sources()
	for name, vals := range from {
		want, ok := srcs[name]
		if !ok {
			return Snapshot{}, fmt.Errorf("ranges: update: unknown provider %q (known: %s)", name, known(srcs))
		}
		list := splitSources(vals)
		if len(list) != len(want) {
			return Snapshot{}, fmt.Errorf("ranges: update: %s: got %d sources, want %d (like %s)", name, len(list), len(want), strings.Join(want, ","))
		}
		srcs[name] = list
	}
	s := Snapshot{Version: Version, Providers: map[string]Provider{}}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(srcs)) {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("ranges: update: %w", err))
			break
		}
		p, err := fetchProvider(ctx, client, name, srcs[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.Source = strings.Join(srcs[name], ", ")
		p.Fetched = now.UTC()
		s.Providers[name] = p
	}
	if err := errors.Join(errs...); err != nil {
		return Snapshot{}, err
	}
	return s, nil
}

func splitSources(vals []string) []string {
	var out []string
	for _, v := range vals {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func fetchProvider(ctx context.Context, client *http.Client, name string, srcs []string) (Provider, error) {
	data := make([][]byte, 0, len(srcs))
	for _, src := range srcs {
		b, err := fetch(ctx, client, src)
		if err != nil {
			return Provider{}, fmt.Errorf("ranges: %s: %w", name, err)
		}
		data = append(data, b)
	}
	p, err := Parse(name, data)
	if err != nil {
		return Provider{}, fmt.Errorf("%w (from %s)", err, strings.Join(srcs, ", "))
	}
	return p, nil
}

func isURL(src string) bool {
	for _, scheme := range []string{"http://", "https://"} {
		if len(src) >= len(scheme) && strings.EqualFold(src[:len(scheme)], scheme) {
			return true
		}
	}
	return false
}

func fetch(ctx context.Context, client *http.Client, src string) ([]byte, error) {
	if !isURL(src) {
		f, err := os.Open(src)
		if err != nil {
			return nil, err // *PathError names the file
		}
		defer f.Close()
		return readLimited(f, src)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "mitmwatch (ranges update)")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err // *url.Error names the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", src, resp.Status)
	}
	// A redirect from https to http would hand the list to anyone on the path.
	if req.URL.Scheme == "https" && resp.Request.URL.Scheme != "https" {
		return nil, fmt.Errorf("GET %s: redirected to %s", src, resp.Request.URL.Redacted())
	}
	return readLimited(resp.Body, src)
}

func readLimited(r io.Reader, src string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", src, err)
	}
	if len(data) > maxBody {
		return nil, fmt.Errorf("%s: larger than %d MiB", src, maxBody>>20)
	}
	return data, nil
}
