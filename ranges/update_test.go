package ranges

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// loopbackOnly fails any request that is not for 127.0.0.1, so that a test
// that forgets an override can never reach a provider.
type loopbackOnly struct{ next http.RoundTripper }

func (l loopbackOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Hostname() != "127.0.0.1" {
		return nil, fmt.Errorf("test tried to reach %s", r.URL.Host)
	}
	return l.next.RoundTrip(r)
}

func guarded(srv *httptest.Server) *http.Client {
	c := srv.Client()
	c.Transport = loopbackOnly{c.Transport}
	return c
}

// lab serves the samples under testdata/ plus misbehaving endpoints, and
// counts the requests it saw.
type lab struct {
	*httptest.Server
	requests atomic.Int64
	started  chan struct{} // a request reached /hang
}

func newLab(t *testing.T) *lab {
	l := &lab{started: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir("testdata")))
	mux.HandleFunc("/status500", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("9", 1<<20))
		for range maxBody>>20 + 1 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html><body>Access denied by policy</body></html>")
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		l.started <- struct{}{}
		<-r.Context().Done()
	})
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.requests.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(l.Close)
	return l
}

// from points every provider at the lab's copy of its samples.
func (l *lab) from() map[string][]string {
	out := map[string][]string{}
	for name, fs := range sampleFiles {
		for _, f := range fs {
			out[name] = append(out[name], l.URL+"/"+f)
		}
	}
	return out
}

var now = time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))

func TestUpdate(t *testing.T) {
	l := newLab(t)
	from := l.from()
	// Files and comma-separated values work too.
	from["fastly"] = []string{filepath.Join("testdata", "fastly", "public-ip-list.json")}
	from["cloudflare"] = []string{l.URL + "/cloudflare/ips-v4, " + filepath.Join("testdata", "cloudflare", "ips-v6")}

	got, err := Update(context.Background(), guarded(l.Server), from, now)
	if err != nil {
		t.Fatal(err)
	}
	want := Snapshot{Version: Version, Providers: map[string]Provider{}}
	for name, p := range sampleWant {
		p.Source = strings.Join(from[name], ", ")
		p.Fetched = now.UTC()
		want.Providers[name] = p
	}
	cf := want.Providers["cloudflare"]
	cf.Source = l.URL + "/cloudflare/ips-v4, testdata/cloudflare/ips-v6"
	want.Providers["cloudflare"] = cf
	if diff := cmp.Diff(want, got, cmpPrefix); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if got.Providers["aws"].Fetched.Location() != time.UTC {
		t.Errorf("Fetched in %v, want UTC", got.Providers["aws"].Fetched.Location())
	}
}

func TestUpdateErrors(t *testing.T) {
	l := newLab(t)
	tests := []struct {
		name     string
		override map[string][]string
		want     []string // each must appear in the error
		notWant  []string
	}{
		{
			name:     "status 500",
			override: map[string][]string{"github": {l.URL + "/status500"}},
			want:     []string{"ranges: github: GET " + l.URL + "/status500: 500 Internal Server Error"},
			notWant:  []string{"aws", "google", "fastly", "cloudflare"},
		},
		{
			name:     "too large",
			override: map[string][]string{"aws": {l.URL + "/huge"}},
			want:     []string{"ranges: aws: " + l.URL + "/huge: larger than 32 MiB"},
		},
		{
			name:     "missing file",
			override: map[string][]string{"fastly": {"testdata/nope.json"}},
			want:     []string{"ranges: fastly: open testdata/nope.json: no such file or directory"},
		},
		{
			name:     "not a list",
			override: map[string][]string{"google": {l.URL + "/html"}},
			want:     []string{"ranges: google: malformed JSON: ", "(from " + l.URL + "/html)"},
		},
		{
			name: "every failing provider is named",
			override: map[string][]string{
				"cloudflare": {l.URL + "/cloudflare/ips-v4", l.URL + "/status500"},
				"google":     {l.URL + "/nope"},
			},
			want: []string{
				"ranges: cloudflare: GET " + l.URL + "/status500: 500 Internal Server Error",
				"ranges: google: GET " + l.URL + "/nope: 404 Not Found",
			},
		},
		{
			name:     "unknown provider",
			override: map[string][]string{"azure": {"x.json"}},
			want:     []string{`ranges: update: unknown provider "azure" (known: aws, cloudflare, fastly, github, google)`},
		},
		{
			name:     "cloudflare needs two",
			override: map[string][]string{"cloudflare": {l.URL + "/cloudflare/ips-v4"}},
			want:     []string{"ranges: update: cloudflare: got 1 sources, want 2 (like https://www.cloudflare.com/ips-v4,https://www.cloudflare.com/ips-v6)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := l.from()
			for k, v := range tt.override {
				from[k] = v
			}
			got, err := Update(context.Background(), guarded(l.Server), from, now)
			if err == nil {
				t.Fatalf("Update succeeded with %d providers, want an error", len(got.Providers))
			}
			if got.Providers != nil {
				t.Errorf("Update returned a partial snapshot with its error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nnames %q, which did not fail", err, w)
				}
			}
		})
	}
}

// TestUpdateDefaults checks that, without overrides, Update goes to the
// official sources: the guard refuses them, so no traffic leaves the host.
func TestUpdateDefaults(t *testing.T) {
	l := newLab(t)
	_, err := Update(context.Background(), guarded(l.Server), nil, now)
	if err == nil {
		t.Fatal("Update reached the providers")
	}
	for name, urls := range Sources() {
		if !strings.Contains(err.Error(), fmt.Sprintf("ranges: %s: Get %q", name, urls[0])) {
			t.Errorf("error does not show %s fetched from %s:\n%v", name, urls[0], err)
		}
	}
	if n := l.requests.Load(); n != 0 {
		t.Errorf("%d requests reached the lab", n)
	}
}

func TestUpdateDowngradeRedirect(t *testing.T) {
	l := newLab(t)
	tlsSrv := httptest.NewTLSServer(http.RedirectHandler(l.URL+"/fastly/public-ip-list.json", http.StatusFound))
	t.Cleanup(tlsSrv.Close)
	from := l.from()
	from["fastly"] = []string{tlsSrv.URL + "/public-ip-list"}
	_, err := Update(context.Background(), guarded(tlsSrv), from, now)
	want := fmt.Sprintf("ranges: fastly: GET %s/public-ip-list: redirected to %s/fastly/public-ip-list.json", tlsSrv.URL, l.URL)
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

func TestUpdateCancel(t *testing.T) {
	l := newLab(t)
	from := l.from()
	from["github"] = []string{l.URL + "/hang"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-l.started
		cancel()
	}()
	_, err := Update(ctx, guarded(l.Server), from, now)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "ranges: github: ") {
		t.Errorf("error %q does not name github", err)
	}
	// google comes after github and must not have been fetched.
	if strings.Contains(err.Error(), "google") || l.requests.Load() != 5 {
		t.Errorf("update went on after the cancel: %d requests, error %v", l.requests.Load(), err)
	}
}

func TestUpdateCancelledBeforeStart(t *testing.T) {
	l := newLab(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Update(ctx, guarded(l.Server), l.from(), now)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if n := l.requests.Load(); n != 0 {
		t.Errorf("%d requests after the context was cancelled", n)
	}
}
