// Command daemon (built as bench/out/daemonbench) measures `mitmwatch run`,
// the service on build agents, against the figures of its issue: with 200
// TLS targets on a 30 s interval the daemon must stay within 30 MB of RSS
// and 2% of one core, and answer a /metrics scrape within 10 ms at p99
// while 50 scrapers hammer it.
//
// The same 200 probes are then given to Debian's
// prometheus-blackbox-exporter for a window of the same length, as the
// comparison: it is pull-based, so a driver here plays the 200 Prometheus
// scrape jobs that would each ask it for a probe once per interval, spread
// over the interval. The two run one after the other, never side by side:
// on two cores each would otherwise pay for the other's work.
//
// The lab (one origin that plays every host by SNI) and the load generators
// run in this process; both measured programs are child processes, and
// their CPU and peak RSS are read from /proc. Run it through
// bench/daemon.sh, which builds the binaries first.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/mitmwatch/mitmwatch/scenario"
)

type options struct {
	mitmwatch, blackbox string
	targets             int
	interval, window    time.Duration
	warmup, latency     time.Duration
	scrapers            int
	scrapeFor           time.Duration
	scrapeGzip          bool
	daemonEnv           []string
	path                bool
	daemonLog           string
}

func main() {
	var o options
	flag.StringVar(&o.mitmwatch, "mitmwatch", "bench/out/mitmwatch", "mitmwatch binary to measure")
	flag.StringVar(&o.blackbox, "blackbox", "/usr/bin/prometheus-blackbox-exporter", "blackbox_exporter binary to compare with (apt-get install prometheus-blackbox-exporter); empty skips it")
	flag.IntVar(&o.targets, "targets", 200, "TLS targets, each a distinct name under .example on the lab's origin")
	flag.DurationVar(&o.interval, "interval", 30*time.Second, "probe interval of every target")
	flag.DurationVar(&o.window, "window", 2*time.Minute, "measurement window for CPU and RSS")
	flag.DurationVar(&o.warmup, "warmup", 0, "wait after the first round before the window opens (0: one interval)")
	flag.DurationVar(&o.latency, "latency", 20*time.Millisecond, "latency the origin adds per round trip")
	flag.IntVar(&o.scrapers, "scrapers", 50, "concurrent /metrics scrapers")
	flag.DurationVar(&o.scrapeFor, "scrape-for", 20*time.Second, "how long the scrapers scrape")
	flag.BoolVar(&o.scrapeGzip, "scrape-gzip", true, "scrapers ask for gzip, as Prometheus does")
	flag.Func("daemon-env", "KEY=VALUE added to the daemon's environment only, e.g. GODEBUG=gctrace=1 (with -daemon-log) or GOGC=200; repeatable", func(kv string) error {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("%q: want KEY=VALUE", kv)
		}
		o.daemonEnv = append(o.daemonEnv, kv)
		return nil
	})
	flag.BoolVar(&o.path, "path", false, "keep rules.yaml's path probes (RTT split, TTL-limited hellos); the lab adds its latency after the kernel set TCP up, which the RTT split rightly flags as a splicer, so use -latency under 15ms with it")
	flag.StringVar(&o.daemonLog, "daemon-log", "", "keep the daemon's log in this file (default: a temporary file)")
	flag.Parse()
	if o.warmup == 0 {
		o.warmup = o.interval
	}
	// The daemon probes in rounds, so a window shorter than the interval
	// could fall between two of them and measure an idle process.
	if o.targets < 1 || o.targets > 1000 || o.scrapers < 1 || o.interval <= 0 || o.window < o.interval {
		fmt.Fprintln(os.Stderr, "daemonbench: -targets must be 1 to 1000, -scrapers at least 1, -window at least -interval")
		os.Exit(2)
	}
	if o.window%o.interval != 0 {
		progress("-window %v is not a multiple of -interval %v: the figures depend on where the rounds fall", o.window, o.interval)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "daemonbench:", err)
		os.Exit(1)
	}
}

