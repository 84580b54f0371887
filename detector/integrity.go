package detector

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"
)

// This file holds what is judged of two protections builds rely on that
// TLS does not give, and that an interceptor, approved or not, cannot
// forge: the Go checksum database, whose signed tree heads and tiles prove
// that module hashes come from one append-only log, and an SSH server's
// host key, which Git over SSH trusts the way TLS trusts a chain. A middlebox
// can still block either, replay an old tree head, or answer SSH with its
// own key: the signals below name each (ssh.go and sumdb.go judge them).

// Protocol is what a target speaks. The zero value is TLS, which every
// target spoke before SSH and the checksum database were watched, so
// reports and state written then read the same.
type Protocol string

// The protocols a target may speak.
const (
	ProtocolTLS   Protocol = ""
	ProtocolSSH   Protocol = "ssh"
	ProtocolSumDB Protocol = "gosumdb" // a Go checksum database, named as GOSUMDB names it
)

// Failures that only SSH and the checksum database meet.
const (
	// FailureNotSSH: the SSH port answered with something that is not an
	// SSH identification line (plain HTTP, a TLS alert, a banner).
	FailureNotSSH Failure = "ssh_not_ssh"
	// FailureSSHHandshake: an SSH server answered but the key exchange
	// failed before it showed a host key (no common algorithm, say).
	FailureSSHHandshake Failure = "ssh_handshake_error"
	// FailureHTTPStatus: an HTTP server answered with a status other than
	// 200 where the go command needs one.
	FailureHTTPStatus Failure = "http_status_error"
)

// The reasons of this file, each with the verdict it implies in
// reasonVerdict.
const (
	// A host key that matches none of the pins (expect.ssh_host_key_sha256)
	// or the learned keys: the SSH form of a forged certificate.
	ReasonSSHHostKeyMismatch Reason = "ssh-host-key-mismatch"
	// Nothing to compare the host key with: no pin, no baseline. Info,
	// so that no finding does not read as a verified key.
	ReasonSSHHostKeyUnverified Reason = "ssh-host-key-unverified"
	// No SSH answer on the port while the fallback endpoint of the same
	// service (ssh.github.com:443 for github.com:22) answered SSH.
	ReasonSSHPortBlocked Reason = "ssh-port-blocked"
	// Something other than SSH answered the SSH port.
	ReasonSSHNotSSH Reason = "ssh-not-ssh"

	// The checksum database's tree head does not verify with its key.
	ReasonSumDBSignature Reason = "sumdb-signature-invalid"
	// The tree served is not an extension of the one kept from before:
	// the same size with another hash, a smaller tree, or tiles that do
	// not prove the extension. The attack the log exists to expose.
	ReasonSumDBForked Reason = "sumdb-tree-forked"
	// The tree has not grown for longer than expected: a stale cache, or
	// an old head replayed.
	ReasonSumDBStale Reason = "sumdb-tree-stale"
	// The database could not be read while the module proxy answered.
	ReasonSumDBBlocked Reason = "sumdb-blocked"
	// The first tree seen of this database: kept, nothing to compare yet.
	ReasonSumDBFirstTree Reason = "sumdb-tree-first-seen"
)

// SSHFingerprint is the SHA-256 of an SSH public key in its wire form: what
// `ssh-keygen -l` and the hosting services publish as "SHA256:...".
type SSHFingerprint [32]byte

// String renders the fingerprint as OpenSSH does: "SHA256:" and unpadded
// base64.
func (f SSHFingerprint) String() string {
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(f[:])
}

