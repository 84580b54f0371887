package report_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/report"
)

func integrityResults() []detector.Result {
	key := &detector.SSHHostKey{Type: "ssh-ed25519", SHA256: sha256.Sum256([]byte("mitm"))}
	ssh := detector.Observation{Host: "git.lab.example", Port: 22, Protocol: detector.ProtocolSSH,
		SSH: &detector.SSHState{Banner: "SSH-2.0-evil\x1b[2J", HostKey: key}}
	notSSH := detector.Observation{Host: "git2.lab.example", Port: 22, Protocol: detector.ProtocolSSH,
		Failure: detector.FailureNotSSH, FailureDetail: "no SSH identification line",
		SSH: &detector.SSHState{Banner: "220 hi\x1b]0;owned\x07"}}
	tree := &detector.SumDBTree{Size: 300, Hash: sha256.Sum256([]byte("a"))}
	sum := detector.Observation{Host: "sum.lab.example", Port: 443, Protocol: detector.ProtocolSumDB,
		SumDB: &detector.SumDBState{Name: "sum.lab.example", URL: "https://proxy.lab.example/sumdb/sum.lab.example", ViaProxy: true,
			Signature: detector.SignatureVerified, Tree: tree, Consistency: detector.ConsistencyFirst, GrownAt: time.Unix(0, 0)}}
	exp := detector.Expectation{SSHHostKeys: []detector.SSHFingerprint{sha256.Sum256([]byte("real"))}}
	return detector.Judge([]detector.Case{{Obs: ssh, Expect: exp}, {Obs: notSSH}, {Obs: sum}}, detector.Policy{}, time.Unix(0, 0))
}

func TestTableShowsSSHAndTheChecksumDatabase(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := report.Table(&b, integrityResults(), false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"ssh://git.lab.example:22", "intercepted", "ssh-ed25519 SHA256:", "ssh-host-key-mismatch",
		"ssh://git2.lab.example:22", "plaintext", `\x1b]0;owned\x07`,
		"gosumdb://sum.lab.example", "tree 300", "note verified (via module proxy)", "sumdb-tree-first-seen",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("a banner's control characters reached the table:\n%q", out)
	}
}

func TestJSONCarriesSSHAndTheChecksumDatabase(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := report.JSON(&b, integrityResults()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SchemaVersion int `json:"schema_version"`
		Targets       []struct {
			Protocol string `json:"protocol"`
			SSH      *struct {
				Banner  string `json:"banner"`
				HostKey struct {
					Type, SHA256 string
				} `json:"host_key"`
			} `json:"ssh"`
			SumDB *struct {
				Tree struct {
					Size int64  `json:"size"`
					Hash string `json:"hash"`
				} `json:"tree"`
				Consistency string `json:"consistency"`
				ViaProxy    bool   `json:"via_proxy"`
			} `json:"sumdb"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SchemaVersion != report.SchemaVersion || len(doc.Targets) != 3 {
		t.Fatalf("%s", b.String())
	}
	s, n := doc.Targets[0], doc.Targets[2]
	if s.Protocol != "ssh" || s.SSH == nil || s.SSH.Banner != "SSH-2.0-evil\x1b[2J" || !strings.HasPrefix(s.SSH.HostKey.SHA256, "SHA256:") {
		t.Errorf("ssh target: %+v", s)
	}
	if n.Protocol != "gosumdb" || n.SumDB == nil || n.SumDB.Tree.Size != 300 || n.SumDB.Tree.Hash == "" || n.SumDB.Consistency != "first" || !n.SumDB.ViaProxy {
		t.Errorf("sumdb target: %+v", n)
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Error("the JSON carries a raw escape")
	}
}
