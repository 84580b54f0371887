package grade

import (
	"crypto/tls"
	"slices"
	"strings"
)

// Grade is an interceptor's mark, A (validates upstream, modern TLS only,
// sound forged leaves) to F (re-signs an invalid upstream certificate), or
// Incomplete when the test hosts could not show how it validates.
type Grade string

// The grades, best first; Incomplete is no pass.
const (
	A          Grade = "A"
	B          Grade = "B"
	C          Grade = "C"
	D          Grade = "D"
	F          Grade = "F"
	Incomplete Grade = "incomplete"
)

// Grades lists every grade, for metrics (one series each) and tests.
var Grades = []Grade{A, B, C, D, F, Incomplete}

// The checks that do not name a test host.
const (
	CheckTLS10            = "client-tls1.0"
	CheckTLS11            = "client-tls1.1"
	CheckWeakCiphers      = "client-weak-ciphers"
	CheckNoForwardSecrecy = "client-no-forward-secrecy"
	CheckSignature        = "forged-signature"
	CheckKey              = "forged-key"
	CheckValidity         = "forged-validity"
	CheckKeyReuse         = "forged-key-reuse"
)

// ClientCheck is an offer only an old or weak client makes, sent to a host
// the interceptor intercepts: an interceptor that accepts it lets that
// client's TLS end weaker than the host's own.
type ClientCheck struct {
	Name                   string
	What                   string // what was offered, for the detail
	MinVersion, MaxVersion uint16
	CipherSuites           []uint16 // nil: Go's defaults for the versions
}

// ClientChecks are the offers made to every interceptor, at once.
var ClientChecks = []ClientCheck{
	{Name: CheckTLS10, What: "only TLS 1.0", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
	{Name: CheckTLS11, What: "only TLS 1.1", MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11},
	{Name: CheckWeakCiphers, What: "only RC4 and 3DES cipher suites (TLS 1.2)", MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA, tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, tls.TLS_RSA_WITH_RC4_128_SHA,
			tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
		}},
	{Name: CheckNoForwardSecrecy, What: "only RSA key exchange, no forward secrecy (TLS 1.2)", MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA,
		}},
}

// rule is one row of the rubric: a check showing a result caps the grade.
// A check matches by name, or by prefix when the name ends in "-".
type rule struct {
	check  string
	result Result
	cap    Grade
	why    string
}

// rubric is the grading rule as a table a reader can check (README.md
// prints it, see Rows): an interceptor's grade is the lowest cap of the rows its
// checks match, A when none does. Then, short of F, an upstream check that
// says not-intercepted (or no upstream check at all) makes the grade
// Incomplete: F needs one re-signed host, every other grade needs them all.
var rubric = []rule{
	{UpstreamPrefix, ReSigned, F, "re-signs an invalid upstream certificate with a CA the client trusts"},
	{CheckWeakCiphers, Accepted, D, "accepts RC4 or 3DES from the client"},
	{CheckSignature, Weak, D, "signs forged leaves with MD5 or SHA-1"},
	{CheckKey, Weak, D, "forges leaves with RSA keys under 2048 bits or EC keys under 256"},
	{CheckTLS10, Accepted, C, "accepts TLS 1.0 from the client"},
	{CheckTLS11, Accepted, C, "accepts TLS 1.1 from the client"},
	{CheckNoForwardSecrecy, Accepted, B, "accepts a client without forward secrecy (RSA key exchange)"},
	{CheckValidity, Weak, B, "forges leaves valid for longer than any publicly trusted certificate issued then"},
	{CheckKeyReuse, Weak, B, "forges one key for every host"},
}

// Row is a rubric row for documentation: check, result, grade cap, why.
type Row struct {
	Check  string
	Result Result
	Cap    Grade
	Why    string
}

// Rows returns the rubric for documentation.
func Rows() []Row {
	out := make([]Row, len(rubric))
	for i, r := range rubric {
		out[i] = Row{r.check, r.result, r.cap, r.why}
	}
	return out
}

func (r rule) matches(c Check) bool {
	if c.Result != r.result {
		return false
	}
	if strings.HasSuffix(r.check, "-") {
		return strings.HasPrefix(c.Name, r.check)
	}
	return c.Name == r.check
}

// Rate applies the rubric to checks.
func Rate(checks []Check) Grade {
	best := A
	for _, c := range checks {
		for _, r := range rubric {
			if r.matches(c) && rank(r.cap) > rank(best) {
				best = r.cap
			}
		}
	}
	if best == F {
		return F
	}
	upstream := 0
	for _, c := range checks {
		if strings.HasPrefix(c.Name, UpstreamPrefix) {
			upstream++
			if c.Result == NotIntercepted {
				return Incomplete
			}
		}
	}
	if upstream == 0 {
		return Incomplete
	}
	return best
}

// rank orders the letters, A lowest.
func rank(g Grade) int { return slices.Index(Grades, g) }
