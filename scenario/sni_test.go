package scenario

import (
	"context"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// find returns the scenario called name.
func find(t *testing.T, name string) Scenario {
	t.Helper()
	for _, s := range All() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no scenario %q", name)
	return Scenario{}
}

// TestSNIDropDecidedEarly: a dropped ClientHello is called blocked once the
// control is answered, well before the probe's timeout. A behaviour, not a
// benchmark: the bound is generous for -race on a busy machine.
func TestSNIDropDecidedEarly(t *testing.T) {
	t.Parallel()
	const timeout, within = 5 * time.Second, 1500 * time.Millisecond
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
	defer cancel()
	start := time.Now()
	results, err := e.Run(ctx, find(t, "sni-drop"), timeout)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Verdict != detector.Blocked {
		t.Fatalf("results %+v, want one blocked", results)
	}
	if took > within {
		t.Errorf("decided in %v with a timeout of %v, want under %v", took, timeout, within)
	}
	t.Logf("dropped hello decided in %v (timeout %v): %s", took, timeout, results[0].Findings[0].Detail)
}
