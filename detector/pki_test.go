package detector_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/netip"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/trust"
)

// labNow is the instant every detector test judges at.
var labNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// labAddr is where the lab's hosts live; labRange contains it.
var (
	labAddr  = netip.MustParseAddrPort("142.250.74.17:443")
	labRange = netip.MustParsePrefix("142.250.0.0/15")
)

// oidSCT is the embedded SCT list extension (RFC 6962, section 3.3).
var oidSCT = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// labCA is a certificate authority of the test PKI.
type labCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// labPKI is a small world of real certificates: a stand-in public root with
// two issuing intermediates, a public intermediate that happens to carry an
// interception vendor's name, a generic interception root chosen by an admin
// (squid ssl-bump style), and a Zscaler-named interception root.
type labPKI struct {
	t *testing.T

	publicRoot, publicCA, publicCA2, publicZscalerCA *labCA
	corpRoot, corpCA                                 *labCA
	zRoot, zCA                                       *labCA

	public     *x509.CertPool // the public (Mozilla) store
	system     *x509.CertPool // a machine that installed corpRoot and zRoot
	bareSystem *x509.CertPool // a machine that installed nothing extra
}

func newLabPKI(t *testing.T) *labPKI {
	t.Helper()
	p := &labPKI{t: t}
	p.publicRoot = p.newCA(pkix.Name{CommonName: "Test Public Root R1", Organization: []string{"Test Public Trust Services"}}, nil)
	p.publicCA = p.newCA(pkix.Name{CommonName: "Test Public TLS CA 1", Organization: []string{"Test Public Trust Services"}}, p.publicRoot)
	p.publicCA2 = p.newCA(pkix.Name{CommonName: "Test Public TLS CA 2", Organization: []string{"Other Public Trust Services"}}, p.publicRoot)
	p.publicZscalerCA = p.newCA(pkix.Name{CommonName: "Zscaler Intermediate Root CA (zscaler.net)", Organization: []string{"Zscaler Inc."}}, p.publicRoot)
	p.corpRoot = p.newCA(pkix.Name{CommonName: "Example Corp Inspection Root", Organization: []string{"Example Corp"}}, nil)
	p.corpCA = p.newCA(pkix.Name{CommonName: "Example Corp Inspection Issuing CA", Organization: []string{"Example Corp"}}, p.corpRoot)
	p.zRoot = p.newCA(pkix.Name{CommonName: "Zscaler Root CA", Organization: []string{"Zscaler Inc."}}, nil)
	p.zCA = p.newCA(pkix.Name{CommonName: "Zscaler Intermediate Root CA (zscaler.net)", Organization: []string{"Zscaler Inc."}}, p.zRoot)

	p.public = x509.NewCertPool()
	p.public.AddCert(p.publicRoot.cert)
	p.bareSystem = p.public.Clone()
	p.system = p.public.Clone()
	p.system.AddCert(p.corpRoot.cert)
	p.system.AddCert(p.zRoot.cert)
	return p
}

func (p *labPKI) newKey() *ecdsa.PrivateKey {
	p.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	return k
}

func (p *labPKI) serial() *big.Int {
	p.t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

func (p *labPKI) sign(tmpl *x509.Certificate, parent *labCA, pub *ecdsa.PublicKey, self *ecdsa.PrivateKey) *x509.Certificate {
	p.t.Helper()
	parentCert, signer := tmpl, self
	if parent != nil {
		parentCert, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, pub, signer)
	if err != nil {
		p.t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// newCA makes a root when parent is nil, else an intermediate under parent.
func (p *labPKI) newCA(name pkix.Name, parent *labCA) *labCA {
	p.t.Helper()
	key := p.newKey()
	tmpl := &x509.Certificate{
		SerialNumber:          p.serial(),
		Subject:               name,
		NotBefore:             labNow.AddDate(-5, 0, 0),
		NotAfter:              labNow.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return &labCA{cert: p.sign(tmpl, parent, &key.PublicKey, key), key: key}
}

// leafSpec describes a leaf; zero fields take sensible defaults.
type leafSpec struct {
	names     []string          // DNS SANs; the first is also the CN
	key       *ecdsa.PrivateKey // nil: a fresh key
	notBefore time.Time         // zero: 30 days before labNow
	notAfter  time.Time         // zero: 60 days after labNow
	sct       bool              // embed an SCT list, as public CAs do
}

// leaf issues a server certificate; a nil issuer makes it self-signed.
func (p *labPKI) leaf(iss *labCA, s leafSpec) *x509.Certificate {
	p.t.Helper()
	key := s.key
	if key == nil {
		key = p.newKey()
	}
	if s.notBefore.IsZero() {
		s.notBefore = labNow.AddDate(0, 0, -30)
	}
	if s.notAfter.IsZero() {
		s.notAfter = labNow.AddDate(0, 0, 60)
	}
	tmpl := &x509.Certificate{
		SerialNumber: p.serial(),
		Subject:      pkix.Name{CommonName: s.names[0]},
		DNSNames:     s.names,
		NotBefore:    s.notBefore,
		NotAfter:     s.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if s.sct {
		// The content is not parsed by anyone here; only its presence counts.
		v, err := asn1.Marshal([]byte{0x00, 0x00})
		if err != nil {
			p.t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidSCT, Value: v}}
	}
	return p.sign(tmpl, iss, &key.PublicKey, key)
}

// observe builds what the probe records for a completed TLS 1.3 handshake
// with h2, direct, from an address in labRange: the chain as presented and
// its verification against the public store and the given system store,
// done the probe's way (Chains when it verifies, a Failure when not).
func (p *labPKI) observe(host string, system *x509.CertPool, chain ...*x509.Certificate) detector.Observation {
	st := &detector.TLSState{
		Version:     tls.VersionTLS13,
		CipherSuite: tls.TLS_AES_128_GCM_SHA256,
		ALPN:        "h2",
		Chain:       chain,
	}
	if len(chain) > 0 {
		st.NameMatch = chain[0].VerifyHostname(host) == nil
		st.Public = labVerify(chain, p.public)
		st.System = labVerify(chain, system)
	}
	return detector.Observation{
		Host:          host,
		Port:          443,
		Path:          detector.Path{Kind: detector.PathDirect},
		ResolvedAddrs: []netip.Addr{labAddr.Addr()},
		ConnectedAddr: labAddr,
		TLS:           st,
		BestVersion:   tls.VersionTLS13,
	}
}

// labVerify verifies as probe.Prober does: presented certificates as
// intermediates, server auth, the lab's clock, no host name.
func labVerify(chain []*x509.Certificate, roots *x509.CertPool) detector.Verification {
	return trust.Verify(chain, roots, labNow)
}

// failed is an observation of an attempt that completed no handshake.
func failed(host string, f detector.Failure, detail string) detector.Observation {
	return detector.Observation{Host: host, Port: 443, Path: detector.Path{Kind: detector.PathDirect}, Failure: f, FailureDetail: detail}
}

// viaProxy is an observation of a CONNECT the proxy refused with an answer.
func viaProxy(host string, a *detector.HTTPAnswer) detector.Observation {
	return detector.Observation{
		Host: host, Port: 443,
		Path:          detector.Path{Kind: detector.PathProxy, Proxy: "proxy.corp.example:3128"},
		Failure:       detector.FailureProxy,
		FailureDetail: "proxy refused CONNECT",
		Plain:         a,
	}
}

// spkis pins certificates.
func spkis(cs ...*labCA) []detector.SPKI {
	var out []detector.SPKI
	for _, c := range cs {
		out = append(out, detector.SPKIOf(c.cert))
	}
	return out
}
