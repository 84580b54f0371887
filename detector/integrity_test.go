package detector_test

import (
	"crypto/sha256"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
)

const (
	sshHost     = "git.lab.example"
	sshFallback = "ssh.git.lab.example:443"
	sumdbName   = "sum.lab.example"
	sumdbURL    = "https://proxy.lab.example/sumdb/sum.lab.example"
	statePath   = "/var/lib/mitmwatch/sumdb.json"
)

// fp is a fingerprint made from a word, for tables.
func fp(word string) detector.SSHFingerprint { return sha256.Sum256([]byte(word)) }

func hostKey(word string) *detector.SSHHostKey {
	return &detector.SSHHostKey{Type: "ssh-ed25519", SHA256: fp(word)}
}

// sshSeen is an SSH probe of sshHost:22 that read key.
func sshSeen(key *detector.SSHHostKey) detector.Observation {
	return detector.Observation{Host: sshHost, Port: 22, Protocol: detector.ProtocolSSH,
		ConnectedAddr: netip.MustParseAddrPort("192.0.2.22:22"),
		SSH:           &detector.SSHState{Banner: "SSH-2.0-OpenSSH_9.6", HostKey: key}}
}

// sshFailed is an SSH probe of sshHost:22 that failed with f, and fb the
// attempt at the fallback endpoint (nil: none).
func sshFailed(f detector.Failure, detail string, fb *detector.SSHFallback) detector.Observation {
	return detector.Observation{Host: sshHost, Port: 22, Protocol: detector.ProtocolSSH,
		Failure: f, FailureDetail: detail, SSH: &detector.SSHState{Fallback: fb}}
}

func fallbackAnswered(key *detector.SSHHostKey) *detector.SSHFallback {
	return &detector.SSHFallback{Endpoint: sshFallback, Banner: "SSH-2.0-OpenSSH_9.6", HostKey: key}
}

func tree(size int64, word string) *detector.SumDBTree {
	return &detector.SumDBTree{Size: size, Hash: sha256.Sum256([]byte(word))}
}

// sumdbSeen is a check that read and verified head against kept with
// consistency c.
func sumdbSeen(head, kept *detector.SumDBTree, c detector.SumDBConsistency, grownAt time.Time) detector.Observation {
	return detector.Observation{Host: sumdbName, Port: 443, Protocol: detector.ProtocolSumDB,
		SumDB: &detector.SumDBState{Name: sumdbName, URL: sumdbURL, ViaProxy: true, ProxyAnswered: true,
			Signature: detector.SignatureVerified, Tree: head, Kept: kept, KeptAt: labNow.Add(-time.Hour),
			Consistency: c, GrownAt: grownAt, StatePath: statePath}}
}

// sumdbUnread is a check that read no head, failing with f.
func sumdbUnread(f detector.Failure, detail string, proxyAnswered bool) detector.Observation {
	return detector.Observation{Host: sumdbName, Port: 443, Protocol: detector.ProtocolSumDB, Failure: f, FailureDetail: detail,
		SumDB: &detector.SumDBState{Name: sumdbName, URL: "https://sum.lab.example", ProxyAnswered: proxyAnswered, StatePath: statePath}}
}

func sumdbForged(sig detector.SumDBSignature, head *detector.SumDBTree, signers ...string) detector.Observation {
	o := sumdbSeen(head, tree(10, "kept"), "", time.Time{})
	o.SumDB.Signature, o.SumDB.SignatureDetail, o.SumDB.Signers = sig, "note has no verifiable signature", signers
	return o
}

