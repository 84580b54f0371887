// Package fingerprints names the interception product (an enterprise proxy, an
// antivirus TLS filter, a debugging proxy) behind a certificate chain.
//
// Issuer names are weak evidence: anyone can copy a name, and a name alone proves
// nothing. This package therefore never decides whether traffic is intercepted; it
// only puts a product name on a chain once the strong signals (trust stores, pins,
// missing SCTs) have said so, so that users get the vendor and the fix instead of a
// bare "unknown authority". It never dials, never reads the clock and keeps no
// mutable state: the product table is built once at package init.
package fingerprints

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"unicode/utf8"
)

// Match says which product a chain was attributed to and exactly why, so that a
// report can show the evidence next to the name.
type Match struct {
	Product string // e.g. "Zscaler", "goproxy"
	Cert    int    // index in the chain of the certificate that matched (0 = leaf)
	Field   string // which field matched: "issuer CN", "issuer O", "subject O", "subject CN", "email"
	Value   string // the matched value as seen in the certificate (truncated to 128 bytes)
}

// maxValue bounds Match.Value: it comes from the network and ends up in reports.
const maxValue = 128

// Identify returns the first product whose matcher fires on any certificate in the
// chain, checking CA certificates (index >= 1) and the leaf's issuer before the
// leaf's subject. Products are tried in database order; for each product the CA
// certificates are tried nearest-to-leaf first, subject before issuer, then the
// leaf's issuer. Only products that forge a recognisable leaf subject (goproxy) are
// matched on the leaf's subject, because a real site's own name is no evidence of
// an interceptor. Nil entries are skipped.
func Identify(chain []*x509.Certificate) (Match, bool) {
	for _, e := range database() {
		if m, ok := e.matchNames(chain); ok {
			return m, true
		}
	}
	if len(chain) == 0 || chain[0] == nil {
		return Match{}, false
	}
	for _, e := range database() {
		if f, v, ok := firstMatch(e.leafSubject, subjectOf(chain[0])); ok {
			return newMatch(e.product, 0, f, v), true
		}
	}
	return Match{}, false
}

// Products lists the product names the database knows (sorted), for docs and tests.
func Products() []string {
	names := make([]string, 0, len(database()))
	for _, e := range database() {
		names = append(names, e.product)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// entry is one product of the database.
type entry struct {
	product string
	// names match the names of CA certificates (subject and issuer) and the leaf's issuer.
	names []matcher
	// leafSubject match the leaf's own subject; only for products that forge a fixed one.
	leafSubject []matcher
}

func (e entry) matchNames(chain []*x509.Certificate) (Match, bool) {
	for i := 1; i < len(chain); i++ {
		c := chain[i]
		if c == nil {
			continue
		}
		for _, s := range []side{subjectOf(c), issuerOf(c)} {
			if f, v, ok := firstMatch(e.names, s); ok {
				return newMatch(e.product, i, f, v), true
			}
		}
	}
	if len(chain) > 0 && chain[0] != nil {
		if f, v, ok := firstMatch(e.names, issuerOf(chain[0])); ok {
			return newMatch(e.product, 0, f, v), true
		}
	}
	return Match{}, false
}

func firstMatch(ms []matcher, s side) (field, string, bool) {
	for _, m := range ms {
		if f, v, ok := m(s); ok {
			return f, v, true
		}
	}
	return 0, "", false
}

func newMatch(product string, cert int, f field, v string) Match {
	return Match{Product: product, Cert: cert, Field: f.String(), Value: truncate(v, maxValue)}
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// field names the part of a certificate that matched; String gives Match.Field.
type field uint8

const (
	fieldIssuerCN field = iota + 1
	fieldIssuerO
	fieldSubjectCN
	fieldSubjectO
	fieldEmail
)

func (f field) String() string {
	switch f {
	case fieldIssuerCN:
		return "issuer CN"
	case fieldIssuerO:
		return "issuer O"
	case fieldSubjectCN:
		return "subject CN"
	case fieldSubjectO:
		return "subject O"
	case fieldEmail:
		return "email"
	}
	return "unknown"
}

// side is one name of a certificate, its subject or its issuer, with the email
// addresses that belong to it.
type side struct {
	name    pkix.Name
	subject bool
	emails  []string
}

// oidEmail is the PKCS #9 emailAddress attribute that some appliances (FortiGate)
// put in their CA's distinguished name.
var oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

func subjectOf(c *x509.Certificate) side {
	return side{name: c.Subject, subject: true, emails: append(dnEmails(c.Subject), c.EmailAddresses...)}
}

func issuerOf(c *x509.Certificate) side {
	return side{name: c.Issuer, emails: dnEmails(c.Issuer)}
}

func dnEmails(n pkix.Name) []string {
	var out []string
	for _, a := range n.Names {
		if s, ok := a.Value.(string); ok && a.Type.Equal(oidEmail) {
			out = append(out, s)
		}
	}
	return out
}
