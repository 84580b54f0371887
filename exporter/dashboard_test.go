package exporter

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var dashboardPath = filepath.Join("..", "deploy", "grafana", "mitmwatch-dashboard.json")

// dashboard is the part of a Grafana dashboard the tests look at.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"` // a string, or {"query": "..."} in newer Grafana
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // inside collapsed rows
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// queries returns every PromQL expression of the dashboard, keyed by where
// it is, panels and variables alike.
func (d dashboard) queries() map[string]string {
	q := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for i, t := range p.Targets {
				if t.Expr != "" {
					q[fmt.Sprintf("panel %q target %d", p.Title, i)] = t.Expr
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		switch s := v.Query.(type) {
		case string:
			if v.Type == "query" {
				q["variable "+v.Name] = s
			}
		case map[string]any:
			if e, ok := s["query"].(string); ok {
				q["variable "+v.Name] = e
			}
		}
	}
	return q
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed for provisioning", d.UID, d.Title)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	for _, v := range []string{"datasource", "job", "instance", "target"} {
		if !vars[v] {
			t.Errorf("no variable %q", v)
		}
	}
	queries := d.queries()
	if len(queries) < 10 {
		t.Fatalf("only %d queries found: the dashboard's structure changed?", len(queries))
	}
	used := map[string]bool{}
	for where, expr := range queries {
		if u := unknownMetrics(t, expr); len(u) > 0 {
			t.Errorf("%s uses metrics the exporter does not export: %v\n%s", where, u, expr)
		}
		for _, n := range metricName.FindAllString(expr, -1) {
			used[n] = true
		}
		// A panel must follow the variables, or it shows every agent.
		if strings.HasPrefix(where, "panel") && strings.Contains(expr, "mitmwatch_") && !strings.Contains(expr, "$instance") {
			t.Errorf("%s ignores $instance: %s", where, expr)
		}
	}
	for _, n := range []string{"mitmwatch_target_verdict", "mitmwatch_interception_detected", "mitmwatch_finding",
		"mitmwatch_probe_duration_seconds", "mitmwatch_last_probe_timestamp_seconds",
		"mitmwatch_interceptor_grade", "mitmwatch_interceptor_check"} {
		if !used[n] {
			t.Errorf("no panel shows %s", n)
		}
	}
}

// TestPromtoolDashboardQueries has promtool parse every query of the
// dashboard, as recording rules, so a typo fails here and not on a screen.
func TestPromtoolDashboardQueries(t *testing.T) {
	promtool := requireTool(t, "promtool")
	d := loadDashboard(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for where, expr := range d.queries() {
		if strings.HasPrefix(where, "variable") {
			continue // label_values() is Grafana's, not PromQL
		}
		rules = append(rules, rule{Record: "dashboard:query", Expr: expr})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, nil, promtool, "check", "rules", path)
}
