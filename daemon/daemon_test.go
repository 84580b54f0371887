package daemon

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

const wait = 15 * time.Second // bound of every wait; generous for -race on a busy CI machine

// A middlebox appears on the path of one target and goes away again: the
// daemon reports it, logs the change once with its evidence, and reports
// the return to normal.
func TestVerdictChangeIsReportedOnce(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	forger, err := lab.NewForger(lab.ForgerOptions{CA: l.env.PKI.EnterpriseRoot})
	if err != nil {
		t.Fatal(err)
	}
	l.env.Track(forger)
	watched, steady := l.target("pkg.lab.example", 1), l.target("mirror.lab.example", 2)
	l.router.route(watched.Address, l.env.Origin.Addr())
	l.router.route(steady.Address, l.env.Origin.Addr())
	ld := &loader{cfg: l.config(200*time.Millisecond, 2*time.Second, watched, steady)}
	d, logs := l.daemon(t, ld, "")
	run(t, d)
	key := watched.Key()

	waitFor(t, d, wait, "both targets ok", func() bool {
		return verdictIs(d, key, detector.OK)() && verdictIs(d, steady.Key(), detector.OK)()
	})

	l.router.route(watched.Address, forger.Addr())
	toIntercepted := map[string]string{"target": key, "from": "ok", "to": "intercepted"}
	waitFor(t, d, wait, "intercepted, and logged", func() bool {
		return verdictIs(d, key, detector.Intercepted)() && len(logs.find("verdict changed", toIntercepted)) > 0
	})
	r, _ := rec(d, key)
	if !hasReason(r.Findings, detector.ReasonSystemRootOnly) {
		t.Errorf("findings %v lack %s", r.Findings, detector.ReasonSystemRootOnly)
	}
	if r.IssuerCN != l.env.PKI.EnterpriseRoot.Cert.Subject.CommonName {
		t.Errorf("issuer %q, want the interception root's", r.IssuerCN)
	}
	// Later probes that find the same must not log again.
	waitFor(t, d, wait, "two more probes", probedAtLeast(d, key, r.Probes+2))
	got := logs.find("verdict changed", toIntercepted)
	if len(got) != 1 {
		t.Fatalf("%d verdict changed records to intercepted, want 1", len(got))
	}
	ev := got[0]
	if ev.Level != slog.LevelWarn {
		t.Errorf("level %v, want WARN", ev.Level)
	}
	if ev.str("evidence") == "" || ev.str("remediation") == "" {
		t.Errorf("no evidence or remediation in %v", ev.Attrs)
	}
	reasons, _ := ev.Attrs["reasons"].Any().([]string)
	if !slices.Contains(reasons, string(detector.ReasonSystemRootOnly)) {
		t.Errorf("reasons %v lack %s", reasons, detector.ReasonSystemRootOnly)
	}

	l.router.route(watched.Address, l.env.Origin.Addr())
	back := map[string]string{"target": key, "from": "intercepted", "to": "ok"}
	waitFor(t, d, wait, "ok again, and logged", func() bool {
		return verdictIs(d, key, detector.OK)() && len(logs.find("verdict changed", back)) == 1
	})
	if ev := logs.find("verdict changed", back)[0]; ev.Level != slog.LevelInfo {
		t.Errorf("level of the return to ok %v, want INFO", ev.Level)
	}
	for _, ev := range logs.find("verdict changed", map[string]string{"target": steady.Key()}) {
		if ev.Level > slog.LevelDebug {
			t.Errorf("steady target logged a change: %v", ev.Attrs)
		}
	}
}

// One key forged for two hosts shows only when the hosts are judged
// together: each probe is judged with the others' latest observations.
func TestJudgesAcrossTargets(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	forger, err := lab.NewForger(lab.ForgerOptions{CA: l.env.PKI.ProductRoot})
	if err != nil {
		t.Fatal(err)
	}
	l.env.Track(forger)
	a, b := l.target("a.lab.example", 1), l.target("b.lab.example", 2)
	l.router.route(a.Address, forger.Addr())
	l.router.route(b.Address, forger.Addr())
	d, _ := l.daemon(t, &loader{cfg: l.config(200*time.Millisecond, 2*time.Second, a, b)}, "")
	run(t, d)
	reused := func(key string) func() bool {
		return func() bool {
			r, ok := rec(d, key)
			return ok && hasReason(r.Findings, detector.ReasonLeafKeyReused)
		}
	}
	waitFor(t, d, wait, "leaf key reuse on both targets", func() bool { return reused(a.Key())() && reused(b.Key())() })
	if r, _ := rec(d, a.Key()); r.Product != "Fortinet" || r.Verdict != detector.Intercepted {
		t.Errorf("got %s by %q, want intercepted by Fortinet", r.Verdict, r.Product)
	}
}

