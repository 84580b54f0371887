package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"golang.org/x/net/http/httpproxy"

	"github.com/mitmwatch/mitmwatch/audit"
	"github.com/mitmwatch/mitmwatch/baseline"
	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/grade"
	"github.com/mitmwatch/mitmwatch/probe"
	"github.com/mitmwatch/mitmwatch/report"
	"github.com/mitmwatch/mitmwatch/resolver"
	"github.com/mitmwatch/mitmwatch/termsafe"
	"github.com/mitmwatch/mitmwatch/toolchain"
	"github.com/mitmwatch/mitmwatch/tools"
	"github.com/mitmwatch/mitmwatch/trust"
)

// roundFlags are shared by the commands that probe.
type roundFlags struct {
	config      string
	targets     []string
	timeout     time.Duration
	concurrency int
	toolchain   bool
	// storeLater loads the trust stores while the probes make their
	// round trips (config.Options.StoresLater).
	storeLater bool
	// sumdbLater leaves the checksum database's target (which asks the go
	// command) to be added to a round already under way.
	sumdbLater bool
	// stateDir is where the checksum database's verified tree, and where
	// its hosts were reached, are kept; the command sets it, "" keeps none.
	stateDir string
}

func (f *roundFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("config", "rules.yaml to use. Without it: $MITMWATCH_CONFIG, /etc/mitmwatch/rules.yaml, the user's config dir, then the embedded default.").
		Short('c').PlaceHolder("FILE").StringVar(&f.config)
	cmd.Flag("target", "Probe only this host (HOST or HOST:PORT; ssh://HOST[:PORT] for its SSH targets only); repeatable. A host the config does not list is probed on its own (over SSH when named with ssh://).").
		PlaceHolder("HOST").StringsVar(&f.targets)
	cmd.Flag("timeout", "Time allowed per target; overrides probe.timeout.").DurationVar(&f.timeout)
	cmd.Flag("concurrency", "Targets probed at once; overrides probe.concurrency.").IntVar(&f.concurrency)
	cmd.Flag("toolchain", "Add the hosts the local toolchain is configured to use, when the config says toolchain: auto. --no-toolchain skips them.").Default("true").BoolVar(&f.toolchain)
}

// round is a loaded configuration ready to probe.
type round struct {
	cfg     *config.Config
	targets []config.Target
	runner  *check.Runner
}

// load locates and parses the config, adds toolchain targets (from tools,
// nil meaning a reading of its own), applies --target, and builds the
// runner. Errors are usage errors (exit 2).
func (f *roundFlags) load(ctx context.Context, e env, tools func(context.Context) toolchain.Settings) (*round, error) {
	if tools == nil || !f.toolchain {
		tools = toolchainSettings(e, f.toolchain)
	}
	return f.loadWith(ctx, e, tools)
}

// loadWith is load with the toolchain's settings read by tools; nil adds
// no toolchain hosts (they are added to the round as they are found).
func (f *roundFlags) loadWith(ctx context.Context, e env, tools func(context.Context) toolchain.Settings) (*round, error) {
	cfg, targets, err := loadConfigWith(ctx, e, f.config, tools, config.Options{RangesFile: e.rangesFile, StoresLater: f.storeLater})
	if err != nil {
		return nil, &exitError{check.ExitUsage, err}
	}
	if !f.sumdbLater {
		targets = append(targets, sumdbTargets(ctx, e, cfg, f.toolchain)...)
	}
	if len(f.targets) > 0 {
		if targets, err = selectTargets(targets, f.targets); err != nil {
			return nil, &exitError{check.ExitUsage, err}
		}
	}
	if f.timeout > 0 {
		cfg.Timeout = f.timeout
	}
	if f.concurrency > 0 {
		cfg.Concurrency = f.concurrency
	}
	return &round{cfg: cfg, targets: targets, runner: withIntegrity(newRunner(cfg, e), cfg, e, f.stateDir)}, nil
}

// loadConfig locates and parses the config and, when it says toolchain:
// auto and tools is not nil, adds the hosts the toolchain's settings name
// (npm's default registry included).
func loadConfig(ctx context.Context, e env, path string, tools func(context.Context) toolchain.Settings) (*config.Config, []config.Target, error) {
	return loadConfigWith(ctx, e, path, tools, config.Options{RangesFile: e.rangesFile})
}

