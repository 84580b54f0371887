package tools_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"path/filepath"
	"testing"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/tools"
	"github.com/mitmwatch/mitmwatch/trust"
)

// TestWriteCAs: the bundle holds each CA once and nothing else, even when
// a CA's subject (which comes from the network) carries a PEM block.
func TestWriteCAs(t *testing.T) {
	t.Parallel()
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	smuggled := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.OtherRoot.Cert.Raw}))
	hostile, err := pki.EnterpriseRoot.Issue(lab.LeafOptions{}, "x.lab.example")
	if err != nil {
		t.Fatal(err)
	}
	hostile.Leaf.Subject = pkix.Name{CommonName: "evil\n" + smuggled}
	ps := []tools.Prediction{{CA: pki.EnterpriseRoot.Cert}, {}, {CA: pki.EnterpriseRoot.Cert}, {CA: hostile.Leaf}}
	cas := tools.CAs(ps)
	if len(cas) != 2 {
		t.Fatalf("CAs: %d certificates, want 2 (each once)", len(cas))
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := tools.WriteCAs(path, cas); err != nil {
		t.Fatal(err)
	}
	_, got, err := trust.LoadPEM(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Equal(pki.EnterpriseRoot.Cert) {
		t.Fatalf("bundle holds %d certificates, want the 2 written", len(got))
	}
	for _, c := range got {
		if detector.SPKIOf(c) == detector.SPKIOf(pki.OtherRoot.Cert) {
			t.Error("a subject smuggled a certificate into the bundle")
		}
	}
	if err := tools.WriteCAs(path, []*x509.Certificate{}); err == nil {
		t.Error("an empty bundle was written")
	}
}
