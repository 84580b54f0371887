package fingerprints

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Some interceptors let the administrator name their CA (squid ssl-bump,
// sslsplit), and any of them can be given a CA with a borrowed name, so the
// issuer says nothing. How they forge leaves does: each product builds its
// certificates its own way, and that survives any CA name. The habits
// below were recorded from the real programs in the network-namespace lab
// (package netlab; captures in testdata/forged/, regenerated as root with
// `go test ./netlab -run TestScenarios -netlab.fixtures`):
//
//	product                 leaf key             extensions of the leaf (in order)       validity              chain presented
//	mitmproxy 8.1.1         the CA's own key     EKU, SAN only: no basic constraints      now-2d .. now+365d    leaf only
//	squid 5.7 ssl-bump      the CA's own key     SAN, KU!, EKU, BC!, AKI (keyid): no SKI  copied from the host  leaf, CA, CA again
//	sslsplit 0.5.5          one key, every host  SKI, AKI (keyid+issuer+serial), BC!,     now-1d .. now+364d    leaf, CA
//	                                             KU, EKU, SAN
//
// (! marks a critical extension.) Other habits worth knowing, too weak or
// too setup-bound to name a product on:
//   - mitmproxy and squid copy the host's subject CN and SANs; mitmproxy
//     writes a subject of CN alone, squid copies the whole subject.
//   - squid's serial is a SHA-1 digest of the certificate's properties
//     (160 bits), so a host gets the same serial every time; mitmproxy's
//     is random (159 bits); sslsplit's is the host's serial plus a random
//     offset. None of them copies the host's embedded SCTs.
//   - sslsplit cannot read the SNI of a ClientHello split over two TCP
//     segments, as a post-quantum key share (Go 1.24+, recent browsers)
//     makes it: it then connects upstream without SNI, forges from the
//     certificate the server gives SNI-less clients (in the lab, one for
//     the server's IP address, so the leaf's CN is an IP) and adds the
//     client's SNI to the SANs once its own handshake has learnt it.
//
// Public CAs do not forge this way: the Baseline Requirements forbid a CA
// key in a leaf and an authority key identifier naming the issuer and
// serial. Still, like Identify, this only names a product; whether a chain
// is intercepted is for the strong signals to say.

// behaviour is one product's forging habit, as a test on a presented chain
// (leaf first; the CA, when known, after it).
type behaviour struct {
	product string
	what    string // the evidence, for Match.Value
	matches func(leaf *x509.Certificate) bool
}

// behaviours are tried in order; each needs every one of its habits.
var behaviours = []behaviour{
	{"squid", "the leaf's key is its CA's own key; basic constraints without a subject key identifier (squid ssl-bump)",
		func(leaf *x509.Certificate) bool {
			return signedWithOwnKey(leaf) && leaf.BasicConstraintsValid && len(leaf.SubjectKeyId) == 0
		}},
	{"mitmproxy", "the leaf's key is its CA's own key; no basic constraints; valid from 2 days before for 367 days (mitmproxy)",
		func(leaf *x509.Certificate) bool {
			return signedWithOwnKey(leaf) && !leaf.BasicConstraintsValid && len(leaf.SubjectKeyId) == 0 &&
				leaf.NotAfter.Sub(leaf.NotBefore) == 367*24*time.Hour
		}},
	{"sslsplit", "authority key identifier with the CA's issuer and serial; valid for exactly 365 days; a key of its own (sslsplit)",
		func(leaf *x509.Certificate) bool {
			return !signedWithOwnKey(leaf) && len(leaf.SubjectKeyId) > 0 && akiNamesIssuer(leaf) &&
				leaf.NotAfter.Sub(leaf.NotBefore) == 365*24*time.Hour
		}},
}

// fieldBehaviour is Match.Field for a product named by how it forges.
const fieldBehaviour = "behaviour"

// IdentifyChainByBehaviour names the product that forged chain[0] from how
// the leaf was made, not from any name in it. Nil or empty chains match
// nothing. The rest of the chain is not needed: each habit shows in the
// leaf alone.
func IdentifyChainByBehaviour(chain []*x509.Certificate) (Match, bool) {
	if len(chain) == 0 || chain[0] == nil {
		return Match{}, false
	}
	for _, b := range behaviours {
		if b.matches(chain[0]) {
			return Match{Product: b.product, Cert: 0, Field: fieldBehaviour, Value: truncate(b.what, maxValue)}, true
		}
	}
	return Match{}, false
}

// IdentifyByBehaviour names the product behind the chains presented for
// several hosts (host → chain, leaf first) when every chain it can name
// names the same one; chains it cannot name (a host that was not
// intercepted) do not count against it. Hosts are read in sorted order, so
// the result does not depend on map order.
func IdentifyByBehaviour(chains map[string][]*x509.Certificate) (Match, bool) {
	hosts := make([]string, 0, len(chains))
	for h := range chains {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	var found Match
	ok := false
	for _, h := range hosts {
		m, named := IdentifyChainByBehaviour(chains[h])
		switch {
		case !named:
		case !ok:
			found, ok = m, true
		case m.Product != found.Product:
			return Match{}, false
		}
	}
	return found, ok
}

// signedWithOwnKey reports whether a leaf that names another issuer was
// signed with its own public key: the issuing CA's key is the leaf's key.
// It needs no CA certificate, so it works on a leaf sent alone.
func signedWithOwnKey(c *x509.Certificate) bool {
	if bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false // self-signed: a different story
	}
	return c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// oidAuthorityKeyID is RFC 5280's authority key identifier extension.
var oidAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}

// akiNamesIssuer reports whether the leaf's authority key identifier
// carries the CA's issuer name and serial number besides (or instead of)
// its key identifier: OpenSSL's "keyid,issuer:always", which public CAs do
// not use.
func akiNamesIssuer(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidAuthorityKeyID) {
			continue
		}
		// AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0],
		//   authorityCertIssuer [1], authorityCertSerialNumber [2] }
		in := cryptobyte.String(e.Value)
		var seq cryptobyte.String
		if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
			return false
		}
		var issuer, serial bool
		for !seq.Empty() {
			var tag cbasn1.Tag
			var body cryptobyte.String
			if !seq.ReadAnyASN1(&body, &tag) {
				return false
			}
			switch tag {
			case cbasn1.Tag(1).ContextSpecific().Constructed():
				issuer = true
			case cbasn1.Tag(2).ContextSpecific():
				serial = true
			}
		}
		return issuer && serial
	}
	return false
}
