package detector

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/fingerprints"
)

// oidSCTList marks a leaf's embedded Signed Certificate Timestamps. Public
// CAs embed them because browsers demand Certificate Transparency; a CA that
// lives on a middlebox cannot get its certificates into the logs.
var oidSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// freshWindow is how recently a leaf may have started to be valid before it
// looks minted on the fly for this very connection.
const freshWindow = 24 * time.Hour

// Case is one target to judge: what was seen, what was expected, and where
// the target came from.
type Case struct {
	Obs    Observation
	Expect Expectation
	// Source says where the target came from, so a report can point at
	// the line to edit: "rules.yaml:12", "go env GOPROXY", "pcap".
	Source string
	// Domain is the host's registrable domain (eTLD+1 by the public
	// suffix list): hosts of one domain are one operator's. Empty: the
	// host's last two labels.
	Domain string
}

// Result is the judgement of one target.
type Result struct {
	Obs         Observation
	Source      string // the Case's Source
	Verdict     Verdict
	Product     string // interception product, when it can be named
	Findings    []Finding
	Remediation string
}

// Judge classifies every case, including the signals that only show across
// targets (one leaf key forged for many hosts, one new CA for all of them).
func Judge(cases []Case, pol Policy, now time.Time) []Result {
	all := make([]*Case, len(cases))
	for i := range cases {
		all[i] = &cases[i]
	}
	out := make([]Result, len(cases))
	for i, c := range cases {
		out[i] = judge(c, all, pol, now)
	}
	return out
}

// JudgeAmong classifies one case with the latest cases of the other
// targets as context for the cross-target signals: what a daemon needs after
// probing one target. It only reads others, and a clean chain costs little
// per other target, so the daemon's cost per probe grows slowly with the
// fleet's size.
func JudgeAmong(c Case, others []*Case, pol Policy, now time.Time) Result {
	return judge(c, others, pol, now)
}

// judge applies the evidence rule: each signal's findings, then those
// across targets, then the combinations (corroborate) that turn a
// contradicted public chain into an interception.
func judge(c Case, others []*Case, pol Policy, now time.Time) Result {
	seen := c.Obs
	skew := clockSkew(c, others, now)
	if skew != nil {
		// The clock is the finding; the chain is judged as a right clock
		// would see it, so a forgery still shows as one.
		c.Obs = atValidTime(c.Obs)
	}
	findings, product := Classify(c.Obs, c.Expect, pol, now)
	findings = corroborate(append(findings, acrossTargets(c, others, pol)...))
	if skew != nil {
		findings = append([]Finding{*skew}, findings...)
	}
	c.Obs = seen
	v := VerdictOf(findings)
	return Result{Obs: c.Obs, Source: c.Source, Verdict: v, Product: product, Findings: findings,
		Remediation: Remediation(v, c.Obs, product, findings)}
}

// Classify turns one observation into findings and names the product when
// the chain betrays one. It is pure: now stands in for the clock.
func Classify(obs Observation, exp Expectation, pol Policy, now time.Time) ([]Finding, string) {
	if obs.Protocol != ProtocolTLS {
		return classifyIntegrity(obs, exp, now), ""
	}
	dns := dnsFindings(obs, exp, pol)
	fs, product := classifyTLS(obs, exp, pol, now)
	return append(append(dns, fs...), pathFindings(obs)...), product
}

// classifyTLS judges what the connection showed.
func classifyTLS(obs Observation, exp Expectation, pol Policy, now time.Time) ([]Finding, string) {
	if obs.TLS == nil {
		return classifyFailure(obs), ""
	}
	var fs []Finding
	st := obs.TLS
	var match fingerprints.Match
	if !trusted(st.Public) {
		var named bool
		if match, named = fingerprints.Identify(withRoots(st)); !named {
			// Products whose CA the administrator names (squid, sslsplit)
			// still forge leaves in their own way.
			match, _ = fingerprints.IdentifyChainByBehaviour(st.Chain)
		}
	}
	fs = append(fs, trustFindings(obs, exp, match, now)...)
	if approvedChain(st, pol) {
		fs = approve(fs, st, pol)
	}
	fs = append(fs, downgradeFindings(obs, exp)...)
	if len(exp.IPRanges) > 0 && obs.ConnectedAddr.IsValid() && !obs.Path.Proxied() {
		a := obs.ConnectedAddr.Addr().Unmap()
		if !slices.ContainsFunc(exp.IPRanges, func(p netip.Prefix) bool { return p.Contains(a) }) {
			fs = append(fs, Finding{ReasonAddressOutOfRange, Warning,
				fmt.Sprintf("connected to %s, outside the expected ranges %v", a, exp.IPRanges)})
		}
	}
	return fs, match.Product
}

