//go:build !lean

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/coreos/go-systemd/v22/activation"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/mdlayher/vsock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/mitmwatch/mitmwatch/baseline"
	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/daemon"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/termsafe"
	"github.com/mitmwatch/mitmwatch/tools"
)

// defaultListen is mitmwatch's port: above 10000 and unused by the
// exporters listed in Prometheus's default port allocations.
const defaultListen = ":16486"

// The service runs at Go's default GOGC of 100. It ran at 50 while the
// packet decoders' 5 MB of protocol tables counted toward the heap goal;
// without them, 50 made 64 collections a minute of a ~3 MB heap
// (bench/daemon.sh: CPU 2.58%, peak RSS 25.9 MB) and 100 makes 26 (CPU
// 1.87%, 27.1 MB).

// baselineFile is the learned baseline the service applies, inside its
// state directory: `mitmwatch baseline learn --out /var/lib/mitmwatch/baseline.json`.
const baselineFile = "baseline.json"

type runFlags struct {
	config    string
	stateDir  string
	telemetry string
	toolchain bool
	lifecycle bool
	web       *web.FlagConfig
	log       *promslog.Config
}

func registerRun(app *kingpin.Application, ctx context.Context, e env, set func(int), logCfg *promslog.Config) {
	f := runFlags{log: logCfg}
	cmd := app.Command("run", "Run as a service: probe every target on its interval and serve /metrics for Prometheus, a status page at /, and /-/healthy and /-/ready. SIGHUP reloads the config; a broken one is reported and the last good one keeps running.")
	cmd.Flag("config", "rules.yaml to use (same search as check).").Short('c').PlaceHolder("FILE").StringVar(&f.config)
	cmd.Flag("state.dir", "Where the last results are kept across restarts, and where "+baselineFile+" (from 'mitmwatch baseline learn') is read.").Default("/var/lib/mitmwatch").StringVar(&f.stateDir)
	cmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&f.telemetry)
	cmd.Flag("toolchain", "Add the hosts the local toolchain is configured to use, when the config says toolchain: auto.").Default("true").BoolVar(&f.toolchain)
	cmd.Flag("web.enable-lifecycle", "Reload the config on POST /-/reload too. Off by default: anyone who reaches the port could make the service rerun every build tool; SIGHUP always reloads.").Default("false").BoolVar(&f.lifecycle)
	f.web = kingpinflag.AddFlags(cmd, defaultListen)
	cmd.Action(func(*kingpin.ParseContext) error {
		if err := runService(ctx, e, f); err != nil {
			return err
		}
		return nil
	})
}

