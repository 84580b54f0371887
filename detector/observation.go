// Package detector decides, from what a probe saw, whether something between
// this machine and a host intercepts, weakens or replaces its TLS.
//
// It is the pure middle of mitmwatch: probes (active or passive) gather an
// Observation, and Classify turns it plus the host's Expectation into
// Findings and one Verdict. Nothing here dials, reads the clock or parses
// configuration files, so every signal can be table-tested and the same
// judgement applies to every source of observations.
package detector

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Failure names why an attempt did not complete, from a fixed vocabulary,
// so that reports, metrics and tests can rely on it instead of parsing error
// strings. The empty Failure means success.
type Failure string

// The failure vocabulary. Names follow the measurement community's habit
// (connection_refused, ssl_unknown_authority) so they read the same in logs.
const (
	FailureNone             Failure = ""
	FailureDNS              Failure = "dns_lookup_error"
	FailureTimeout          Failure = "generic_timeout_error"
	FailureRefused          Failure = "connection_refused"
	FailureReset            Failure = "connection_reset"
	FailureNetUnreachable   Failure = "network_unreachable"
	FailureHostUnreachable  Failure = "host_unreachable"
	FailureEOF              Failure = "eof_error"
	FailureNotTLS           Failure = "ssl_not_tls"
	FailureTLSAlert         Failure = "ssl_alert"
	FailureProtocolVersion  Failure = "ssl_protocol_version"
	FailureDowngrade        Failure = "ssl_downgrade_sentinel"
	FailureUnknownAuthority Failure = "ssl_unknown_authority"
	FailureHostnameMismatch Failure = "ssl_invalid_hostname"
	FailureInvalidCert      Failure = "ssl_invalid_certificate"
	FailureExpired          Failure = "ssl_expired_certificate"
	FailureProxy            Failure = "proxy_connect_error"
	FailureUnknown          Failure = "unknown_failure"
)

// PathKind says how a connection reached the host. The zero value is
// direct, the way most build traffic goes.
type PathKind string

// The path kinds, as the JSON report writes them.
const (
	PathDirect PathKind = "direct"
	PathProxy  PathKind = "proxy" // through an explicit proxy with CONNECT
)

// Path tells how the probe reached the host: directly, or through an
// explicit proxy the build tools would also use.
type Path struct {
	Kind  PathKind `json:"kind"`
	Proxy string   `json:"proxy,omitempty"` // proxy host:port, credentials removed
}

// Proxied reports whether the path went through an explicit proxy, where
// the address, DNS and path timing are the proxy's, not the host's.
func (p Path) Proxied() bool { return p.Kind == PathProxy }

// String renders the path the way the report prints it.
func (p Path) String() string {
	if p.Proxied() {
		return "proxy " + p.Proxy
	}
	return "direct"
}

// Observation is flat data about one attempt to reach one host. It holds
// everything needed to judge later, including a chain that failed to verify:
// that chain is the evidence.
type Observation struct {
	Host string
	Port int
	Path Path
	// Protocol is what the target speaks; SSH and SumDB hold what an SSH
	// probe or a checksum database check saw (integrity.go), nil for TLS.
	Protocol Protocol
	SSH      *SSHState
	SumDB    *SumDBState

	// DNS holds each resolver's answer for Host: the system's (what build
	// tools use) and the reference resolvers'. Canary holds their answers
	// for a name that cannot exist: an address there reveals a resolver
	// that answers everything.
	DNS    []DNSAnswer
	Canary []DNSAnswer

	ResolvedAddrs []netip.Addr // the addresses the connection was attempted to
	ConnectedAddr netip.AddrPort
	ConnectTime   time.Duration
	HandshakeTime time.Duration

	// Failure is set when the main attempt did not complete a TLS handshake.
	Failure       Failure
	FailureDetail string

	TLS   *TLSState   // nil when no handshake completed
	Plain *HTTPAnswer // what answered in clear text, when the port spoke plain HTTP
	// Control is the handshake naming another server that was sent to the
	// same address because the one naming Host got no answer at all; nil
	// when none was needed or there was no time left for one.
	Control *ControlAttempt

	// BestVersion is the highest TLS version the path allowed in a separate
	// attempt offering only TLS 1.3 (0 when that attempt was not made).
	// BestVersionFailure says why TLS 1.3 alone did not work.
	BestVersion        uint16
	BestVersionFailure Failure

	// Trace is what was measured about the path beyond the handshake; nil
	// when nothing was.
	Trace *PathTrace
}

// HostPort renders the target as host:port, an IPv6 literal in brackets
// ("[::1]:443"), the way every report, label and log names it.
func (o Observation) HostPort() string { return net.JoinHostPort(o.Host, strconv.Itoa(o.Port)) }

// DNSAnswer is what one resolver said about one name, A and AAAA together.
type DNSAnswer struct {
	Resolver string        `json:"resolver"`        // as configured, e.g. "udp://192.0.2.53:53"
	System   bool          `json:"system"`          // one of the system's resolvers, which build tools use
	Rcode    string        `json:"rcode,omitempty"` // "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", ...
	Addrs    []netip.Addr  `json:"addresses,omitempty"`
	MinTTL   uint32        `json:"min_ttl"`
	Failure  Failure       `json:"failure,omitempty"` // set when no answer came at all
	Detail   string        `json:"detail,omitempty"`
	Source   DNSSource     `json:"source,omitempty"` // empty for a resolver asked over the network
	RTT      time.Duration `json:"-"`
}

