package detector

import (
	"encoding/json"
	"fmt"
)

// Severity ranks how much a finding matters on its own.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Warning
	Critical
)

var severityNames = [...]string{"info", "warning", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "unknown"
	}
	return severityNames[s]
}

// MarshalText makes severities read as words in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity back, so saved findings round-trip.
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if n == string(b) {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", b)
}

// Verdict is the one conclusion per target, from a closed set. It is derived
// from findings (see VerdictOf), never stored beside them.
type Verdict string

// The verdicts. Their order of precedence is in verdictRank.
const (
	OK               Verdict = "ok"
	Inspected        Verdict = "inspected"
	Intercepted      Verdict = "intercepted"
	Downgraded       Verdict = "downgraded"
	DNSTampered      Verdict = "dns-tampered"
	TransparentProxy Verdict = "transparent-proxy"
	Plaintext        Verdict = "plaintext"
	CaptivePortal    Verdict = "captive-portal"
	Blocked          Verdict = "blocked"
	InvalidCert      Verdict = "invalid-cert"
	Unreachable      Verdict = "unreachable"
)

// Verdicts lists every verdict, most severe first: when several findings
// point at different verdicts, the earliest wins. A lying resolver comes
// first because it explains whatever TLS then shows; a transparent proxy
// comes after everything TLS shows, and after an approved inspection box,
// which terminates TCP too and so explains the path signals.
var Verdicts = []Verdict{
	DNSTampered, Intercepted, CaptivePortal, Blocked, Plaintext,
	Downgraded, InvalidCert, Inspected, TransparentProxy, Unreachable, OK,
}

func verdictRank(v Verdict) int {
	for i, w := range Verdicts {
		if w == v {
			return i
		}
	}
	return len(Verdicts)
}

// Detected reports whether the verdict means something is in the way, as
// opposed to clean (ok, inspected) or inconclusive (unreachable).
func (v Verdict) Detected() bool {
	return v != OK && v != Inspected && v != Unreachable
}

// Reason names a finding, from a closed set: dashboards, alerts and tests key
// on it.
type Reason string

// The reasons, each with the verdict it implies in reasonVerdict.
const (
	ReasonSystemRootOnly      Reason = "system-root-only"
	ReasonCAPinMismatch       Reason = "ca-pin-mismatch"
	ReasonCAChanged           Reason = "ca-changed"
	ReasonKnownProduct        Reason = "known-interception-product"
	ReasonLeafWithoutSCT      Reason = "leaf-without-sct"
	ReasonLeafKeyReused       Reason = "leaf-key-reused"
	ReasonLeafSignedByRoot    Reason = "leaf-signed-by-root"
	ReasonLeafFresh           Reason = "leaf-freshly-minted"
	ReasonApprovedInspection  Reason = "approved-inspection"
	ReasonUntrustedChain      Reason = "untrusted-chain"
	ReasonCertOtherName       Reason = "certificate-for-other-name"
	ReasonCertInvalid         Reason = "certificate-invalid"
	ReasonVersionBelow        Reason = "tls-version-below-expected"
	ReasonALPNBelow           Reason = "alpn-below-expected"
	ReasonWeakCipher          Reason = "weak-cipher"
	ReasonDowngradeSentinel   Reason = "downgrade-sentinel"
	ReasonPlaintext           Reason = "plaintext-on-tls-port"
	ReasonBlockPage           Reason = "block-page"
	ReasonPortalRedirect      Reason = "captive-portal-redirect"
	ReasonProxyHeaders        Reason = "proxy-headers"
	ReasonAddressOutOfRange   Reason = "address-out-of-range"
	ReasonUnreachable         Reason = "unreachable"
	ReasonDNSDenied           Reason = "dns-denied"
	ReasonDNSServfail         Reason = "dns-servfail"
	ReasonDNSBogon            Reason = "dns-bogon-answer"
	ReasonDNSMismatch         Reason = "dns-answer-off-range"
	ReasonDNSDiffers          Reason = "dns-answers-differ"
	ReasonDNSWildcard         Reason = "dns-wildcard"
	ReasonDNSTTLZero          Reason = "dns-ttl-zero"
	ReasonDNSUnverified       Reason = "dns-unverified"
	ReasonHostsOverride       Reason = "dns-hosts-file-override"
	ReasonHostsBlock          Reason = "dns-hosts-file-block"
	ReasonTCPTerminatedNearby Reason = "tcp-terminated-nearby"
	ReasonTLSAnsweredEarly    Reason = "tls-answered-before-origin"
	ReasonServerTTLChanged    Reason = "server-ttl-changed"
	ReasonCANameCloned        Reason = "ca-name-cloned"
	ReasonCAChangedTogether   Reason = "ca-changed-together"
	ReasonRTTSplit            Reason = "rtt-split"
	ReasonSNIReset            Reason = "sni-reset"   // the hello naming the host reset or closed, a control answered
	ReasonSNIDropped          Reason = "sni-dropped" // the hello naming the host unanswered, a control answered
	ReasonClockSkew           Reason = "clock-skew"
)

