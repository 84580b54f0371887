package trust

import (
	"crypto/x509"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// Verify checks a presented chain (leaf first) against one store at a given
// time, for server authentication, keeping the failure as data: a chain
// that does not verify is the evidence, not an error. The host name is
// judged apart, so a store's verdict on the signers stays visible when the
// leaf names another host. A nil pool trusts nothing.
//
// A chain that fails only as expired or not yet valid is verified again at
// a moment inside every presented certificate's validity (AtValidTime), so
// that a wrong clock can be told from a bad chain: x509 reports the time
// before it looks for a trusted root.
func Verify(chain []*x509.Certificate, roots *x509.CertPool, at time.Time) detector.Verification {
	v := verifyAt(chain, roots, at)
	if v.Failure != detector.FailureExpired {
		return v
	}
	if mid, ok := ValidMoment(chain); ok {
		w := verifyAt(chain, roots, mid)
		v.AtValidTime = &w
	}
	return v
}

func verifyAt(chain []*x509.Certificate, roots *x509.CertPool, at time.Time) detector.Verification {
	if len(chain) == 0 {
		return detector.Verification{Failure: detector.FailureInvalidCert, Detail: "no certificate presented"}
	}
	if roots == nil {
		roots = x509.NewCertPool()
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	chains, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return detector.Verification{Failure: detector.FailureOf(err), Detail: err.Error()}
	}
	return detector.Verification{Chains: chains}
}

// ValidMoment is the middle of the time every certificate of chain is
// valid in; false when their validity periods do not overlap.
func ValidMoment(chain []*x509.Certificate) (time.Time, bool) {
	from, until, ok := detector.ValidityOf(chain)
	if !ok {
		return time.Time{}, false
	}
	return from.Add(until.Sub(from) / 2), true
}