// DNSSource says where an answer came from when no DNS server gave it, so
// that a pinned address is judged as what it is: local configuration, not
// a resolver's word.
type DNSSource string

// The sources of an answer. The zero value is a DNS server.
const (
	SourceDNS DNSSource = ""
	// SourceHosts is the hosts file (/etc/hosts), which the C library and
	// Go consult before DNS where nsswitch.conf says so. Such an answer
	// has no rcode and no TTL.
	SourceHosts DNSSource = "hosts"
)

// Answered reports whether the resolver gave an answer, whatever its
// rcode; a hosts file answers only names it lists.
func (a DNSAnswer) Answered() bool {
	return a.Failure == FailureNone && (a.Rcode != "" || a.Source == SourceHosts)
}

// TLSState is what the handshake negotiated and what the peer presented.
type TLSState struct {
	Version     uint16
	CipherSuite uint16
	ALPN        string
	Chain       []*x509.Certificate // as presented, leaf first
	NameMatch   bool                // the leaf is valid for the host name
	// ChainHidden says the chain could not be seen (a capture of TLS 1.3,
	// which encrypts it): trust is then not judged, rather than judged
	// from an empty chain.
	ChainHidden bool
	Public      Verification // against the public (Mozilla) roots
	System      Verification // against this machine's trust store
}

// Verification is the outcome of verifying the presented chain against one
// trust store. Chains holds the verified chains, up to and including a root.
type Verification struct {
	Failure Failure
	Detail  string
	Chains  [][]*x509.Certificate
	// AtValidTime is the outcome of verifying the same chain at a moment
	// inside every presented certificate's validity; set only when Failure
	// is FailureExpired, so that a wrong clock can be told from a bad
	// chain (see ReasonClockSkew).
	AtValidTime *Verification
}

// OK reports whether the chain verified.
func (v Verification) OK() bool { return v.Failure == FailureNone }

// HTTPAnswer is what a plain-HTTP speaker on the TLS port said.
type HTTPAnswer struct {
	Status       int      `json:"status"`
	Location     string   `json:"location,omitempty"`
	Title        string   `json:"title,omitempty"`
	ProxyHeaders []string `json:"proxy_headers,omitempty"` // headers that name a proxy (Via, X-BlueCoat-Via, ...), as "Name: value"
	BodySnippet  string   `json:"body_snippet,omitempty"`
}

// SPKI is the SHA-256 of a certificate's SubjectPublicKeyInfo: a CA's identity
// that survives a forged, copied subject name.
type SPKI [32]byte

// SPKIOf returns the pin of a certificate.
func SPKIOf(c *x509.Certificate) SPKI { return sha256.Sum256(c.RawSubjectPublicKeyInfo) }

// String renders the pin as base64, the form HPKP and rules.yaml use.
func (s SPKI) String() string { return base64.StdEncoding.EncodeToString(s[:]) }

// Expectation is what a host should look like, from rules.yaml and from a
// baseline learned on a trusted network. Zero fields expect nothing.
type Expectation struct {
	// CASPKI are pins the operator wrote (rules.yaml): any CA above the
	// leaf may match. They are an assertion, so a chain that matches none
	// is intercepted even when the public roots trust it.
	CASPKI     []SPKI
	IPRanges   []netip.Prefix // where the connected address should be
	MinVersion uint16         // lowest acceptable negotiated TLS version
	ALPN       []string       // protocols the host offers; the first is expected
	SCT        bool           // the host's leaf carries embedded SCTs
	// Learned is what a baseline recorded on a trusted network; nil
	// without one. A publicly trusted chain that contradicts it is a
	// rotation until other evidence says interception.
	Learned *Learned
	// SSHHostKeys are the host keys an SSH target may show
	// (expect.ssh_host_key_sha256): the operator's assertion, as CASPKI is.
	SSHHostKeys []SSHFingerprint
	// SumDBMaxAge is how long a checksum database's tree may stay the
	// same size before it looks stale; zero never.
	SumDBMaxAge time.Duration
}

// Learned is what a baseline saw of a host from a network the user
// trusted.
type Learned struct {
	CAs []LearnedCA // every CA above the leaf then
	// SCT says the leaf then carried embedded SCTs; LeafFresh that it was
	// itself minted within a day of learning (the host rotates often, so a
	// fresh leaf is no evidence).
	SCT, LeafFresh bool
	// SSHHostKeys are the host keys an SSH target showed.
	SSHHostKeys []SSHFingerprint
}

// LearnedCA is one CA a baseline saw: its key, and its subject's
// distinguished name (RFC 4514), which a cloned CA copies.
type LearnedCA struct {
	SPKI    SPKI
	Subject string
}

// Policy holds what applies to every host.
type Policy struct {
	// ApprovedInspection lists corporate inspection CAs the organisation
	// approved: interception through them is reported as inspected.
	ApprovedInspection []SPKI
	// Bogons are ranges a public name must not resolve into; nil means
	// DefaultBogons.
	Bogons []netip.Prefix
}
