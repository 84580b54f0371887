package daemon

import (
	"crypto/x509"
	"html"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/sshprobe"
	"github.com/mitmwatch/mitmwatch/sshprobe/sshtest"
	"github.com/mitmwatch/mitmwatch/sumdb"
	"github.com/mitmwatch/mitmwatch/sumdb/sumdbtest"
)

// TestRunWatchesSSHAndTheChecksumDatabase: the daemon probes SSH targets
// and checks the checksum database on their schedules, exports them, shows
// them on the status page and keeps them across a restart; the checksum
// database's tree lives in the state directory, and a fork served later is
// caught against it.
func TestRunWatchesSSHAndTheChecksumDatabase(t *testing.T) {
	t.Parallel()
	real, err := sshtest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	mitm, _ := sshtest.NewKey()
	genuine, err := sshtest.NewServer(real, "OpenSSH_9.6")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { genuine.Close() })
	interceptor, err := sshtest.NewServer(mitm, "OpenSSH_9.6")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { interceptor.Close() })

	log, err := sumdbtest.NewLog("sum.lab.example")
	if err != nil {
		t.Fatal(err)
	}
	log.Add(100, "base")
	fork := log.Fork()
	log.Add(10, "a")
	fork.Add(10, "f")
	proxy := sumdbtest.NewProxy(log)
	srv := httptest.NewTLSServer(proxy)
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	pins := detector.Expectation{SSHHostKeys: []detector.SSHFingerprint{real.Fingerprint()}}
	sumTarget, _, err := config.SumDBTarget(config.SumDB{MaxAge: time.Hour}, log.VerifierKey(), srv.URL, "test:gosumdb")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Source: "test-rules.yaml", Timeout: 5 * time.Second, Concurrency: 4, Interval: time.Hour,
		Targets: []config.Target{
			{Host: "git.lab.example", Port: 22, Protocol: detector.ProtocolSSH, Address: genuine.Addr(), Expect: pins, Source: "test:ssh"},
			{Host: "git2.lab.example", Port: 22, Protocol: detector.ProtocolSSH, Address: interceptor.Addr(), Expect: pins, Source: "test:ssh2"},
			sumTarget,
		}}
	stateDir := t.TempDir()
	newRunner := func(c *config.Config) *check.Runner {
		return &check.Runner{Concurrency: c.Concurrency, Timeout: c.Timeout, SSH: &sshprobe.Prober{},
			SumDB: &sumdb.Checker{Roots: roots, Store: &sumdb.Store{Path: filepath.Join(stateDir, sumdb.StateFile)}}}
	}
	ld := &loader{}
	ld.set(cfg, nil)
	d, err := New(Options{StateDir: stateDir, Load: ld.load, NewRunner: newRunner, Jitter: func(d time.Duration) time.Duration { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, d)
	waitFor(t, d, 20*time.Second, "the first round", d.Ready)

	for key, want := range map[string]detector.Verdict{
		"ssh://git.lab.example:22":  detector.OK,
		"ssh://git2.lab.example:22": detector.Intercepted,
		"gosumdb://sum.lab.example": detector.OK,
	} {
		r, _ := rec(d, key)
		if r.Verdict != want || r.Failures != 0 {
			t.Errorf("%s: %s with %d failures, want %s: %+v", key, r.Verdict, r.Failures, want, r.Findings)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(exporter.NewCollector(d))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP mitmwatch_sumdb_tree_size Records in the Go checksum database's tree head the last check verified and kept (its signature verified and it extends the tree before); no series otherwise.
# TYPE mitmwatch_sumdb_tree_size gauge
mitmwatch_sumdb_tree_size{target="gosumdb://sum.lab.example"} 110
# HELP mitmwatch_ssh_host_key_info The type of host key the SSH server of a target showed to the last probe (ssh-ed25519, ecdsa-sha2-nistp256, rsa-sha2-512, ...), value always 1. Whether it matched the pins is mitmwatch_finding{reason="ssh-host-key-mismatch"}. No series when no key was read.
# TYPE mitmwatch_ssh_host_key_info gauge
mitmwatch_ssh_host_key_info{key_type="ssh-ed25519",target="ssh://git.lab.example:22"} 1
mitmwatch_ssh_host_key_info{key_type="ssh-ed25519",target="ssh://git2.lab.example:22"} 1
`), "mitmwatch_sumdb_tree_size", "mitmwatch_ssh_host_key_info"); err != nil {
		t.Error(err)
	}
	_, page, _ := get(t, d.Handler(nil), "GET", "/")
	page = html.UnescapeString(page)
	for _, want := range []string{"ssh://git2.lab.example:22", mitm.Fingerprint().String(), "ssh-host-key-mismatch", "gosumdb://sum.lab.example", "tree of size 110, verified"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A restart shows what was known, then the proxy serves a fork of the
	// same size: caught against the tree kept in the state directory.
	proxy.Serve("sum.lab.example", fork)
	d2, err := New(Options{StateDir: stateDir, Load: ld.load, NewRunner: newRunner, Jitter: func(d time.Duration) time.Duration { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := rec(d2, "ssh://git2.lab.example:22"); r.Verdict != detector.Intercepted || r.SSHHostKey != mitm.Fingerprint().String() {
		t.Errorf("restored %+v", r)
	}
	if r, _ := rec(d2, "gosumdb://sum.lab.example"); r.SumDBTree != 110 {
		t.Errorf("restored %+v", r)
	}
	run(t, d2)
	waitFor(t, d2, 20*time.Second, "the fork", verdictIs(d2, "gosumdb://sum.lab.example", detector.Intercepted))
	r, _ := rec(d2, "gosumdb://sum.lab.example")
	if !hasReason(r.Findings, detector.ReasonSumDBForked) || r.SumDBTree != 0 {
		t.Errorf("after the fork: %+v", r)
	}
}