// loadConfigWith is loadConfig parsing with opts.
func loadConfigWith(ctx context.Context, e env, path string, tools func(context.Context) toolchain.Settings, opts config.Options) (*config.Config, []config.Target, error) {
	name, data, err := config.Locate(path, config.LocateOptions{Getenv: e.getenv})
	if err != nil {
		return nil, nil, err
	}
	cfg, err := config.Parse(name, data, opts)
	if err != nil {
		return nil, nil, err
	}
	targets := cfg.Targets
	if cfg.Toolchain && tools != nil {
		found, errs := toolchain.Discover(ctx, tools(ctx), toolchain.Options{})
		var bad []error
		targets, bad = config.WithToolchain(targets, found)
		for _, err := range append(errs, bad...) {
			fmt.Fprintf(e.stderr, "mitmwatch: toolchain: %s\n", termsafe.String(err.Error()))
		}
	}
	return cfg, targets, nil
}

// discoverTargets lists the hosts toolchain discovery found (with its
// errors) and then the audit's extra hosts, less those targets has: what
// joins a round already under way.
func discoverTargets(e env, targets []config.Target, found []toolchain.Host, errs []error, extra []toolchain.Host) []config.Target {
	all, bad := config.WithToolchain(targets, found)
	for _, err := range append(errs, bad...) {
		fmt.Fprintf(e.stderr, "mitmwatch: toolchain: %s\n", termsafe.String(err.Error()))
	}
	all, bad = config.WithToolchain(all, extra)
	for _, err := range bad {
		fmt.Fprintf(e.stderr, "mitmwatch: audit: %s\n", termsafe.String(err.Error()))
	}
	return all[len(targets):]
}

// toolchainSettings reads the toolchain's settings as the audit does, for
// commands that do not audit; nil when on is false (--no-toolchain). Run
// as root, it reads the system-wide files too, as the audit does.
func toolchainSettings(e env, on bool) func(context.Context) toolchain.Settings {
	if !on {
		return nil
	}
	return func(ctx context.Context) toolchain.Settings {
		return audit.ToolchainSettings(ctx, auditOptions(e, os.Geteuid() == 0))
	}
}

// newRunner builds what probes and judges under cfg: the prober (through
// the proxy the environment names) and the resolvers.
func newRunner(cfg *config.Config, e env) *check.Runner {
	runner := &check.Runner{
		Prober: &probe.Prober{PublicRoots: cfg.PublicRoots, SystemRoots: cfg.SystemRoots, PublicStore: cfg.PublicStore, SystemStore: cfg.SystemStore,
			Proxy: proxyFromEnv(e.getenv), Path: cfg.Path},
		Policy:      cfg.Policy,
		Concurrency: cfg.Concurrency,
		Timeout:     cfg.Timeout,
	}
	var err error
	warn := func(err error, consequence string) {
		fmt.Fprintf(e.stderr, "mitmwatch: dns: %v; %s\n", err, consequence)
	}
	if runner.DNS, err = dnsFor(cfg, warn); err != nil {
		// Without the system's resolver list the prober falls back to
		// Go's resolver: targets are still probed, DNS is not compared.
		warn(err, "DNS answers are not compared")
	}
	return runner
}

// dnsFor builds the resolvers of a round. Reference resolvers over TLS are
// verified against the public roots: a locally installed interception root
// must not be able to answer for them. Names the hosts file lists are
// resolved from it where nsswitch.conf says so; a DoH reference given by
// name without bootstrap addresses is found through the other references,
// never the system resolver. warn is told of what is used in a degraded
// way.
func dnsFor(cfg *config.Config, warn func(err error, consequence string)) (*check.DNS, error) {
	sys, err := resolver.SystemServers(cfg.DNS.ResolvConf)
	if err != nil {
		return nil, err
	}
	order, err := resolver.ReadNSSwitch(resolver.DefaultNSSwitch)
	if err != nil {
		warn(err, "the hosts file is read before DNS, the default")
	}
	d := &check.DNS{
		Client: &resolver.Client{TLSConfig: &tls.Config{RootCAs: cfg.PublicRoots}, Roots: cfg.PublicStore,
			Bootstrap: cfg.DNS.Reference},
		System:    sys,
		Reference: cfg.DNS.Reference,
		Hosts:     &resolver.Hosts{Path: resolver.DefaultHostsFile, Order: order},
	}
	if err := d.Hosts.Check(); err != nil {
		warn(err, "names are resolved as if it listed none")
	}
	if cfg.DNS.Canary {
		d.Canary = resolver.CanaryName(rand.Reader)
	}
	return d, nil
}

