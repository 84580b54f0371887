//go:build linux

package netlab

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/mitmwatch/mitmwatch/lab"
)

// GradeHost is a test host of grading in the internet namespace: an
// origin whose certificate is broken on purpose, with the defect its key
// in rules.yaml's grade.test_hosts names.
type GradeHost struct {
	Key    string // grade.test_hosts key: the check is "upstream-" + Key
	Name   string
	Defect lab.Defect
}

// GradeHosts stand for the public test hosts (expired, self-signed,
// untrusted root, wrong host) that grading probes through an interceptor.
var GradeHosts = []GradeHost{
	{"expired", "expired.grade.example", lab.DefectExpired},
	{"self-signed", "self-signed.grade.example", lab.DefectSelfSigned},
	{"untrusted-root", "untrusted-root.grade.example", lab.DefectUntrustedRoot},
	{"wrong-host", "wrong-host.grade.example", lab.DefectWrongHost},
}

// ControlHost is grading's control: a host of the test hosts' domain with a
// valid certificate, which shows whether the interceptor intercepts that
// domain at all.
const ControlHost = "control.grade.example"

// gradePrefix holds the test hosts' addresses, inside originPrefix (which
// the router routes to the internet namespace).
var gradePrefix = netip.MustParsePrefix("198.19.1.0/24")

// gradeAddrs maps each test host and the control to its address:
// 198.19.1.(i+1), the control 198.19.1.100.
func gradeAddrs() map[string]netip.Addr {
	out := map[string]netip.Addr{}
	at := func(n byte) netip.Addr {
		a := gradePrefix.Addr().As4()
		a[3] = n
		return netip.AddrFrom4(a)
	}
	for i, g := range GradeHosts {
		out[g.Name] = at(byte(i + 1))
	}
	out[ControlHost] = at(100)
	return out
}

// gradeCerts are the certificates the origins present at the test hosts'
// addresses, whatever the SNI: sslsplit connects upstream without one when
// it cannot read the client's.
func gradeCerts(pki *lab.PKI) (map[netip.Addr]*tls.Certificate, error) {
	addrs := gradeAddrs()
	out := map[netip.Addr]*tls.Certificate{}
	for _, g := range GradeHosts {
		c, err := pki.Broken(g.Defect, g.Name)
		if err != nil {
			return nil, fmt.Errorf("test host %s: %w", g.Name, err)
		}
		out[addrs[g.Name]] = c
	}
	c, err := pki.PublicIntermediate.Issue(lab.LeafOptions{}, ControlHost)
	if err != nil {
		return nil, fmt.Errorf("control %s: %w", ControlHost, err)
	}
	out[addrs[ControlHost]] = c
	return out, nil
}

// GradeHandshakes is how many TLS handshakes the test hosts and the
// control have answered since the lab started: zero when nothing graded.
func (l *Lab) GradeHandshakes() int64 {
	var n int64
	for _, h := range l.origins.hits {
		n += h.Load()
	}
	return n
}

// writeGrade writes rules.yaml's grade section: mode (empty: auto) and the
// lab's test hosts, so that grading never names a host outside the lab.
func writeGrade(b *strings.Builder, mode string) {
	if mode == "" {
		mode = "auto"
	}
	fmt.Fprintf(b, "grade:\n  enabled: %s\n  test_hosts:\n", mode)
	for _, g := range GradeHosts {
		fmt.Fprintf(b, "    %s: %s:443\n", g.Key, g.Name)
	}
	fmt.Fprintf(b, "  control: %s:443\n", ControlHost)
}

// WantGrade is what grading must report of a scenario's interceptor.
type WantGrade struct {
	Grade string
	// Checks maps every check to its result.
	Checks map[string]string
}

// Problems lists how a graded interceptor differs from w; path and
// approved are the scenario's.
func (w WantGrade) Problems(ic InterceptorReport, path string, approved bool, ca string) []string {
	var out []string
	if ic.Grade != w.Grade {
		out = append(out, fmt.Sprintf("grade %s, want %s", ic.Grade, w.Grade))
	}
	if ic.Path != path || ic.Approved != approved || ic.CASPKI != ca {
		out = append(out, fmt.Sprintf("path %s approved %v CA %s, want %s %v %s", ic.Path, ic.Approved, ic.CASPKI, path, approved, ca))
	}
	if len(ic.Targets) != len(Hosts) {
		out = append(out, fmt.Sprintf("%d targets behind it, want %d", len(ic.Targets), len(Hosts)))
	}
	seen := map[string]bool{}
	for _, c := range ic.Checks {
		seen[c.Check] = true
		if want, ok := w.Checks[c.Check]; !ok || want != c.Result {
			out = append(out, fmt.Sprintf("%s: %s, want %q (%s)", c.Check, c.Result, want, c.Detail))
		}
	}
	for c := range w.Checks {
		if !seen[c] {
			out = append(out, c+": missing")
		}
	}
	slices.Sort(out)
	return out
}

