package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/lab"
)

// The alerts that claim a middlebox: none may come from a clean path or a
// dead one.
var middleboxAlerts = []string{"MitmwatchInterceptionDetected", "MitmwatchTLSDowngraded", "MitmwatchDNSTampered"}

// TestPrometheusAlertsFire runs the real daemon against the lab, scraped by
// a real Prometheus with the shipped alert rules: a clean path raises no
// interception alert; switching the path to an interceptor fires
// MitmwatchInterceptionDetected naming the product; switching back resolves
// it; a dead path raises no middlebox alert.
func TestPrometheusAlertsFire(t *testing.T) {
	promBin := requireTool(t, "prometheus", "prometheus")
	bin := mitmwatchBinary(t)
	start := time.Now()

	e := newLab(t)
	forger := newForger(t, e, e.PKI.ProductRoot) // "FortiGate CA", in the system store
	sw := newSwitch(t, e.Origin.Addr())
	dir := t.TempDir()
	rules := writeRules(t, dir, e, nil, labTarget{"github.com", sw.Addr()})
	d := startDaemon(t, bin, rules, filepath.Join(dir, "state"))
	p := startPrometheus(t, promBin, dir, d.base[len("http://"):], quickRules(t, dir))

	const target = "github.com:443"
	verdict := func(v string) string {
		return fmt.Sprintf(`mitmwatch_target_verdict{target=%q,verdict=%q} == 1`, target, v)
	}

	// Clean: the verdict is ok and no middlebox alert is pending or firing
	// over several rule evaluations.
	p.waitQuery(t, verdict("ok"))
	p.watchEvaluations(t, 3, noAlerts(middleboxAlerts...))

	// Intercepted.
	sw.Set(forger.Addr())
	fired := time.Now()
	var alert promAlert
	eventually(t, 60*time.Second, "MitmwatchInterceptionDetected fires", func() (bool, string) {
		alerts, err := p.alerts()
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if a.Labels["alertname"] == "MitmwatchInterceptionDetected" && a.State == "firing" {
				alert = a
				return true, ""
			}
		}
		return false, fmt.Sprint(alerts)
	})
	t.Logf("interception alert firing %s after the switch", time.Since(fired).Round(time.Millisecond))
	for k, want := range map[string]string{"target": target, "product": "Fortinet", "severity": "critical", "job": "mitmwatch"} {
		if got := alert.Labels[k]; got != want {
			t.Errorf("alert label %s = %q, want %q (labels %v)", k, got, want, alert.Labels)
		}
	}
	if s := alert.Annotations["summary"]; !strings.Contains(s, target) || !strings.Contains(s, "Fortinet") {
		t.Errorf("summary %q names neither the target nor the product", s)
	}
	if desc := alert.Annotations["description"]; !strings.Contains(desc, "Findings:") {
		t.Errorf("description lacks the findings its query template should list: %q", desc)
	}

	// Back to the genuine origin: the alert resolves.
	sw.Set(e.Origin.Addr())
	resolved := time.Now()
	p.waitQuery(t, verdict("ok"))
	eventually(t, 60*time.Second, "MitmwatchInterceptionDetected resolves", func() (bool, string) {
		alerts, err := p.alerts()
		if err != nil {
			return false, err.Error()
		}
		return noAlerts("MitmwatchInterceptionDetected")(alerts) == nil, fmt.Sprint(alerts)
	})
	t.Logf("interception alert resolved %s after switching back", time.Since(resolved).Round(time.Millisecond))

	// Network down: every connection is reset. The verdict is unreachable
	// and no middlebox alert appears over several evaluations.
	closed, err := lab.ClosedAddr()
	must(t, err)
	sw.Set(closed)
	p.waitQuery(t, verdict("unreachable"))
	p.waitQuery(t, fmt.Sprintf(`mitmwatch_interception_detected{target=%q,product=""} == 0`, target))
	p.watchEvaluations(t, 4, noAlerts(middleboxAlerts...))

	// Every shipped rule evaluated against real series without an error.
	for _, r := range p.rules(t) {
		if r.Health == "err" {
			t.Errorf("rule %s: %s", r.Name, r.LastError)
		}
	}
	t.Logf("whole test took %s", time.Since(start).Round(time.Millisecond))
}

// keepFiringFor matches the value of every keep_firing_for in a rules file.
var keepFiringFor = regexp.MustCompile(`(?m)^([ \t]*keep_firing_for:[ \t]*)[^\s#]+`)

// quickRules writes a copy of deploy/prometheus/mitmwatch-alerts.yml whose
// keep_firing_for values are 5s instead of minutes. The shipped timings are
// proven by `promtool test rules` (mitmwatch-alerts.test.yml); this test
// proves that the rules, every expr exactly as shipped, fire and resolve on
// a real server against a real daemon, and cannot wait ten minutes for a
// resolution. Only keep_firing_for lines may differ from the shipped file.
func quickRules(t *testing.T, dir string) string {
	t.Helper()
	root, err := moduleRoot()
	must(t, err)
	shipped, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "mitmwatch-alerts.yml"))
	must(t, err)
	quick := keepFiringFor.ReplaceAll(shipped, []byte("${1}5s"))
	was, now := strings.Split(string(shipped), "\n"), strings.Split(string(quick), "\n")
	if len(was) != len(now) {
		t.Fatalf("rewriting keep_firing_for changed the number of lines")
	}
	for i := range was {
		if was[i] != now[i] && !keepFiringFor.MatchString(was[i]) {
			t.Fatalf("rewriting keep_firing_for changed line %d: %q", i+1, was[i])
		}
	}
	path := filepath.Join(dir, "mitmwatch-alerts.yml")
	must(t, os.WriteFile(path, quick, 0o644))
	return path
}