// trustFindings judges who signed the presented chain.
func trustFindings(obs Observation, exp Expectation, match fingerprints.Match, now time.Time) []Finding {
	st := obs.TLS
	if len(st.Chain) == 0 {
		if st.ChainHidden {
			return nil
		}
		return []Finding{{ReasonUntrustedChain, Critical, "the server presented no certificate"}}
	}
	leaf := st.Chain[0]
	var fs []Finding
	publicOK, systemOK := trusted(st.Public), trusted(st.System)
	top := Root(st)

	if !publicOK && systemOK {
		fs = append(fs, Finding{ReasonSystemRootOnly, Critical,
			fmt.Sprintf("chain verifies against the system store but not the public roots: a locally installed root (%s, SPKI %s) signs it", Describe(top), SPKIOf(top))})
	}
	fs = append(fs, pinFindings(st, exp, publicOK, now)...)
	if match.Product != "" {
		where := "the leaf"
		if match.Cert > 0 {
			where = fmt.Sprintf("CA certificate %d", match.Cert)
		}
		detail := fmt.Sprintf("the chain names %s: %s %s is %q", match.Product, where, match.Field, match.Value)
		if match.Field == "behaviour" {
			detail = fmt.Sprintf("the leaf is forged the way %s forges: %s", match.Product, match.Value)
		}
		fs = append(fs, Finding{ReasonKnownProduct, Critical, detail})
	}
	if !HasSCT(leaf) && (exp.SCT || !publicOK) {
		fs = append(fs, Finding{ReasonLeafWithoutSCT, Warning,
			"the leaf carries no embedded SCTs: it was never logged in Certificate Transparency, as certificates from public CAs are"})
	}
	if !publicOK {
		fs = append(fs, forgeryFindings(st, now, true)...)
	}
	if !st.NameMatch {
		fs = append(fs, Finding{ReasonCertOtherName, Critical,
			fmt.Sprintf("the certificate is for %s, not %s", strings.Join(Names(leaf), ", "), obs.Host)})
	}
	if !publicOK && !systemOK && !hasCritical(fs) {
		f := st.System
		reason := ReasonUntrustedChain
		if f.Failure == FailureExpired || f.Failure == FailureInvalidCert {
			reason = ReasonCertInvalid
		}
		fs = append(fs, Finding{reason, Critical,
			fmt.Sprintf("the chain verifies against neither the public roots nor the system store (%s: %s)", f.Failure, f.Detail)})
	}
	return fs
}

// trusted reports whether a store vouches for the chain's signers; whether
// the leaf names the host is judged apart (NameMatch).
func trusted(v Verification) bool {
	return v.Failure == FailureNone || v.Failure == FailureHostnameMismatch
}

// interceptionEvidence are the reasons that only restate that a CA other
// than the host's signs the chain: with an approved CA they are expected.
var interceptionEvidence = map[Reason]bool{
	ReasonUntrustedChain: true, ReasonCAChanged: true, ReasonLeafWithoutSCT: true,
	ReasonLeafSignedByRoot: true, ReasonLeafFresh: true,
}

// approve replaces the interception findings by one approved-inspection
// finding: the organisation knows this CA and said so in rules.yaml.
func approve(fs []Finding, st *TLSState, pol Policy) []Finding {
	var signals []string
	var out []Finding
	for _, f := range fs {
		if reasonVerdict[f.Reason] == Intercepted || interceptionEvidence[f.Reason] {
			signals = append(signals, string(f.Reason))
			continue
		}
		out = append(out, f)
	}
	ca := approvedCA(st, pol)
	detail := fmt.Sprintf("TLS is terminated by an approved inspection CA (%s, SPKI %s)", Describe(ca), SPKIOf(ca))
	if len(signals) > 0 {
		detail += "; signals: " + strings.Join(signals, ", ")
	}
	return append([]Finding{{ReasonApprovedInspection, Info, detail}}, out...)
}

// downgradeFindings compares what was negotiated with what the host offers.
func downgradeFindings(obs Observation, exp Expectation) []Finding {
	st := obs.TLS
	var fs []Finding
	if exp.MinVersion != 0 && st.Version < exp.MinVersion {
		detail := fmt.Sprintf("negotiated %s, expected at least %s", VersionName(st.Version), VersionName(exp.MinVersion))
		if obs.BestVersionFailure != FailureNone {
			detail += fmt.Sprintf("; offering only TLS 1.3 fails (%s)", obs.BestVersionFailure)
		}
		fs = append(fs, Finding{ReasonVersionBelow, Critical, detail})
	}
	if len(exp.ALPN) > 0 && st.ALPN != exp.ALPN[0] {
		got := st.ALPN
		if got == "" {
			got = "no ALPN"
		}
		fs = append(fs, Finding{ReasonALPNBelow, Warning,
			fmt.Sprintf("negotiated %s while the host offers %s", got, exp.ALPN[0])})
	}
	if weakCipher(st.CipherSuite) {
		fs = append(fs, Finding{ReasonWeakCipher, Warning,
			fmt.Sprintf("negotiated cipher suite %s", tls.CipherSuiteName(st.CipherSuite))})
	}
	return fs
}

func weakCipher(id uint16) bool {
	for _, s := range tls.InsecureCipherSuites() {
		if s.ID == id {
			return true
		}
	}
	return strings.Contains(tls.CipherSuiteName(id), "_CBC_")
}

func hasCritical(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Severity == Critical })
}

