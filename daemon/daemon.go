// Package daemon is the engine of `mitmwatch run`, the service on build
// agents. A one-shot check only says what the path looked like once; a
// middlebox that appears at 3 a.m. is caught only by probing every target on
// its own schedule, keeping each target's latest judgement where Prometheus
// and people can read it, logging the moment a verdict changes, and keeping
// the results across restarts. Probing and judging are check's and detector's,
// unchanged, so the daemon and `mitmwatch check` always agree.
package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
)

// Options configure a Daemon. Load and NewRunner are required.
type Options struct {
	Logger *slog.Logger // nil: slog.Default()
	// StateDir holds state.json, e.g. /var/lib/mitmwatch; "" keeps no state.
	StateDir string
	// Load reads and parses the config, returning the targets to probe
	// (the config's, plus toolchain hosts, with the baseline applied). It
	// is called at start and on each Reload.
	Load func(ctx context.Context) (*config.Config, []config.Target, error)
	// NewRunner builds the runner (prober, DNS, policy, timeout) for a
	// config; the CLI supplies it, tests supply a lab one.
	NewRunner func(cfg *config.Config) *check.Runner
	// Now stamps results and the state file; nil: time.Now. Scheduling
	// always uses the real clock.
	Now func() time.Time
	// Jitter returns a random duration in [0,d); nil: math/rand/v2.
	Jitter func(d time.Duration) time.Duration
	// Watchdog is called on every tick of the scheduler loop, e.g. to send
	// systemd WATCHDOG=1, so a wedged loop gets the service restarted.
	Watchdog func()
	// Tools, when set, says what each build tool that fetches from a
	// target would do with the chain its last probe saw (package tools),
	// for mitmwatch_tool_verifies. It is called unlocked after each probe.
	Tools func(detector.Result) []exporter.ToolOutcome
}

// Scheduling constants.
const (
	// firstWindow spreads the first probe of every target, so a restart
	// does not hit the network all at once yet /-/ready turns true fast.
	firstWindow = 3 * time.Second
	// maxTick bounds how long the scheduler loop sleeps: the watchdog, the
	// health check and the state file depend on it waking.
	maxTick = time.Second
	// staleTick is how old the loop's last tick may be for /-/healthy.
	staleTick = 10 * maxTick
	// saveEvery debounces state writes: many probes ending together make
	// one write.
	saveEvery = time.Second
)

// Daemon probes targets on their schedules and holds their latest results.
// Its methods are safe for concurrent use.
type Daemon struct {
	log       *slog.Logger
	load      func(ctx context.Context) (*config.Config, []config.Target, error)
	newRunner func(cfg *config.Config) *check.Runner
	now       func() time.Time
	random    func(d time.Duration) time.Duration
	watchdog  func()
	tools     func(detector.Result) []exporter.ToolOutcome
	statePath string // "" keeps no state

	reloadMu sync.Mutex    // loads are applied in the order they ran
	wake     chan struct{} // buffered: a probe ended or the targets changed
	running  atomic.Bool   // Run is active
	lastTick atomic.Int64  // unix nanoseconds of the loop's last tick

	mu       sync.Mutex
	cfg      *config.Config // nil until the first successful load
	runner   *check.Runner
	targets  map[string]*target
	keys     []string                   // targets' keys, sorted
	restored map[string]exporter.Target // from state.json, until a config claims them
	busy     map[string]bool            // keys with a probe in flight, even of a removed target
	inflight int
	loaded   bool // the last load succeeded
	loadedAt time.Time
	loadErr  string                // why the last load failed
	ready    bool                  // a config is loaded and its first round is done (latched)
	dirty    bool                  // results changed since the last save
	saveErr  string                // last state write error, to log each new one once
	updated  chan struct{}         // closed and replaced on every change
	users    map[*check.Runner]int // probes and grading rounds using each runner (runners.go)
	reloads  [2]uint64             // reloads that succeeded, failed
	passive  *passiveState         // nil until passive capture is configured
	grades   gradeState            // the interceptors graded on these paths (grade.go)
	history  historyState          // the last changes of verdict per target (history.go)
}

