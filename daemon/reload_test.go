package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/resolver"
)

// openFDs counts this process's open descriptors; -1 where /proc is not.
func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// dnsLab resolves names through a lab system resolver and checks them
// against a lab DoT reference, as the CLI's runner does: each runner gets
// its own resolver.Client, whose DoT connection is what a reload must not
// leave behind.
type dnsLab struct {
	*testLab
	sys, ref resolver.Server
	dot      *lab.DNSServer
}

func newDNSLab(t *testing.T, zone map[string][]netip.Addr) *dnsLab {
	t.Helper()
	l := newLab(t)
	sys, err := lab.NewDNSServer(lab.DNSOptions{Zone: zone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	dot, err := lab.NewDoTServer(l.env.PKI, lab.DNSOptions{Zone: zone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dot.Close() })
	sysSrv, err := resolver.ParseServer("udp://" + sys.Addr())
	if err != nil {
		t.Fatal(err)
	}
	sysSrv.System = true
	refSrv, err := resolver.ParseServer("tls://" + dot.Addr() + "#" + lab.DNSHost)
	if err != nil {
		t.Fatal(err)
	}
	return &dnsLab{testLab: l, sys: sysSrv, ref: refSrv, dot: dot}
}

func (l *dnsLab) newRunner(cfg *config.Config) *check.Runner {
	r := l.testLab.newRunner(cfg)
	r.DNS = &check.DNS{
		Client:    &resolver.Client{TLSConfig: &tls.Config{RootCAs: l.env.PKI.PublicPool()}, Timeout: time.Second},
		System:    []resolver.Server{l.sys},
		Reference: []resolver.Server{l.ref},
	}
	return r
}

// Reloads under load: 200 reloads, good and broken configs alternating,
// while the daemon probes every 20ms through DNS over TLS and is scraped
// all along. Each good reload replaces the runner and its DNS client; the
// replaced one must be closed, so goroutines and descriptors stay flat, the
// last good config keeps running, and the reload metrics count what
// happened. Not parallel: it counts the process's goroutines.
func TestReloadsLeaveNothingBehind(t *testing.T) {
	const host = "registry.lab.example"
	addr := netip.MustParseAddr("192.0.2.77")
	l := newDNSLab(t, map[string][]netip.Addr{host: {addr}})
	l.router.route("192.0.2.77:443", l.env.Origin.Addr())
	tgt := l.target(host, 77)
	tgt.Address = "" // resolved: the DNS client is used on every probe

	good := func(n int) *config.Config {
		cfg := l.config(20*time.Millisecond, 2*time.Second, tgt)
		cfg.Source = fmt.Sprintf("good-%d.yaml", n)
		return cfg
	}
	ld := &loader{cfg: good(0)}
	d, err := New(Options{Load: ld.load, NewRunner: l.newRunner, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	run(t, d)
	waitFor(t, d, wait, "ready", d.Ready)

	reg := prometheus.NewRegistry()
	reg.MustRegister(exporter.NewCollector(d))
	stopScrape := make(chan struct{})
	var scrapes sync.WaitGroup
	scrapes.Add(1)
	var scrapeErr error
	go func() {
		defer scrapes.Done()
		for {
			select {
			case <-stopScrape:
				return
			default:
			}
			if _, err := reg.Gather(); err != nil {
				scrapeErr = err
				return
			}
		}
	}()

	ctx := context.Background()
	cycle := func(n int) {
		ld.set(good(n), nil)
		if err := d.Reload(ctx); err != nil {
			t.Fatalf("reload %d (good): %v", n, err)
		}
		// Let the new runner's DNS client connect before it is replaced.
		r, _ := rec(d, tgt.Key())
		waitFor(t, d, wait, "a probe with the new runner", probedAtLeast(d, tgt.Key(), r.Probes+2))
		ld.set(nil, errors.New("broken on purpose"))
		if err := d.Reload(ctx); err == nil {
			t.Fatalf("reload %d (broken) succeeded", n)
		}
	}
	// Warm up: the first replacements allocate what later ones reuse.
	for n := 1; n <= 5; n++ {
		cycle(n)
	}
	g0, fd0 := runtime.NumGoroutine(), openFDs()
	for n := 6; n <= 100; n++ {
		cycle(n)
	}
	close(stopScrape)
	scrapes.Wait()
	if scrapeErr != nil {
		t.Fatalf("scrape failed: %v", scrapeErr)
	}
	g1, fd1 := runtime.NumGoroutine(), openFDs()
	t.Logf("after 200 reloads: goroutines %d -> %d, descriptors %d -> %d, DoT queries %d", g0, g1, fd0, fd1, l.dot.Queries("tcp"))
	// Slack for probes in flight at either count; a leak is ~2 per reload.
	if g1 > g0+10 {
		t.Errorf("goroutines grew from %d to %d over 190 reloads", g0, g1)
	}
	if fd0 >= 0 && fd1 > fd0+6 {
		t.Errorf("open descriptors grew from %d to %d over 190 reloads", fd0, fd1)
	}
	if l.dot.Queries("tcp") == 0 {
		t.Fatal("the DoT reference was never asked: the test proves nothing")
	}

	// The last good config keeps running after the last, broken, reload.
	d.mu.Lock()
	source := d.cfg.Source
	d.mu.Unlock()
	if source != "good-100.yaml" {
		t.Errorf("running config %q, want good-100.yaml", source)
	}
	r, _ := rec(d, tgt.Key())
	waitFor(t, d, wait, "probes going on", probedAtLeast(d, tgt.Key(), r.Probes+2))
	want := `
# HELP mitmwatch_config_last_reload_successful 1 when the last load of rules.yaml succeeded; 0 when it failed and the last good configuration keeps running.
# TYPE mitmwatch_config_last_reload_successful gauge
mitmwatch_config_last_reload_successful 0
# HELP mitmwatch_config_reloads_total Loads of rules.yaml since the daemon started (the first included), by result ("success", "failure"): with mitmwatch_config_last_reload_successful it says whether a reload ran and what became of it.
# TYPE mitmwatch_config_reloads_total counter
mitmwatch_config_reloads_total{result="failure"} 100
mitmwatch_config_reloads_total{result="success"} 101
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"mitmwatch_config_last_reload_successful", "mitmwatch_config_reloads_total"); err != nil {
		t.Error(err)
	}
}
