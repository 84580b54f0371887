package probe

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"testing"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

// brokenOrigin serves, for every name, a certificate with the defect.
func brokenOrigin(t *testing.T, pki *lab.PKI, d lab.Defect) *lab.Origin {
	t.Helper()
	o, err := lab.NewOrigin(pki, lab.OriginOptions{Leaf: func(name string) (*tls.Certificate, error) { return pki.Broken(d, name) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// TestExchangeRequest: the chain is kept and verified even when broken,
// and the answer to the request is read over the same connection.
func TestExchangeRequest(t *testing.T) {
	t.Parallel()
	l := newLab(t, lab.OriginOptions{})
	broken := brokenOrigin(t, l.pki, lab.DefectExpired)
	x := l.prober().Exchange(ctxT(t), Target{Host: "expired.grade.example", Port: 443, Address: broken.Addr()}, Offer{Request: true})
	if x.Obs.Failure != detector.FailureNone || x.Obs.TLS == nil {
		t.Fatalf("failure %s: %s", x.Obs.Failure, x.Obs.FailureDetail)
	}
	st := x.Obs.TLS
	if st.System.Failure != detector.FailureExpired || !st.NameMatch || st.ALPN != "http/1.1" || len(st.Chain) != 2 {
		t.Errorf("system %s, name %v, alpn %q, chain %d certs", st.System.Failure, st.NameMatch, st.ALPN, len(st.Chain))
	}
	if x.Answer == nil || x.Answer.Status != 200 || x.AnswerFailure != detector.FailureNone {
		t.Errorf("answer %+v, failure %s", x.Answer, x.AnswerFailure)
	}
	// Without Request nothing is sent after the handshake.
	x = l.prober().Exchange(ctxT(t), Target{Host: "github.com", Port: 443, Address: l.origin.Addr()}, Offer{})
	if x.Obs.TLS == nil || !x.Obs.TLS.System.OK() || x.Answer != nil {
		t.Errorf("plain handshake: %+v, answer %+v", x.Obs, x.Answer)
	}
}

// TestExchangeOffers: a modern server refuses what only old clients
// offer, and one that allows them shows what was negotiated.
func TestExchangeOffers(t *testing.T) {
	t.Parallel()
	modern := newLab(t, lab.OriginOptions{})
	old := newLab(t, lab.OriginOptions{MinVersion: tls.VersionTLS10})
	for _, c := range []struct {
		name    string
		origin  *lab.Origin
		offer   Offer
		failure detector.Failure
		version uint16
	}{
		{"TLS 1.0 to a modern server", modern.origin, Offer{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, detector.FailureProtocolVersion, 0},
		{"TLS 1.0 to an old one", old.origin, Offer{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, detector.FailureNone, tls.VersionTLS10},
		{"RC4 only", modern.origin, Offer{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA}}, detector.FailureTLSAlert, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := modern.prober().Exchange(ctxT(t), Target{Host: "github.com", Port: 443, Address: c.origin.Addr()}, c.offer)
			if x.Obs.Failure != c.failure {
				t.Errorf("failure %s (%s), want %s", x.Obs.Failure, x.Obs.FailureDetail, c.failure)
			}
			if c.version != 0 && (x.Obs.TLS == nil || x.Obs.TLS.Version != c.version) {
				t.Errorf("TLS state %+v, want version %x", x.Obs.TLS, c.version)
			}
		})
	}
}

// TestExchangeThroughProxy: through an explicit proxy (a real third-party
// interceptor that checks the upstream's certificate), the path is the
// proxy's and the leaf the interceptor's; the request gets no answer from
// the host (goproxy closes the connection when the upstream fails).
func TestExchangeThroughProxy(t *testing.T) {
	t.Parallel()
	l := newLab(t, lab.OriginOptions{})
	broken := brokenOrigin(t, l.pki, lab.DefectSelfSigned)
	ic, err := lab.NewInterceptor(l.pki, lab.InterceptorOptions{Routes: lab.Routes{"self-signed.grade.example": broken.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ic.Close() })
	p := l.prober()
	p.Proxy = func(*url.URL) (*url.URL, error) { return ic.URL(), nil }
	x := p.Exchange(ctxT(t), Target{Host: "self-signed.grade.example", Port: 443}, Offer{Request: true})
	if x.Obs.Path.Kind != detector.PathProxy || x.Obs.TLS == nil {
		t.Fatalf("path %v, failure %s: %s", x.Obs.Path, x.Obs.Failure, x.Obs.FailureDetail)
	}
	if root := detector.Root(x.Obs.TLS); root == nil || !root.Equal(l.pki.EnterpriseRoot.Cert) {
		t.Errorf("chain anchored at %v, want the interceptor's root", subject(root))
	}
	if x.Answer != nil && x.Answer.Status < 500 || x.Answer == nil && x.AnswerFailure == detector.FailureNone {
		t.Errorf("answer %+v (%s), want none or the interceptor's gateway error", x.Answer, x.AnswerFailure)
	}
}

func subject(c *x509.Certificate) string {
	if c == nil {
		return "nothing"
	}
	return c.Subject.String()
}