// target is one configured target and what the daemon knows of it.
type target struct {
	cfg      config.Target
	interval time.Duration
	next     time.Time      // when due, on the real clock
	fresh    bool           // probed by this process, not just restored
	reprobe  bool           // its config changed during a probe: probe again at once
	kase     *detector.Case // latest observation and expectation, for judging the others against
	chains   []chainSeen    // its last distinct chains (churn.go)
	rec      exporter.Target
	// last is the latest result of this process's probes, with the chain,
	// trace and DNS answers the target page shows; nil after a restart
	// until the target is probed again (the state file keeps findings only).
	last *detector.Result
}

// New makes a daemon and restores the last results from StateDir. A state
// file that cannot be used is set aside and reported, never fatal: losing
// history is better than not watching.
func New(opts Options) (*Daemon, error) {
	if opts.Load == nil || opts.NewRunner == nil {
		return nil, errors.New("daemon: Options.Load and Options.NewRunner are required")
	}
	d := &Daemon{
		log:       opts.Logger,
		load:      opts.Load,
		newRunner: opts.NewRunner,
		now:       opts.Now,
		random:    opts.Jitter,
		watchdog:  opts.Watchdog,
		tools:     opts.Tools,
		wake:      make(chan struct{}, 1),
		targets:   map[string]*target{},
		busy:      map[string]bool{},
		updated:   make(chan struct{}),
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.random == nil {
		d.random = rand.N[time.Duration]
	}
	if opts.StateDir != "" {
		d.statePath = filepath.Join(opts.StateDir, stateFile)
		if err := os.MkdirAll(opts.StateDir, 0o750); err != nil {
			d.log.Warn("state directory unusable; results will not survive a restart", "dir", opts.StateDir, "err", err)
		}
		d.restored = d.restore()
		d.restoreHistory(opts.StateDir)
	}
	return d, nil
}

// Run loads the config and probes until ctx is done, then waits for the
// probes in flight (bounded by the probe timeout) and saves the state. The
// first load must succeed; a clean shutdown returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("daemon: already running")
	}
	defer d.running.Store(false)
	if err := d.Reload(ctx); err != nil {
		return err
	}
	var (
		wg       sync.WaitGroup
		lastSave time.Time
	)
	passiveCtx, stopPassive := context.WithCancel(ctx)
	passiveDone := make(chan struct{})
	go func() { defer close(passiveDone); d.runPassive(passiveCtx) }()
	defer func() { stopPassive(); <-passiveDone }()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		d.lastTick.Store(time.Now().UnixNano())
		if d.watchdog != nil {
			d.watchdog()
		}
		wait := d.launchDue(ctx, &wg)
		d.gradeDue(ctx, &wg)
		if time.Since(lastSave) >= saveEvery {
			d.save()
			lastSave = time.Now()
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			wg.Wait()
			d.mu.Lock()
			r := d.runner
			d.mu.Unlock()
			closeRunner(r)
			d.lastTick.Store(0)
			d.save()
			d.log.Info("stopped")
			return nil
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// Reload loads the config again. On failure the last good config keeps
// running and Snapshot reports ConfigLoaded false; on success targets are
// rescheduled: new ones are probed soon, removed ones dropped, kept ones
// keep their results and schedule.
func (d *Daemon) Reload(ctx context.Context) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, targets, err := d.load(ctx)
	var runner *check.Runner
	switch {
	case err != nil:
	case cfg == nil:
		err = errors.New("no config")
	default:
		if runner = d.newRunner(cfg); runner == nil {
			err = errors.New("no runner for the config")
		}
	}
	if err != nil {
		d.mu.Lock()
		d.loaded, d.loadErr = false, err.Error()
		d.reloads[1]++
		running := d.cfg != nil
		d.broadcast()
		d.mu.Unlock()
		if running {
			d.log.Error("reloading config failed; the last good config keeps running", "err", err)
		} else {
			d.log.Error("loading config failed", "err", err)
		}
		return fmt.Errorf("loading config: %w", err)
	}
	if runner.Timeout <= 0 {
		// A zero timeout would end every probe before it starts.
		runner.Timeout = positiveOr(cfg.Timeout, config.DefaultTimeout)
	}
	if old := d.apply(cfg, runner, targets); old != nil {
		closeRunner(old)
	}
	d.log.Info("config loaded", "source", cfg.Source, "targets", len(targets))
	d.signal()
	return nil
}

