package tools_test

import (
	"crypto/x509"
	"fmt"
	"testing"

	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/tools"
	"github.com/mitmwatch/mitmwatch/trust"
)

// TestPoolForVerifiesAsTheStore: a chain verifies against the part of a
// store PoolFor picks exactly as against the whole store, for genuine,
// intercepted, cloned-name, incomplete and self-anchored chains.
func TestPoolForVerifiesAsTheStore(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.pki
	public := w.chain(p.PublicIntermediate, lab.LeafOptions{}, nil, "a.example")
	cloned := w.chain(p.ClonedIntermediate, lab.LeafOptions{}, nil, "a.example")
	chains := map[string][]*x509.Certificate{
		"public":           public,
		"public with root": append(append([]*x509.Certificate(nil), public...), p.PublicRoot.Cert),
		"enterprise":       w.chain(p.EnterpriseRoot, lab.LeafOptions{}, nil, "a.example"),
		"cloned name":      cloned,
		"leaf alone":       public[:1],
		"a root alone":     {p.PublicRoot.Cert},
		"other":            w.chain(p.OtherIntermediate, lab.LeafOptions{}, nil, "a.example"),
	}
	stores := map[string][]trust.Block{
		"every root": certs(p.PublicRoot, p.EnterpriseRoot, p.ProductRoot, p.OtherRoot),
		"public":     certs(p.PublicRoot, p.OtherRoot),
		"enterprise": certs(p.EnterpriseRoot),
		"a leaf":     {trust.BlockOf(public[0])},
		"empty":      nil,
	}
	verified := 0
	for cn, chain := range chains {
		for sn, roots := range stores {
			s := tools.Store{Certs: roots}
			full := x509.NewCertPool()
			for _, c := range roots {
				cert, err := c.Cert()
				if err != nil {
					t.Fatal(err)
				}
				full.AddCert(cert)
			}
			want := trust.Verify(chain, full, w.now)
			got := trust.Verify(chain, s.PoolFor(chain), w.now)
			if got.OK() != want.OK() || got.Failure != want.Failure || fmt.Sprint(len(got.Chains)) != fmt.Sprint(len(want.Chains)) {
				t.Errorf("%s against %s: PoolFor gives ok=%v %v (%d chains), the store ok=%v %v (%d chains)",
					cn, sn, got.OK(), got.Failure, len(got.Chains), want.OK(), want.Failure, len(want.Chains))
			}
			if want.OK() {
				verified++
			}
		}
	}
	if verified < 4 {
		t.Errorf("only %d chain and store pairs verified: the table tests too little", verified)
	}
}