// integrityTable: SSH host keys against pins and baselines, the port-22
// block told by its fallback, non-SSH answers; the checksum database's
// signature, consistency, staleness and blocking.
func integrityTable(*labPKI) []classifyCase {
	pinned := detector.Expectation{SSHHostKeys: []detector.SSHFingerprint{fp("rsa"), fp("ed25519")}}
	learned := detector.Expectation{Learned: &detector.Learned{SSHHostKeys: []detector.SSHFingerprint{fp("ed25519")}}}
	maxAge := detector.Expectation{SumDBMaxAge: 24 * time.Hour}
	const refused = "dial tcp 192.0.2.22:22: connect: connection refused"
	R := func(r ...detector.Reason) []detector.Reason { return rs(r...) }
	return []classifyCase{
		{name: "ssh: pinned key", obs: sshSeen(hostKey("ed25519")), exp: pinned, verdict: detector.OK},
		{name: "ssh: key matching no pin", obs: sshSeen(hostKey("mitm")), exp: pinned,
			reasons: R(detector.ReasonSSHHostKeyMismatch), verdict: detector.Intercepted},
		{name: "ssh: learned key", obs: sshSeen(hostKey("ed25519")), exp: learned, verdict: detector.OK},
		{name: "ssh: key the baseline did not learn", obs: sshSeen(hostKey("mitm")), exp: learned,
			reasons: R(detector.ReasonSSHHostKeyMismatch), verdict: detector.Intercepted},
		{name: "ssh: pins decide over a stale baseline", obs: sshSeen(hostKey("rsa")),
			exp:     detector.Expectation{SSHHostKeys: pinned.SSHHostKeys, Learned: learned.Learned},
			verdict: detector.OK},
		{name: "ssh: nothing to compare with", obs: sshSeen(hostKey("ed25519")),
			reasons: R(detector.ReasonSSHHostKeyUnverified), verdict: detector.OK},
		{name: "ssh: port refused, fallback answered with the pinned key",
			obs: sshFailed(detector.FailureRefused, refused, fallbackAnswered(hostKey("ed25519"))), exp: pinned,
			reasons: R(detector.ReasonSSHPortBlocked), verdict: detector.Blocked},
		{name: "ssh: port dropped, fallback answered with another key",
			obs: sshFailed(detector.FailureTimeout, "i/o timeout", fallbackAnswered(hostKey("mitm"))), exp: pinned,
			reasons: R(detector.ReasonSSHPortBlocked, detector.ReasonSSHHostKeyMismatch), verdict: detector.Intercepted},
		{name: "ssh: port refused, fallback refused too",
			obs: sshFailed(detector.FailureRefused, refused, &detector.SSHFallback{Endpoint: sshFallback, Failure: detector.FailureRefused}),
			exp: pinned, reasons: R(detector.ReasonUnreachable), verdict: detector.Unreachable},
		{name: "ssh: port refused, no fallback", obs: sshFailed(detector.FailureRefused, refused, nil), exp: pinned,
			reasons: R(detector.ReasonUnreachable), verdict: detector.Unreachable},
		{name: "ssh: a fallback that is not SSH does not count",
			obs: sshFailed(detector.FailureTimeout, "i/o timeout", &detector.SSHFallback{Endpoint: sshFallback, Banner: "HTTP/1.1 400 Bad Request", Failure: detector.FailureNotSSH}),
			exp: pinned, reasons: R(detector.ReasonUnreachable), verdict: detector.Unreachable},
		{name: "ssh: plain HTTP block page on the port",
			obs: func() detector.Observation {
				o := sshFailed(detector.FailureNotSSH, "no SSH identification line", nil)
				o.SSH.Banner = "HTTP/1.1 403 Forbidden"
				o.Plain = &detector.HTTPAnswer{Status: 403, Title: "Access denied by policy"}
				return o
			}(),
			reasons: R(detector.ReasonBlockPage), verdict: detector.Blocked},
		{name: "ssh: another protocol on the port",
			obs: func() detector.Observation {
				o := sshFailed(detector.FailureNotSSH, "no SSH identification line", nil)
				o.SSH.Banner = "220 mail.lab.example ESMTP\r\n"
				return o
			}(),
			reasons: R(detector.ReasonSSHNotSSH), verdict: detector.Plaintext},

		{name: "sumdb: first tree", obs: sumdbSeen(tree(10, "a"), nil, detector.ConsistencyFirst, labNow), exp: maxAge,
			reasons: R(detector.ReasonSumDBFirstTree), verdict: detector.OK},
		{name: "sumdb: grown and proved", obs: sumdbSeen(tree(20, "b"), tree(10, "a"), detector.ConsistencyExtends, labNow), exp: maxAge,
			verdict: detector.OK},
		{name: "sumdb: the same tree, lately grown", obs: sumdbSeen(tree(10, "a"), tree(10, "a"), detector.ConsistencySame, labNow.Add(-time.Hour)),
			exp: maxAge, verdict: detector.OK},
		{name: "sumdb: the same tree for two days", obs: sumdbSeen(tree(10, "a"), tree(10, "a"), detector.ConsistencySame, labNow.Add(-48*time.Hour)),
			exp: maxAge, reasons: R(detector.ReasonSumDBStale), verdict: detector.OK},
		{name: "sumdb: the same tree for two days, no bound", obs: sumdbSeen(tree(10, "a"), tree(10, "a"), detector.ConsistencySame, labNow.Add(-48*time.Hour)),
			verdict: detector.OK},
		{name: "sumdb: same size, other hash", obs: sumdbSeen(tree(10, "fork"), tree(10, "a"), detector.ConsistencyForked, labNow), exp: maxAge,
			reasons: R(detector.ReasonSumDBForked), verdict: detector.Intercepted},
		{name: "sumdb: smaller tree", obs: sumdbSeen(tree(5, "old"), tree(10, "a"), detector.ConsistencySmaller, labNow), exp: maxAge,
			reasons: R(detector.ReasonSumDBForked), verdict: detector.Intercepted},
		{name: "sumdb: tiles unreadable", obs: sumdbSeen(tree(20, "b"), tree(10, "a"), detector.ConsistencyUnverified, labNow), exp: maxAge,
			reasons: R(detector.ReasonUnreachable), verdict: detector.Unreachable},
		{name: "sumdb: head signed by another key", obs: sumdbForged(detector.SignatureUnknownKey, tree(20, "evil"), "sum.lab.example+deadbeef"),
			reasons: R(detector.ReasonSumDBSignature), verdict: detector.Intercepted},
		{name: "sumdb: head with a bad signature", obs: sumdbForged(detector.SignatureInvalid, tree(20, "evil")),
			reasons: R(detector.ReasonSumDBSignature), verdict: detector.Intercepted},
		{name: "sumdb: a page instead of a head", obs: sumdbForged(detector.SignatureMalformed, nil),
			reasons: R(detector.ReasonSumDBSignature), verdict: detector.Intercepted},
		{name: "sumdb: refused while the proxy answers", obs: sumdbUnread(detector.FailureRefused, "connection refused", true),
			reasons: R(detector.ReasonSumDBBlocked), verdict: detector.Blocked},
		{name: "sumdb: HTTP 403 while the proxy answers",
			obs: func() detector.Observation {
				o := sumdbUnread(detector.FailureHTTPStatus, "GET /latest: 403 Forbidden", true)
				o.Plain = &detector.HTTPAnswer{Status: 403, Title: "Blocked"}
				return o
			}(),
			reasons: R(detector.ReasonSumDBBlocked), verdict: detector.Blocked},
		{name: "sumdb: refused, no proxy answered", obs: sumdbUnread(detector.FailureRefused, "connection refused", false),
			reasons: R(detector.ReasonUnreachable), verdict: detector.Unreachable},
	}
}