// apply swaps in a loaded config. It returns the runner it replaced when
// nothing uses that one any more, for the caller to close.
func (d *Daemon) apply(cfg *config.Config, runner *check.Runner, list []config.Target) (closable *check.Runner) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	targets := make(map[string]*target, len(list))
	keys := make([]string, 0, len(list))
	for _, tc := range list {
		key := tc.Key()
		if _, dup := targets[key]; dup {
			d.log.Warn("duplicate target ignored", "target", key, "source", tc.Source)
			continue
		}
		iv := positiveOr(tc.Interval, positiveOr(cfg.Interval, config.DefaultInterval))
		t, kept := d.targets[key]
		switch {
		case !kept:
			t = &target{rec: exporter.Target{Key: key, Host: tc.Host, Port: tc.Port}}
			if rec, ok := d.restored[key]; ok {
				t.rec = rec
			}
			t.next = now.Add(d.jitter(min(iv, firstWindow)))
		case !reflect.DeepEqual(t.cfg, tc):
			// New expectations or interval: probe afresh soon.
			if d.busy[key] {
				t.reprobe = true
			} else {
				t.next = now.Add(d.jitter(min(iv, firstWindow)))
			}
		}
		t.cfg, t.interval, t.rec.Source, t.rec.Interval = tc, iv, tc.Source, iv
		targets[key] = t
		keys = append(keys, key)
	}
	slices.Sort(keys)
	old := d.runner
	d.cfg, d.runner, d.targets, d.keys, d.restored = cfg, runner, targets, keys, nil
	d.loaded, d.loadedAt, d.loadErr = true, d.now(), ""
	d.reloads[0]++
	d.dirty = true
	d.checkReady()
	d.broadcast()
	if d.retire(old) {
		return old
	}
	return nil
}

// Ready reports whether a config is loaded and every target has been probed
// at least once since start. It stays true after that, through reloads.
func (d *Daemon) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ready
}

// checkReady latches ready once the first round is done; d.mu held.
func (d *Daemon) checkReady() {
	if d.ready || d.cfg == nil {
		return
	}
	for _, t := range d.targets {
		if !t.fresh {
			return
		}
	}
	d.ready = true
	d.log.Info("first round done", "targets", len(d.targets))
}

// healthy reports whether the scheduler loop has ticked lately.
func (d *Daemon) healthy() bool {
	last := d.lastTick.Load()
	return d.running.Load() && last != 0 && time.Since(time.Unix(0, last)) < staleTick
}

// Snapshot returns a copy of every target's latest result, sorted by key.
// Before the first config load it shows the results restored from state.
func (d *Daemon) Snapshot() exporter.Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := exporter.Snapshot{ConfigLoaded: d.loaded, ConfigLoadedAt: d.loadedAt,
		Reloads: d.reloads[0], ReloadFailures: d.reloads[1]}
	if d.cfg == nil {
		for _, rec := range d.restored {
			s.Targets = append(s.Targets, rec)
		}
		slices.SortFunc(s.Targets, func(a, b exporter.Target) int { return cmp.Compare(a.Key, b.Key) })
	} else {
		s.Targets = make([]exporter.Target, 0, len(d.keys))
		for _, k := range d.keys {
			s.Targets = append(s.Targets, d.targets[k].rec)
		}
	}
	for i := range s.Targets {
		s.Targets[i].Findings = slices.Clone(s.Targets[i].Findings)
	}
	s.Passive = d.passiveSnapshot()
	s.Interceptors = d.interceptorSnapshot()
	return s
}

// changes returns a channel closed at the next change of state, so that
// waiters (the tests) need not poll.
func (d *Daemon) changes() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.updated
}

// broadcast wakes everyone waiting on changes; d.mu held.
func (d *Daemon) broadcast() {
	close(d.updated)
	d.updated = make(chan struct{})
}

// signal wakes the scheduler loop without blocking.
func (d *Daemon) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// jitter is a random duration in [0,max), zero for a non-positive max.
func (d *Daemon) jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return d.random(max)
}

// positiveOr returns a if it is positive, else b.
func positiveOr[T int | time.Duration](a, b T) T {
	if a > 0 {
		return a
	}
	return b
}