// results are the figures of one run.
type results struct {
	mw, bb         window
	hasBlackbox    bool
	single, storm  storm         // one scraper, then many
	bbStorm        storm         // many scrapers on blackbox_exporter's /metrics
	scrapeCPU      time.Duration // daemon CPU per scrape during the storm
	hwmAfterStorm  int64
	metricsBytes   int // one uncompressed /metrics answer
	expectedProbes int
	bbLastErr      error // the last failed blackbox probe, if any
}

// window is what one program did over the measurement window.
type window struct {
	start, end usage
	probes     int
	failures   int
	gcs        int
}

// lab is what both measurements share: the origin playing every host, and
// the configs that point at it.
type lab struct {
	env   *scenario.Env
	hosts []string
	dir   string
	files benchFiles
}

func run(ctx context.Context, o options) error {
	l := lab{hosts: make([]string, o.targets)}
	for i := range l.hosts {
		l.hosts[i] = fmt.Sprintf("t%03d.bench.example", i)
	}
	var err error
	if l.env, err = scenario.NewEnv(scenario.Options{Latency: o.latency}); err != nil {
		return err
	}
	defer l.env.Close()
	for _, h := range l.hosts { // issue the leaves now, not during the first round
		if _, err := l.env.Origin.Certificate(h); err != nil {
			return err
		}
	}
	if l.dir, err = os.MkdirTemp("", "daemonbench"); err != nil {
		return err
	}
	defer os.RemoveAll(l.dir)
	if l.files, err = writeFiles(l.dir, l.env, l.hosts, o.interval, o.path); err != nil {
		return err
	}
	if o.blackbox != "" {
		if _, err := os.Stat(o.blackbox); err != nil {
			return fmt.Errorf("%w (apt-get install -y prometheus-blackbox-exporter, or -blackbox= to skip the comparison)", err)
		}
	}

	// One program at a time: on two cores, a second prober running beside
	// the first costs it CPU it would not spend alone.
	r := results{expectedProbes: int(int64(o.targets) * int64(o.window) / int64(o.interval))}
	if err := measureDaemon(ctx, o, l, &r); err != nil {
		return err
	}
	if o.blackbox != "" {
		r.hasBlackbox = true
		if err := measureBlackbox(ctx, o, l, &r); err != nil {
			return err
		}
	}
	printTable(o, r)
	var errs []error
	if r.mw.failures > 0 {
		errs = append(errs, fmt.Errorf("mitmwatch: %d of %d probes in the window failed", r.mw.failures, r.mw.probes))
	}
	if r.bb.failures > 0 {
		errs = append(errs, fmt.Errorf("blackbox_exporter: %d of %d probes in the window failed, last: %v", r.bb.failures, r.bb.probes, r.bbLastErr))
	}
	if n := r.single.errors + r.storm.errors; n > 0 {
		errs = append(errs, fmt.Errorf("%d scrapes of /metrics failed", n))
	}
	return errors.Join(errs...)
}