func TestClassifyIntegrity(t *testing.T) {
	t.Parallel()
	runClassifyTable(t, integrityTable(nil))
}

// TestIntegrityEvidence: the findings carry what a reader needs to check
// them: fingerprints, endpoints, tree sizes and hashes, the state file.
func TestIntegrityEvidence(t *testing.T) {
	t.Parallel()
	pinned := detector.Expectation{SSHHostKeys: []detector.SSHFingerprint{fp("ed25519")}}
	for _, c := range []struct {
		name string
		obs  detector.Observation
		exp  detector.Expectation
		want []string
	}{
		{"key mismatch", sshSeen(hostKey("mitm")), pinned,
			[]string{sshHost + ":22", fp("mitm").String(), fp("ed25519").String(), "ssh-ed25519", "expect.ssh_host_key_sha256"}},
		{"port blocked", sshFailed(detector.FailureRefused, "connection refused", fallbackAnswered(hostKey("ed25519"))), pinned,
			[]string{"port 22", "connection_refused", sshFallback, `"SSH-2.0-OpenSSH_9.6"`}},
		{"fork", sumdbSeen(tree(10, "fork"), tree(10, "a"), detector.ConsistencyForked, labNow), detector.Expectation{},
			[]string{sumdbURL, tree(10, "fork").HashString(), tree(10, "a").HashString(), "size 10"}},
		{"first", sumdbSeen(tree(10, "a"), nil, detector.ConsistencyFirst, labNow), detector.Expectation{},
			[]string{sumdbName, tree(10, "a").HashString(), statePath}},
		{"forged", sumdbForged(detector.SignatureUnknownKey, tree(20, "evil"), "sum.lab.example+deadbeef"), detector.Expectation{},
			[]string{"unknown-key", "sum.lab.example+deadbeef", "size 20", sumdbURL}},
	} {
		fs, _ := detector.Classify(c.obs, c.exp, detector.Policy{}, labNow)
		var all strings.Builder
		for _, f := range fs {
			all.WriteString(f.Detail + "\n")
		}
		for _, w := range c.want {
			if !strings.Contains(all.String(), w) {
				t.Errorf("%s: findings do not cite %q:\n%s", c.name, w, all.String())
			}
		}
	}
}

