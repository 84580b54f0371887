package detector_test

import (
	"crypto/x509/pkix"
	"testing"

	"github.com/mitmwatch/mitmwatch/detector"
)

// TestRootAndIssuerName checks the one definition of a chain's anchor and
// of its issuer's display name that findings, reports and metrics share.
func TestRootAndIssuerName(t *testing.T) {
	p := newLabPKI(t)
	leaf := p.leaf(p.publicCA, leafSpec{names: []string{"registry.lab.example"}})
	corpLeaf := p.leaf(p.corpCA, leafSpec{names: []string{"registry.lab.example"}})
	noCN := p.newCA(pkix.Name{Organization: []string{"Only An Org"}}, nil)
	for _, c := range []struct {
		name       string
		obs        detector.Observation
		wantRoot   string // the root's CN; "" for none
		wantIssuer string
	}{
		{"publicly verified: the public root though not sent", p.observe("registry.lab.example", p.bareSystem, leaf, p.publicCA.cert),
			"Test Public Root R1", "Test Public TLS CA 1"},
		{"system store only: the root the system chained to", p.observe("registry.lab.example", p.system, corpLeaf, p.corpCA.cert),
			"Example Corp Inspection Root", "Example Corp Inspection Issuing CA"},
		{"verified by nobody: the last presented", p.observe("registry.lab.example", p.bareSystem, corpLeaf, p.corpCA.cert),
			"Example Corp Inspection Issuing CA", "Example Corp Inspection Issuing CA"},
		{"an issuer without CN is named by its O", p.observe("registry.lab.example", p.bareSystem, p.leaf(noCN, leafSpec{names: []string{"a.lab.example"}})),
			"a.lab.example", "Only An Org"},
		{"nothing presented", p.observe("registry.lab.example", p.bareSystem), "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := detector.Root(c.obs.TLS)
			got := ""
			if root != nil {
				got = root.Subject.CommonName
			}
			if got != c.wantRoot {
				t.Errorf("Root = %q, want %q", got, c.wantRoot)
			}
			if n := detector.IssuerName(c.obs.TLS); n != c.wantIssuer {
				t.Errorf("IssuerName = %q, want %q", n, c.wantIssuer)
			}
		})
	}
}
