package baseline

import (
	"crypto/sha256"
	"path/filepath"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
)

func TestLearnSSHHostKeys(t *testing.T) {
	t.Parallel()
	key := &detector.SSHHostKey{Type: "ssh-ed25519", SHA256: sha256.Sum256([]byte("real"))}
	other := &detector.SSHHostKey{Type: "ssh-ed25519", SHA256: sha256.Sum256([]byte("mitm"))}
	ssh := func(host string, k *detector.SSHHostKey) detector.Observation {
		return detector.Observation{Host: host, Port: 22, Protocol: detector.ProtocolSSH, SSH: &detector.SSHState{HostKey: k}}
	}
	pinned := detector.Expectation{SSHHostKeys: []detector.SSHFingerprint{key.SHA256}}
	results := detector.Judge([]detector.Case{
		{Obs: ssh("git.lab.example", key)},
		{Obs: ssh("git2.lab.example", other), Expect: pinned},
		{Obs: detector.Observation{Host: "git3.lab.example", Port: 22, Protocol: detector.ProtocolSSH, Failure: detector.FailureRefused, SSH: &detector.SSHState{}}},
		{Obs: detector.Observation{Host: "sum.lab.example", Port: 443, Protocol: detector.ProtocolSumDB,
			SumDB: &detector.SumDBState{Name: "sum.lab.example", Signature: detector.SignatureVerified, Tree: &detector.SumDBTree{Size: 1}, Consistency: detector.ConsistencySame}}},
	}, detector.Policy{}, time.Now())
	b, skipped := Learn(results, time.Now())
	if len(b.Targets) != 1 || len(b.Targets["ssh://git.lab.example:22"].SSHHostKeys) != 1 {
		t.Fatalf("learned %+v", b.Targets)
	}
	if len(skipped) != 2 {
		t.Errorf("skipped %v, want the intercepted and the unreachable SSH targets only", skipped)
	}
	path := filepath.Join(t.TempDir(), "baseline.json")
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	b, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := b.Apply([]config.Target{
		{Host: "git.lab.example", Port: 22, Protocol: detector.ProtocolSSH},
		{Host: "git.lab.example", Port: 443},
	})
	if err != nil {
		t.Fatal(err)
	}
	if l := targets[0].Expect.Learned; l == nil || len(l.SSHHostKeys) != 1 || l.SSHHostKeys[0] != key.SHA256 {
		t.Errorf("SSH target learned %+v", l)
	}
	if targets[1].Expect.Learned != nil {
		t.Errorf("the TLS target on the same host learned %+v", targets[1].Expect.Learned)
	}
	// Judged with the baseline, another key is an interception.
	r := detector.Judge([]detector.Case{{Obs: ssh("git.lab.example", other), Expect: targets[0].Expect}}, detector.Policy{}, time.Now())[0]
	if r.Verdict != detector.Intercepted {
		t.Errorf("another key against the baseline: %s", r.Verdict)
	}
}