// close releases the connections kept to encrypted resolvers.
func (r *round) close() {
	if r.runner.DNS != nil {
		r.runner.DNS.Client.Close()
	}
}

// selectTargets keeps the named targets; a name the list lacks becomes an
// ad-hoc target on port 443.
func selectTargets(all []config.Target, names []string) ([]config.Target, error) {
	var out []config.Target
	for _, n := range names {
		// ssh://host[:port] names an SSH target, as its key does.
		n, proto := selectProtocol(n)
		host, port := strings.ToLower(n), 0
		if h, p, err := net.SplitHostPort(n); err == nil {
			pn, err := strconv.Atoi(p)
			if err != nil || pn < 1 || pn > 65535 {
				return nil, fmt.Errorf("--target %q: bad port", n)
			}
			host, port = strings.ToLower(h), pn
		}
		// An IP literal, with or without brackets, in the form the
		// config gives it.
		if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
			host = a.String()
		}
		matched := false
		for _, t := range all {
			if t.Host == host && (port == 0 || t.Port == port) && (proto == "" || t.Protocol == proto) {
				out = append(out, t)
				matched = true
			}
		}
		if !matched {
			out = append(out, adHocTarget(host, port, proto))
		}
	}
	return out, nil
}

// proxyFromEnv chooses the proxy the way curl, git, npm and Go do, from
// HTTPS_PROXY, HTTP_PROXY and NO_PROXY in either case.
func proxyFromEnv(getenv func(string) string) func(*url.URL) (*url.URL, error) {
	pick := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	cfg := &httpproxy.Config{
		HTTPProxy:  pick("HTTP_PROXY", "http_proxy"),
		HTTPSProxy: pick("HTTPS_PROXY", "https_proxy"),
		NoProxy:    pick("NO_PROXY", "no_proxy"),
	}
	if cfg.HTTPProxy == "" && cfg.HTTPSProxy == "" {
		return nil
	}
	return cfg.ProxyFunc()
}

// sumdbLast orders a round's results as they were when the checksum
// database was added last: it now joins whenever the go settings are read,
// and a report must not change its order from run to run.
func sumdbLast(targets []config.Target, obs []detector.Observation) ([]config.Target, []detector.Observation) {
	var ts []config.Target
	var ob []detector.Observation
	for _, last := range []bool{false, true} {
		for i, t := range targets {
			if (t.Protocol == detector.ProtocolSumDB) == last {
				ts, ob = append(ts, t), append(ob, obs[i])
			}
		}
	}
	return ts, ob
}

// checkGCPercent is check's GOGC unless the environment sets one. A check
// allocates a few tens of megabytes in all and lives a fraction of a
// second. In the whole build (go install) every collection also scans the
// ~5 MB of pointerful package globals of the packet decoders' protocol
// tables, paging them in: at the default of 100 two collections cost more
// CPU than the probes, and the pages they touch are most of the resident
// set they were meant to save (bench/check.sh then: CPU per target -15 %,
// peak RSS 28.8 -> 23.8 MB without the audit). The lean build the packages
// ship links no decoders, and still collects less often.
const checkGCPercent = 400

// checkProcs is check's GOMAXPROCS unless the environment sets one. A
// check's goroutines spend its life waiting on the network: with a
// second P the scheduler wakes threads and spins for work between their
// short bursts, which costs CPU and saves no wall time. Measured with
// bench/check.sh on 2 cores (1 against 2, same rounds): CPU per target
// 1.35x against 1.48x bare, wall 133.6 against 135.2 ms, a check with
// nothing cached (its tools run again) 721 against 719 ms, and the
// path's connect and hello times alike (median 22.1 against 22.3 ms).
// The tools it runs are processes of their own, on the other cores.
const checkProcs = 1

