package trust

import (
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Names are the fields of a certificate that place it in a store: the
// subject a chain's issuer names, and the key a pin names. They are read
// from the DER without parsing the rest (a root's parse is ~50 µs of
// mostly allocation, and a check meets a few hundred roots to use three),
// byte for byte as crypto/x509 sets RawSubject, RawIssuer and
// RawSubjectPublicKeyInfo.
type Names struct {
	Subject, Issuer, SPKI []byte
}

// RawNames reads a certificate's Names, sharing der. ok is false where
// the DER is not shaped as a certificate up to its key; a DER that
// x509.ParseCertificate accepts always reads (FuzzRawNames).
func RawNames(der []byte) (n Names, ok bool) {
	in := cryptobyte.String(der)
	var cert, tbs cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return Names{}, false
	}
	var issuer, subject, spki cryptobyte.String
	if !tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || // version
		!tbs.SkipASN1(cbasn1.INTEGER) || // serial
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature algorithm
		!tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // validity
		!tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return Names{}, false
	}
	return Names{Subject: subject, Issuer: issuer, SPKI: spki}, true
}