// measureDaemon runs `mitmwatch run` over the lab: it checks that every
// target is judged ok, measures CPU and RSS over the window, then the
// /metrics latency under one and under many scrapers.
func measureDaemon(ctx context.Context, o options, l lab, r *results) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	logPath := o.daemonLog
	if logPath == "" {
		logPath = filepath.Join(l.dir, "mitmwatch.log")
	}
	mw, err := start("mitmwatch run", logPath, childEnv(o.daemonEnv...), o.mitmwatch, "run",
		"--config", l.files.rules, "--state.dir", filepath.Join(l.dir, "state"), "--no-toolchain",
		"--web.listen-address="+addr)
	if err != nil {
		return err
	}
	defer mw.stop(15 * time.Second)

	client := &http.Client{Transport: direct(), Timeout: 10 * time.Second}
	metrics := "http://" + addr + "/metrics"
	checkOK := func(when string) error {
		fams, n, err := fetchMetrics(ctx, client, metrics)
		if err != nil {
			return err
		}
		r.metricsBytes = n
		if err := allOK(fams, l.hosts); err != nil {
			return fmt.Errorf("%s: %w", when, err)
		}
		return nil
	}
	progress("mitmwatch: waiting for the first round (/-/ready)")
	if err := waitOK(ctx, mw, "http://"+addr+"/-/ready", max(time.Minute, 2*o.interval)); err != nil {
		return err
	}
	if err := checkOK("after the first round"); err != nil {
		return err
	}
	progress("mitmwatch: all %d targets ok; warming up for %v, then measuring for %v", len(l.hosts), o.warmup, o.window)
	if err := sleep(ctx, o.warmup); err != nil {
		return err
	}
	if r.mw, err = openWindow(ctx, client, mw, metrics); err != nil {
		return err
	}
	if err := sleep(ctx, o.window); err != nil {
		return err
	}
	if err := closeWindow(ctx, client, mw, metrics, &r.mw); err != nil {
		return err
	}
	if err := checkOK("after the window"); err != nil {
		return err
	}

	progress("mitmwatch: one scraper on /metrics for %v, then %d for %v", o.scrapeFor/4, o.scrapers, o.scrapeFor)
	if r.single, err = scrapeStorm(ctx, metrics, 1, o.scrapeFor/4, o.scrapeGzip); err != nil {
		return err
	}
	before, err := readUsage(mw.pid())
	if err != nil {
		return err
	}
	if r.storm, err = scrapeStorm(ctx, metrics, o.scrapers, o.scrapeFor, o.scrapeGzip); err != nil {
		return err
	}
	after, err := readUsage(mw.pid())
	if err != nil {
		return err
	}
	r.scrapeCPU = time.Duration(after.cpuTicks-before.cpuTicks) * (time.Second / clockTicks) / time.Duration(len(r.storm.latencies))
	r.hwmAfterStorm = after.hwm

	if err := mw.stop(15 * time.Second); err != nil {
		return fmt.Errorf("mitmwatch run did not stop cleanly on SIGTERM: %w\n%s", err, tail(mw.log, 20))
	}
	return nil
}

// measureBlackbox runs blackbox_exporter with the driver asking for the
// same probes: a first round in which every probe must succeed, then the
// warm-up and the window, as for the daemon.
func measureBlackbox(ctx context.Context, o options, l lab, r *results) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	bb, err := start("blackbox_exporter", filepath.Join(l.dir, "blackbox.log"), childEnv(), o.blackbox,
		"--config.file="+l.files.blackbox, "--web.listen-address="+addr)
	if err != nil {
		return err
	}
	defer bb.stop(5 * time.Second)
	drv := newDriver(addr, l.env.Origin.Addr(), l.hosts)
	if err := waitOK(ctx, bb, drv.base+"/-/healthy", 30*time.Second); err != nil {
		return err
	}
	if err := drv.round(ctx, 8); err != nil {
		return fmt.Errorf("blackbox_exporter's first round: %w", err)
	}
	progress("blackbox_exporter: all %d probes succeeded; warming up for %v, then measuring for %v", len(l.hosts), o.warmup, o.window)

	driverCtx, stopDriver := context.WithCancel(ctx)
	driverDone := make(chan struct{})
	go func() { defer close(driverDone); drv.run(driverCtx, o.interval) }()
	defer func() { stopDriver(); <-driverDone }()
	if err := sleep(ctx, o.warmup); err != nil {
		return err
	}
	probes0, failures0 := drv.probes.Load(), drv.failures.Load()
	metrics := drv.base + "/metrics"
	if r.bb, err = openWindow(ctx, drv.client, bb, metrics); err != nil {
		return err
	}
	if err := sleep(ctx, o.window); err != nil {
		return err
	}
	if err := closeWindow(ctx, drv.client, bb, metrics, &r.bb); err != nil {
		return err
	}
	r.bb.probes = int(drv.probes.Load() - probes0)
	r.bb.failures = int(drv.failures.Load() - failures0)
	r.bbLastErr = drv.lastError()

	// The same storm on blackbox_exporter's own /metrics (its process
	// metrics, a page far smaller than mitmwatch's), still probing: how
	// fast this machine answers 50 scrapers at all.
	progress("blackbox_exporter: %d scrapers on its /metrics for %v", o.scrapers, o.scrapeFor)
	if r.bbStorm, err = scrapeStorm(ctx, metrics, o.scrapers, o.scrapeFor, o.scrapeGzip); err != nil {
		return err
	}
	return nil
}