// upstream sets the four upstream checks of a grade record.
func upstream(checks map[string]string, expired, selfSigned, untrustedRoot, wrongHost string) map[string]string {
	out := maps.Clone(checks)
	out["upstream-expired"], out["upstream-self-signed"] = expired, selfSigned
	out["upstream-untrusted-root"], out["upstream-wrong-host"] = untrustedRoot, wrongHost
	return out
}

// What each real interceptor does when graded, recorded from the programs
// in this lab (Debian 12: mitmproxy 8.1.1, squid 5.7, sslsplit 0.5.5, all
// on OpenSSL 3.0) and asserted by the scenarios below. README.md has the
// table.
var (
	// mitmproxy verifies the upstream by default: with a broken one it
	// still completes the client's handshake with a forged leaf the client
	// trusts, then answers the request itself: 502 "Certificate verify
	// failed: certificate has expired" (self-signed certificate, unable to
	// get local issuer certificate, hostname mismatch). It refuses TLS 1.0
	// and 1.1 (tls_version_client_min TLS1_2, closing the connection) and
	// RC4 and 3DES, but accepts RSA key exchange; its leaves carry the CA's
	// own RSA 2048 key and live 367 days.
	mitmproxyChecks = map[string]string{
		"client-tls1.0": "refused", "client-tls1.1": "refused",
		"client-weak-ciphers": "refused", "client-no-forward-secrecy": "accepted",
		"forged-signature": "ok", "forged-key": "ok", "forged-validity": "weak", "forged-key-reuse": "weak",
	}
	mitmproxyGrade = WantGrade{Grade: "B", Checks: upstream(mitmproxyChecks, "blocked", "blocked", "blocked", "blocked")}
	// With --set ssl_insecure=true mitmproxy re-signs every one of them
	// and passes the host's answer through.
	mitmproxyInsecureGrade = WantGrade{Grade: "F", Checks: upstream(mitmproxyChecks, "re-signed", "re-signed", "re-signed", "re-signed")}

	// squid ssl-bump as configured here (peek at step 1, then bump)
	// checks the upstream against tls_outgoing_options cafile and, with
	// sslproxy_cert_error's default (deny), bumps the client with a leaf
	// it trusts (for the name asked, valid as long as the CA) and answers
	// 503 ERR_SECURE_CONNECT_FAIL with X-Squid-Error. It refuses TLS 1.0
	// and 1.1 (alert internal error) and RC4 and 3DES, accepts RSA key
	// exchange; its leaves carry the CA's key and copy the host's validity.
	squidChecks = map[string]string{
		"client-tls1.0": "refused", "client-tls1.1": "refused",
		"client-weak-ciphers": "refused", "client-no-forward-secrecy": "accepted",
		"forged-signature": "ok", "forged-key": "ok", "forged-validity": "ok", "forged-key-reuse": "weak",
	}
	squidGrade = WantGrade{Grade: "B", Checks: upstream(squidChecks, "blocked", "blocked", "blocked", "blocked")}
	// With sslproxy_cert_error allow all, squid mimics each error instead:
	// the expired host's dates (signed by the trusted CA), a self-signed
	// leaf for the self-signed host, a leaf from "Not trusted by <CA>" (the
	// CA's key) for the untrusted root, the other name for the wrong host.
	squidAllowGrade = WantGrade{Grade: "B", Checks: upstream(squidChecks, "mimicked", "mimicked", "mimicked", "mimicked")}
	// With tls_outgoing_options flags=DONT_VERIFY_PEER as well, squid no
	// longer sees the self-signed and untrusted-root errors and re-signs
	// those hosts with its trusted CA; the expiry and the other name it
	// still copies into the forged leaf.
	squidNoVerifyGrade = WantGrade{Grade: "F", Checks: upstream(squidChecks, "mimicked", "re-signed", "re-signed", "mimicked")}

	// sslsplit verifies nothing upstream by default (VerifyPeer no) and
	// re-signs everything, adding the SNI name to a leaf for another one.
	// It accepts TLS 1.0 and 1.1 and RSA key exchange; one RSA key serves
	// every host's leaf, each valid for 365 days.
	sslsplitGrade = WantGrade{Grade: "F", Checks: upstream(map[string]string{
		"client-tls1.0": "accepted", "client-tls1.1": "accepted",
		"client-weak-ciphers": "refused", "client-no-forward-secrecy": "accepted",
		"forged-signature": "ok", "forged-key": "ok", "forged-validity": "weak", "forged-key-reuse": "weak",
	}, "re-signed", "re-signed", "re-signed", "re-signed")}
)

