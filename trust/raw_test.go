package trust

import (
	"bytes"
	"crypto/x509"
	"testing"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// TestRawNames: every compiled-in root, and a lab leaf, read as x509
// reads them; truncations and other DER do not read.
func TestRawNames(t *testing.T) {
	t.Parallel()
	n := 0
	for root := range bundle.Roots() {
		checkRawNames(t, root.Certificate)
		n++
	}
	if n == 0 {
		t.Fatal("no compiled-in roots")
	}
	leaf := newRoot(t, "leaf.example")
	checkRawNames(t, leaf.Raw)
	for _, bad := range [][]byte{nil, {0x30}, {0x30, 0x00}, leaf.Raw[:len(leaf.Raw)/3], leaf.RawSubjectPublicKeyInfo} {
		if _, ok := RawNames(bad); ok {
			t.Errorf("RawNames read %x", bad)
		}
	}
}

func checkRawNames(t *testing.T, der []byte) {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := RawNames(der)
	if !ok || !bytes.Equal(n.Subject, c.RawSubject) || !bytes.Equal(n.Issuer, c.RawIssuer) || !bytes.Equal(n.SPKI, c.RawSubjectPublicKeyInfo) {
		t.Errorf("%s: RawNames = %x, %v; want x509's", c.Subject, n, ok)
	}
}

// FuzzRawNames: whatever x509 parses, RawNames reads as x509 does; on
// anything else it does not panic.
func FuzzRawNames(f *testing.F) {
	i := 0
	for root := range bundle.Roots() {
		if i%16 == 0 {
			f.Add(root.Certificate)
		}
		i++
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		n, ok := RawNames(der)
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		if !ok || !bytes.Equal(n.Subject, c.RawSubject) || !bytes.Equal(n.Issuer, c.RawIssuer) || !bytes.Equal(n.SPKI, c.RawSubjectPublicKeyInfo) {
			t.Fatalf("RawNames = %x, %v; x509 parsed it", n, ok)
		}
	})
}