// MarshalText writes the OpenSSH form, so reports and baselines read the
// way people compare fingerprints.
func (f SSHFingerprint) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads a fingerprint back (ParseSSHFingerprint).
func (f *SSHFingerprint) UnmarshalText(b []byte) error {
	v, err := ParseSSHFingerprint(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// ParseSSHFingerprint reads "SHA256:<base64>" as ssh-keygen prints it, or
// the bare base64, padded or not.
func ParseSSHFingerprint(s string) (SSHFingerprint, error) {
	var f SSHFingerprint
	b64 := s
	if len(s) > 7 && s[:7] == "SHA256:" {
		b64 = s[7:]
	}
	for len(b64) > 0 && b64[len(b64)-1] == '=' {
		b64 = b64[:len(b64)-1]
	}
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil {
		return f, fmt.Errorf("fingerprint %q is not base64: %w", s, err)
	}
	if len(raw) != len(f) {
		return f, fmt.Errorf("fingerprint %q is %d bytes (want the 32 bytes of a SHA-256)", s, len(raw))
	}
	copy(f[:], raw)
	return f, nil
}

// SSHHostKey is a host key an SSH server proved it holds in a key exchange.
type SSHHostKey struct {
	Type   string         `json:"type"` // "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"
	SHA256 SSHFingerprint `json:"sha256"`
}

// SSHState is what an SSH server showed before any authentication: its
// identification line and host key. The probe refuses the key once it has
// it, so nothing is ever authenticated or sent.
type SSHState struct {
	// Banner is the server's identification line ("SSH-2.0-..."), or,
	// when the peer is not SSH, the start of what it sent instead. It
	// comes from the network: escape it before printing.
	Banner string `json:"banner,omitempty"`
	// HostKey is nil when no key exchange completed.
	HostKey *SSHHostKey `json:"host_key,omitempty"`
	// Fallback is the same service at its fallback endpoint, tried
	// because this one gave no SSH answer; nil when not tried.
	Fallback *SSHFallback `json:"fallback,omitempty"`
}

// SSHFallback is one attempt at the fallback endpoint of an SSH service
// (ssh.github.com:443 for github.com:22): the control that tells a blocked
// port from a service that is down.
type SSHFallback struct {
	Endpoint string      `json:"endpoint"` // host:port
	Banner   string      `json:"banner,omitempty"`
	HostKey  *SSHHostKey `json:"host_key,omitempty"`
	Failure  Failure     `json:"failure,omitempty"`
	Detail   string      `json:"detail,omitempty"`
}

// Answered reports whether an SSH server answered at the fallback: it
// completed a key exchange and showed its host key.
func (f *SSHFallback) Answered() bool { return f != nil && f.HostKey != nil }

// SumDBTree is a tree head of a transparency log: its size (records) and
// the hash of the whole tree.
type SumDBTree struct {
	Size int64    `json:"size"`
	Hash [32]byte `json:"-"`
}

// HashString renders the tree hash as base64, the form the signed note
// carries.
func (t SumDBTree) HashString() string { return base64.StdEncoding.EncodeToString(t.Hash[:]) }

// String renders the tree as the evidence findings cite.
func (t SumDBTree) String() string {
	return fmt.Sprintf("tree of size %d, hash %s", t.Size, t.HashString())
}

// MarshalJSON writes the hash in base64 beside the size.
func (t SumDBTree) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Size int64  `json:"size"`
		Hash string `json:"hash"`
	}{t.Size, t.HashString()})
}

// SumDBSignature says whether the tree head's note verified with the
// database's key.
type SumDBSignature string

// The outcomes of verifying a tree head. The empty value means no head was
// read.
const (
	SignatureVerified   SumDBSignature = "verified"
	SignatureUnknownKey SumDBSignature = "unknown-key" // signed, but by no key the database is known by
	SignatureInvalid    SumDBSignature = "invalid"     // the database's key, a signature that does not verify
	SignatureMalformed  SumDBSignature = "malformed"   // not a signed note, or not a tree head
)

// SumDBConsistency says how the tree served relates to the tree kept from
// before, as the log's tiles proved it.
type SumDBConsistency string

