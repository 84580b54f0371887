//go:build !lean

package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/scenario"
	"github.com/mitmwatch/mitmwatch/sshprobe/sshtest"
	"github.com/mitmwatch/mitmwatch/sumdb/sumdbtest"
)

// integrityLab is an SSH server with the real host key, an interceptor
// answering SSH with its own, a closed port, and a checksum database
// behind a module proxy, all on loopback with the scenario lab's PKI.
type integrityLab struct {
	real, mitm          sshtest.Key
	genuine, intercepts *sshtest.Server
	closed              string
	log, fork           *sumdbtest.Log
	proxy               *sumdbtest.Proxy
	proxyURL            string
}

func newIntegrityLab(t *testing.T, e *scenario.Env) *integrityLab {
	t.Helper()
	var l integrityLab
	var err error
	if l.real, err = sshtest.NewKey(); err != nil {
		t.Fatal(err)
	}
	if l.mitm, err = sshtest.NewKey(); err != nil {
		t.Fatal(err)
	}
	if l.genuine, err = sshtest.NewServer(l.real, "OpenSSH_9.6"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.genuine.Close() })
	if l.intercepts, err = sshtest.NewServer(l.mitm, "OpenSSH_9.6"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.intercepts.Close() })
	if l.closed, err = sshtest.ClosedPort(); err != nil {
		t.Fatal(err)
	}
	if l.log, err = sumdbtest.NewLog("sum.lab.example"); err != nil {
		t.Fatal(err)
	}
	// Two histories that share their first 150 records.
	must(t, l.log.Add(150, "base"))
	l.fork = l.log.Fork()
	must(t, l.log.Add(50, "a"))
	must(t, l.fork.Add(100, "fork"))
	l.proxy = sumdbtest.NewProxy(l.log)
	cert, err := e.PKI.PublicIntermediate.Issue(lab.LeafOptions{}, "127.0.0.1")
	must(t, err)
	srv := httptest.NewUnstartedServer(l.proxy)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	l.proxyURL = srv.URL
	return &l
}

// rules writes a rules.yaml with the lab's trust stores, the three SSH
// targets pinned to the real key, and the checksum database reached
// through the lab's module proxy.
func (l *integrityLab) rules(t *testing.T, e *scenario.Env) string {
	t.Helper()
	extra := fmt.Sprintf("checksum_database:\n  gosumdb: %q\n  goproxy: %q\n", l.log.VerifierKey(), l.proxyURL+",direct")
	path := writeRules(t, e, extra)
	var b strings.Builder
	pin := l.real.Fingerprint().String()
	for _, tg := range []struct{ host, addr, fallback string }{
		{"git.lab.example", l.genuine.Addr(), ""},
		{"git2.lab.example", l.intercepts.Addr(), ""},
		{"git3.lab.example", l.closed, "127.0.0.1:" + fmt.Sprint(l.genuine.Port())},
	} {
		fmt.Fprintf(&b, "  - host: %s\n    protocol: ssh\n    address: %q\n    expect: {ssh_host_key_sha256: [%q]}\n", tg.host, tg.addr, pin)
		if tg.fallback != "" {
			fmt.Fprintf(&b, "    fallback: %q\n", tg.fallback)
		}
	}
	data, err := os.ReadFile(path)
	must(t, err)
	must(t, os.WriteFile(path, append(data, b.String()...), 0o644))
	return path
}

type integrityDoc struct {
	Targets []struct {
		Host     string `json:"host"`
		Port     int    `json:"port"`
		Protocol string `json:"protocol"`
		Verdict  string `json:"verdict"`
		Findings []struct {
			Reason string `json:"reason"`
		} `json:"findings"`
		SSH *struct {
			HostKey *struct {
				SHA256 string `json:"sha256"`
			} `json:"host_key"`
		} `json:"ssh"`
		SumDB *struct {
			ViaProxy    bool   `json:"via_proxy"`
			Consistency string `json:"consistency"`
			StatePath   string `json:"state_path"`
		} `json:"sumdb"`
	} `json:"targets"`
}

func (d integrityDoc) verdicts() map[string]string {
	m := map[string]string{}
	for _, t := range d.Targets {
		m[t.Protocol+" "+t.Host] = t.Verdict
	}
	return m
}

