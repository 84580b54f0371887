package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

// TestCheckGradesTheInterceptor: behind an approved interceptor (a real
// third-party one, as HTTPS_PROXY) check grades it through the same proxy,
// with test hosts the lab plays. One that validates upstream passes (exit
// 0); one that re-signs anything fails the gate (exit 1) although its CA is
// approved, with the critical finding on the target and the table saying so.
func TestCheckGradesTheInterceptor(t *testing.T) {
	e := newEnv(t)
	routes := lab.Routes{"index.crates.io": e.Origin.Addr(), "control.grade.example": e.Origin.Addr()}
	var hosts strings.Builder
	for _, d := range lab.Defects {
		o, err := lab.NewOrigin(e.PKI, lab.OriginOptions{Leaf: func(name string) (*tls.Certificate, error) { return e.PKI.Broken(d, name) }})
		must(t, err)
		t.Cleanup(func() { o.Close() })
		routes[string(d)+".grade.example"] = o.Addr()
		fmt.Fprintf(&hosts, "    %s: %s.grade.example:443\n", d, d)
	}
	grading := "grade:\n  test_hosts:\n" + hosts.String() + "  control: control.grade.example:443\n" +
		"allow:\n  inspection_ca_spki_sha256: [" + detector.SPKIOf(e.PKI.EnterpriseRoot.Cert).String() + "]\n"
	rules := writeRules(t, e, grading, labTarget{"index.crates.io", ""})

	for _, c := range []struct {
		insecure bool
		code     int
		grade    string
		upstream string
	}{
		{false, 0, "B", "blocked"},
		{true, 1, "F", "re-signed"},
	} {
		ic, err := lab.NewInterceptor(e.PKI, lab.InterceptorOptions{Routes: routes, InsecureUpstream: c.insecure})
		must(t, err)
		t.Cleanup(func() { ic.Close() })
		cl := cli{t: t, env: map[string]string{"HTTPS_PROXY": ic.URL().String(), "MITMWATCH_CONFIG": rules}}
		code, out, stderr := cl.run("check", "-o", "json")
		var doc struct {
			Targets []struct {
				Verdict  string `json:"verdict"`
				Findings []struct {
					Reason, Severity string
				} `json:"findings"`
			} `json:"targets"`
			Interceptors []struct {
				CASPKI   string   `json:"ca_spki_sha256"`
				Path     string   `json:"path"`
				Product  string   `json:"product"`
				Approved bool     `json:"approved"`
				Targets  []string `json:"targets"`
				Grade    string   `json:"grade"`
				Checks   []struct {
					Check, Result, Detail string
				} `json:"checks"`
			} `json:"interceptors"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v: %s %s", err, out, stderr)
		}
		if code != c.code || len(doc.Targets) != 1 || doc.Targets[0].Verdict != "inspected" || len(doc.Interceptors) != 1 {
			t.Fatalf("insecure %v: exit %d, want %d; %s %s", c.insecure, code, c.code, out, stderr)
		}
		got := doc.Interceptors[0]
		if got.CASPKI != detector.SPKIOf(e.PKI.EnterpriseRoot.Cert).String() || got.Path != "proxy" || got.Product != "goproxy" ||
			!got.Approved || fmt.Sprint(got.Targets) != "[index.crates.io:443]" || got.Grade != c.grade {
			t.Errorf("insecure %v: interceptor %+v", c.insecure, got)
		}
		for _, ch := range got.Checks {
			if strings.HasPrefix(ch.Check, "upstream-") && ch.Result != c.upstream {
				t.Errorf("insecure %v: %s %s (%s), want %s", c.insecure, ch.Check, ch.Result, ch.Detail, c.upstream)
			}
		}
		critical := false
		for _, f := range doc.Targets[0].Findings {
			critical = critical || f.Reason == "interceptor-accepts-invalid-upstream" && f.Severity == "critical"
		}
		if critical != c.insecure {
			t.Errorf("insecure %v: finding interceptor-accepts-invalid-upstream %v", c.insecure, critical)
		}
		if !c.insecure {
			continue
		}
		code, out, _ = cl.run("check")
		for _, s := range []string{"interceptor-accepts-invalid-upstream", "Interceptors on these paths", "F CA \"Example Corp Inspection Root\"", "upstream-expired"} {
			if code != 1 || !strings.Contains(out, s) {
				t.Errorf("table (exit %d) lacks %q:\n%s", code, s, out)
			}
		}
	}
}
