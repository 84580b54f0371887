package lab

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"time"
)

// Defect is how a test host's certificate is broken on purpose, the way the
// public test hosts that browser and vendor teams use break theirs. An
// interceptor that checks the real server's certificate must not vouch for
// any of them with its own trusted CA.
type Defect string

// The defects of the test hosts grading uses.
const (
	DefectExpired       Defect = "expired"        // from the public intermediate, expired ten days ago
	DefectSelfSigned    Defect = "self-signed"    // a leaf that signs itself
	DefectUntrustedRoot Defect = "untrusted-root" // from a root no store holds
	DefectWrongHost     Defect = "wrong-host"     // from the public intermediate, for another name
)

// Defects lists every defect, in the order the test hosts are named.
var Defects = []Defect{DefectExpired, DefectSelfSigned, DefectUntrustedRoot, DefectWrongHost}

// WrongHostName is the only name a DefectWrongHost certificate is valid
// for.
const WrongHostName = "unrelated.lab.example"

// Broken issues a certificate for name with the defect d. Everything else
// about it is what a real server presents: the public intermediate's
// leaves keep their SCTs, and the chain carries the issuer when it is not
// a root.
func (p *PKI) Broken(d Defect, name string) (*tls.Certificate, error) {
	switch d {
	case DefectExpired:
		validity := leafValidity
		return p.PublicIntermediate.Issue(LeafOptions{NotBefore: time.Now().Add(-validity - 10*24*time.Hour), Validity: validity}, name)
	case DefectWrongHost:
		return p.PublicIntermediate.Issue(LeafOptions{}, WrongHostName)
	case DefectUntrustedRoot:
		root, err := newRoot(pkix.Name{CommonName: "Lab Untrusted Root", Organization: []string{"Nobody Trusts Me"}})
		if err != nil {
			return nil, fmt.Errorf("lab: broken %s: %w", d, err)
		}
		inter, err := root.newIntermediate(&x509.Certificate{Subject: pkix.Name{CommonName: "Lab Untrusted TLS CA", Organization: []string{"Nobody Trusts Me"}}})
		if err != nil {
			return nil, fmt.Errorf("lab: broken %s: %w", d, err)
		}
		return inter.Issue(LeafOptions{NotBefore: time.Now().Add(-publicBackdate)}, name)
	case DefectSelfSigned:
		return selfSignedLeaf(name)
	}
	return nil, fmt.Errorf("lab: unknown defect %q", d)
}

// selfSignedLeaf makes a server certificate for name that is its own
// issuer, as an appliance's default certificate is.
func selfSignedLeaf(name string) (*tls.Certificate, error) {
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("lab: self-signed %s: %w", name, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("lab: self-signed %s: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             now.Add(-publicBackdate),
		NotAfter:              now.Add(leafValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("lab: self-signed %s: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("lab: self-signed %s: %w", name, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