// A probe that hangs until its timeout is never overlapped by the next one
// of the same target, even with an interval shorter than the timeout.
func TestProbeNeverOverlapsItself(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	hole, err := lab.NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	l.env.Track(hole)
	tgt := l.target("slow.lab.example", 1)
	l.router.route(tgt.Address, hole.Addr())
	const timeout = time.Second
	d, _ := l.daemon(t, &loader{cfg: l.config(300*time.Millisecond, timeout, tgt)}, "")
	start := time.Now()
	run(t, d)
	waitFor(t, d, wait, "three probes", probedAtLeast(d, tgt.Key(), 3))
	elapsed := time.Since(start)
	r, _ := rec(d, tgt.Key())
	// A probe opens two connections: its handshake, and the control sent
	// under another name once that goes unanswered.
	dials, maxOpen := l.router.stats(tgt.Address)
	if maxOpen > 2 {
		t.Errorf("%d connections of one target open at once, want at most 2 (one probe)", maxOpen)
	}
	// Back-to-back probes of one second each allow at most this many.
	if limit := uint64(elapsed/timeout) + 1; r.Probes > limit {
		t.Errorf("%d probes in %v, at most %d fit without overlap", r.Probes, elapsed, limit)
	}
	if uint64(dials) > 2*(r.Probes+1) {
		t.Errorf("%d dials for %d probes", dials, r.Probes)
	}
	if r.Verdict != detector.Unreachable || r.Failures != r.Probes {
		t.Errorf("verdict %s with %d failures of %d probes, want unreachable, all failed", r.Verdict, r.Failures, r.Probes)
	}
}

// However many targets are due, no more than Concurrency are probed at once.
func TestConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	hole, err := lab.NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	l.env.Track(hole)
	cfg := l.config(time.Second, 300*time.Millisecond)
	for i := range 4 {
		tgt := l.target("t"+string(rune('a'+i))+".lab.example", i+1)
		l.router.route(tgt.Address, hole.Addr())
		cfg.Targets = append(cfg.Targets, tgt)
	}
	cfg.Concurrency = 2
	d, _ := l.daemon(t, &loader{cfg: cfg}, "")
	run(t, d)
	waitFor(t, d, wait, "the first round", d.Ready)
	l.router.mu.Lock()
	busy := l.router.maxBusy
	l.router.mu.Unlock()
	if busy > 2 {
		t.Errorf("%d probes at once, want at most 2", busy)
	}
}

// Cancelling Run while a probe hangs returns promptly, and the cut-short
// probe is not recorded as a result.
func TestShutdownDuringProbe(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	hole, err := lab.NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	l.env.Track(hole)
	tgt := l.target("hang.lab.example", 1)
	l.router.route(tgt.Address, hole.Addr())
	const timeout = 2 * time.Second
	d, _ := l.daemon(t, &loader{cfg: l.config(time.Second, timeout, tgt)}, t.TempDir())
	stop := run(t, d)
	select {
	case <-l.router.dialed:
	case <-time.After(wait):
		t.Fatal("the probe never dialled")
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > timeout+time.Second {
		t.Errorf("Run took %v to return, want within the probe timeout %v", took, timeout)
	}
	if r, _ := rec(d, tgt.Key()); r.Probes != 0 || r.Verdict != "" {
		t.Errorf("a cut-short probe was recorded: %+v", r)
	}
	if d.healthy() {
		t.Error("healthy after Run returned")
	}
}

// The loop feeds the watchdog on its own, with nothing to probe.
func TestWatchdogIsFedByTheLoop(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	fed := make(chan struct{}, 16)
	ld := &loader{cfg: l.config(time.Minute, time.Second)}
	d, err := New(Options{Logger: slog.New(&logSink{}), Load: ld.load, NewRunner: l.newRunner, Watchdog: func() {
		select {
		case fed <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, d)
	for i := range 3 {
		select {
		case <-fed:
		case <-time.After(wait):
			t.Fatalf("watchdog fed %d times, want 3", i)
		}
	}
	if !d.Ready() || !d.healthy() {
		t.Errorf("with no targets: ready %v, healthy %v; want both", d.Ready(), d.healthy())
	}
}

func TestNextProbeSkipsMissedSlots(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := &Daemon{random: func(d time.Duration) time.Duration { return d / 2 }}
	for _, tc := range []struct {
		name string
		took time.Duration
		want time.Duration // after start
	}{
		{"quick", 100 * time.Millisecond, 10 * time.Second},
		{"outlasted one slot", 12 * time.Second, 20 * time.Second},
		{"outlasted two slots", 25 * time.Second, 30 * time.Second},
	} {
		tgt := &target{interval: 10 * time.Second}
		d.busy, d.inflight = map[string]bool{"k": true}, 1
		d.updated = make(chan struct{})
		d.release(tgt, "k", nil, t0, t0.Add(tc.took))
		if got := tgt.next.Sub(t0); got != tc.want {
			t.Errorf("%s: next probe %v after start, want %v", tc.name, got, tc.want)
		}
	}
}

func TestKeyFinding(t *testing.T) {
	fs := []detector.Finding{
		{Reason: detector.ReasonLeafFresh, Severity: detector.Info, Detail: "fresh"},
		{Reason: detector.ReasonSystemRootOnly, Severity: detector.Critical, Detail: "first critical"},
		{Reason: detector.ReasonCAPinMismatch, Severity: detector.Critical, Detail: "second critical"},
	}
	if f, _ := keyFinding(fs); !strings.HasPrefix(f.Detail, "first critical") {
		t.Errorf("key finding %q, want the first critical one", f.Detail)
	}
	if _, ok := keyFinding(nil); ok {
		t.Error("a key finding among none")
	}
}
