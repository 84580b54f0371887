package check

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/probe"
)

// countingDialer records how many connections are open at once.
type countingDialer struct {
	mu        sync.Mutex
	open, max int
}

type countedConn struct {
	net.Conn
	d    *countingDialer
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.d.mu.Lock()
		c.d.open--
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.open++
	d.max = max(d.max, d.open)
	d.mu.Unlock()
	return &countedConn{Conn: c, d: d}, nil
}

func TestRunBoundsConcurrencyAndKeepsOrder(t *testing.T) {
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	o, err := lab.NewOrigin(pki, lab.OriginOptions{Latency: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var targets []config.Target
	for i := range 9 {
		targets = append(targets, config.Target{Host: "h" + strconv.Itoa(i) + ".lab.example", Port: 443, Address: o.Addr(), Source: "test"})
	}
	d := &countingDialer{}
	var progress []int
	r := &Runner{
		Prober:      &probe.Prober{PublicRoots: pki.PublicPool(), SystemRoots: pki.SystemPool(), Dialer: d},
		Concurrency: 3, Timeout: 5 * time.Second,
		Progress: func(done, total int, _ string) { progress = append(progress, done) },
	}
	results := r.Run(context.Background(), targets)
	for i, res := range results {
		if res.Obs.Host != targets[i].Host || res.Verdict != detector.OK || res.Source != "test" {
			t.Errorf("result %d: %s %s %q", i, res.Obs.Host, res.Verdict, res.Source)
		}
	}
	if d.max > 3 || d.max < 2 {
		t.Errorf("at most %d connections open at once, want 2..3", d.max)
	}
	if len(progress) != 9 || progress[8] != 9 {
		t.Errorf("progress calls %v", progress)
	}
}

func TestRunCanceled(t *testing.T) {
	bh, err := lab.NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	defer bh.Close()
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r := &Runner{Prober: &probe.Prober{PublicRoots: pki.PublicPool(), SystemRoots: pki.SystemPool()}, Concurrency: 1, Timeout: time.Minute}
	start := time.Now()
	results := r.Run(ctx, []config.Target{
		{Host: "a.lab.example", Port: 443, Address: bh.Addr()},
		{Host: "b.lab.example", Port: 443, Address: bh.Addr()},
	})
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("canceled round took %v", elapsed)
	}
	for _, res := range results {
		if res.Verdict != detector.Unreachable {
			t.Errorf("%s: %s, want unreachable", res.Obs.Host, res.Verdict)
		}
	}
}

func TestExitCode(t *testing.T) {
	mk := func(vs ...detector.Verdict) []detector.Result {
		var out []detector.Result
		for _, v := range vs {
			out = append(out, detector.Result{Verdict: v})
		}
		return out
	}
	for _, tc := range []struct {
		verdicts []detector.Verdict
		want     int
	}{
		{nil, ExitClean},
		{[]detector.Verdict{detector.OK, detector.Inspected}, ExitClean},
		{[]detector.Verdict{detector.OK, detector.Unreachable}, ExitInconclusive},
		{[]detector.Verdict{detector.Unreachable, detector.Intercepted}, ExitDetected},
		{[]detector.Verdict{detector.InvalidCert}, ExitDetected},
		{[]detector.Verdict{detector.Downgraded, detector.Unreachable}, ExitDetected},
	} {
		if got := ExitCode(mk(tc.verdicts...)); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.verdicts, got, tc.want)
		}
	}
}

// JudgeAmong judges one probed target with the others' observations as
// context, as the daemon does after each probe: a forger reusing one leaf
// key for three hosts is caught from any one of them, with the target's
// source, just as Judge catches it from all three.
func TestJudgeAmongSeesTheOthers(t *testing.T) {
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	f, err := lab.NewForger(lab.ForgerOptions{CA: pki.EnterpriseRoot})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var targets []config.Target
	for _, h := range []string{"a.lab.example", "b.lab.example", "c.lab.example"} {
		targets = append(targets, config.Target{Host: h, Port: 443, Address: f.Addr(), Source: "rules.yaml:" + h})
	}
	// The bare pool keeps the forger's root out of the system store, so
	// the chain does not verify and only the shared key makes it interception.
	r := &Runner{Prober: &probe.Prober{PublicRoots: pki.PublicPool(), SystemRoots: pki.PublicPool()}, Timeout: 5 * time.Second}
	obs := r.Observe(context.Background(), targets)
	all := r.Judge(targets, obs)
	for i := range targets {
		var others []*detector.Case
		for j := range obs {
			if j != i {
				c := Case(targets[j], obs[j])
				others = append(others, &c)
			}
		}
		got := r.JudgeAmong(Case(targets[i], obs[i]), others)
		if got.Source != targets[i].Source || got.Verdict != all[i].Verdict {
			t.Errorf("%s: %s from %q, Judge says %s", targets[i].Host, got.Verdict, got.Source, all[i].Verdict)
		}
		if got.Verdict != detector.Intercepted {
			t.Errorf("%s: %s (%+v), want intercepted by the shared leaf key", targets[i].Host, got.Verdict, got.Findings)
		}
		if alone := r.JudgeAmong(Case(targets[i], obs[i]), nil); alone.Verdict == detector.Intercepted {
			t.Errorf("%s: intercepted without the others: the context is not what decided", targets[i].Host)
		}
	}
}
