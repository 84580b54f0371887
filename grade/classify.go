package grade

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"

	"github.com/mitmwatch/mitmwatch/detector"
)

// refusals are the failures by which an interceptor refuses a handshake
// it was offered: it answered, and said no.
var refusals = []detector.Failure{
	detector.FailureTLSAlert, detector.FailureReset, detector.FailureEOF,
	detector.FailureProtocolVersion, detector.FailureNotTLS, detector.FailureProxy,
}

// forgedBy reports whether the interceptor's CA made the chain: a
// certificate in it carries the CA's key or is signed with it. Names are
// ignored on purpose: squid signs what it mimics as untrusted with a CA of
// another name ("Not trusted by ...") and the same key, and a self-signed
// mimic is signed by its own key, which is the CA's.
func forgedBy(chain []*x509.Certificate, ca *x509.Certificate) bool {
	if ca == nil {
		return false
	}
	spki := detector.SPKIOf(ca)
	for _, c := range chain {
		if detector.SPKIOf(c) == spki || ca.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil {
			return true
		}
	}
	return false
}

// intercepts reports whether the attempt shows the interceptor on its
// path: a completed handshake with a chain its CA made.
func (f Found) intercepts(a *Attempt) bool {
	return a != nil && a.Obs.Path == f.Path && a.Obs.TLS != nil && forgedBy(a.Obs.TLS.Chain, f.CA)
}

// upstream judges what reached the client from a test host whose
// certificate is broken (the defect is the check's key). The control says
// whether the interceptor intercepts the test hosts' domain at all:
// without one, a chain that is not the interceptor's cannot be told from a
// domain it lets by.
func (f Found) upstream(p Probe, control *Attempt) Check {
	c := Check{Name: p.Check}
	a := p.Attempt
	controlled := control != nil
	intercepted := f.intercepts(control)
	switch {
	case a == nil:
		c.Result, c.Detail = NotIntercepted, "not probed"
	case a.Obs.Path != f.Path:
		c.Result, c.Detail = NotIntercepted, fmt.Sprintf("the test host is reached by another path (%s), which this interceptor (%s) is not on", a.Obs.Path, f.Path)
	case a.Obs.TLS == nil:
		c.Result, c.Detail = f.failed(a, controlled, intercepted)
	default:
		c.Result, c.Detail = f.completed(a, controlled, intercepted)
	}
	return c
}

// failed judges a test host whose handshake did not complete.
func (f Found) failed(a *Attempt, controlled, intercepted bool) (Result, string) {
	what := failureText(a.Obs)
	if !slices.Contains(refusals, a.Obs.Failure) {
		return NotIntercepted, "could not be reached through the path: " + what
	}
	if controlled && !intercepted {
		return NotIntercepted, "refused (" + what + "), but the control host was not intercepted either: nothing shows the interceptor refused it"
	}
	return Blocked, "the interceptor refused: " + what
}

// completed judges a test host whose handshake completed.
func (f Found) completed(a *Attempt, controlled, intercepted bool) (Result, string) {
	st := a.Obs.TLS
	trusted := st.System.OK() && st.NameMatch
	if !forgedBy(st.Chain, f.CA) {
		issuer := "nothing"
		if len(st.Chain) > 0 {
			issuer = fmt.Sprintf("%q", detector.IssuerName(st))
		}
		switch {
		case trusted:
			return NotIntercepted, fmt.Sprintf("the chain presented (issued by %s) verifies for the host: its certificate is not broken, so it tests nothing", issuer)
		case controlled && intercepted:
			return PassedThrough, fmt.Sprintf("the test host's own chain (issued by %s) came through, so the client sees the defect: %s", issuer, defect(a.Obs))
		case controlled:
			return NotIntercepted, fmt.Sprintf("a chain the interceptor did not make (issued by %s), and the control host was not intercepted either: the interceptor lets this domain by", issuer)
		}
		return NotIntercepted, fmt.Sprintf("a chain the interceptor did not make (issued by %s); without a control host, passing it through cannot be told from a domain it lets by", issuer)
	}
	if !trusted {
		return Mimicked, "the interceptor forged a chain that keeps the defect: " + defect(a.Obs)
	}
	ans := a.Answer
	switch {
	case ans == nil:
		return Blocked, fmt.Sprintf("the interceptor completed the handshake with a forged leaf this machine trusts, then answered nothing (%s)", a.AnswerFailure)
	case ownAnswer(ans):
		return Blocked, fmt.Sprintf("the interceptor completed the handshake with a forged leaf this machine trusts, then answered with its own error: HTTP %d %s", ans.Status, quoteFirst(ans))
	}
	return ReSigned, fmt.Sprintf("the interceptor forged a leaf this machine trusts (issued by %q) for a host whose own certificate is broken, and passed the host's answer through (HTTP %d)",
		detector.IssuerName(st), ans.Status)
}