func registerCheck(app *kingpin.Application, ctx context.Context, e env, set func(int)) {
	var (
		rf       roundFlags
		output   string
		baseFile string
		color    bool
		verbose  bool
		auditOn  bool
		tf       toolFlags
	)
	cmd := app.Command("check", "Probe every target once and print a verdict per host. Exit 0: all ok or inspected; 1: something detected; 2: usage or config error; 3: inconclusive (some targets unreachable, nothing detected).")
	rf.register(cmd)
	cmd.Flag("output", "Output format.").Short('o').Default("table").EnumVar(&output, "table", "json")
	cmd.Flag("baseline", "Compare against a baseline learned with 'mitmwatch baseline learn'.").PlaceHolder("FILE").StringVar(&baseFile)
	cmd.Flag("color", "Colour the verdicts when stdout is a terminal and NO_COLOR is unset; --no-color never does.").Default("true").BoolVar(&color)
	cmd.Flag("verbose", "Print the table of every target and one block per target; without it the report leads with the tally and the problems, most severe first, identical failures in one block.").Short('v').BoolVar(&verbose)
	cmd.Flag("audit", "Also audit the toolchain's settings (as 'mitmwatch audit' does), say what each build tool will do on this path, and probe the hosts they name; --no-audit skips it.").Default("true").BoolVar(&auditOn)
	tf.register(cmd)
	cmd.Action(func(*kingpin.ParseContext) error {
		if err := tf.parse(); err != nil {
			return err
		}
		auditOn = auditOn || len(tf.only) > 0 || tf.writeCA != "" // both need the toolchain read
		if e.getenv("GOGC") == "" {
			debug.SetGCPercent(checkGCPercent)
		}
		if e.setProcs != nil && e.getenv("GOMAXPROCS") == "" {
			e.setProcs(checkProcs)
		}
		// The audit reads files and runs go and git once: it runs while the
		// config loads, toolchain discovery reads its settings, and the
		// probes start once it has its hosts, while it reads the trust
		// stores. The build tools are asked what they verify with once it
		// is done, beside the probes.
		var (
			settings  func(context.Context) toolchain.Settings
			found     func() auditHosts
			audited   func() audit.Report
			inventory func() tools.Inventory
		)
		if dir := checkStateDir(e.getenv); dir != "" {
			// Before the audit and the config read any store: unchanged
			// store files come from the last check's snapshot.
			trust.UseSnapshot(filepath.Join(dir, trust.SnapshotFile))
		}
		if auditOn {
			found, audited = auditSection(ctx, e)
			settings = func(context.Context) toolchain.Settings { return found().settings }
			inventory = inventoryOf(ctx, e, found, tf.only)
		}
		// Without --target or --tool, the toolchain's, the audit's and
		// the build tools' hosts join the round as they are found, while
		// the config's are already probed.
		streaming := len(rf.targets) == 0 && rf.toolchain && len(tf.only) == 0
		rf.storeLater = true
		rf.stateDir = checkStateDir(e.getenv)
		var r *round
		var err error
		if streaming {
			rf.sumdbLater = true
			r, err = rf.loadWith(ctx, e, nil)
		} else {
			r, err = rf.load(ctx, e, settings)
		}
		if err != nil {
			return err
		}
		if !streaming && auditOn && len(rf.targets) == 0 {
			// --tool: the tool's hosts, known only once it was asked.
			var bad []error
			r.targets, bad = withToolHosts(r.targets, inventory(), tf.only)
			for _, err := range bad {
				fmt.Fprintf(e.stderr, "mitmwatch: tools: %s\n", termsafe.String(err.Error()))
			}
		}
		var b *baseline.Baseline
		if baseFile != "" {
			bl, err := baseline.Load(baseFile)
			if err != nil {
				return &exitError{check.ExitUsage, err}
			}
			b = &bl
		}
		withBaseline := func(ts []config.Target) ([]config.Target, error) {
			if b == nil {
				return ts, nil
			}
			return b.Apply(ts)
		}
		if r.targets, err = withBaseline(r.targets); err != nil {
			return &exitError{check.ExitUsage, err}
		}
		if e.stderrTTY {
			r.runner.Progress = func(done, total int, host string) {
				fmt.Fprintf(e.stderr, "\r\x1b[Kprobing %d/%d %s", done, total, termsafe.String(host))
				if done == total {
					fmt.Fprint(e.stderr, "\r\x1b[K")
				}
			}
		}
		rd := r.runner.Start(ctx)
		rd.Add(r.targets...)
		// The checksum database joins the round as soon as the go
		// settings name it: its check is the longest chain of round trips
		// (a lookup, a connection, the signed head, then the tiles), so it
		// must not wait for the audit or the build tools.
		var sumdbDone chan error
		if streaming {
			sumdbDone = make(chan error, 1)
			go func() {
				more, err := withBaseline(sumdbTargets(ctx, e, r.cfg, rf.toolchain))
				if err == nil {
					rd.Add(more...)
				}
				sumdbDone <- err
			}()
		}
		if streaming && r.cfg.Toolchain {
			settings, extra := toolchain.Settings{}, []toolchain.Host(nil)
			if auditOn {
				h := found()
				settings, extra = h.settings, audit.Report{Hosts: h.hosts}.ToolchainHosts()
			} else {
				settings = toolchainSettings(e, true)(ctx)
			}
			hosts, errs := toolchain.Discover(ctx, settings, toolchain.Options{})
			more, err := withBaseline(discoverTargets(e, r.targets, hosts, errs, extra))
			if err != nil {
				return &exitError{check.ExitUsage, err}
			}
			rd.Add(more...)
			if auditOn {
				// The hosts git reaches over SSH, as SSH targets.
				ssh, err := withBaseline(withAuditSSH(e, r.targets, audit.Report{Hosts: found().hosts})[len(r.targets):])
				if err != nil {
					return &exitError{check.ExitUsage, err}
				}
				rd.Add(ssh...)
			}
			if auditOn {
				// The hosts only the build tools' own configuration names.
				withTools, bad := withToolHosts(r.targets, inventory(), nil)
				for _, err := range bad {
					fmt.Fprintf(e.stderr, "mitmwatch: tools: %s\n", termsafe.String(err.Error()))
				}
				more, err := withBaseline(withTools[len(r.targets):])
				if err != nil {
					return &exitError{check.ExitUsage, err}
				}
				rd.Add(more...)
			}
		}
		if sumdbDone != nil {
			if err := <-sumdbDone; err != nil {
				return &exitError{check.ExitUsage, err}
			}
		}
		targets, obs := sumdbLast(rd.Wait())
		if err := r.cfg.StoreErr(); err != nil {
			// The public roots loaded beside the probes: their bundle's
			// error is the config's, as if it had been read first.
			return &exitError{check.ExitUsage, err}
		}
		results := r.runner.Judge(targets, obs)
		// An interceptor found is graded with one more round through
		// the same path; nothing intercepted, nothing is sent.
		ics := r.runner.Grade(ctx, targets, results, r.cfg.Grade)
		results = grade.Annotate(results, ics)
		r.close()
		var auditRep *audit.Report
		if auditOn {
			a := audited()
			auditRep = &a
		}
		auditWithSumDB(auditRep, results)
		var forecasts []tools.Forecast
		if auditOn {
			forecasts = forecastTools(e, tf, inventory(), results, r.cfg.Policy)
		}
		opts := e.reportOptions(color, verbose)
		code := check.ExitCode(results)
		if auditRep != nil && auditRep.Critical() {
			code = check.ExitDetected
		}
		if slices.ContainsFunc(ics, grade.Interceptor.ReSigns) {
			// Even when every target is inspected by an approved CA.
			code = check.ExitDetected
		}
		set(code)
		err = printReport(e, output, results, auditRep, ics, forecasts, opts)
		// The snapshot only saves the next check its reads: one that
		// cannot be written costs that, and nothing is said. The stores
		// still loading (no chain needed them) are waited for, so that
		// it holds them.
		r.cfg.PublicStore()
		r.cfg.SystemStore()
		_ = trust.SaveSnapshot()
		return err
	})
}

