// Package grade answers the question an approved TLS interception leaves
// open: is the interceptor itself safe? An inspection box that re-signs an
// expired, self-signed or wrong-host certificate with a CA every build agent
// trusts turns any attacker beyond it into a trusted server, and no
// toolchain setting can notice. So when a round finds interception, the
// interceptor (its CA's key and the path) is graded from handshakes made
// through the same path: to test hosts whose certificates are broken on
// purpose, with offers only old clients make, and from the leaves it forged.
//
// Like detector, this package is pure: it never dials and takes the time as
// an argument. Package check makes the handshakes; Grade turns what they
// showed into checks and a grade by the rubric in rubric.go.
package grade

import (
	"crypto/x509"

	"github.com/mitmwatch/mitmwatch/detector"
)

// Result is what one check found, from a closed vocabulary per kind of
// check: reports, metrics and alerts key on it.
type Result string

// What reached the client from a test host whose certificate is broken.
const (
	// Blocked: the interceptor refused: an alert, a reset, a refused
	// CONNECT, or its own error page after a handshake with a forged leaf.
	Blocked Result = "blocked"
	// PassedThrough: the test host's own broken chain, so the client sees
	// the defect, while the control shows the interceptor intercepts that
	// domain.
	PassedThrough Result = "passed-through"
	// Mimicked: a chain the interceptor forged that keeps the defect
	// (expired, for another name, from a CA the client does not trust).
	Mimicked Result = "mimicked"
	// ReSigned: a forged chain the client trusts, and the test host's
	// answer behind it: the failure this package exists for.
	ReSigned Result = "re-signed"
	// NotIntercepted: nothing shows the interceptor handled the test host
	// (another path, a domain it lets by, a host that could not be
	// reached): the grade is incomplete, not a pass.
	NotIntercepted Result = "not-intercepted"
)

// What the interceptor did with a client that offers only old TLS.
const (
	Accepted     Result = "accepted"     // it completed the handshake with its own forged chain
	Refused      Result = "refused"      // an alert, a reset or a closed connection
	Inconclusive Result = "inconclusive" // no answer, or someone else answered
)

// How the interceptor forges leaves.
const (
	Sound Result = "ok"
	Weak  Result = "weak"
)

// Check is one graded property of an interceptor with its evidence. Detail
// quotes certificates and error pages: escape it before printing.
type Check struct {
	Name   string `json:"check"`
	Result Result `json:"result"`
	Detail string `json:"detail"`
}

// UpstreamPrefix starts the name of every upstream check; the rest is the
// test host's key in rules.yaml (grade.test_hosts).
const UpstreamPrefix = "upstream-"

// TestHost is a host whose certificate is broken on purpose (or, for the
// control, is valid), reached through the path being graded. Key names
// the check: "upstream-" + Key.
type TestHost struct {
	Key  string
	Host string
	Port int
}

// Key identifies an interceptor: the key of the CA that signs what it
// forges, and the path it sits on. One CA behind an explicit proxy and a
// transparent box is two interceptors: each is configured on its own.
type Key struct {
	SPKI detector.SPKI
	Path detector.Path
}

// Found is an interceptor as a round's results show it, before grading.
type Found struct {
	Key
	CA       *x509.Certificate // signs its forged leaves (detector.Root of the targets' chains)
	Product  string            // as detector named it; empty when unnamed
	Approved bool              // its CA is in allow.inspection_ca_spki_sha256
	Targets  []string          // "host:port" of the targets behind it
	Leaves   []Leaf            // the leaves it forged for them
}

// Leaf is a leaf an interceptor forged for a host.
type Leaf struct {
	Host string
	Cert *x509.Certificate
}

// Attempt is what one grading handshake through the path showed: the
// observation (the chain verified against both stores) and, when a request
// followed the handshake, who answered it.
type Attempt struct {
	Obs           detector.Observation
	Answer        *detector.HTTPAnswer // the answer to one GET /; nil when none came
	AnswerFailure detector.Failure     // why none came
}

// Probe is one grading handshake made for a check: to a test host for an
// upstream check, to an intercepted host with a restricted offer for a
// client check. A nil Attempt was not made.
type Probe struct {
	Check   string
	Attempt *Attempt
}

// Observed is what the round's grading handshakes showed, for one
// interceptor: they are judged against its CA and path.
type Observed struct {
	Control  *Attempt // the control host; nil when none is configured
	Upstream []Probe  // one per test host, in the order of rules.yaml
	Client   []Probe  // one per ClientChecks entry
}

// Interceptor is a graded interceptor.
type Interceptor struct {
	Found
	Grade  Grade
	Checks []Check
}

// ReSigns reports whether the interceptor vouched for an invalid upstream
// certificate with a trusted forged one: the critical finding.
func (ic Interceptor) ReSigns() bool { return len(ic.ReSigned()) > 0 }

// ReSigned lists the upstream checks whose result is re-signed.
func (ic Interceptor) ReSigned() []Check {
	var out []Check
	for _, c := range ic.Checks {
		if c.Result == ReSigned {
			out = append(out, c)
		}
	}
	return out
}
