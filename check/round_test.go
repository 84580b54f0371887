package check

import (
	"context"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/probe"
)

// Targets added while a round runs are probed at once, beside the earlier
// ones still in flight, and a key already in the round is one probe.
func TestRoundProbesTargetsAsTheyArrive(t *testing.T) {
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	const latency = 150 * time.Millisecond
	slow, err := lab.NewOrigin(pki, lab.OriginOptions{Latency: latency})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	d := &countingDialer{}
	r := &Runner{Prober: &probe.Prober{PublicRoots: pki.PublicPool(), SystemRoots: pki.SystemPool(), Dialer: d},
		Concurrency: 8, Timeout: 5 * time.Second}
	first := config.Target{Host: "first.lab.example", Port: 443, Address: slow.Addr()}
	later := config.Target{Host: "later.lab.example", Port: 443, Address: slow.Addr()}

	rd := r.Start(context.Background())
	rd.Add(first)
	// Found while the first probe is under way (its origin answers only
	// after latency), as toolchain discovery and the audit find hosts.
	rd.Add(later, first)
	targets, obs := rd.Wait()

	if len(targets) != 2 || targets[0].Host != first.Host || targets[1].Host != later.Host {
		t.Fatalf("targets %v, want first then later, once each", targets)
	}
	for i, o := range obs {
		if o.TLS == nil {
			t.Errorf("%s: %s", targets[i].Host, o.FailureDetail)
		}
	}
	if d.max < 2 {
		t.Errorf("the later target was not probed beside the first (at most %d connections at once)", d.max)
	}
	results := r.Judge(targets, obs)
	for _, res := range results {
		if res.Verdict != detector.OK {
			t.Errorf("%s: %s", res.Obs.Host, res.Verdict)
		}
	}
}