// printReport writes the round's results, the interceptors graded and,
// when they were read, the audit and the build tools' outcomes.
//
// The brief form leads with the tally; -v keeps the order the report
// always had (the table, the interceptors, then the tally), byte for byte.
func printReport(e env, output string, results []detector.Result, a *audit.Report, ics []grade.Interceptor, fs []tools.Forecast, o report.Options) error {
	colour := o.Colour
	if output == "json" {
		doc := report.Build(results)
		doc.Audit = a
		doc.Interceptors = report.Interceptors(ics)
		if a != nil {
			doc.Tools = report.BuildTools(fs)
		}
		if err := doc.Write(e.stdout); err != nil {
			return &exitError{check.ExitUsage, fmt.Errorf("writing JSON: %w", err)}
		}
		return nil
	}
	if !o.Verbose {
		if err := report.Brief(e.stdout, results, o); err != nil {
			return &exitError{check.ExitUsage, err}
		}
	} else if err := report.Table(e.stdout, results, colour); err != nil {
		return &exitError{check.ExitUsage, err}
	}
	if err := report.InterceptorTable(e.stdout, ics, colour); err != nil {
		return &exitError{check.ExitUsage, err}
	}
	if o.Verbose {
		fmt.Fprintf(e.stdout, "\n%s\n", report.Summary(results))
	}
	if a != nil {
		fmt.Fprintln(e.stdout, "\nWhat each build tool will do on this path (--tool NAME for one):")
		if err := report.ToolsTable(e.stdout, fs, colour); err != nil {
			return &exitError{check.ExitUsage, err}
		}
	}
	if a != nil && len(a.Findings) > 0 {
		fmt.Fprintln(e.stdout, "\nToolchain settings that weaken TLS (mitmwatch audit):")
		if err := writeAuditTable(e.stdout, *a, colour); err != nil {
			return &exitError{check.ExitUsage, err}
		}
	}
	return nil
}