// TestIntegrityRemediation: the fixes never turn a protection off, and
// name the way around a blocked port that keeps the key checked.
func TestIntegrityRemediation(t *testing.T) {
	t.Parallel()
	pinned := detector.Expectation{SSHHostKeys: []detector.SSHFingerprint{fp("ed25519")}}
	for _, c := range integrityTable(nil) {
		r := detector.Judge([]detector.Case{{Obs: c.obs, Expect: c.exp}}, detector.Policy{}, labNow)[0]
		if bad := insecureAdvice(r.Remediation); len(bad) > 0 {
			t.Errorf("%s: remediation recommends %q: %q", c.name, bad, r.Remediation)
		}
		if r.Verdict != detector.OK && r.Remediation == "" {
			t.Errorf("%s: %s without a remediation", c.name, r.Verdict)
		}
	}
	r := detector.Judge([]detector.Case{{Obs: sshFailed(detector.FailureRefused, "refused", fallbackAnswered(hostKey("ed25519"))), Expect: pinned}},
		detector.Policy{}, labNow)[0]
	for _, w := range []string{`"Host git.lab.example"`, `"Hostname ssh.git.lab.example"`, `"Port 443"`} {
		if !strings.Contains(r.Remediation, w) {
			t.Errorf("port-blocked remediation lacks %s: %q", w, r.Remediation)
		}
	}
}

func TestSSHFingerprint(t *testing.T) {
	t.Parallel()
	f := fp("ed25519")
	s := f.String()
	if !strings.HasPrefix(s, "SHA256:") || strings.HasSuffix(s, "=") {
		t.Errorf("String() = %q, want SHA256: and unpadded base64", s)
	}
	for _, in := range []string{s, strings.TrimPrefix(s, "SHA256:"), strings.TrimPrefix(s, "SHA256:") + "="} {
		got, err := detector.ParseSSHFingerprint(in)
		if err != nil || got != f {
			t.Errorf("ParseSSHFingerprint(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "SHA256:", "SHA256:AAAA", "MD5:aa:bb", "SHA256:!!!"} {
		if _, err := detector.ParseSSHFingerprint(bad); err == nil {
			t.Errorf("ParseSSHFingerprint(%q) accepted", bad)
		}
	}
}

func TestObservationKey(t *testing.T) {
	t.Parallel()
	got := []string{
		detector.Observation{Host: "github.com", Port: 443}.Key(),
		detector.Observation{Host: "github.com", Port: 22, Protocol: detector.ProtocolSSH}.Key(),
		detector.Observation{Host: "::1", Port: 22, Protocol: detector.ProtocolSSH}.Key(),
		detector.Observation{Host: sumdbName, Port: 443, Protocol: detector.ProtocolSumDB}.Key(),
	}
	want := []string{"github.com:443", "ssh://github.com:22", "ssh://[::1]:22", "gosumdb://" + sumdbName}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Key (-want +got):\n%s", diff)
	}
}
