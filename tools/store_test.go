package tools_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/tools"
)

// TestSystemStoreRehashed: a store laid out as update-ca-certificates lays
// it out (the bundle, each root under its name as a link to the
// distribution's file, and c_rehash's hash links beside them) gives each
// root once, the one only the directory holds included.
func TestSystemStoreRehashed(t *testing.T) {
	t.Parallel()
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	certs := filepath.Join(root, "etc", "ssl", "certs")
	share := filepath.Join(root, "usr", "share", "ca-certificates")
	for _, d := range []string{certs, share} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path string, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(certs, name)); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(certs, "ca-certificates.crt"), append(slices.Clone(pki.PublicRoot.PEM), pki.EnterpriseRoot.PEM...))
	write(filepath.Join(share, "Public.crt"), pki.PublicRoot.PEM)
	write(filepath.Join(share, "Enterprise.crt"), pki.EnterpriseRoot.PEM)
	write(filepath.Join(certs, "Product.pem"), pki.ProductRoot.PEM) // added without the bundle rebuilt
	link(filepath.Join(share, "Public.crt"), "Public.pem")
	link(filepath.Join(share, "Enterprise.crt"), "Enterprise.pem")
	link("Public.pem", "1a2b3c4d.0")
	link("Enterprise.pem", "5e6f7a8b.0")
	link("Product.pem", "9c0d1e2f.0")

	inv := tools.Discover(context.Background(), tools.Options{Root: root, Only: []tools.Name{tools.Go},
		Getenv: func(string) string { return "" },
		Run:    func(context.Context, string, ...string) ([]byte, error) { return []byte("go1.26.8\n"), nil }})
	g, ok := inv.Tool(tools.Go)
	if !ok {
		t.Fatal("go not discovered")
	}
	var got []string
	for _, b := range g.Store.Certs {
		c, err := b.Cert()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c.Subject.CommonName)
	}
	var want []string
	for _, ca := range []*lab.CA{pki.PublicRoot, pki.EnterpriseRoot, pki.ProductRoot} {
		want = append(want, ca.Cert.Subject.CommonName)
	}
	if !slices.Equal(got, want) {
		t.Errorf("go's store (%s): %q, want %q", g.Store.Description, got, want)
	}
}