// benchFiles are the configs both programs read.
type benchFiles struct{ rules, blackbox string }

// writeFiles writes the lab's roots, mitmwatch's rules.yaml and
// blackbox_exporter's config for hosts, all at the origin's address.
func writeFiles(dir string, env *scenario.Env, hosts []string, interval time.Duration, path bool) (benchFiles, error) {
	public, system := filepath.Join(dir, "public.pem"), filepath.Join(dir, "system.pem")
	if err := os.WriteFile(public, env.PKI.PublicPEM(), 0o644); err != nil {
		return benchFiles{}, err
	}
	if err := os.WriteFile(system, env.PKI.SystemPEM(), 0o644); err != nil {
		return benchFiles{}, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "toolchain: none\ntrust:\n  public_roots: %s\n  system_roots: %s\n", public, system)
	fmt.Fprintf(&b, "dns:\n  reference_resolvers: []\n  canary: false\nprobe:\n  interval: %s\n", interval)
	if !path {
		// On loopback the kernel answers the SYN at once while the lab
		// origin delays its answers: what a splicer looks like.
		b.WriteString("  path: {samples: 0, max_hops: 0}\n")
	}
	b.WriteString("targets:\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "  - host: %s\n    address: %s\n", h, env.Origin.Addr())
	}
	f := benchFiles{rules: filepath.Join(dir, "rules.yaml"), blackbox: filepath.Join(dir, "blackbox.yml")}
	if err := os.WriteFile(f.rules, []byte(b.String()), 0o644); err != nil {
		return benchFiles{}, err
	}
	// The same per-probe bound as mitmwatch's default probe.timeout.
	return f, writeBlackboxConfig(f.blackbox, public, hosts, 10*time.Second)
}

// openWindow scrapes the program's own counters, then reads its usage, so
// the scrape falls before the window.
func openWindow(ctx context.Context, client *http.Client, c *child, metrics string) (window, error) {
	fams, _, err := fetchMetrics(ctx, client, metrics)
	if err != nil {
		return window{}, err
	}
	u, err := readUsage(c.pid())
	if err != nil {
		return window{}, err
	}
	return window{
		start:    u,
		probes:   -int(sum(fams, "mitmwatch_probes_total")),
		failures: -int(sum(fams, "mitmwatch_probe_failures_total")),
		gcs:      -int(sum(fams, "go_gc_duration_seconds")),
	}, nil
}

// closeWindow reads the usage, then the counters, so the scrape falls after
// the window.
func closeWindow(ctx context.Context, client *http.Client, c *child, metrics string, w *window) error {
	u, err := readUsage(c.pid())
	if err != nil {
		return err
	}
	fams, _, err := fetchMetrics(ctx, client, metrics)
	if err != nil {
		return err
	}
	w.end = u
	w.probes += int(sum(fams, "mitmwatch_probes_total"))
	w.failures += int(sum(fams, "mitmwatch_probe_failures_total"))
	w.gcs += int(sum(fams, "go_gc_duration_seconds"))
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "daemonbench: "+format+"\n", args...)
}

