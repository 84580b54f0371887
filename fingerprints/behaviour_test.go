package fingerprints

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// readForged reads a capture of testdata/forged: PEM blocks with a Host
// header, grouped by host in file order. Blocks whose Position is "root"
// (the CA a trust store completes the chain with) are kept only when
// withRoot is set.
func readForged(t *testing.T, name string, withRoot bool) map[string][]*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "forged", name))
	if err != nil {
		t.Fatal(err)
	}
	chains := map[string][]*x509.Certificate{}
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		host := blk.Headers["Host"]
		if host == "" {
			t.Fatalf("%s: a block without a Host header", name)
		}
		if blk.Headers["Position"] == "root" && !withRoot {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, host, err)
		}
		chains[host] = append(chains[host], c)
	}
	if len(chains) == 0 {
		t.Fatalf("%s: no certificates", name)
	}
	return chains
}

// TestIdentifyByBehaviourCaptures runs on chains captured from the real
// products in the netlab lab: each is named from its habits alone (the
// CAs of sslsplit and squid carry admin-chosen names), with or without the
// root a trust store would add, and the genuine origins' chains match
// nothing.
func TestIdentifyByBehaviourCaptures(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"mitmproxy-transparent.pem", "mitmproxy"},
		{"mitmproxy-explicit.pem", "mitmproxy"},
		{"squid-transparent.pem", "squid"},
		{"squid-explicit.pem", "squid"},
		{"sslsplit-transparent.pem", "sslsplit"},
		{"clean.pem", ""},
	} {
		for _, withRoot := range []bool{false, true} {
			chains := readForged(t, tc.file, withRoot)
			m, ok := IdentifyByBehaviour(chains)
			if got := m.Product; got != tc.want || ok != (tc.want != "") {
				t.Errorf("%s (root %v): %+v %v, want %q", tc.file, withRoot, m, ok, tc.want)
			}
			for host, chain := range chains {
				m, _ := IdentifyChainByBehaviour(chain)
				if m.Product != tc.want {
					t.Errorf("%s: %s: IdentifyChainByBehaviour named %q, want %q", tc.file, host, m.Product, tc.want)
				}
				if ok && (m.Cert != 0 || m.Field != "behaviour" || !strings.Contains(m.Value, tc.want)) {
					t.Errorf("%s: %s: match %+v", tc.file, host, m)
				}
			}
		}
	}
}

// TestIdentifyByBehaviourAgreement: chains that are not forged do not
// count, chains naming different products name none.
func TestIdentifyByBehaviourAgreement(t *testing.T) {
	squid := readForged(t, "squid-transparent.pem", false)
	sslsplit := readForged(t, "sslsplit-transparent.pem", false)
	clean := readForged(t, "clean.pem", false)
	mixed := map[string][]*x509.Certificate{
		"a.example": squid["github.com"],
		"b.example": clean["github.com"],
		"c.example": nil,
	}
	if m, ok := IdentifyByBehaviour(mixed); !ok || m.Product != "squid" {
		t.Errorf("squid among genuine chains: %+v %v", m, ok)
	}
	mixed["d.example"] = sslsplit["github.com"]
	if m, ok := IdentifyByBehaviour(mixed); ok {
		t.Errorf("squid and sslsplit: named %+v", m)
	}
	if m, ok := IdentifyByBehaviour(nil); ok {
		t.Errorf("no chains: %+v", m)
	}
	if m, ok := IdentifyChainByBehaviour([]*x509.Certificate{nil}); ok {
		t.Errorf("nil leaf: %+v", m)
	}
}

// TestIdentifyByBehaviourSynthetic holds each habit to its parts: a leaf
// that has all but one of a product's habits is not that product.
func TestIdentifyByBehaviourSynthetic(t *testing.T) {
	caKey := mustKey(t)
	ca := mustSign(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Some CA"},
		NotBefore: notBefore, NotAfter: notBefore.Add(3650 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, caKey, caKey)
	leafKey := mustKey(t)
	leaf := func(key *ecdsa.PrivateKey, validity time.Duration, bc bool, ski []byte) *x509.Certificate {
		return mustSign(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "host.example"},
			DNSNames: []string{"host.example"}, NotBefore: notBefore, NotAfter: notBefore.Add(validity),
			BasicConstraintsValid: bc, SubjectKeyId: ski, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, key, caKey)
	}
	day := 24 * time.Hour
	for _, tc := range []struct {
		name string
		leaf *x509.Certificate
		want string
	}{
		{"CA key, basic constraints, no SKI", leaf(caKey, 90*day, true, nil), "squid"},
		{"CA key, basic constraints, SKI", leaf(caKey, 90*day, true, []byte{1, 2, 3}), ""},
		{"CA key, no basic constraints, 367 days", leaf(caKey, 367*day, false, nil), "mitmproxy"},
		{"CA key, no basic constraints, 366 days", leaf(caKey, 366*day, false, nil), ""},
		{"own key, no basic constraints, 367 days", leaf(leafKey, 367*day, false, nil), ""},
		{"own key, basic constraints, 365 days, keyid-only AKI", leaf(leafKey, 365*day, true, []byte{1}), ""},
		{"self-signed leaf", mustSign(t, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "self"},
			NotBefore: notBefore, NotAfter: notBefore.Add(90 * day), BasicConstraintsValid: true}, nil, leafKey, leafKey), ""},
	} {
		m, _ := IdentifyChainByBehaviour([]*x509.Certificate{tc.leaf, ca})
		if diff := cmp.Diff(tc.want, m.Product); diff != "" {
			t.Errorf("%s: product (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestBehaviourNotOnPublicRoots: no behaviour fires on a certificate of
// the public Mozilla bundle (each standing in as a leaf).
func TestBehaviourNotOnPublicRoots(t *testing.T) {
	for r := range bundle.Roots() {
		c, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			continue
		}
		if m, ok := IdentifyChainByBehaviour([]*x509.Certificate{c}); ok {
			t.Errorf("%s: %+v", c.Subject, m)
		}
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mustSign signs tmpl, carrying key's public key, with signer as parent
// (self-signed when parent is nil).
func mustSign(t *testing.T, tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
