package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

const metricsText = `# HELP mitmwatch_target_verdict v
# TYPE mitmwatch_target_verdict gauge
mitmwatch_target_verdict{target="a.lab.example:443",verdict="ok"} 1
mitmwatch_target_verdict{target="a.lab.example:443",verdict="intercepted"} 0
mitmwatch_target_verdict{target="b.lab.example:443",verdict="intercepted"} 1
mitmwatch_target_verdict{target="b.lab.example:443",verdict="ok"} 0
# HELP mitmwatch_probes_total p
# TYPE mitmwatch_probes_total counter
mitmwatch_probes_total{target="a.lab.example:443"} 3
mitmwatch_probes_total{target="b.lab.example:443"} 4
`

func TestParseMetricsAndAllOK(t *testing.T) {
	fams, err := parseMetrics([]byte(metricsText))
	if err != nil {
		t.Fatal(err)
	}
	if got := sum(fams, "mitmwatch_probes_total"); got != 7 {
		t.Errorf("sum of probes = %v, want 7", got)
	}
	if err := allOK(fams, []string{"a.lab.example"}); err == nil || !strings.Contains(err.Error(), "unexpected target b.lab.example:443") {
		t.Errorf("an extra intercepted target was accepted: %v", err)
	}
	if err := allOK(fams, []string{"a.lab.example", "b.lab.example"}); err == nil || !strings.Contains(err.Error(), "b.lab.example:443 is intercepted") {
		t.Errorf("an intercepted target was accepted: %v", err)
	}
	if err := allOK(fams, []string{"a.lab.example", "c.lab.example"}); err == nil || !strings.Contains(err.Error(), "c.lab.example:443 has no verdict") {
		t.Errorf("a missing target was accepted: %v", err)
	}
	if _, err := parseMetrics([]byte("not { metrics")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestStormQuantile(t *testing.T) {
	var s storm
	if s.quantile(0.99) != 0 {
		t.Error("empty storm has a latency")
	}
	for i := 1; i <= 100; i++ {
		s.latencies = append(s.latencies, time.Duration(i)*time.Millisecond)
	}
	s.wall = 2 * time.Second
	if got := s.quantile(0.5); got != 51*time.Millisecond {
		t.Errorf("p50 = %v", got)
	}
	if got := s.quantile(0.99); got != 100*time.Millisecond {
		t.Errorf("p99 = %v", got)
	}
	if got := s.rate(); got != 50 {
		t.Errorf("rate = %v, want 50/s", got)
	}
}

// TestReadUsage reads this test process from /proc, as the benchmark reads
// its children: memory and CPU must be there and grow with work.
func TestReadUsage(t *testing.T) {
	a, err := readUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if a.rss <= 0 || a.hwm < a.rss {
		t.Errorf("rss %d, peak %d", a.rss, a.hwm)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	b, err := readUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if b.cpuTicks <= a.cpuTicks {
		t.Errorf("CPU ticks did not grow over 300 ms of work: %d → %d", a.cpuTicks, b.cpuTicks)
	}
	if p := cpuPercent(a, b); p <= 0 || p > 250 {
		t.Errorf("cpu percent %v", p)
	}
}
