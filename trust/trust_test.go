package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// newRoot generates a self-signed CA, as an interception box would.
func newRoot(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func writePEM(t *testing.T, certs ...*x509.Certificate) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# a comment, as OS bundles have\n")
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	path := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func verifies(c *x509.Certificate, pool *x509.CertPool) error {
	_, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: c.NotBefore.Add(time.Minute)})
	return err
}

func TestPublicRootsMozilla(t *testing.T) {
	t.Parallel()
	pool, err := PublicRoots(Mozilla)
	if err != nil {
		t.Fatal(err)
	}
	if pool.Equal(x509.NewCertPool()) {
		t.Fatal("Mozilla pool is empty")
	}
	// A root from the bundle anchors itself in the pool.
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		cert, err := x509.ParseCertificate(root.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifies(cert, pool); err != nil {
			t.Errorf("bundle root %s does not verify: %v", cert.Subject, err)
		}
		break
	}
	// An interception root generated just now does not.
	lab := newRoot(t, "Lab Inspection Root")
	var uae x509.UnknownAuthorityError
	if err := verifies(lab, pool); !errors.As(err, &uae) {
		t.Errorf("generated root: got %v, want an unknown authority error", err)
	}
}

func TestPublicRootsIsACopy(t *testing.T) {
	t.Parallel()
	first, err := PublicRoots(Mozilla)
	if err != nil {
		t.Fatal(err)
	}
	lab := newRoot(t, "Added By Caller")
	first.AddCert(lab)
	second, err := PublicRoots(Mozilla)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifies(lab, second); err == nil {
		t.Error("a cert added to one returned pool leaked into the cached Mozilla pool")
	}
}

func TestLoadPEM(t *testing.T) {
	t.Parallel()
	a, b := newRoot(t, "Lab Root A"), newRoot(t, "Lab Root B")
	path := writePEM(t, a, b)
	pool, certs, err := LoadPEM(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || !certs[0].Equal(a) || !certs[1].Equal(b) {
		t.Fatalf("got %d certs, want A and B in order", len(certs))
	}
	for _, c := range []*x509.Certificate{a, b} {
		if err := verifies(c, pool); err != nil {
			t.Errorf("%s: %v", c.Subject, err)
		}
	}
	if err := verifies(newRoot(t, "Other"), pool); err == nil {
		t.Error("a root outside the bundle verified")
	}
	for name, load := range map[string]func(string) (*x509.CertPool, error){"PublicRoots": PublicRoots, "SystemRoots": SystemRoots} {
		p, err := load(path)
		if err != nil {
			t.Fatalf("%s(path): %v", name, err)
		}
		if !p.Equal(pool) {
			t.Errorf("%s(path) differs from LoadPEM", name)
		}
	}
}

func TestSystemRoots(t *testing.T) {
	t.Parallel()
	if _, err := SystemRoots(System); err != nil {
		t.Fatal(err)
	}
}

func TestLoadPEMErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	keyOnly := filepath.Join(dir, "key.pem")
	badCert := filepath.Join(dir, "bad.pem")
	files := map[string]string{
		empty:   "not a PEM file\n",
		keyOnly: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})),
		badCert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})),
	}
	for p, data := range files {
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		path   string
		want   string
		wantIs error
	}{
		{missing, "PEM bundle " + missing + ": no such file or directory", fs.ErrNotExist},
		{dir, "PEM bundle " + dir + ": not a regular file", nil},
		{empty, "PEM bundle " + empty + ": no certificates found", nil},
		{keyOnly, "PEM bundle " + keyOnly + ": no certificates found", nil},
		{badCert, "PEM bundle " + badCert + ": certificate 1: x509: malformed certificate", nil},
	}
	for _, tt := range tests {
		_, _, err := LoadPEM(tt.path)
		if err == nil || err.Error() != tt.want {
			t.Errorf("LoadPEM(%s):\n got %v\nwant %s", filepath.Base(tt.path), err, tt.want)
		}
		if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
			t.Errorf("LoadPEM(%s): %v is not %v", filepath.Base(tt.path), err, tt.wantIs)
		}
		if _, err := PublicRoots(tt.path); err == nil {
			t.Errorf("PublicRoots(%s) succeeded", filepath.Base(tt.path))
		}
	}
}
