// Package termsafetest gives the tests of every renderer the same hostile
// text and the same check of their output, as iotest and fstest do for
// their interfaces: that what reaches a terminal holds nothing a terminal
// acts on is asserted in one way wherever text is printed.
package termsafetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// Escape sequences and controls a hostile interceptor puts in what it
// controls (certificate names, titles, SNI, ALPN): each, printed raw,
// changes the terminal rather than showing as text.
const (
	Clear   = "\x1b[2J\x1b[H"    // ED and CUP: erase the screen, cursor home
	Bell    = "\x07"             // BEL
	Title   = "\x1b]0;title\x07" // OSC 0: retitle the window
	CSI8Bit = "\u009b31m"        // the 8-bit CSI (U+009B): red to many terminals
	Reverse = "\u202e"           // RIGHT-TO-LEFT OVERRIDE (Trojan Source)
)

// Payloads are all of the above.
var Payloads = []string{Clear, Bell, Title, CSI8Bit, Reverse}

// Hostile joins Payloads around text, for a field that must still read
// as a name (a certificate's CN, a host name's label).
func Hostile(text string) string {
	return Clear + text + Bell + Title + CSI8Bit + Reverse
}

// Check fails t when out, written for a terminal, holds a byte that is not
// UTF-8, a control character other than the newline that ends its lines,
// DEL, or a format character (bidi overrides among them), line or
// paragraph separator: anything termsafe.String escapes.
func Check(t testing.TB, out string) {
	t.Helper()
	for i := 0; i < len(out); {
		r, size := utf8.DecodeRuneInString(out[i:])
		bad := r == utf8.RuneError && size == 1 ||
			r != '\n' && unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
		if bad {
			line := strings.Count(out[:i], "\n") + 1
			t.Fatalf("output line %d holds %q raw:\n%q", line, out[i:i+size], out)
		}
		i += size
	}
}

// Chain returns a chain a hostile interceptor could present, leaf first:
// a root whose CN and O carry Payloads, and a leaf it signs whose CN and
// O carry them too and whose DNS names carry the ASCII ones (a SAN is an
// IA5String). The leaf is not valid for any real host name.
func Chain(t testing.TB) tls.Certificate {
	t.Helper()
	now := time.Now()
	rootKey, leafKey := newKey(t), newKey(t)
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: Hostile("Root CA"), Organization: []string{Hostile("Corp")}},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if root, err = x509.ParseCertificate(rootDER); err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: Hostile("leaf"), Organization: []string{Hostile("Leaf Org")}},
		DNSNames:     []string{Clear + "a" + Bell + ".lab.example", Title + ".lab.example"},
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, root, leafKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if leaf, err = x509.ParseCertificate(leafDER); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{leafDER, rootDER}, PrivateKey: leafKey, Leaf: leaf}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