// The outcomes of comparing a verified tree head with the kept one. The
// empty value means no comparison was made (no verified head).
const (
	ConsistencyFirst      SumDBConsistency = "first"      // nothing was kept: this tree is
	ConsistencySame       SumDBConsistency = "same"       // the kept tree again
	ConsistencyExtends    SumDBConsistency = "extends"    // a larger tree, proved to contain the kept one
	ConsistencyForked     SumDBConsistency = "forked"     // same size, another hash; or a proof that fails
	ConsistencySmaller    SumDBConsistency = "smaller"    // fewer records than the tree kept: a log never shrinks
	ConsistencyUnverified SumDBConsistency = "unverified" // the tiles for the proof could not be read
)

// SumDBState is what one check of a Go checksum database found: which
// route the go command would take to it, the tree head it served, whether
// its signature verified, and how it relates to the tree this machine kept
// from its last check.
type SumDBState struct {
	Name string `json:"name"` // the database's name, from its key
	// URL is where the tree head was read: the module proxy's
	// /sumdb/<name>/ when the proxy supports it, else the database
	// itself (credentials removed). ViaProxy says which.
	URL      string `json:"url"`
	ViaProxy bool   `json:"via_proxy"`
	// ProxyAnswered says a module proxy in GOPROXY answered HTTP: the
	// control that tells a database blocked on the path from a network
	// that is down.
	ProxyAnswered bool `json:"proxy_answered,omitempty"`

	Signature       SumDBSignature `json:"signature,omitempty"`
	SignatureDetail string         `json:"signature_detail,omitempty"`
	// Signers names the keys the note carried signatures by, as
	// "name+hash", when they were not the database's.
	Signers []string `json:"signers,omitempty"`

	Tree *SumDBTree `json:"tree,omitempty"` // the head served, nil when none was read
	// Kept is the tree kept from the last check, and KeptAt when it was
	// verified; nil on the first check.
	Kept   *SumDBTree `json:"kept,omitempty"`
	KeptAt time.Time  `json:"kept_at,omitzero"`

	Consistency       SumDBConsistency `json:"consistency,omitempty"`
	ConsistencyDetail string           `json:"consistency_detail,omitempty"`
	// GrownAt is when this machine first saw a tree of the current size:
	// a log that serves builds grows, so a size that stays for long is a
	// stale cache or a replayed head.
	GrownAt time.Time `json:"grown_at,omitzero"`
	// StatePath is the file the kept tree lives in, so a finding can say
	// what to look at (and remove, once a fork is explained).
	StatePath string `json:"state_path,omitempty"`
}

// Key names the observation's target the way config.Target.Key does:
// "host:port" for TLS, "ssh://host:port" for SSH, "gosumdb://name" for a
// checksum database. Reports, metric labels and logs use it.
func (o Observation) Key() string {
	switch o.Protocol {
	case ProtocolSSH:
		return "ssh://" + o.HostPort()
	case ProtocolSumDB:
		return "gosumdb://" + o.Host
	}
	return net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
}

// classifyIntegrity judges a target that does not speak TLS.
func classifyIntegrity(obs Observation, exp Expectation, now time.Time) []Finding {
	if obs.Protocol == ProtocolSumDB {
		return sumdbFindings(obs, exp, now)
	}
	return sshFindings(obs, exp)
}

// integrityRemediation is the next step for a target that does not speak
// TLS.
func integrityRemediation(v Verdict, obs Observation, findings []Finding) string {
	if obs.Protocol == ProtocolSumDB {
		return sumdbRemediation(v, obs, findings)
	}
	return sshRemediation(v, obs, findings)
}

// Completed reports whether the probe got what its protocol shows: a TLS
// handshake, an SSH host key, a checksum database's tree head (verified or
// not). The daemon counts the probes that did not as failures.
func (o Observation) Completed() bool {
	switch o.Protocol {
	case ProtocolSSH:
		return o.SSH != nil && o.SSH.HostKey != nil
	case ProtocolSumDB:
		return o.SumDB != nil && o.SumDB.Signature != ""
	}
	return o.TLS != nil
}
