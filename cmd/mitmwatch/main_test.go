package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/scenario"
)

// cli runs the command in-process with its own environment. check runs
// without the toolchain audit unless audit is set: the audit reads the
// machine's own settings, which are not the test's. A config without
// ranges_file reads rangesFile, as the real command reads
// config.DefaultRangesFile; unset, the built-in snapshot.
type cli struct {
	t          *testing.T
	env        map[string]string
	audit      bool
	rangesFile string
}

func (c cli) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	if len(args) > 0 && args[0] == "check" && !c.audit {
		args = append(args, "--no-audit")
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, args, env{stdout: &out, stderr: &errb, getenv: func(k string) string { return c.env[k] }, rangesFile: c.rangesFile})
	return code, out.String(), errb.String()
}

type labTarget struct{ host, addr string }

// writeRules writes a rules.yaml whose trust stores are the lab's and whose
// targets are played by lab servers. Grading is off unless extra has a
// grade section: its default test hosts are public ones.
func writeRules(t *testing.T, e *scenario.Env, extra string, targets ...labTarget) string {
	t.Helper()
	if !strings.Contains(extra, "grade:") {
		extra += "grade:\n  enabled: never\n"
	}
	dir := t.TempDir()
	pub, sys := filepath.Join(dir, "public.pem"), filepath.Join(dir, "system.pem")
	must(t, os.WriteFile(pub, e.PKI.PublicPEM(), 0o644))
	must(t, os.WriteFile(sys, e.PKI.SystemPEM(), 0o644))
	var b strings.Builder
	// No resolver outside the lab is ever asked: references off, and
	// targets either have an address or go through a lab proxy.
	fmt.Fprintf(&b, "toolchain: none\ntrust:\n  public_roots: %s\n  system_roots: %s\nprobe:\n  timeout: 2s\ndns:\n  reference_resolvers: []\n  canary: false\n%s\ntargets:\n", pub, sys, extra)
	for _, tg := range targets {
		fmt.Fprintf(&b, "  - host: %s\n", tg.host)
		if tg.addr != "" {
			fmt.Fprintf(&b, "    address: %s\n", tg.addr)
		}
	}
	path := filepath.Join(dir, "rules.yaml")
	must(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newEnv(t *testing.T) *scenario.Env {
	t.Helper()
	e, err := scenario.NewEnv(scenario.Options{})
	must(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

type jsonDoc struct {
	SchemaVersion int `json:"schema_version"`
	Targets       []struct {
		Host     string `json:"host"`
		Verdict  string `json:"verdict"`
		Product  string `json:"product"`
		Path     string `json:"path"`
		Source   string `json:"source"`
		Findings []struct {
			Reason string `json:"reason"`
		} `json:"findings"`
	} `json:"targets"`
}

func decode(t *testing.T, s string) jsonDoc {
	t.Helper()
	var d jsonDoc
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatalf("%v in %q", err, s)
	}
	return d
}

func verdicts(d jsonDoc) map[string]string {
	m := map[string]string{}
	for _, t := range d.Targets {
		m[t.Host] = t.Verdict
	}
	return m
}

// TestCheckExitCodes drives `check` end to end against lab servers and
// checks the exit code contract: 0 clean, 1 detected, 3 inconclusive.
func TestCheckExitCodes(t *testing.T) {
	e := newEnv(t)
	forger, err := lab.NewForger(lab.ForgerOptions{CA: e.PKI.ProductRoot})
	must(t, err)
	defer forger.Close()
	closed, err := lab.ClosedAddr()
	must(t, err)
	rules := writeRules(t, e, "",
		labTarget{"github.com", e.Origin.Addr()},
		labTarget{"pypi.org", forger.Addr()},
		labTarget{"ghcr.io", closed})
	c := cli{t: t}

	for _, tc := range []struct {
		targets []string
		code    int
		want    map[string]string
	}{
		{[]string{"github.com"}, 0, map[string]string{"github.com": "ok"}},
		{[]string{"github.com", "pypi.org"}, 1, map[string]string{"github.com": "ok", "pypi.org": "intercepted"}},
		{[]string{"github.com", "ghcr.io"}, 3, map[string]string{"github.com": "ok", "ghcr.io": "unreachable"}},
		{nil, 1, map[string]string{"github.com": "ok", "pypi.org": "intercepted", "ghcr.io": "unreachable"}},
	} {
		args := []string{"check", "--config", rules, "-o", "json"}
		for _, tg := range tc.targets {
			args = append(args, "--target", tg)
		}
		code, out, stderr := c.run(args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d; stderr %s", tc.targets, code, tc.code, stderr)
		}
		d := decode(t, out)
		if got := verdicts(d); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%v: verdicts %v, want %v", tc.targets, got, tc.want)
		}
		if d.SchemaVersion != 1 {
			t.Errorf("schema_version %d", d.SchemaVersion)
		}
	}

	// The table names the product and the fix.
	code, out, _ := c.run("check", "--config", rules, "--target", "pypi.org")
	if code != 1 || !strings.Contains(out, "Fortinet") || !strings.Contains(out, "NODE_EXTRA_CA_CERTS") || strings.Contains(out, "\x1b[") {
		t.Errorf("table (exit %d):\n%s", code, out)
	}
	// The brief report leads with the tally and the fix; -v with the table.
	if !strings.HasPrefix(out, "1 target: 1 intercepted\n\nintercepted pypi.org:443 (Fortinet") || !strings.Contains(out, "\n  fix: ") {
		t.Errorf("brief report:\n%s", out)
	}
	if _, out, _ := c.run("check", "--config", rules, "--target", "pypi.org", "-v"); !strings.HasPrefix(out, "TARGET ") || !strings.Contains(out, "\n1 target: 1 intercepted\n") {
		t.Errorf("-v report:\n%s", out)
	}
}

// TestCheckThroughProxyEnv probes the way build tools do when HTTPS_PROXY
// is set, and reports that path.
func TestCheckThroughProxyEnv(t *testing.T) {
	e := newEnv(t)
	ic, err := lab.NewInterceptor(e.PKI, lab.InterceptorOptions{Routes: lab.Routes{"pypi.org": e.Origin.Addr()}})
	must(t, err)
	defer ic.Close()
	rules := writeRules(t, e, "", labTarget{"pypi.org", ""})
	c := cli{t: t, env: map[string]string{"HTTPS_PROXY": ic.URL().String(), "MITMWATCH_CONFIG": rules}}
	code, out, stderr := c.run("check", "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	d := decode(t, out)
	if got := d.Targets[0]; got.Verdict != "intercepted" || got.Path != "proxy" || got.Product != "goproxy" {
		t.Errorf("target %+v", got)
	}
}

// TestBaselineLearnAndCheck learns on a clean network, then sees a leaf
// renewal stay ok and a cloned-name CA caught by the learned pins alone.
func TestBaselineLearnAndCheck(t *testing.T) {
	e := newEnv(t)
	cloned, err := lab.NewForger(lab.ForgerOptions{CA: e.PKI.ClonedIntermediate, SCT: true, KeyPerHost: true,
		NotBefore: time.Now().Add(-30 * 24 * time.Hour)})
	must(t, err)
	defer cloned.Close()
	base := filepath.Join(t.TempDir(), "baseline.json")
	c := cli{t: t}

	clean := writeRules(t, e, "", labTarget{"github.com", e.Origin.Addr()})
	if code, out, stderr := c.run("baseline", "learn", "--config", clean, "--out", base); code != 0 || !strings.Contains(out, "learned 1 targets") {
		t.Fatalf("learn: exit %d, %s %s", code, out, stderr)
	}
	e.Origin.Renew()
	if code, out, _ := c.run("check", "--config", clean, "--baseline", base, "-o", "json"); code != 0 || verdicts(decode(t, out))["github.com"] != "ok" {
		t.Errorf("after leaf renewal: exit %d %s", code, out)
	}

	// The same name now reaches the cloned-DN interceptor. Its CA is in the
	// system store here, so make it a trusted-looking chain on both sides:
	// only the learned pins can tell.
	moved := writeRules(t, e, "", labTarget{"github.com", cloned.Addr()})
	code, out, _ := c.run("check", "--config", moved, "--baseline", base, "-o", "json")
	d := decode(t, out)
	if code != 1 || d.Targets[0].Verdict != "intercepted" {
		t.Fatalf("cloned DN: exit %d %s", code, out)
	}
	found := false
	for _, f := range d.Targets[0].Findings {
		found = found || f.Reason == "ca-pin-mismatch"
	}
	if !found {
		t.Errorf("no ca-pin-mismatch finding: %s", out)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "rules.yaml")
	must(t, os.WriteFile(bad, []byte("targets:\n  - host: github.com\n    port: 70000\n"), 0o644))
	c := cli{t: t}
	code, _, stderr := c.run("validate", "--config", bad)
	if code != 2 || !strings.Contains(stderr, bad+":3") || !strings.Contains(stderr, "targets[0].port") {
		t.Errorf("validate bad: exit %d, stderr %q", code, stderr)
	}
	code, out, _ := c.run("validate")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("validate default: exit %d, %q", code, out)
	}
	if code, _, stderr := c.run("check", "--config", bad); code != 2 || !strings.Contains(stderr, "targets[0].port") {
		t.Errorf("check with bad config: exit %d, %q", code, stderr)
	}
}

func TestUsage(t *testing.T) {
	c := cli{t: t}
	for _, args := range [][]string{nil, {"frobnicate"}, {"demo"}, {"check", "--output", "xml"}, {"check", "--target", "a:99999"}} {
		if code, _, _ := c.run(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := c.run("version"); code != 0 || !strings.HasPrefix(out, "mitmwatch ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, stderr := c.run("check", "--help"); code != 0 || !strings.Contains(stderr, "--baseline") {
		t.Errorf("check --help: %d %q", code, stderr)
	}
}

// TestCheckDNSWiring runs check with resolvers from rules.yaml: the system
// resolver from a resolv.conf of the test's own, a reference resolver in
// the lab, and reports every answer in the JSON.
func TestCheckDNSWiring(t *testing.T) {
	e := newEnv(t)
	ref, err := lab.NewDNSServer(lab.DNSOptions{Zone: map[string][]netip.Addr{"pypi.org": {netip.MustParseAddr("127.0.0.1")}}})
	must(t, err)
	defer ref.Close()
	dir := t.TempDir()
	resolvConf := filepath.Join(dir, "resolv.conf")
	// Port 53 of 127.0.0.9: nothing of the lab listens there, so the
	// system resolver fails or refuses, whatever this machine runs.
	must(t, os.WriteFile(resolvConf, []byte("nameserver 127.0.0.9\n"), 0o644))
	rules := writeRules(t, e, "", labTarget{"pypi.org", ""})
	data, err := os.ReadFile(rules)
	must(t, err)
	data = []byte(strings.Replace(string(data), "dns:\n  reference_resolvers: []\n  canary: false\n",
		fmt.Sprintf("dns:\n  resolv_conf: %s\n  reference_resolvers: [\"udp://%s\"]\n  canary: false\n", resolvConf, ref.Addr()), 1))
	must(t, os.WriteFile(rules, data, 0o644))

	code, out, stderr := cli{t: t}.run("check", "--config", rules, "-o", "json", "--timeout", "2s")
	var doc struct {
		Targets []struct {
			Verdict string `json:"verdict"`
			DNS     []struct {
				Resolver string   `json:"resolver"`
				System   bool     `json:"system"`
				Rcode    string   `json:"rcode"`
				Addrs    []string `json:"addresses"`
			} `json:"dns"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Targets) != 1 {
		t.Fatalf("exit %d, %v: %s %s", code, err, out, stderr)
	}
	dns := doc.Targets[0].DNS
	if len(dns) != 2 || !dns[0].System || dns[0].Resolver != "system udp://127.0.0.9:53" ||
		dns[1].System || dns[1].Rcode != "NOERROR" || len(dns[1].Addrs) != 1 {
		t.Errorf("dns answers %+v", dns)
	}
}

// TestRangesUpdate writes a snapshot from files in each provider's format,
// then a rules.yaml uses provider:github from it; a failing update keeps
// the old snapshot.
func TestRangesUpdate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ranges.json")
	td := "../../ranges/testdata/"
	from := []string{
		"--from", "github=" + td + "github/meta.json",
		"--from", "google=" + td + "google/goog.json",
		"--from", "cloudflare=" + td + "cloudflare/ips-v4," + td + "cloudflare/ips-v6",
		"--from", "fastly=" + td + "fastly/public-ip-list.json",
		"--from", "aws=" + td + "aws/ip-ranges.json",
	}
	c := cli{t: t}
	code, stdout, stderr := c.run(append([]string{"ranges", "update", "--out", out}, from...)...)
	if code != 0 || !strings.Contains(stdout, "github") || !strings.Contains(stdout, "wrote "+out) {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	before, err := os.ReadFile(out)
	must(t, err)

	rules := filepath.Join(t.TempDir(), "rules.yaml")
	must(t, os.WriteFile(rules, []byte(fmt.Sprintf("ranges_file: %s\ntargets:\n  - host: github.com\n    expect:\n      ip_ranges: [\"provider:github\"]\n", out)), 0o644))
	if code, stdout, stderr := c.run("validate", "--config", rules); code != 0 {
		t.Errorf("validate with provider ranges: exit %d %s %s", code, stdout, stderr)
	}
	// Without ranges_file the command reads its default snapshot (the
	// service's, config.DefaultRangesFile), here the one just written.
	noFile := filepath.Join(t.TempDir(), "rules.yaml")
	must(t, os.WriteFile(noFile, []byte("targets:\n  - host: github.com\n    expect:\n      ip_ranges: [\"provider:github\"]\n"), 0o644))
	if code, stdout, stderr := (cli{t: t, rangesFile: out}).run("validate", "--config", noFile); code != 0 {
		t.Errorf("validate with the default snapshot: exit %d %s %s", code, stdout, stderr)
	}
	if code, _, stderr := c.run("validate", "--config", noFile); code != 2 || !strings.Contains(stderr, "snapshot built in") {
		t.Errorf("validate without a snapshot: exit %d %s, want 2 and the built-in snapshot named", code, stderr)
	}

	bad := append([]string{"ranges", "update", "--out", out}, from...)
	bad = append(bad, "--from", "fastly="+td+"github/meta.json")
	if code, _, stderr := c.run(bad...); code != 1 || !strings.Contains(stderr, "fastly") {
		t.Errorf("bad update: exit %d, %s", code, stderr)
	}
	after, err := os.ReadFile(out)
	must(t, err)
	if !bytes.Equal(before, after) {
		t.Error("a failed update changed the snapshot")
	}
	if code, _, _ := c.run("ranges", "update", "--out", out, "--from", "nonsense"); code != 2 {
		t.Errorf("bad --from: exit %d, want 2", code)
	}
}

// TestCheckAuditSection: check audits the toolchain beside the probes, the
// JSON gains an audit section, and a critical setting makes the exit 1.
func TestCheckAuditSection(t *testing.T) {
	e := newEnv(t)
	rules := writeRules(t, e, "", labTarget{"github.com", e.Origin.Addr()})
	home := goHome(t)
	must(t, os.WriteFile(filepath.Join(home, ".npmrc"), []byte("strict-ssl=false\n"), 0o644))
	c := cli{t: t, audit: true, env: map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, ".config")}}
	code, out, stderr := c.run("check", "--config", rules, "-o", "json")
	var doc struct {
		Targets []struct{ Verdict string } `json:"targets"`
		Audit   struct {
			Findings []struct {
				Tool, Setting, Severity, Source string
			} `json:"findings"`
		} `json:"audit"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v: %s %s", err, out, stderr)
	}
	if code != 1 || len(doc.Targets) != 1 || doc.Targets[0].Verdict != "ok" {
		t.Errorf("exit %d, targets %+v; want 1 for the audit's critical finding over a clean round", code, doc.Targets)
	}
	found := false
	for _, f := range doc.Audit.Findings {
		found = found || (f.Tool == "npm" && f.Setting == "strict-ssl" && f.Severity == "critical" && strings.HasSuffix(f.Source, ".npmrc:1"))
	}
	if !found {
		t.Errorf("no strict-ssl finding from %s/.npmrc: %+v", home, doc.Audit.Findings)
	}
}

// TestCheckIPLiterals: --target with IP literals, v4 and v6, is dialled
// as given (the machine's resolvers are never asked), and the table
// brackets the v6 address.
func TestCheckIPLiterals(t *testing.T) {
	e := newEnv(t)
	closed, err := lab.ClosedAddr()
	must(t, err)
	_, port4, _ := strings.Cut(closed, ":")
	targets := []string{"127.0.0.1:" + port4}
	want := map[string]bool{"127.0.0.1": true}
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		targets = append(targets, ln.Addr().String()) // "[::1]:port"
		want["::1"] = true
		ln.Close()
	}
	rules := writeRules(t, e, "", labTarget{"github.com", e.Origin.Addr()})
	args := []string{"check", "--config", rules}
	for _, tg := range targets {
		args = append(args, "--target", tg)
	}
	code, out, stderr := cli{t: t}.run(append(args, "-o", "json")...)
	var doc struct {
		Targets []struct {
			Host     string            `json:"host"`
			Verdict  string            `json:"verdict"`
			Failure  string            `json:"failure"`
			DNS      []json.RawMessage `json:"dns"`
			Findings []struct {
				Reason string `json:"reason"`
			} `json:"findings"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 3 || len(doc.Targets) != len(targets) {
		t.Fatalf("exit %d, %v: %s %s", code, err, out, stderr)
	}
	for _, tg := range doc.Targets {
		if !want[tg.Host] || tg.Verdict != "unreachable" || tg.Failure != "connection_refused" || len(tg.DNS) != 0 ||
			len(tg.Findings) != 1 || tg.Findings[0].Reason != "unreachable" {
			t.Errorf("%+v", tg)
		}
	}
	_, out, _ = cli{t: t}.run(args...)
	for _, tg := range targets {
		if !strings.Contains(out, tg+" ") {
			t.Errorf("table lacks %s:\n%s", tg, out)
		}
	}
}

func TestSelectTargetsIPLiterals(t *testing.T) {
	for in, want := range map[string]string{
		"[::1]:8443": "[::1]:8443", "[::1]": "[::1]:443", "::1": "[::1]:443", "[::0001]:9": "[::1]:9",
		"127.0.0.1:9": "127.0.0.1:9", "10.1.2.3": "10.1.2.3:443", "Registry.Lab.Example:8443": "registry.lab.example:8443",
	} {
		got, err := selectTargets(nil, []string{in})
		if err != nil || len(got) != 1 || got[0].Key() != want {
			t.Errorf("--target %s: %v, %v; want %s", in, got, err, want)
		}
	}
}

// TestCheckDoHBootstrapWiring: a DoH reference given by a name that
// resolves nowhere answers through its bootstrap addresses from rules.yaml,
// and one without them is found through the reference given by address.
func TestCheckDoHBootstrapWiring(t *testing.T) {
	e := newEnv(t)
	zone := map[string][]netip.Addr{"pypi.org": {netip.MustParseAddr("127.0.0.1")}}
	doh, err := lab.NewDoHServer(e.PKI, lab.DNSOptions{Zone: zone})
	must(t, err)
	defer doh.Close()
	_, port, _ := net.SplitHostPort(doh.Addr())
	named := "https://" + lab.DNSHost + ":" + port + lab.DoHPath
	resolvConf := filepath.Join(t.TempDir(), "resolv.conf")
	must(t, os.WriteFile(resolvConf, []byte("nameserver 127.0.0.9\n"), 0o644))

	// check runs a round with these reference resolvers and returns the
	// DoH server's answer.
	check := func(refs string) (resolver, rcode string, addrs int) {
		t.Helper()
		rules := writeRules(t, e, "", labTarget{"pypi.org", ""})
		data, err := os.ReadFile(rules)
		must(t, err)
		data = []byte(strings.Replace(string(data), "dns:\n  reference_resolvers: []\n  canary: false\n",
			fmt.Sprintf("dns:\n  resolv_conf: %s\n  reference_resolvers:\n%s  canary: false\n", resolvConf, refs), 1))
		must(t, os.WriteFile(rules, data, 0o644))
		code, out, stderr := cli{t: t}.run("check", "--config", rules, "-o", "json", "--timeout", "3s")
		var doc struct {
			Targets []struct {
				DNS []struct {
					Resolver string   `json:"resolver"`
					Rcode    string   `json:"rcode"`
					Addrs    []string `json:"addresses"`
				} `json:"dns"`
			} `json:"targets"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Targets) != 1 || len(doc.Targets[0].DNS) < 2 {
			t.Fatalf("exit %d, %v: %s %s", code, err, out, stderr)
		}
		a := doc.Targets[0].DNS[1]
		return a.Resolver, a.Rcode, len(a.Addrs)
	}

	if spec, rcode, n := check(fmt.Sprintf("    - {url: %q, bootstrap: [127.0.0.1]}\n", named)); spec != named || rcode != "NOERROR" || n != 1 {
		t.Errorf("with bootstrap addresses: %s %s %d", spec, rcode, n)
	}
	udp, err := lab.NewDNSServer(lab.DNSOptions{Zone: map[string][]netip.Addr{lab.DNSHost: {netip.MustParseAddr("127.0.0.1")}}})
	must(t, err)
	defer udp.Close()
	if spec, rcode, n := check(fmt.Sprintf("    - %q\n    - udp://%s\n", named, udp.Addr())); spec != named || rcode != "NOERROR" || n != 1 {
		t.Errorf("found through the reference by address: %s %s %d", spec, rcode, n)
	}
	// The UDP reference was asked about pypi.org (A and AAAA) and about
	// the DoH server's name, once per connection the transport dialled.
	if n := udp.Queries("udp"); n < 4 {
		t.Errorf("the reference by address got %d queries, want pypi.org's 2 and at least 2 for the DoH server", n)
	}
	if doh.Queries() != 4 {
		t.Errorf("the DoH server got %d queries, want 4", doh.Queries())
	}
}

// TestCheckPublicRootsBundleError: check loads the public roots beside
// the probes, and a bundle that cannot be loaded is still a config error,
// exit 2 naming the file, line and field, with nothing judged.
func TestCheckPublicRootsBundleError(t *testing.T) {
	e := newEnv(t)
	rules := writeRules(t, e, "", labTarget{"github.com", e.Origin.Addr()})
	data, err := os.ReadFile(rules)
	must(t, err)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	bad := regexp.MustCompile(`public_roots: \S+`).ReplaceAllString(string(data), "public_roots: "+missing)
	must(t, os.WriteFile(rules, []byte(bad), 0o644))
	code, stdout, stderr := cli{t: t}.run("check", "--config", rules, "-o", "json")
	want := rules + ":3: trust.public_roots: PEM bundle " + missing + ": no such file or directory"
	if code != 2 || stdout != "" || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing judged, and %q", code, stdout, stderr, want)
	}
}

// TestSumDBLast: however early the checksum database joined the round, it
// is reported after the other targets, each result with its own target.
func TestSumDBLast(t *testing.T) {
	sum := config.Target{Host: "sumdb.example", Protocol: detector.ProtocolSumDB}
	a, b := config.Target{Host: "a.example", Protocol: detector.ProtocolTLS}, config.Target{Host: "b.example", Protocol: detector.ProtocolSSH}
	ts, obs := sumdbLast([]config.Target{a, sum, b}, []detector.Observation{{Host: "a.example"}, {Host: "sumdb.example"}, {Host: "b.example"}})
	var got []string
	for i, tg := range ts {
		if obs[i].Host != tg.Host {
			t.Fatalf("result %d is %s's, target %s", i, obs[i].Host, tg.Host)
		}
		got = append(got, tg.Host)
	}
	if want := "a.example b.example sumdb.example"; strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
}

// TestCheckRunsOnOneP: check sets GOMAXPROCS to checkProcs, unless the
// environment sets GOMAXPROCS; other commands leave it alone.
func TestCheckRunsOnOneP(t *testing.T) {
	e := newEnv(t)
	closed, err := lab.ClosedAddr()
	must(t, err)
	rules := writeRules(t, e, "", labTarget{"ghcr.io", closed})
	for _, c := range []struct {
		args []string
		env  map[string]string
		want []int
	}{
		{[]string{"check", "--config", rules, "--no-audit", "-o", "json"}, nil, []int{checkProcs}},
		{[]string{"check", "--config", rules, "--no-audit", "-o", "json"}, map[string]string{"GOMAXPROCS": "4"}, nil},
		{[]string{"version"}, nil, nil},
	} {
		var got []int
		var out, errb bytes.Buffer
		run(context.Background(), c.args, env{stdout: &out, stderr: &errb, getenv: func(k string) string { return c.env[k] },
			setProcs: func(n int) { got = append(got, n) }})
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%v with %v: GOMAXPROCS set to %v, want %v (stderr %s)", c.args[0], c.env, got, c.want, errb.String())
		}
	}
}