// prom is a Prometheus server started by the test.
type prom struct {
	*process
	base string
}

// startPrometheus runs Prometheus scraping the daemon at scrapeAddr every
// second and evaluating rulesFile every second, and waits until it is ready
// and its scrape of the daemon is up.
func startPrometheus(t *testing.T, bin, dir, scrapeAddr, rulesFile string) *prom {
	t.Helper()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: mitmwatch
    static_configs:
      - targets: [%q]
`, rulesFile, scrapeAddr)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	must(t, os.WriteFile(cfgFile, []byte(cfg), 0o644))
	addr := freePort(t)
	p := &prom{base: "http://" + addr}
	p.process = startProcess(t, "prometheus", bin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr,
	)
	eventually(t, 30*time.Second, "prometheus is ready", func() (bool, string) {
		if p.exited() {
			t.Fatalf("prometheus exited (%v):\n%s", p.err, tail(p.out.String(), 4000))
		}
		code, body, err := get(p.base + "/-/ready")
		return err == nil && code == http.StatusOK, fmt.Sprint(code, " ", body, err)
	})
	if n := len(p.rules(t)); n == 0 {
		t.Fatal("prometheus loaded no rules from the shipped file")
	}
	eventually(t, 30*time.Second, "prometheus scrapes mitmwatch", func() (bool, string) {
		var data struct {
			ActiveTargets []struct{ Health, LastError string } `json:"activeTargets"`
		}
		if err := p.api("/api/v1/targets", nil, &data); err != nil {
			return false, err.Error()
		}
		return len(data.ActiveTargets) == 1 && data.ActiveTargets[0].Health == "up", fmt.Sprint(data)
	})
	return p
}

// api GETs a Prometheus HTTP API path and decodes its data.
func (p *prom) api(path string, q url.Values, data any) error {
	u := p.base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	code, body, err := get(u)
	if err != nil {
		return err
	}
	var resp struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return fmt.Errorf("%s: HTTP %d: %v: %q", path, code, err, body)
	}
	if resp.Status != "success" {
		return fmt.Errorf("%s: HTTP %d: %s", path, code, resp.Error)
	}
	return json.Unmarshal(resp.Data, data)
}

// waitQuery waits until an instant query returns at least one series.
func (p *prom) waitQuery(t *testing.T, expr string) {
	t.Helper()
	eventually(t, 30*time.Second, "query "+expr, func() (bool, string) {
		var data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		}
		if err := p.api("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
			return false, err.Error()
		}
		return len(data.Result) > 0, "no series"
	})
}

type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"` // pending or firing
}

func (a promAlert) String() string {
	return fmt.Sprintf("%s{target=%q,product=%q} %s", a.Labels["alertname"], a.Labels["target"], a.Labels["product"], a.State)
}

// alerts are the pending and firing alerts.
func (p *prom) alerts() ([]promAlert, error) {
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	err := p.api("/api/v1/alerts", nil, &data)
	return data.Alerts, err
}

// noAlerts checks that none of the named alerts is pending or firing.
func noAlerts(names ...string) func([]promAlert) error {
	return func(alerts []promAlert) error {
		for _, a := range alerts {
			if slices.Contains(names, a.Labels["alertname"]) {
				return fmt.Errorf("unexpected alert %s", a)
			}
		}
		return nil
	}
}

type promRule struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

type promGroup struct {
	Name           string     `json:"name"`
	Rules          []promRule `json:"rules"`
	LastEvaluation time.Time  `json:"lastEvaluation"`
}

func (p *prom) group(name string) (promGroup, error) {
	var data struct {
		Groups []promGroup `json:"groups"`
	}
	if err := p.api("/api/v1/rules", nil, &data); err != nil {
		return promGroup{}, err
	}
	for _, g := range data.Groups {
		if g.Name == name {
			return g, nil
		}
	}
	return promGroup{}, fmt.Errorf("no rule group %q", name)
}

func (p *prom) rules(t *testing.T) []promRule {
	t.Helper()
	g, err := p.group("mitmwatch")
	must(t, err)
	return g.Rules
}

// watchEvaluations follows the mitmwatch rule group through n evaluations
// that start after this call, and checks the alerts after each: a bounded
// wait on Prometheus's own progress, not on a guessed duration.
func (p *prom) watchEvaluations(t *testing.T, n int, check func([]promAlert) error) {
	t.Helper()
	var last time.Time
	seen := -1 // the evaluation in progress or done when we start does not count
	eventually(t, time.Duration(n)*time.Second+30*time.Second, fmt.Sprintf("%d rule evaluations", n), func() (bool, string) {
		g, err := p.group("mitmwatch")
		if err != nil {
			return false, err.Error()
		}
		if !g.LastEvaluation.After(last) {
			return false, fmt.Sprintf("%d evaluations seen, last at %s", seen, last)
		}
		last = g.LastEvaluation
		seen++
		alerts, err := p.alerts()
		if err != nil {
			return false, err.Error()
		}
		if err := check(alerts); err != nil {
			t.Fatalf("after evaluation at %s: %v", last.Format(time.RFC3339Nano), err)
		}
		return seen >= n, ""
	})
}
