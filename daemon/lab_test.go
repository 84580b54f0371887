package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/probe"
	"github.com/mitmwatch/mitmwatch/scenario"
)

// testLab is the network a daemon test runs against: the scenario lab's
// servers, reached through a router the test can rewire while the daemon
// runs, as a middlebox appearing on the path would.
type testLab struct {
	env    *scenario.Env
	router *router
}

func newLab(t testing.TB) *testLab {
	t.Helper()
	env, err := scenario.NewEnv(scenario.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return &testLab{env: env, router: newRouter()}
}

// target is a host at a virtual address (TEST-NET-1, never dialled: the
// router maps it to a lab server), expecting what a well-run public host
// shows.
func (l *testLab) target(host string, n int) config.Target {
	return config.Target{Host: host, Port: 443, Address: fmt.Sprintf("192.0.2.%d:443", n), Source: "test:" + host,
		Expect: detector.Expectation{
			CASPKI:     []detector.SPKI{detector.SPKIOf(l.env.PKI.PublicIntermediate.Cert)},
			MinVersion: tls.VersionTLS13,
			ALPN:       []string{"h2"},
			SCT:        true,
		}}
}

func (l *testLab) config(interval, timeout time.Duration, targets ...config.Target) *config.Config {
	return &config.Config{Source: "test-rules.yaml", PublicRoots: l.env.PKI.PublicPool(), SystemRoots: l.env.PKI.SystemPool(),
		Timeout: timeout, Concurrency: 4, Interval: interval, Targets: targets}
}

func (l *testLab) newRunner(cfg *config.Config) *check.Runner {
	return &check.Runner{
		Prober:      &probe.Prober{PublicRoots: cfg.PublicRoots, SystemRoots: cfg.SystemRoots, Dialer: l.router},
		Policy:      cfg.Policy,
		Concurrency: cfg.Concurrency,
		Timeout:     cfg.Timeout,
	}
}

// daemon makes a daemon over the lab whose Load returns whatever ld holds.
func (l *testLab) daemon(t *testing.T, ld *loader, stateDir string) (*Daemon, *logSink) {
	t.Helper()
	logs := &logSink{}
	d, err := New(Options{
		Logger:    slog.New(logs),
		StateDir:  stateDir,
		Load:      ld.load,
		NewRunner: l.newRunner,
		Jitter:    func(d time.Duration) time.Duration { return d / 2 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, logs
}

// loader is a swappable config source: tests change it, then reload.
type loader struct {
	mu    sync.Mutex
	cfg   *config.Config
	err   error
	loads int
}

// calls is how many times the daemon loaded the config.
func (ld *loader) calls() int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.loads
}

func (ld *loader) set(cfg *config.Config, err error) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	ld.cfg, ld.err = cfg, err
}

func (ld *loader) load(context.Context) (*config.Config, []config.Target, error) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	ld.loads++
	if ld.err != nil {
		return nil, nil, ld.err
	}
	return ld.cfg, ld.cfg.Targets, nil
}

// badConfig is a real parse error of rules.yaml.
func badConfig(t *testing.T) error {
	t.Helper()
	_, err := config.Parse("rules.yaml", []byte("probe:\n  interval: 100ms\n"), config.Options{})
	if err == nil {
		t.Fatal("bad config parsed")
	}
	return err
}

// router dials the lab server currently playing each virtual address. It
// counts dials and open connections, and can hold dials until released.
type router struct {
	mu      sync.Mutex
	routes  map[string]string
	holds   map[string]chan struct{}
	dials   map[string]int
	open    map[string]int
	maxOpen map[string]int
	// maxBusy is the most addresses that had a connection open at once:
	// probes at once, since a probe's connections (its handshake and a
	// control) all go to its target's address.
	maxBusy int
	dialed  chan string
}

func newRouter() *router {
	return &router{routes: map[string]string{}, holds: map[string]chan struct{}{}, dials: map[string]int{},
		open: map[string]int{}, maxOpen: map[string]int{}, dialed: make(chan string, 64)}
}

func (r *router) route(virtual, to string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routes[virtual] = to
}

// hold makes dials to virtual wait until the returned function is called.
func (r *router) hold(virtual string) (release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.holds[virtual] = ch
	r.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (r *router) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	r.mu.Lock()
	to, ok := r.routes[addr]
	hold := r.holds[addr]
	r.dials[addr]++
	r.mu.Unlock()
	select {
	case r.dialed <- addr:
	default:
	}
	if !ok {
		return nil, fmt.Errorf("test router: no route to %s", addr)
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, to)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.open[addr]++
	r.maxOpen[addr] = max(r.maxOpen[addr], r.open[addr])
	busy := 0
	for _, n := range r.open {
		if n > 0 {
			busy++
		}
	}
	r.maxBusy = max(r.maxBusy, busy)
	r.mu.Unlock()
	return &countedConn{Conn: c, r: r, addr: addr}, nil
}

func (r *router) stats(addr string) (dials, maxOpen int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dials[addr], r.maxOpen[addr]
}

type countedConn struct {
	net.Conn
	r    *router
	addr string
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.r.mu.Lock()
		c.r.open[c.addr]--
		c.r.mu.Unlock()
	})
	return c.Conn.Close()
}

// logSink captures log records at every level.
type logSink struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, r.Clone())
	return nil
}

// logged is one captured record with its attributes by key.
type logged struct {
	Level slog.Level
	Msg   string
	Attrs map[string]slog.Value
}

func (l logged) str(key string) string { return l.Attrs[key].String() }

// find returns the records with message msg whose attributes match want.
func (s *logSink) find(msg string, want map[string]string) []logged {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []logged
	for _, r := range s.recs {
		if r.Message != msg {
			continue
		}
		l := logged{Level: r.Level, Msg: r.Message, Attrs: map[string]slog.Value{}}
		r.Attrs(func(a slog.Attr) bool {
			l.Attrs[a.Key] = a.Value
			return true
		})
		match := true
		for k, v := range want {
			if l.str(k) != v {
				match = false
			}
		}
		if match {
			out = append(out, l)
		}
	}
	return out
}

// run starts d.Run and returns a stop function that cancels it and returns
// its error; stopping is also registered as cleanup.
func run(t *testing.T, d *Daemon) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var (
		once sync.Once
		err  error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = fmt.Errorf("Run did not return within 10s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}

// waitFor waits, bounded by timeout, until cond holds, checking it again at
// every change of the daemon's state rather than polling.
func waitFor(t *testing.T, d *Daemon, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		changed := d.changes()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// rec returns the snapshot's record of key.
func rec(d *Daemon, key string) (exporter.Target, bool) {
	for _, t := range d.Snapshot().Targets {
		if t.Key == key {
			return t, true
		}
	}
	return exporter.Target{}, false
}

// verdictIs reports whether key's latest result has verdict v.
func verdictIs(d *Daemon, key string, v detector.Verdict) func() bool {
	return func() bool {
		r, ok := rec(d, key)
		return ok && r.Verdict == v
	}
}

// probedAtLeast reports whether key has been probed at least n times.
func probedAtLeast(d *Daemon, key string, n uint64) func() bool {
	return func() bool {
		r, ok := rec(d, key)
		return ok && r.Probes >= n
	}
}

func hasReason(fs []detector.Finding, r detector.Reason) bool {
	for _, f := range fs {
		if f.Reason == r {
			return true
		}
	}
	return false
}
