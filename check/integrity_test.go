package check_test

import (
	"context"
	"crypto/x509"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/sshprobe"
	"github.com/mitmwatch/mitmwatch/sshprobe/sshtest"
	"github.com/mitmwatch/mitmwatch/sumdb"
	"github.com/mitmwatch/mitmwatch/sumdb/sumdbtest"
)

// TestRoundJudgesSSHAndTheChecksumDatabase: a round probes SSH targets and
// checks the checksum database beside TLS targets, and judges each by its
// own rule.
func TestRoundJudgesSSHAndTheChecksumDatabase(t *testing.T) {
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
	defer genuine.Close()
	interceptor, err := sshtest.NewServer(mitm, "OpenSSH_9.6")
	if err != nil {
		t.Fatal(err)
	}
	defer interceptor.Close()
	log, err := sumdbtest.NewLog("sum.lab.example")
	if err != nil {
		t.Fatal(err)
	}
	log.Add(20, "a")
	db := httptest.NewTLSServer(log)
	defer db.Close()
	roots := x509.NewCertPool()
	roots.AddCert(db.Certificate())

	pins := detector.Expectation{SSHHostKeys: []detector.SSHFingerprint{real.Fingerprint()}}
	sumTarget, ok, err := config.SumDBTarget(config.SumDB{MaxAge: time.Hour}, log.VerifierKey()+" "+db.URL, "direct", "rules.yaml:2")
	if err != nil || !ok {
		t.Fatal(err)
	}
	targets := []config.Target{
		{Host: "git.lab.example", Port: 22, Protocol: detector.ProtocolSSH, Address: genuine.Addr(), Expect: pins},
		{Host: "git2.lab.example", Port: 22, Protocol: detector.ProtocolSSH, Address: interceptor.Addr(), Expect: pins},
		sumTarget,
	}
	r := &check.Runner{Concurrency: 2, Timeout: 5 * time.Second, SSH: &sshprobe.Prober{},
		SumDB: &sumdb.Checker{Roots: roots, Store: &sumdb.Store{Path: t.TempDir() + "/" + sumdb.StateFile}}}
	results := r.Run(context.Background(), targets)
	want := map[string]detector.Verdict{
		"ssh://git.lab.example:22":  detector.OK,
		"ssh://git2.lab.example:22": detector.Intercepted,
		"gosumdb://sum.lab.example": detector.OK,
	}
	for _, res := range results {
		if w := want[res.Obs.Key()]; res.Verdict != w {
			t.Errorf("%s: %s, want %s; findings %+v", res.Obs.Key(), res.Verdict, w, res.Findings)
		}
	}
	if got := check.ExitCode(results); got != check.ExitDetected {
		t.Errorf("exit code %d", got)
	}

	// A runner without the probers observes such targets as not probed.
	results = (&check.Runner{Concurrency: 1, Timeout: time.Second}).Run(context.Background(), targets[:1])
	if results[0].Verdict != detector.Unreachable {
		t.Errorf("no SSH prober: %s", results[0].Verdict)
	}
}
