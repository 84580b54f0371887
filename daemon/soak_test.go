package daemon

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/lab"
)

// soakProbesEnv sets the soak's length in probes of the flapping target;
// bench/soak.sh sets it for the long run. The default keeps CI well inside
// a minute.
const soakProbesEnv = "MITMWATCH_SOAK_PROBES"

// Soak tolerances between the start (after one warm-up cycle) and the end:
// the probes in flight and the scraper come and go, a few goroutines and
// descriptors either way; RSS may grow with the heap's first full cycles.
const (
	soakGoroutineSlack = 10
	soakFDSlack        = 10
	soakRSSSlack       = 32 << 20
)

// A target flaps between ok, down, intercepted and plain, another only goes
// down and up, while the daemon probes both on a short interval and
// /metrics is gathered continuously. Goroutines, descriptors and RSS stay
// flat; each real change is logged exactly once; the target that only goes
// down and up never shows an interception, downgrade or DNS finding.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak")
	}
	budget := uint64(600)
	if v, err := strconv.ParseUint(os.Getenv(soakProbesEnv), 10, 64); err == nil && v > 0 {
		budget = v
	}
	l := newLab(t)
	forger, err := lab.NewForger(lab.ForgerOptions{CA: l.env.PKI.EnterpriseRoot})
	if err != nil {
		t.Fatal(err)
	}
	l.env.Track(forger)
	plain, err := lab.NewPlain(lab.PlainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l.env.Track(plain)
	down, err := lab.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	flap, downUp := l.target("flap.lab.example", 1), l.target("downup.lab.example", 2)
	ld := &loader{cfg: l.config(5*time.Millisecond, time.Second, flap, downUp)}
	// Change events are counted, not kept: tens of thousands of records
	// held in memory would be the RSS growth measured.
	logs := &changeCounter{}
	d, err := New(Options{Logger: slog.New(logs), Load: ld.load, NewRunner: l.newRunner,
		Jitter: func(d time.Duration) time.Duration { return d / 2 }})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(exporter.NewCollector(d))

	type phase struct {
		to   string
		want detector.Verdict
	}
	cycle := []phase{
		{l.env.Origin.Addr(), detector.OK},
		{down, detector.Unreachable},
		{forger.Addr(), detector.Intercepted},
		{plain.Addr(), detector.Plaintext},
	}
	downUpCycle := []phase{{l.env.Origin.Addr(), detector.OK}, {down, detector.Unreachable}}
	l.router.route(flap.Address, cycle[0].to)
	l.router.route(downUp.Address, downUpCycle[0].to)
	run(t, d)

	// The scraper gathers /metrics back to back and checks the down-and-up
	// target at every scrape.
	stopScrape := make(chan struct{})
	var (
		scrapeWG sync.WaitGroup
		scrapes  int
		alarms   []string
	)
	scrapeWG.Add(1)
	go func() {
		defer scrapeWG.Done()
		for {
			select {
			case <-stopScrape:
				return
			default:
			}
			if _, err := reg.Gather(); err != nil {
				alarms = append(alarms, "scrape: "+err.Error())
			}
			scrapes++
			if r, ok := rec(d, downUp.Key()); ok {
				if r.Verdict != "" && r.Verdict != detector.OK && r.Verdict != detector.Unreachable {
					alarms = append(alarms, "verdict "+string(r.Verdict))
				}
				for _, f := range r.Findings {
					if alarming(f.Reason) {
						alarms = append(alarms, "finding "+string(f.Reason))
					}
				}
			}
		}
	}()

	changes := 0 // real changes of both targets after their first verdicts
	settle := func(key string, want detector.Verdict) {
		t.Helper()
		waitFor(t, d, wait, key+" "+string(want), verdictIs(d, key, want))
		r, _ := rec(d, key)
		waitFor(t, d, wait, key+" probed twice more", probedAtLeast(d, key, r.Probes+2))
	}
	var start soakFigures
	cycles := 0
	for i := 0; ; i++ {
		p := cycle[i%len(cycle)]
		q := downUpCycle[i%len(downUpCycle)]
		l.router.route(flap.Address, p.to)
		l.router.route(downUp.Address, q.to)
		settle(flap.Key(), p.want)
		settle(downUp.Key(), q.want)
		if i > 0 {
			changes += 2
		}
		if i%len(cycle) == len(cycle)-1 {
			cycles++
			if cycles == 1 {
				start = measure(t)
			}
			if r, _ := rec(d, flap.Key()); r.Probes >= budget {
				break
			}
		}
	}
	end := measure(t)
	close(stopScrape)
	scrapeWG.Wait()

	fr, _ := rec(d, flap.Key())
	dr, _ := rec(d, downUp.Key())
	events := int(logs.changes.Load())
	t.Logf("soak: %d cycles, %d probes (flapping %d, down-and-up %d), %d scrapes, %d changes, %d change events",
		cycles, fr.Probes+dr.Probes, fr.Probes, dr.Probes, scrapes, changes, events)
	t.Logf("soak: goroutines %d -> %d, fds %d -> %d, RSS %d KiB -> %d KiB, live heap %d KiB -> %d KiB",
		start.goroutines, end.goroutines, start.fds, end.fds, start.rss>>10, end.rss>>10, start.heap>>10, end.heap>>10)
	if events != changes {
		t.Errorf("%d change events for %d real changes", events, changes)
	}
	if len(alarms) > 0 {
		t.Errorf("the down-and-up target raised %d alarms, first %q", len(alarms), alarms[0])
	}
	if end.goroutines > start.goroutines+soakGoroutineSlack {
		t.Errorf("goroutines %d -> %d, want at most +%d", start.goroutines, end.goroutines, soakGoroutineSlack)
	}
	if end.fds > start.fds+soakFDSlack {
		t.Errorf("open descriptors %d -> %d, want at most +%d", start.fds, end.fds, soakFDSlack)
	}
	if end.rss > start.rss+soakRSSSlack {
		t.Errorf("RSS %d KiB -> %d KiB, want at most +%d KiB", start.rss>>10, end.rss>>10, soakRSSSlack>>10)
	}
}

// alarming reports whether a finding is one a path that only goes down and
// up must never raise: an interception, a downgrade or DNS tampering.
func alarming(r detector.Reason) bool {
	s := string(r)
	return strings.HasPrefix(s, "dns-") || strings.HasPrefix(s, "ca-") || strings.Contains(s, "downgrade") ||
		strings.Contains(s, "below-expected") || strings.Contains(s, "interception") || r == detector.ReasonSystemRootOnly
}

// soakFigures is the process's use of resources at one moment.
type soakFigures struct {
	goroutines, fds int
	rss, heap       int64 // heap: live bytes after a collection
}

func measure(t *testing.T) soakFigures {
	t.Helper()
	// Collect and hand freed memory back, so RSS is what is live rather
	// than what the collector has yet to return.
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var rss int64
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		}
	}
	return soakFigures{goroutines: runtime.NumGoroutine(), fds: len(fds), rss: rss, heap: int64(ms.HeapAlloc)}
}

// changeCounter counts the events of a verdict changing from one verdict
// to another (not a target's first verdict), and keeps nothing.
type changeCounter struct{ changes atomic.Int64 }

func (*changeCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (c *changeCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "verdict changed" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "from" && a.Value.String() != "" {
			c.changes.Add(1)
			return false
		}
		return true
	})
	return nil
}

func (c *changeCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *changeCounter) WithGroup(string) slog.Handler      { return c }