// runService runs the daemon until ctx ends (SIGTERM, SIGINT).
func runService(ctx context.Context, e env, f runFlags) error {
	// Logs carry certificate names and error texts, and are read on
	// terminals (journalctl, a tail). The text handler quotes a value
	// holding a control or format character; the JSON handler escapes only
	// C0 controls, and JSONWriter escapes the rest.
	f.log.Writer = termsafe.JSONWriter(e.stderr)
	logger := promslog.New(f.log)

	// What each build tool would do with each target, from the reading of
	// the toolchain the last load made.
	var predict atomic.Pointer[func(detector.Result) []exporter.ToolOutcome]
	load := func(ctx context.Context) (*config.Config, []config.Target, error) {
		cfg, targets, err := loadConfig(ctx, e, f.config, toolchainSettings(e, f.toolchain))
		if err != nil {
			return nil, nil, err
		}
		targets = append(targets, sumdbTargets(ctx, e, cfg, f.toolchain)...)
		if cfg.Toolchain && f.toolchain {
			_, audited := auditSection(ctx, e)
			p := toolOutcomes(discoverTools(ctx, e, audited(), nil), cfg.Policy)
			predict.Store(&p)
		}
		b, err := baseline.Load(filepath.Join(f.stateDir, baselineFile))
		switch {
		case errors.Is(err, os.ErrNotExist):
			return cfg, targets, nil
		case err != nil:
			return nil, nil, err
		}
		targets, err = b.Apply(targets)
		return cfg, targets, err
	}
	d, err := daemon.New(daemon.Options{
		Logger:    logger,
		StateDir:  f.stateDir,
		Load:      load,
		NewRunner: func(cfg *config.Config) *check.Runner { return withIntegrity(newRunner(cfg, e), cfg, e, f.stateDir) },
		Watchdog:  watchdog(),
		Tools: func(r detector.Result) []exporter.ToolOutcome {
			if p := predict.Load(); p != nil {
				return (*p)(r)
			}
			return nil
		},
	})
	if err != nil {
		return &exitError{check.ExitUsage, err}
	}

	reg := prometheus.NewRegistry()
	b := currentBuild()
	reg.MustRegister(exporter.NewCollector(d), exporter.NewBuildInfo(b.Version, b.Revision),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var reload func() error // nil: /-/reload answers 403
	if f.lifecycle {
		reload = func() error { return d.Reload(ctx) }
	}
	mux := http.NewServeMux()
	mux.Handle(f.telemetry, exporter.NewHandler(reg, exporter.HandlerOpts{
		// Every scrape within a second gets the same rendering, so a burst
		// of scrapers costs one rendering, not one each.
		MaxAge: time.Second,
		Logger: logger,
	}))
	mux.Handle("/", d.Handler(reload))
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	listeners, err := listen(f.web, activation.Listeners)
	if err != nil {
		return &exitError{check.ExitUsage, err}
	}
	for _, l := range listeners {
		logger.Info("listening", "address", l.Addr().String())
	}
	if e.onListen != nil {
		e.onListen(listeners)
	}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(runCtx) }()
	served := make(chan error, 1)
	go func() { served <- web.ServeMultiple(listeners, server, f.web, logger) }()
	sddaemon.SdNotify(false, sddaemon.SdNotifyReady)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if err := d.Reload(ctx); err != nil {
				logger.Error("reload failed; the last good config keeps running", "err", err)
			}
		case err := <-served:
			stopRun()
			<-runDone
			return &exitError{1, fmt.Errorf("web server: %w", err)}
		case err := <-runDone:
			shutdown(server)
			<-served // nothing of the service outlives it, its logging included
			if err != nil {
				return &exitError{check.ExitUsage, err}
			}
			logger.Info("stopped")
			return nil
		case <-ctx.Done():
			sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
			// Run returns once in-flight probes, bounded by the probe
			// timeout, have ended and the state is saved.
			err := <-runDone
			shutdown(server)
			<-served
			if err != nil {
				return &exitError{1, err}
			}
			logger.Info("stopped")
			return nil
		}
	}
}

// listen binds every address first, so READY is only sent once the
// service can be scraped. With --web.systemd-socket the listeners are the
// ones systemd passed (mitmwatch.socket), and the addresses are ignored;
// an address vsock://:PORT listens on that vsock port, for a VM's host to
// scrape. activated is activation.Listeners, a seam for tests.
func listen(flags *web.FlagConfig, activated func() ([]net.Listener, error)) ([]net.Listener, error) {
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		ls, err := activated()
		if err != nil {
			return nil, fmt.Errorf("systemd socket activation: %w", err)
		}
		var out []net.Listener
		for _, l := range ls {
			if l != nil { // a passed descriptor that is not a listening socket
				out = append(out, l)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("--web.systemd-socket: systemd passed no listening socket (is mitmwatch.socket enabled?)")
		}
		return out, nil
	}
	var out []net.Listener
	for _, a := range *flags.WebListenAddresses {
		l, err := listenOn(a)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("listening on %s: %w", a, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// listenOn binds one --web.listen-address: host:port, or vsock://:PORT.
func listenOn(addr string) (net.Listener, error) {
	rest, ok := strings.CutPrefix(addr, "vsock://")
	if !ok {
		return net.Listen("tcp", addr)
	}
	_, p, err := net.SplitHostPort(rest)
	if err != nil {
		return nil, fmt.Errorf("vsock address: %w", err)
	}
	port, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("vsock port %q: %w", p, err)
	}
	return vsock.Listen(uint32(port), nil)
}

func shutdown(s *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Shutdown(ctx)
}

// watchdog returns what tells systemd the scheduler loop is alive, or nil
// when the unit has no watchdog.
func watchdog() func() {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return nil
	}
	return func() { sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog) }
}

// toolOutcomes is the daemon's Tools hook over one reading of the
// toolchain: each tool's predicted outcome for a judged target it uses,
// for mitmwatch_tool_verifies.
func toolOutcomes(inv tools.Inventory, pol detector.Policy) func(detector.Result) []exporter.ToolOutcome {
	return func(r detector.Result) []exporter.ToolOutcome {
		var out []exporter.ToolOutcome
		for _, f := range tools.PredictAll(inv.Tools, []detector.Result{r}, inv.Context(time.Now(), pol.ApprovedInspection, "")) {
			for _, p := range f.Predictions {
				out = append(out, exporter.ToolOutcome{Tool: string(p.Tool), Outcome: string(p.Outcome)})
			}
		}
		return out
	}
}
