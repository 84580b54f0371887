package lab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// LeafOptions shape a leaf so that it looks like the product of a given kind
// of issuer: a public CA (backdated, with SCTs) or an interceptor minting on
// the fly (fresh, no SCTs, one key for every host).
type LeafOptions struct {
	// NotBefore defaults to 30 days ago for PublicIntermediate (a leaf in
	// mid-life) and to one minute ago for any other CA (freshly minted).
	NotBefore time.Time
	// Validity defaults to 90 days.
	Validity time.Duration
	// SCT embeds a SignedCertificateTimestampList with one fake SCT.
	// PublicIntermediate's leaves always carry one unless NoSCT is set,
	// because browsers refuse public leaves without.
	SCT bool
	// NoSCT leaves the SCT out even for PublicIntermediate.
	NoSCT bool
	// Key is the leaf's key; nil generates a fresh P-256 key. Cheap
	// interceptors reuse one key for every host.
	Key crypto.Signer
}

// Defaults for LeafOptions.
const (
	publicBackdate = 30 * 24 * time.Hour
	mintBackdate   = time.Minute
	leafValidity   = 90 * 24 * time.Hour
)

// oidSCTList is the X.509v3 extension of RFC 6962 section 3.3.
var oidSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// Issue makes a server leaf for the DNS names (or IP literals) signed by ca.
// The chain holds the leaf and, unless ca is a root, ca's certificate: what a
// real server sends.
func (ca *CA) Issue(opts LeafOptions, names ...string) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, errors.New("lab: issue: no names")
	}
	key := opts.Key
	if key == nil {
		k, err := newKey()
		if err != nil {
			return nil, fmt.Errorf("lab: issue %s: %w", names[0], err)
		}
		key = k
	}
	notBefore := opts.NotBefore
	if notBefore.IsZero() {
		back := mintBackdate
		if ca.public {
			back = publicBackdate
		}
		notBefore = time.Now().Add(-back)
	}
	validity := opts.Validity
	if validity == 0 {
		validity = leafValidity
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("lab: issue %s: %w", names[0], err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0]},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if opts.SCT || (ca.public && !opts.NoSCT) {
		ext, err := fakeSCTExtension(notBefore)
		if err != nil {
			return nil, fmt.Errorf("lab: issue %s: sct: %w", names[0], err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ext)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("lab: issue %s: %w", names[0], err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("lab: issue %s: %w", names[0], err)
	}
	chain := [][]byte{der}
	if !ca.selfSigned() {
		chain = append(chain, ca.Cert.Raw)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// fakeSCTExtension builds the SCT-list extension with one v1 SCT from a
// throwaway log: syntactically what a public CA embeds, but the signature
// covers nothing a CT verifier would accept.
func fakeSCTExtension(issued time.Time) (pkix.Extension, error) {
	logKey, err := newKey()
	if err != nil {
		return pkix.Extension{}, err
	}
	spki, err := x509.MarshalPKIXPublicKey(logKey.Public())
	if err != nil {
		return pkix.Extension{}, err
	}
	logID := sha256.Sum256(spki)
	digest := sha256.Sum256(logID[:])
	sig, err := ecdsa.SignASN1(rand.Reader, logKey, digest[:])
	if err != nil {
		return pkix.Extension{}, err
	}
	var sct []byte
	sct = append(sct, 0) // version v1
	sct = append(sct, logID[:]...)
	sct = binary.BigEndian.AppendUint64(sct, uint64(issued.UnixMilli()))
	sct = binary.BigEndian.AppendUint16(sct, 0) // no CT extensions
	sct = append(sct, 4, 3)                     // sha256, ecdsa
	sct = binary.BigEndian.AppendUint16(sct, uint16(len(sig)))
	sct = append(sct, sig...)

	var list []byte
	list = binary.BigEndian.AppendUint16(list, uint16(2+len(sct)))
	list = binary.BigEndian.AppendUint16(list, uint16(len(sct)))
	list = append(list, sct...)

	// The TLS-encoded list travels inside an OCTET STRING, itself the
	// extension's extnValue.
	value, err := asn1.Marshal(list)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidSCTList, Value: value}, nil
}
