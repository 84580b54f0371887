package daemon

import (
	"bytes"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/lab"
)

func TestNoteChain(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var seen []chainSeen
	var unsettled bool
	// Two CAs taking turns (a host behind two servers mid-rotation) stay
	// settled however often they alternate.
	for i := range 100 {
		seen, unsettled = noteChain(seen, []string{"a", "b"}[i%2], now.Add(time.Duration(i)*time.Minute))
		if unsettled {
			t.Fatalf("two alternating chains unsettled at probe %d", i)
		}
	}
	// maxChains distinct within the window are settled; one more is not.
	seen = nil
	for i := range maxChains {
		seen, unsettled = noteChain(seen, string(rune('a'+i)), now)
	}
	if unsettled {
		t.Errorf("%d distinct chains unsettled", maxChains)
	}
	seen, unsettled = noteChain(seen, "new", now.Add(time.Hour))
	if !unsettled {
		t.Errorf("%d distinct chains within the window settled", maxChains+1)
	}
	// Once the others leave the window, the target settles again.
	if _, unsettled = noteChain(seen, "new", now.Add(chainWindow+2*time.Hour)); unsettled {
		t.Error("one chain seen for a whole window is still unsettled")
	}
	// A new chain every time keeps the history bounded.
	for i := range 1000 {
		seen, _ = noteChain(seen, strings.Repeat("x", i), now)
	}
	if len(seen) > maxChains+1 {
		t.Errorf("history of %d chains, want at most %d", len(seen), maxChains+1)
	}
}

// An interceptor that mints a new CA (issuer, serial, SANs, root key) on
// every connection, probed a day's worth of times (2,000 probes: one every
// 43 s) as fast as the daemon can: the target keeps one chain_info series
// at every scrape and shows at most maxChains+1 label sets over the run, the
// heap stays flat, and the status page and log lines stay escaped and
// bounded.
func TestChurningInterceptorStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 probes")
	}
	const probes = 2000
	l := newLab(t)
	churner, err := lab.NewChurner()
	if err != nil {
		t.Fatal(err)
	}
	l.env.Track(churner)
	tg := l.target("pkg.lab.example", 1)
	l.router.route(tg.Address, churner.Addr())
	ld := &loader{cfg: l.config(time.Millisecond, 2*time.Second, tg)}
	// Every event is rendered as run's logfmt would be, and checked, not
	// kept: a kept log would be the heap growth measured.
	lines := &lineCheck{}
	d, err := New(Options{Logger: slog.New(slog.NewTextHandler(lines, &slog.HandlerOptions{Level: slog.LevelDebug})),
		StateDir: t.TempDir(), Load: ld.load, NewRunner: l.newRunner,
		Jitter: func(d time.Duration) time.Duration { return d / 2 }})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(exporter.NewCollector(d))
	run(t, d)
	key := tg.Key()

	labelSets := map[string]bool{}
	scrape := func() {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			if mf.GetName() != "mitmwatch_chain_info" {
				continue
			}
			for _, m := range mf.GetMetric() {
				n++
				var b strings.Builder
				for _, lp := range m.GetLabel() {
					b.WriteString(lp.GetName() + "=" + lp.GetValue() + ",")
				}
				labelSets[b.String()] = true
			}
		}
		if n > 1 {
			t.Fatalf("%d chain_info series at one scrape, want at most 1", n)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}

	// Scraped from the first probe, so every label set the run shows is
	// counted; the heap is measured from probe 200, once warm.
	var before uint64
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for {
		changed := d.changes()
		scrape()
		r, _ := rec(d, key)
		if before == 0 && r.Probes >= 200 {
			before = heap()
		}
		if r.Probes >= probes {
			break
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("only %d probes within 2 minutes", r.Probes)
		}
	}
	after := heap()
	r, _ := rec(d, key)
	t.Logf("%d probes, %d CAs presented, %d chain_info label sets, heap %d KiB -> %d KiB",
		r.Probes, churner.Presented(), len(labelSets), before>>10, after>>10)
	if len(labelSets) > maxChains+1 {
		t.Errorf("%d chain_info label sets over the run, want at most %d: %v", len(labelSets), maxChains+1, labelSets)
	}
	if changing := "issuer_cn=" + exporter.ChainChanging + ",root_spki_sha256=" + exporter.ChainChanging + ",target=" + key + ","; !r.ChainUnsettled || !labelSets[changing] {
		t.Errorf("a chain new at every probe: unsettled %v, label sets %v, want %s among them", r.ChainUnsettled, labelSets, changing)
	}
	if growth := int64(after) - int64(before); growth > 1<<20 {
		t.Errorf("heap grew by %d KiB over %d probes, want at most 1 MiB", growth>>10, r.Probes)
	}

	// The status page escapes the issuer's markup and escapes.
	code, body, _ := get(t, d.Handler(nil), "GET", "/")
	if code != 200 {
		t.Fatalf("status page: %d", code)
	}
	if strings.Contains(body, "<b>Churn") || strings.Contains(body, "\x1b") {
		i := max(strings.Index(body, "<b>Churn"), strings.Index(body, "\x1b"))
		t.Errorf("status page shows the issuer's markup or a terminal escape unescaped: %q", body[max(i-200, 0):min(i+200, len(body))])
	}
	// Every event rendered as one bounded, escaped line.
	lines.mu.Lock()
	defer lines.mu.Unlock()
	t.Logf("%d log lines, longest %d bytes", lines.n, lines.longest)
	if lines.longest > 4096 || lines.escape {
		t.Errorf("longest log line %d bytes (want at most 4096), raw escape %v", lines.longest, lines.escape)
	}
}

// lineCheck notes the longest line written to it and whether any held a
// raw terminal escape. slog handlers write one whole line per Write.
type lineCheck struct {
	mu      sync.Mutex
	n       int
	longest int
	escape  bool
}

func (c *lineCheck) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	c.longest = max(c.longest, len(p))
	c.escape = c.escape || bytes.IndexByte(p, 0x1b) >= 0 || bytes.IndexByte(p[:len(p)-1], '\n') >= 0
	return len(p), nil
}
