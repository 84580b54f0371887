package lab

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newTestPKI(t testing.TB) *PKI {
	t.Helper()
	p, err := NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPKINames(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	type name struct{ CN, O string }
	got := map[string]name{}
	for label, ca := range map[string]*CA{
		"public root": p.PublicRoot, "public intermediate": p.PublicIntermediate,
		"enterprise root": p.EnterpriseRoot, "cloned intermediate": p.ClonedIntermediate,
		"product root": p.ProductRoot,
	} {
		got[label] = name{ca.Cert.Subject.CommonName, ca.Cert.Subject.Organization[0]}
		if !ca.Cert.IsCA || !ca.Cert.BasicConstraintsValid || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
			t.Errorf("%s: not a usable CA certificate", label)
		}
		if d := time.Until(ca.Cert.NotAfter); d < 4*365*24*time.Hour {
			t.Errorf("%s: expires in %v", label, d)
		}
	}
	want := map[string]name{
		"public root":         {"Lab Public Root R1", "Lab Trust Services"},
		"public intermediate": {"Lab Public TLS CA 2026", "Lab Trust Services"},
		"enterprise root":     {"Example Corp Inspection Root", "Example Corp"},
		"cloned intermediate": {"Lab Public TLS CA 2026", "Lab Trust Services"},
		"product root":        {"FortiGate CA", "Fortinet"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("subjects (-want +got):\n%s", d)
	}
}

func TestClonedIntermediate(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	clone, real := p.ClonedIntermediate.Cert, p.PublicIntermediate.Cert
	if !bytes.Equal(clone.RawSubject, real.RawSubject) {
		t.Error("cloned subject differs from the public intermediate's")
	}
	if bytes.Equal(clone.RawSubjectPublicKeyInfo, real.RawSubjectPublicKeyInfo) {
		t.Error("cloned intermediate shares the public intermediate's key")
	}
	if err := clone.CheckSignatureFrom(p.EnterpriseRoot.Cert); err != nil {
		t.Errorf("cloned intermediate not signed by the enterprise root: %v", err)
	}
	if _, err := clone.Verify(x509.VerifyOptions{Roots: p.PublicPool()}); err == nil {
		t.Error("cloned intermediate verifies against the public pool")
	}
	if _, err := clone.Verify(x509.VerifyOptions{Roots: p.SystemPool()}); err != nil {
		t.Errorf("cloned intermediate against the system pool: %v", err)
	}
}

func TestIssuePublicLeaf(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	c, err := p.PublicIntermediate.Issue(LeafOptions{}, "github.com", "www.github.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 || !bytes.Equal(c.Certificate[1], p.PublicIntermediate.Cert.Raw) {
		t.Errorf("chain should be leaf + intermediate, has %d certificates", len(c.Certificate))
	}
	leaf := c.Leaf
	if age := time.Since(leaf.NotBefore); age < 29*24*time.Hour || age > 31*24*time.Hour {
		t.Errorf("NotBefore %v ago, want about 30 days", age)
	}
	inter := x509.NewCertPool()
	inter.AddCert(p.PublicIntermediate.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "www.github.com", Roots: p.PublicPool(), Intermediates: inter}); err != nil {
		t.Errorf("verify: %v", err)
	}
	checkSCTList(t, leaf)
}

// checkSCTList parses the SCT extension as RFC 6962 lays it out.
func checkSCTList(t *testing.T, leaf *x509.Certificate) {
	t.Helper()
	for _, ext := range leaf.Extensions {
		if !ext.Id.Equal(oidSCTList) {
			continue
		}
		var list []byte
		if rest, err := asn1.Unmarshal(ext.Value, &list); err != nil || len(rest) != 0 {
			t.Fatalf("SCT extension is not an OCTET STRING: %v", err)
		}
		if len(list) < 4 || int(binary.BigEndian.Uint16(list)) != len(list)-2 {
			t.Fatalf("bad SCT list length in % x", list)
		}
		sct := list[4:]
		if int(binary.BigEndian.Uint16(list[2:])) != len(sct) {
			t.Fatalf("bad SCT length")
		}
		// version, log id, timestamp, extensions, hash+sig algorithms, signature
		if sct[0] != 0 || len(sct) < 1+32+8+2+2+2 {
			t.Fatalf("bad SCT % x", sct)
		}
		sigLen := int(binary.BigEndian.Uint16(sct[1+32+8+2+2:]))
		if 1+32+8+2+2+2+sigLen != len(sct) {
			t.Fatalf("bad SCT signature length %d in %d bytes", sigLen, len(sct))
		}
		return
	}
	t.Fatal("no SCT extension")
}

func TestIssueOptions(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	nb := time.Now().Add(-time.Hour).Truncate(time.Second)
	a, err := p.EnterpriseRoot.Issue(LeafOptions{Key: key, NotBefore: nb, Validity: 24 * time.Hour}, "a.example")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.EnterpriseRoot.Issue(LeafOptions{Key: key, SCT: true}, "b.example", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Leaf.RawSubjectPublicKeyInfo, b.Leaf.RawSubjectPublicKeyInfo) {
		t.Error("Key option not honoured")
	}
	if !a.Leaf.NotBefore.Equal(nb) || !a.Leaf.NotAfter.Equal(nb.Add(24*time.Hour)) {
		t.Errorf("validity %v .. %v", a.Leaf.NotBefore, a.Leaf.NotAfter)
	}
	if len(a.Certificate) != 1 {
		t.Error("a root's leaf should be sent alone")
	}
	if age := time.Since(b.Leaf.NotBefore); age > 2*time.Minute {
		t.Errorf("freshly minted leaf is %v old", age)
	}
	if len(b.Leaf.IPAddresses) != 1 {
		t.Errorf("IP SANs %v", b.Leaf.IPAddresses)
	}
	checkSCTList(t, b.Leaf)
	for _, ext := range a.Leaf.Extensions {
		if ext.Id.Equal(oidSCTList) {
			t.Error("unexpected SCT on an interceptor leaf")
		}
	}
}

func TestPools(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	pub := x509.NewCertPool()
	if !pub.AppendCertsFromPEM(p.PublicPEM()) || !pub.Equal(p.PublicPool()) {
		t.Error("PublicPEM does not match PublicPool")
	}
	sys := x509.NewCertPool()
	if !sys.AppendCertsFromPEM(p.SystemPEM()) || !sys.Equal(p.SystemPool()) {
		t.Error("SystemPEM does not match SystemPool")
	}
}
