package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/ranges"
)

func registerRanges(app *kingpin.Application, ctx context.Context, e env, set func(int)) {
	var (
		out     string
		from    []string
		timeout time.Duration
	)
	cmd := app.Command("ranges", "The providers' published IP ranges, for ip_ranges: [provider:NAME] in rules.yaml.")
	update := cmd.Command("update", "Fetch every provider's official range file (GitHub meta, Google goog.json, Cloudflare, Fastly, AWS), parse it and write the snapshot atomically. Run it from a network you trust: the files come over the same path mitmwatch watches.")
	update.Flag("out", "Snapshot to write; rules.yaml reads it through ranges_file, or from this default path.").Default(config.DefaultRangesFile).PlaceHolder("FILE").StringVar(&out)
	update.Flag("from", "Read a provider's files from a URL or a local file instead of its official source: PROVIDER=URL|FILE (Cloudflare takes two, comma-separated). Repeatable.").PlaceHolder("PROVIDER=SOURCE").StringsVar(&from)
	update.Flag("timeout", "Time allowed for all downloads.").Default("60s").DurationVar(&timeout)
	update.Action(func(*kingpin.ParseContext) error {
		overrides := map[string][]string{}
		for _, f := range from {
			name, src, ok := strings.Cut(f, "=")
			if !ok || name == "" || src == "" {
				return &exitError{check.ExitUsage, fmt.Errorf("--from %q: want PROVIDER=URL|FILE", f)}
			}
			overrides[name] = strings.Split(src, ",")
		}
		uctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		snap, err := ranges.Update(uctx, &http.Client{Timeout: timeout}, overrides, time.Now())
		if err != nil {
			// The old snapshot stays as it was.
			return &exitError{1, err}
		}
		if err := snap.Save(out); err != nil {
			return &exitError{1, err}
		}
		names := make([]string, 0, len(snap.Providers))
		for n := range snap.Providers {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p := snap.Providers[n]
			fmt.Fprintf(e.stdout, "%-10s %5d prefixes from %s\n", n, len(p.Prefixes), p.Source)
		}
		fmt.Fprintf(e.stdout, "wrote %s\n", out)
		return nil
	})
}