// TestCheckSSHAndTheChecksumDatabase runs `mitmwatch check` through the
// real probes, judgement and report against the lab: the pinned key is
// ok, another key intercepted, a closed port whose fallback answers
// blocked; the checksum database's first tree is kept in the user's cache
// directory, and a fork served later is intercepted (exit 1).
func TestCheckSSHAndTheChecksumDatabase(t *testing.T) {
	e := newEnv(t)
	l := newIntegrityLab(t, e)
	rules := l.rules(t, e)
	cache := t.TempDir()
	c := cli{t: t, env: map[string]string{"XDG_CACHE_HOME": cache}}

	code, out, stderr := c.run("check", "--config", rules, "-o", "json")
	var doc integrityDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v: %s %s", err, out, stderr)
	}
	want := map[string]string{
		"ssh git.lab.example":     "ok",
		"ssh git2.lab.example":    "intercepted",
		"ssh git3.lab.example":    "blocked",
		"gosumdb sum.lab.example": "ok",
	}
	if got := doc.verdicts(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("verdicts %v, want %v", got, want)
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, tg := range doc.Targets {
		if tg.Host == "git2.lab.example" && (tg.SSH == nil || tg.SSH.HostKey == nil || tg.SSH.HostKey.SHA256 != l.mitm.Fingerprint().String()) {
			t.Errorf("the interceptor's key is not in the report: %+v", tg.SSH)
		}
		if tg.Protocol == "gosumdb" && (tg.SumDB == nil || !tg.SumDB.ViaProxy || tg.SumDB.Consistency != "first" ||
			tg.SumDB.StatePath != filepath.Join(cache, "mitmwatch", "sumdb.json")) {
			t.Errorf("sumdb: %+v", tg.SumDB)
		}
	}

	// The table names the targets by their keys.
	_, table, _ := c.run("check", "--config", rules, "--target", "ssh://git3.lab.example")
	for _, w := range []string{"ssh://git3.lab.example:22", "blocked", "ssh-port-blocked", `"Hostname 127.0.0.1"`, `"Port ` + fmt.Sprint(l.genuine.Port()) + `"`} {
		if !strings.Contains(table, w) {
			t.Errorf("table lacks %q:\n%s", w, table)
		}
	}

	// The proxy now serves a fork of the log: a tree that does not extend
	// the one kept.
	l.proxy.Serve("sum.lab.example", l.fork)
	code, out, _ = c.run("check", "--config", rules, "-o", "json", "--target", "sum.lab.example")
	doc = integrityDoc{}
	must(t, json.Unmarshal([]byte(out), &doc))
	if got := doc.verdicts()["gosumdb sum.lab.example"]; got != "intercepted" || code != 1 {
		t.Errorf("fork: %s, exit %d:\n%s", got, code, out)
	}
}

// TestRunWatchesTheChecksumDatabase: `mitmwatch run` keeps the tree in its
// state directory and exports the database and the SSH targets.
func TestRunWatchesTheChecksumDatabase(t *testing.T) {
	e := newEnv(t)
	l := newIntegrityLab(t, e)
	rules := l.rules(t, e)
	state := t.TempDir()
	s := startService(t, "--config", rules, "--state.dir", state)
	s.waitFor("ready", func() bool { code, _ := s.get("/-/ready"); return code == 200 })
	_, metrics := s.get("/metrics")
	for _, want := range []string{
		`mitmwatch_target_verdict{target="gosumdb://sum.lab.example",verdict="ok"} 1`,
		`mitmwatch_sumdb_tree_size{target="gosumdb://sum.lab.example"} 200`,
		`mitmwatch_target_verdict{target="ssh://git2.lab.example:22",verdict="intercepted"} 1`,
		`mitmwatch_finding{reason="ssh-host-key-mismatch",severity="critical",target="ssh://git2.lab.example:22"} 1`,
		`mitmwatch_target_verdict{target="ssh://git3.lab.example:22",verdict="blocked"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, grep(metrics, "mitmwatch_"))
		}
	}
	if _, err := os.Stat(filepath.Join(state, "sumdb.json")); err != nil {
		t.Errorf("the tree is not kept in the state directory: %v", err)
	}
}

func TestSelectSSHTargets(t *testing.T) {
	all := []config.Target{
		{Host: "github.com", Port: 443, Source: "rules"},
		{Host: "github.com", Port: 22, Protocol: detector.ProtocolSSH, Source: "rules"},
	}
	for _, c := range []struct {
		names []string
		want  []string
	}{
		{[]string{"github.com"}, []string{"github.com:443 rules", "ssh://github.com:22 rules"}},
		{[]string{"ssh://github.com"}, []string{"ssh://github.com:22 rules"}},
		{[]string{"ssh://GIT.lab.example"}, []string{"ssh://git.lab.example:22 --target"}},
		{[]string{"ssh://git.lab.example:2222"}, []string{"ssh://git.lab.example:2222 --target"}},
		{[]string{"git.lab.example"}, []string{"git.lab.example:443 --target"}},
	} {
		got, err := selectTargets(all, c.names)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, tg := range got {
			keys = append(keys, tg.Key()+" "+tg.Source)
		}
		if strings.Join(keys, ",") != strings.Join(c.want, ",") {
			t.Errorf("selectTargets(%v) = %v, want %v", c.names, keys, c.want)
		}
	}
}

// The checksum database's name is resolved by the round's system
// resolution (check.DNS), in one lookup with a probe of the same host;
// without the system's resolver list (no DNS comparison) it falls back to
// Go's resolver.
func TestChecksumDatabaseDialsThroughTheRound(t *testing.T) {
	dir := t.TempDir()
	resolvConf := filepath.Join(dir, "resolv.conf")
	must(t, os.WriteFile(resolvConf, []byte("nameserver 127.0.0.9\n"), 0o644))
	for _, c := range []struct {
		resolvConf string
		round      bool
	}{
		{resolvConf, true},
		{filepath.Join(dir, "missing"), false},
	} {
		rules := fmt.Sprintf("toolchain: none\ndns:\n  resolv_conf: %s\n  reference_resolvers: []\n  canary: false\n", c.resolvConf)
		cfg, err := config.Parse("rules.yaml", []byte(rules), config.Options{})
		must(t, err)
		var stderr strings.Builder
		e := env{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
		r := withIntegrity(newRunner(cfg, e), cfg, e, "")
		switch {
		case c.round && (r.DNS == nil || r.SumDB.Dialer != r.DNS):
			t.Errorf("%s: the checksum database dials with %v, want the round's DNS %v", c.resolvConf, r.SumDB.Dialer, r.DNS)
		case !c.round && (r.DNS != nil || r.SumDB.Dialer != nil):
			t.Errorf("%s: DNS %v, dialer %v; want neither (Go's resolver)", c.resolvConf, r.DNS, r.SumDB.Dialer)
		}
	}
}
