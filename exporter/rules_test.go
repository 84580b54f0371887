package exporter

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
)

// The alerting rules and their promtool unit tests live in deploy/; they are
// checked here so that `go test ./...` runs them.
var (
	alertRules     = filepath.Join("..", "deploy", "prometheus", "mitmwatch-alerts.yml")
	alertRuleTests = filepath.Join("..", "deploy", "prometheus", "mitmwatch-alerts.test.yml")
)

var metricName = regexp.MustCompile(`\bmitmwatch_[a-z0-9_]+\b`)

// unknownMetrics returns the mitmwatch_* names in text that the exporter
// does not export, sorted.
func unknownMetrics(t *testing.T, text string) []string {
	t.Helper()
	known := exportedNames(t)
	seen := map[string]bool{}
	for _, n := range metricName.FindAllString(text, -1) {
		if !known[n] {
			seen[n] = true
		}
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestAlertRulesUseExportedMetrics catches a rule (or a unit test series)
// that names a metric the collector does not export: such a rule would
// simply never fire.
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	for _, path := range []string{alertRules, alertRuleTests} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !metricName.Match(b) {
			t.Errorf("%s names no mitmwatch metric", path)
		}
		if u := unknownMetrics(t, string(b)); len(u) > 0 {
			t.Errorf("%s uses metrics the exporter does not export: %v", path, u)
		}
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := requireTool(t, "promtool")
	t.Log(run(t, nil, promtool, "check", "rules", alertRules))
}

func TestPromtoolTestRules(t *testing.T) {
	promtool := requireTool(t, "promtool")
	t.Log(run(t, nil, promtool, "test", "rules", alertRuleTests))
}