func registerValidate(app *kingpin.Application, e env, set func(int)) {
	var path string
	cmd := app.Command("validate", "Check a rules.yaml and report every problem with file, line and field. Exit 2 when it is broken.")
	cmd.Flag("config", "rules.yaml to validate (default: the one check would use).").Short('c').PlaceHolder("FILE").StringVar(&path)
	cmd.Action(func(*kingpin.ParseContext) error {
		name, data, err := config.Locate(path, config.LocateOptions{Getenv: e.getenv})
		if err != nil {
			return &exitError{check.ExitUsage, err}
		}
		cfg, err := config.Parse(name, data, config.Options{RangesFile: e.rangesFile})
		if err != nil {
			// One problem a line; a line may quote the file.
			for line := range strings.SplitSeq(err.Error(), "\n") {
				fmt.Fprintln(e.stderr, termsafe.String(line))
			}
			set(check.ExitUsage)
			return nil
		}
		fmt.Fprintf(e.stdout, "%s: ok (%d targets)\n", name, len(cfg.Targets))
		return nil
	})
}

func registerBaseline(app *kingpin.Application, ctx context.Context, e env, set func(int)) {
	var (
		rf  roundFlags
		out string
	)
	cmd := app.Command("baseline", "Learn what the targets look like on a network you trust.")
	learn := cmd.Command("learn", "Probe every target and record its CA pins, addresses, TLS version and ALPN, for `check --baseline`. Hosts that do not look clean are not learned.")
	rf.register(learn)
	learn.Flag("out", "Where to write the baseline (written atomically).").Required().PlaceHolder("FILE").StringVar(&out)
	learn.Action(func(*kingpin.ParseContext) error {
		// The checksum database's tree is kept beside the baseline: in
		// the state directory the service reads.
		rf.stateDir = filepath.Dir(out)
		r, err := rf.load(ctx, e, nil)
		if err != nil {
			return err
		}
		results := r.runner.Run(ctx, r.targets)
		r.close()
		b, skipped := baseline.Learn(results, time.Now())
		for _, s := range skipped {
			fmt.Fprintf(e.stderr, "mitmwatch: not learned: %s\n", s)
		}
		if err := b.Save(out); err != nil {
			return &exitError{check.ExitUsage, err}
		}
		fmt.Fprintf(e.stdout, "learned %d targets into %s\n", len(b.Targets), out)
		if len(skipped) > 0 {
			set(check.ExitInconclusive)
		}
		return nil
	})
}