// HasSCT reports whether a leaf embeds Signed Certificate Timestamps.
func HasSCT(c *x509.Certificate) bool {
	return slices.ContainsFunc(c.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidSCTList) })
}

// CAs returns the CA certificates that really sign the leaf: those of the
// verified chains, up to their roots (servers rarely send the root), or,
// when no store verified the chain, the presented certificates that sign
// one another upwards from the leaf. A certificate merely appended to the
// chain counts for nothing: anyone can append a copy of an approved or
// pinned CA.
func CAs(st *TLSState) []*x509.Certificate {
	var out []*x509.Certificate
	seen := map[SPKI]bool{}
	add := func(c *x509.Certificate) {
		if k := SPKIOf(c); !seen[k] {
			seen[k] = true
			out = append(out, c)
		}
	}
	for _, v := range []Verification{st.System, st.Public} {
		for _, ch := range v.Chains {
			for _, c := range ch[1:] {
				add(c)
			}
		}
	}
	if len(out) > 0 || len(st.Chain) == 0 {
		return out
	}
	cur := st.Chain[0]
	for range len(st.Chain) {
		next := signerOf(cur, st.Chain[1:])
		if next == nil || seen[SPKIOf(next)] {
			break
		}
		add(next)
		cur = next
	}
	return out
}

// signerOf finds the certificate among candidates whose key signed c.
func signerOf(c *x509.Certificate, candidates []*x509.Certificate) *x509.Certificate {
	for _, p := range candidates {
		if bytes.Equal(p.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(p) == nil {
			return p
		}
	}
	return nil
}

// withRoots is the presented chain plus any roots verification found.
func withRoots(st *TLSState) []*x509.Certificate {
	if len(st.Chain) == 0 {
		return nil
	}
	return append([]*x509.Certificate{st.Chain[0]}, CAs(st)...)
}

func pinned(st *TLSState, pins []SPKI) bool {
	return slices.ContainsFunc(CAs(st), func(c *x509.Certificate) bool { return slices.Contains(pins, SPKIOf(c)) })
}

func approvedCA(st *TLSState, pol Policy) *x509.Certificate {
	if st == nil || len(st.Chain) == 0 {
		return nil
	}
	for _, c := range CAs(st) {
		if slices.Contains(pol.ApprovedInspection, SPKIOf(c)) {
			return c
		}
	}
	return nil
}

func approvedChain(st *TLSState, pol Policy) bool { return approvedCA(st, pol) != nil }

// issuerOf is the certificate that signed the leaf, nil when none is known.
func issuerOf(st *TLSState) *x509.Certificate {
	return signerOf(st.Chain[0], CAs(st))
}

// Root is the anchor of the chain: the root the system store chained to,
// else the one the public roots chained to, else the last presented
// certificate; nil when none was presented. It names who really signs a
// host's traffic, for findings, reports and metrics alike.
func Root(st *TLSState) *x509.Certificate {
	for _, v := range []Verification{st.System, st.Public} {
		if len(v.Chains) > 0 {
			ch := v.Chains[0]
			return ch[len(ch)-1]
		}
	}
	if len(st.Chain) == 0 {
		return nil
	}
	return st.Chain[len(st.Chain)-1]
}

// IssuerName is the name people know the leaf's issuer by: its CN, else
// its first O; empty when neither is set or nothing was presented. It
// comes from a certificate: escape it before printing.
func IssuerName(st *TLSState) string {
	if len(st.Chain) == 0 {
		return ""
	}
	iss := st.Chain[0].Issuer
	if iss.CommonName == "" && len(iss.Organization) > 0 {
		return iss.Organization[0]
	}
	return iss.CommonName
}

func signedByRoot(st *TLSState) bool {
	leaf := st.Chain[0]
	if bytes.Equal(leaf.RawIssuer, leaf.RawSubject) {
		return true
	}
	iss := issuerOf(st)
	return iss != nil && bytes.Equal(iss.RawIssuer, iss.RawSubject)
}

// Names lists what a certificate is valid for, as a person reads it: its
// DNS and IP SANs, else its CN.
func Names(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	if len(out) == 0 && c.Subject.CommonName != "" {
		out = append(out, c.Subject.CommonName)
	}
	if len(out) == 0 {
		out = append(out, "no name at all")
	}
	return out
}

// Describe names a certificate by its subject's CN and O, as people know
// it. It comes from a certificate: escape it before printing.
func Describe(c *x509.Certificate) string {
	if c == nil {
		return "unknown CA"
	}
	var parts []string
	if c.Subject.CommonName != "" {
		parts = append(parts, "CN="+c.Subject.CommonName)
	}
	if len(c.Subject.Organization) > 0 {
		parts = append(parts, "O="+c.Subject.Organization[0])
	}
	if len(parts) == 0 {
		return c.Subject.String()
	}
	return strings.Join(parts, ", ")
}

// VersionName renders a TLS version as people write it ("TLS 1.3").
func VersionName(v uint16) string {
	if v == 0 {
		return "none"
	}
	return tls.VersionName(v)
}
