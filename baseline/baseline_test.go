package baseline

import (
	"context"
	"crypto/tls"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/scenario"
)

// addrs lets cmp compare netip values, which hide their fields.
var addrs = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

// learnFromLab judges a clean target and an intercepted one in the lab.
func learnFromLab(t *testing.T) (*scenario.Env, []detector.Result) {
	t.Helper()
	e, err := scenario.NewEnv(scenario.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	var results []detector.Result
	for _, s := range scenario.All() {
		if s.Name != "clean" && s.Name != "goproxy-explicit" {
			continue
		}
		rs, err := e.Run(context.Background(), s, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, rs...)
	}
	return e, results
}

func TestLearnOnlyClean(t *testing.T) {
	e, results := learnFromLab(t)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	b, skipped := Learn(results, now)
	if diff := cmp.Diff([]string{"pypi.org:443 (intercepted)"}, skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	got, ok := b.Targets["github.com:443"]
	if !ok {
		t.Fatalf("github.com not learned: %+v", b)
	}
	want := Entry{
		CASPKI: []string{
			detector.SPKIOf(e.PKI.PublicIntermediate.Cert).String(),
			detector.SPKIOf(e.PKI.PublicRoot.Cert).String(),
		},
		CASubjects: []string{e.PKI.PublicIntermediate.Cert.Subject.String(), e.PKI.PublicRoot.Cert.Subject.String()},
		Addresses:  []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		TLSVersion: "1.3", ALPN: "h2", SCT: true,
	}
	if diff := cmp.Diff(want, got, addrs); diff != "" {
		t.Errorf("entry (-want +got):\n%s", diff)
	}
	if !b.LearnedAt.Equal(now) || b.Version != Version {
		t.Errorf("header %v %d", b.LearnedAt, b.Version)
	}
}

func TestApply(t *testing.T) {
	pin := detector.SPKI{1, 2, 3}
	b := Baseline{Version: Version, Targets: map[string]Entry{
		"github.com:443": {CASPKI: []string{pin.String()}, CASubjects: []string{"CN=Lab CA"}, Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.77"), netip.MustParseAddr("2001:db8::1")},
			TLSVersion: "1.3", ALPN: "h2", SCT: true},
	}}
	targets := []config.Target{
		{Host: "github.com", Port: 443, Expect: detector.Expectation{ALPN: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}},
		{Host: "pypi.org", Port: 443},
	}
	got, err := b.Apply(targets)
	if err != nil {
		t.Fatal(err)
	}
	want := detector.Expectation{
		// The learned CAs are not pins: a public chain contradicting them
		// needs corroboration to be an interception.
		Learned:    &detector.Learned{CAs: []detector.LearnedCA{{SPKI: pin, Subject: "CN=Lab CA"}}, SCT: true},
		IPRanges:   []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/48")},
		MinVersion: tls.VersionTLS13,
		ALPN:       []string{"http/1.1"}, // rules.yaml wins over the baseline
		SCT:        true,
	}
	if diff := cmp.Diff(want, got[0].Expect, addrs); diff != "" {
		t.Errorf("github.com expectation (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(detector.Expectation{}, got[1].Expect, addrs); diff != "" {
		t.Errorf("pypi.org changed (-want +got):\n%s", diff)
	}
	if targets[0].Expect.MinVersion != tls.VersionTLS12 {
		t.Error("Apply modified its input")
	}

	b.Targets["github.com:443"] = Entry{CASPKI: []string{"not base64!"}}
	if _, err := b.Apply(targets); err == nil || !strings.Contains(err.Error(), "github.com:443") {
		t.Errorf("bad pin: %v", err)
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "baseline.json")
	b := Baseline{Version: Version, LearnedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Targets: map[string]Entry{"ghcr.io:443": {CASPKI: []string{detector.SPKI{9}.String()}, TLSVersion: "1.2"}}}
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(path); err != nil { // overwrite in place
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b, got, addrs); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"corrupt.json": `{"version": 1, "targets": {`,
		"version.json": `{"version": 7, "targets": {}}`,
		"unknown.json": `{"version": 1, "targets": {}, "pins": []}`,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v should name the file", name, err)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
}

// TestLearnedBaselineCatchesClonedName learns the clean lab as `baseline
// learn` does, then meets an interceptor whose root the public store
// trusts and whose CA copies the learned issuer's name: the learned names
// and keys catch it, where public trust alone would pass it.
func TestLearnedBaselineCatchesClonedName(t *testing.T) {
	e, results := learnFromLab(t)
	b, _ := Learn(results, time.Now())
	var cloned scenario.Scenario
	for _, s := range scenario.All() {
		if s.Name == "cloned-name-public-store" {
			cloned = s
		}
	}
	if cloned.Build == nil {
		t.Fatal("no cloned-name-public-store scenario")
	}
	withBaseline := cloned
	withBaseline.Build = func(e *scenario.Env) (scenario.Setup, error) {
		setup, err := cloned.Build(e)
		if err != nil {
			return setup, err
		}
		for i := range setup.Targets {
			setup.Targets[i].Expect = detector.Expectation{}
		}
		setup.Targets, err = b.Apply(setup.Targets)
		return setup, err
	}
	rs, err := e.Run(context.Background(), withBaseline, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Obs.Host != "github.com" {
			continue // learned only github.com
		}
		if r.Verdict != detector.Intercepted || !slices.ContainsFunc(r.Findings, func(f detector.Finding) bool { return f.Reason == detector.ReasonCANameCloned }) {
			t.Errorf("%s: %s %v, want intercepted with ca-name-cloned", r.Obs.Host, r.Verdict, r.Findings)
		}
		return
	}
	t.Fatal("github.com not probed")
}

// An IPv6 literal is learned under the key Apply looks it up by,
// "[::1]:443", not "::1:443".
func TestLearnApplyIPv6Literal(t *testing.T) {
	_, results := learnFromLab(t)
	r := results[0]
	r.Obs.Host = "::1"
	b, skipped := Learn([]detector.Result{r}, time.Now())
	if _, ok := b.Targets["[::1]:443"]; !ok || len(skipped) > 0 {
		t.Fatalf("keys %v, skipped %v", b.Targets, skipped)
	}
	got, err := b.Apply([]config.Target{{Host: "::1", Port: 443}})
	if err != nil || got[0].Expect.Learned == nil {
		t.Errorf("applied %+v, %v", got, err)
	}
}