// gradeScenarios are the interceptors configured to check less than their
// defaults, each approved: grading must fail the ones that re-sign (exit 1
// although the CA is approved) and pass the one that mimics.
var gradeScenarios = slices.Concat(
	intercepting("mitmproxy-insecure-transparent", "transparent mitmdump with --set ssl_insecure=true",
		func(l *Lab) (*Interceptor, error) { return l.StartMitmproxy(true, "ssl_insecure=true") },
		Want{Product: "mitmproxy", Path: "direct", Behaviour: "mitmproxy", Grade: &mitmproxyInsecureGrade})[1:],
	intercepting("mitmproxy-insecure-explicit", "mitmdump --mode regular with --set ssl_insecure=true as the client's HTTPS_PROXY",
		func(l *Lab) (*Interceptor, error) { return l.StartMitmproxy(false, "ssl_insecure=true") },
		Want{Product: "mitmproxy", Path: "proxy", Behaviour: "mitmproxy", Grade: &mitmproxyInsecureGrade})[1:],
	intercepting("squid-allow-explicit", "squid ssl-bump with sslproxy_cert_error allow all as the client's HTTPS_PROXY",
		func(l *Lab) (*Interceptor, error) { return l.StartSquid(false, squidAllow) },
		Want{Product: "squid", Path: "proxy", Behaviour: "squid", Grade: &squidAllowGrade})[1:],
	intercepting("squid-noverify-transparent", "squid ssl-bump with sslproxy_cert_error allow all and DONT_VERIFY_PEER behind an nftables redirect",
		func(l *Lab) (*Interceptor, error) { return l.StartSquid(true, squidAllow, squidNoVerify) },
		Want{Product: "squid", Path: "direct", Behaviour: "squid", Grade: &squidNoVerifyGrade})[1:],
	intercepting("squid-noverify-explicit", "squid ssl-bump with sslproxy_cert_error allow all and DONT_VERIFY_PEER as the client's HTTPS_PROXY",
		func(l *Lab) (*Interceptor, error) { return l.StartSquid(false, squidAllow, squidNoVerify) },
		Want{Product: "squid", Path: "proxy", Behaviour: "squid", Grade: &squidNoVerifyGrade})[1:],
)

// The squid.conf lines that make squid check less.
const (
	squidAllow    = "sslproxy_cert_error allow all"
	squidNoVerify = "tls_outgoing_options flags=DONT_VERIFY_PEER"
)

// GradeProblems lists how the report's grading differs from want.Grade:
// with none, nothing may be graded and no test host may have seen a
// handshake; with one, every check's result, and the critical finding on
// every target exactly when the grade is F.
func (w Want) GradeProblems(l *Lab, r *Report) []string {
	if w.Grade == nil {
		if len(r.Interceptors) > 0 || l.GradeHandshakes() > 0 {
			return []string{fmt.Sprintf("nothing intercepts, yet %d interceptors graded and %d handshakes with the test hosts", len(r.Interceptors), l.GradeHandshakes())}
		}
		return nil
	}
	if len(r.Interceptors) != 1 {
		return []string{fmt.Sprintf("%d interceptors graded, want 1: %+v", len(r.Interceptors), r.Interceptors)}
	}
	out := w.Grade.Problems(r.Interceptors[0], w.Path, w.Verdict == "inspected", SPKI(l.Interceptor.CA))
	for _, tg := range r.Targets {
		if got := slices.Contains(tg.Reasons(), "interceptor-accepts-invalid-upstream"); got != (w.Grade.Grade == "F") {
			out = append(out, fmt.Sprintf("%s: finding interceptor-accepts-invalid-upstream %v with grade %s", tg.Host, got, w.Grade.Grade))
		}
	}
	return out
}