func printTable(o options, r results) {
	fmt.Printf("lab: %d TLS targets (one origin, by SNI), %v interval, %v added per round trip, %d CPUs\n",
		o.targets, o.interval, o.latency, runtime.NumCPU())
	fmt.Printf("window: %v after a %v warm-up; then %d scrapers for %v (gzip %v)\n", o.window, o.warmup, o.scrapers, o.scrapeFor, o.scrapeGzip)
	fmt.Printf("%-42s %10s %18s %8s %5s\n", "measure", "mitmwatch", "blackbox_exporter", "target", "met")
	bbCol := func(f string, v float64) string {
		if !r.hasBlackbox {
			return "-"
		}
		return fmt.Sprintf(f, v)
	}
	row := func(measure, mw, bb, target string, met *bool) {
		m := "-"
		if met != nil {
			m = map[bool]string{true: "yes", false: "MISS"}[*met]
		}
		fmt.Printf("%-42s %10s %18s %8s %5s\n", measure, mw, bb, target, m)
	}
	is := func(b bool) *bool { return &b }
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	perProbe := func(w window) float64 {
		if w.probes == 0 {
			return 0
		}
		return ms(time.Duration(w.end.cpuTicks-w.start.cpuTicks)*(time.Second/clockTicks)) / float64(w.probes)
	}

	mwHWM, mwCPU := mb(r.mw.end.hwm), cpuPercent(r.mw.start, r.mw.end)
	row("peak RSS (VmHWM at end of window)", fmt.Sprintf("%.1fMB", mwHWM), bbCol("%.1fMB", mb(r.bb.end.hwm)), "<=30MB", is(mwHWM <= 30))
	row("RSS at end of window", fmt.Sprintf("%.1fMB", mb(r.mw.end.rss)), bbCol("%.1fMB", mb(r.bb.end.rss)), "-", nil)
	row("average CPU, % of one core", fmt.Sprintf("%.2f%%", mwCPU), bbCol("%.2f%%", cpuPercent(r.bb.start, r.bb.end)), "<=2%", is(mwCPU <= 2))
	row("rest of machine (lab, others), % of a core", fmt.Sprintf("%.1f%%", othersPercent(r.mw.start, r.mw.end)), bbCol("%.1f%%", othersPercent(r.bb.start, r.bb.end)), "-", nil)
	row("CPU per probe", fmt.Sprintf("%.2fms", perProbe(r.mw)), bbCol("%.2fms", perProbe(r.bb)), "-", nil)
	row(fmt.Sprintf("probes in window (%d due)", r.expectedProbes), fmt.Sprint(r.mw.probes), bbCol("%.0f", float64(r.bb.probes)), "-", nil)
	row("failed probes in window", fmt.Sprint(r.mw.failures), bbCol("%.0f", float64(r.bb.failures)), "0", is(r.mw.failures == 0))
	row("GC cycles in window", fmt.Sprint(r.mw.gcs), bbCol("%.0f", float64(r.bb.gcs)), "-", nil)
	row("/metrics p50, p99 (one scraper)", fmt.Sprintf("%.1f, %.1fms", ms(r.single.quantile(0.5)), ms(r.single.quantile(0.99))), "-", "-", nil)
	p99 := r.storm.quantile(0.99)
	scr := fmt.Sprintf(" (%d scrapers)", o.scrapers)
	row("/metrics p50"+scr, fmt.Sprintf("%.2fms", ms(r.storm.quantile(0.5))), bbCol("%.2fms", ms(r.bbStorm.quantile(0.5))), "-", nil)
	row("/metrics p99"+scr, fmt.Sprintf("%.2fms", ms(p99)), bbCol("%.2fms", ms(r.bbStorm.quantile(0.99))), "<=10ms", is(p99 <= 10*time.Millisecond))
	row("/metrics scrapes/s"+scr, fmt.Sprintf("%.0f", r.storm.rate()), bbCol("%.0f", r.bbStorm.rate()), "-", nil)
	row("daemon CPU per scrape", fmt.Sprintf("%.2fms", ms(r.scrapeCPU)), "-", "-", nil)
	row("/metrics answer size (as sent)", fmt.Sprintf("%.0fKB", float64(r.storm.bytes)/1024), bbCol("%.1fKB", float64(r.bbStorm.bytes)/1024), "-", nil)
	row("/metrics answer size (uncompressed)", fmt.Sprintf("%.0fKB", float64(r.metricsBytes)/1024), "-", "-", nil)
	row("peak RSS after the scrapers", fmt.Sprintf("%.1fMB", mb(r.hwmAfterStorm)), "-", "-", nil)
}
