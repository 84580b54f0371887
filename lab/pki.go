package lab

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// CA is an issuing authority of the lab. PEM is the certificate alone, ready
// to be written to a bundle file.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte

	// public marks the stand-in public intermediate, whose leaves look like
	// those of a Web PKI CA (embedded SCTs, issued weeks ago).
	public bool
}

// PKI holds the authorities the scenarios need: a stand-in for the public
// Web PKI, and the roots interceptors sign with.
type PKI struct {
	// PublicRoot stands in for a root of a public (Mozilla) trust store.
	PublicRoot *CA
	// PublicIntermediate issues the genuine origins' leaves.
	PublicIntermediate *CA
	// EnterpriseRoot is a corporate inspection root, trusted only by the
	// machines of that corporation (see SystemPool).
	EnterpriseRoot *CA
	// ClonedIntermediate has a Subject byte-for-byte equal to
	// PublicIntermediate's but its own key, and is signed by EnterpriseRoot:
	// the interceptor that hides behind a public issuer's name.
	ClonedIntermediate *CA
	// ProductRoot is named like a real product's default CA, so vendor
	// matchers have something to recognise.
	ProductRoot *CA
	// OtherRoot and OtherIntermediate are a second hierarchy with a name
	// of its own: the public CA a host rotates to, when a scenario puts
	// OtherRoot in its public store, or a CA that store carries for
	// someone who should not have one.
	OtherRoot, OtherIntermediate *CA
}

// Validity of the lab's roots and intermediates, relative to NewPKI's clock.
const (
	caBackdate = 365 * 24 * time.Hour
	caLifetime = 5 * 365 * 24 * time.Hour
)

// NewPKI generates a fresh set of authorities. All keys are ECDSA P-256:
// goproxy derives its per-host keys from the CA's key type, and RSA would
// make every interception slow.
func NewPKI() (*PKI, error) {
	var p PKI
	var err error
	if p.PublicRoot, err = newRoot(pkix.Name{CommonName: "Lab Public Root R1", Organization: []string{"Lab Trust Services"}}); err != nil {
		return nil, fmt.Errorf("lab: public root: %w", err)
	}
	inter := &x509.Certificate{Subject: pkix.Name{CommonName: "Lab Public TLS CA 2026", Organization: []string{"Lab Trust Services"}}}
	if p.PublicIntermediate, err = p.PublicRoot.newIntermediate(inter); err != nil {
		return nil, fmt.Errorf("lab: public intermediate: %w", err)
	}
	p.PublicIntermediate.public = true
	if p.EnterpriseRoot, err = newRoot(pkix.Name{CommonName: "Example Corp Inspection Root", Organization: []string{"Example Corp"}}); err != nil {
		return nil, fmt.Errorf("lab: enterprise root: %w", err)
	}
	clone := &x509.Certificate{RawSubject: p.PublicIntermediate.Cert.RawSubject}
	if p.ClonedIntermediate, err = p.EnterpriseRoot.newIntermediate(clone); err != nil {
		return nil, fmt.Errorf("lab: cloned intermediate: %w", err)
	}
	if p.ProductRoot, err = newRoot(pkix.Name{CommonName: "FortiGate CA", Organization: []string{"Fortinet"}}); err != nil {
		return nil, fmt.Errorf("lab: product root: %w", err)
	}
	if p.OtherRoot, err = newRoot(pkix.Name{CommonName: "Lab Other Root G2", Organization: []string{"Other Lab Trust"}}); err != nil {
		return nil, fmt.Errorf("lab: other root: %w", err)
	}
	other := &x509.Certificate{Subject: pkix.Name{CommonName: "Lab Other TLS CA G2", Organization: []string{"Other Lab Trust"}}}
	if p.OtherIntermediate, err = p.OtherRoot.newIntermediate(other); err != nil {
		return nil, fmt.Errorf("lab: other intermediate: %w", err)
	}
	return &p, nil
}

// PublicPool is the trust store of a machine that trusts only the public
// Web PKI.
func (p *PKI) PublicPool() *x509.CertPool {
	return poolOf(p.PublicRoot)
}

// SystemPool is the system store of a corporate machine: the public root
// plus the inspection roots its IT department pushed.
func (p *PKI) SystemPool() *x509.CertPool {
	return poolOf(p.PublicRoot, p.EnterpriseRoot, p.ProductRoot)
}

// PublicPEM is PublicPool as a bundle file, for tools that read SSL_CERT_FILE.
func (p *PKI) PublicPEM() []byte {
	return p.PublicRoot.PEM
}

// SystemPEM is SystemPool as a bundle file.
func (p *PKI) SystemPEM() []byte {
	var b []byte
	for _, ca := range []*CA{p.PublicRoot, p.EnterpriseRoot, p.ProductRoot} {
		b = append(b, ca.PEM...)
	}
	return b
}

func poolOf(cas ...*CA) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca.Cert)
	}
	return pool
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// newSerial returns a positive random 128-bit serial, as CAs must use since
// CA/B Forum ballot 164 (at least 64 bits of entropy).
func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

func newRoot(subject pkix.Name) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := caTemplate()
	tmpl.Subject = subject
	return signCA(tmpl, nil, key)
}

// newIntermediate signs a CA certificate for tmpl's Subject (or RawSubject)
// with ca. Path length 0: it issues leaves only.
func (ca *CA) newIntermediate(tmpl *x509.Certificate) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	t := caTemplate()
	t.Subject, t.RawSubject = tmpl.Subject, tmpl.RawSubject
	t.MaxPathLen, t.MaxPathLenZero = 0, true
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	return signCA(t, ca, key)
}

func caTemplate() *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		NotBefore:             now.Add(-caBackdate),
		NotAfter:              now.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
}

// signCA signs tmpl with parent, or self-signs it when parent is nil.
func signCA(tmpl *x509.Certificate, parent *CA, key *ecdsa.PrivateKey) (*CA, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	issuer, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, signer = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, PEM: pemCert(der)}, nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// selfSigned reports whether ca is a root, whose certificate a server does
// not send.
func (ca *CA) selfSigned() bool {
	return bytes.Equal(ca.Cert.RawIssuer, ca.Cert.RawSubject)
}
