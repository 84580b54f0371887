package exporter

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// requireTool returns the path of an external tool. Without it the test is
// skipped, unless MITMWATCH_REQUIRE_TOOLS=1 (set by CI, which installs
// Debian's prometheus package for promtool) makes that a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("MITMWATCH_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s is required (MITMWATCH_REQUIRE_TOOLS=1): %v", name, err)
		}
		t.Skipf("%s not found; set MITMWATCH_REQUIRE_TOOLS=1 to fail instead of skipping", name)
	}
	return path
}

// run runs a tool and fails the test with its output when it exits non-zero.
func run(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestPromtoolCheckMetrics runs the real `promtool check metrics` over the
// text a scrape returns.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := requireTool(t, "promtool")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(fixed(fleet())), NewBuildInfo("v1.2.3", "0123abc"))
	text := exposition(t, reg)
	if !bytes.Contains(text, []byte("mitmwatch_build_info")) {
		t.Fatalf("exposition lacks build info:\n%s", text)
	}
	if out := run(t, text, promtool, "check", "metrics"); out != "" {
		t.Errorf("promtool check metrics:\n%s", out)
	}
}