// ownAnswer reports whether an answer is the interceptor's rather than the
// test host's: a gateway error, a refusal or a block page. The test hosts
// answer their page with 200.
func ownAnswer(a *detector.HTTPAnswer) bool {
	switch {
	case a.Status >= 500, a.Status == 403, a.Status == 407, a.Status == 451:
		return true
	}
	return slices.ContainsFunc(a.ProxyHeaders, func(h string) bool { return strings.HasPrefix(h, "X-Squid-Error:") })
}

// defect says why a client refuses the chain it was presented.
func defect(obs detector.Observation) string {
	st := obs.TLS
	var why []string
	if !st.System.OK() {
		why = append(why, fmt.Sprintf("%s (%s)", st.System.Failure, st.System.Detail))
	}
	if !st.NameMatch {
		names := "no name"
		if len(st.Chain) > 0 {
			names = strings.Join(leafNames(st.Chain[0]), ", ")
		}
		why = append(why, fmt.Sprintf("the leaf is not valid for %s (it names %s)", obs.Host, names))
	}
	if len(why) == 0 {
		return "none"
	}
	return strings.Join(why, "; ")
}

func leafNames(c *x509.Certificate) []string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return names
}

// failureText is a failed attempt's failure and what was said with it.
func failureText(obs detector.Observation) string {
	s := string(obs.Failure)
	if obs.Plain != nil {
		s += fmt.Sprintf(": HTTP %d %s", obs.Plain.Status, quoteFirst(obs.Plain))
	} else if obs.FailureDetail != "" {
		s += ": " + obs.FailureDetail
	}
	return s
}

func quoteFirst(a *detector.HTTPAnswer) string {
	for _, s := range []string{a.Title, a.BodySnippet} {
		if s = strings.TrimSpace(s); s != "" {
			if r := []rune(s); len(r) > 80 {
				s = string(r[:80]) + "…"
			}
			return fmt.Sprintf("%q", s)
		}
	}
	return ""
}

// client judges an offer only an old or weak client makes, sent to a host
// the interceptor intercepts.
func (f Found) client(cc ClientCheck, a *Attempt) Check {
	c := Check{Name: cc.Name}
	switch {
	case a == nil:
		c.Result, c.Detail = Inconclusive, "not probed"
	case a.Obs.Path != f.Path:
		c.Result, c.Detail = Inconclusive, fmt.Sprintf("reached by another path (%s)", a.Obs.Path)
	case a.Obs.TLS == nil && slices.Contains(refusals, a.Obs.Failure):
		c.Result, c.Detail = Refused, fmt.Sprintf("offered %s to %s: %s", cc.What, a.Obs.Host, failureText(a.Obs))
	case a.Obs.TLS == nil:
		c.Result, c.Detail = Inconclusive, fmt.Sprintf("offered %s to %s: no answer: %s", cc.What, a.Obs.Host, failureText(a.Obs))
	case !forgedBy(a.Obs.TLS.Chain, f.CA):
		c.Result, c.Detail = Inconclusive, fmt.Sprintf("offered %s to %s: answered by something other than the interceptor (issued by %q)", cc.What, a.Obs.Host, detector.IssuerName(a.Obs.TLS))
	default:
		c.Result, c.Detail = Accepted, fmt.Sprintf("offered %s to %s: the interceptor negotiated %s with %s", cc.What, a.Obs.Host,
			detector.VersionName(a.Obs.TLS.Version), tls.CipherSuiteName(a.Obs.TLS.CipherSuite))
	}
	return c
}
