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

// TestClockTwoYearsAhead runs the real probe and judgement against genuine
// lab hosts with a clock two years ahead: the clock is named, and nothing is
// called intercepted for it; an interceptor on the same round still is.
func TestClockTwoYearsAhead(t *testing.T) {
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	o, err := lab.NewOrigin(pki, lab.OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	f, err := lab.NewForger(lab.ForgerOptions{CA: pki.EnterpriseRoot})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ahead := func() time.Time { return time.Now().AddDate(2, 0, 0) }
	r := &Runner{
		Prober:      &probe.Prober{PublicRoots: pki.PublicPool(), SystemRoots: pki.SystemPool(), Now: ahead},
		Concurrency: 3, Timeout: 5 * time.Second, Now: ahead,
	}
	var targets []config.Target
	for _, h := range []string{"proxy.lab.example", "registry.lab.example", "git.lab.example"} {
		targets = append(targets, config.Target{Host: h, Port: 443, Address: o.Addr(), Source: "test"})
	}
	targets = append(targets, config.Target{Host: "forged.lab.example", Port: 443, Address: f.Addr(), Source: "test"})
	for _, res := range r.Run(context.Background(), targets) {
		if res.Obs.Host == "forged.lab.example" {
			if res.Verdict != detector.Intercepted || !detector.HasClockSkew(res.Findings) {
				t.Errorf("%s: %s %v, want intercepted beside clock-skew", res.Obs.Host, res.Verdict, res.Findings)
			}
			continue
		}
		if res.Verdict != detector.InvalidCert || !detector.HasClockSkew(res.Findings) || len(res.Findings) != 1 {
			t.Errorf("%s: %s %v, want invalid-cert with clock-skew alone", res.Obs.Host, res.Verdict, res.Findings)
		}
	}
}