// reasonVerdict is the verdict each reason implies; reasons absent here are
// context that does not change the verdict on their own.
var reasonVerdict = map[Reason]Verdict{
	ReasonSystemRootOnly:      Intercepted,
	ReasonCAPinMismatch:       Intercepted,
	ReasonKnownProduct:        Intercepted,
	ReasonLeafKeyReused:       Intercepted,
	ReasonApprovedInspection:  Inspected,
	ReasonUntrustedChain:      InvalidCert,
	ReasonCertInvalid:         InvalidCert,
	ReasonCertOtherName:       CaptivePortal,
	ReasonVersionBelow:        Downgraded,
	ReasonALPNBelow:           Downgraded,
	ReasonWeakCipher:          Downgraded,
	ReasonDowngradeSentinel:   Downgraded,
	ReasonPlaintext:           Plaintext,
	ReasonBlockPage:           Blocked,
	ReasonPortalRedirect:      CaptivePortal,
	ReasonUnreachable:         Unreachable,
	ReasonDNSDenied:           DNSTampered,
	ReasonDNSBogon:            DNSTampered,
	ReasonDNSMismatch:         DNSTampered,
	ReasonDNSWildcard:         DNSTampered,
	ReasonHostsBlock:          Blocked,
	ReasonTCPTerminatedNearby: TransparentProxy,
	ReasonTLSAnsweredEarly:    TransparentProxy,
	ReasonCANameCloned:        Intercepted,
	ReasonSNIReset:            Blocked,
	ReasonSNIDropped:          Blocked,
	// A wrong clock makes every sound chain look invalid: what breaks is
	// the machine's own verification, not the path.
	ReasonClockSkew: InvalidCert,
	// SSH and the checksum database (integrity.go).
	ReasonSSHHostKeyMismatch: Intercepted,
	ReasonSSHPortBlocked:     Blocked,
	ReasonSSHNotSSH:          Plaintext,
	ReasonSumDBSignature:     Intercepted,
	ReasonSumDBForked:        Intercepted,
	ReasonSumDBBlocked:       Blocked,
}

// Reasons lists every reason, for documentation and exhaustive tests.
var Reasons = []Reason{
	ReasonSystemRootOnly, ReasonCAPinMismatch, ReasonCAChanged, ReasonKnownProduct,
	ReasonLeafWithoutSCT, ReasonLeafKeyReused, ReasonLeafSignedByRoot, ReasonLeafFresh,
	ReasonApprovedInspection, ReasonUntrustedChain,
	ReasonCertOtherName, ReasonCertInvalid, ReasonVersionBelow, ReasonALPNBelow,
	ReasonWeakCipher, ReasonDowngradeSentinel, ReasonPlaintext, ReasonBlockPage,
	ReasonPortalRedirect, ReasonProxyHeaders, ReasonAddressOutOfRange, ReasonUnreachable,
	ReasonDNSDenied, ReasonDNSServfail, ReasonDNSBogon, ReasonDNSMismatch, ReasonDNSDiffers,
	ReasonDNSWildcard, ReasonDNSTTLZero, ReasonDNSUnverified, ReasonHostsOverride, ReasonHostsBlock,
	ReasonTCPTerminatedNearby, ReasonTLSAnsweredEarly, ReasonServerTTLChanged,
	ReasonCANameCloned, ReasonCAChangedTogether, ReasonRTTSplit,
	ReasonSNIReset, ReasonSNIDropped,
	ReasonInterceptorAcceptsInvalidUpstream,
	ReasonClockSkew,
	ReasonSSHHostKeyMismatch, ReasonSSHHostKeyUnverified, ReasonSSHPortBlocked, ReasonSSHNotSSH,
	ReasonSumDBSignature, ReasonSumDBForked, ReasonSumDBStale, ReasonSumDBBlocked, ReasonSumDBFirstTree,
}

// Finding is one signal that fired, with the evidence behind it.
type Finding struct {
	Reason   Reason
	Severity Severity
	Detail   string
}

// MarshalJSON keeps the report's stable field names.
func (f Finding) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Reason   Reason   `json:"reason"`
		Severity Severity `json:"severity"`
		Detail   string   `json:"detail"`
	}{f.Reason, f.Severity, f.Detail})
}

// VerdictOf derives the verdict from findings: the most severe verdict any
// finding implies, ok when none implies one.
func VerdictOf(findings []Finding) Verdict {
	best := OK
	for _, f := range findings {
		v, ok := reasonVerdict[f.Reason]
		if ok && verdictRank(v) < verdictRank(best) {
			best = v
		}
	}
	return best
}

// RankAmong orders the verdicts of several observations of one host: Rank's
// order, except that an unfinished observation (unreachable) comes after
// every verdict that says what the host showed.
func RankAmong(v Verdict) int {
	if v == Unreachable {
		return len(Verdicts)
	}
	return verdictRank(v)
}

// PerHost picks one result per host, port and path out of the results of
// many connections (a capture's kinds of connection), in order of first
// appearance: the most severe verdict, so one intercepted connection among
// a hundred clean ones shows, except that an unfinished observation
// (unreachable) counts only when nothing else is known of that host.
func PerHost(results []Result) []Result {
	type key struct {
		host string
		port int
		path Path
	}
	best := map[key]int{}
	var keys []key
	for i, r := range results {
		k := key{r.Obs.Host, r.Obs.Port, r.Obs.Path}
		j, seen := best[k]
		switch {
		case !seen:
			keys = append(keys, k)
			best[k] = i
		case RankAmong(r.Verdict) < RankAmong(results[j].Verdict):
			best[k] = i
		}
	}
	out := make([]Result, len(keys))
	for i, k := range keys {
		out[i] = results[best[k]]
	}
	return out
}
