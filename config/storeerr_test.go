package config

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/lab"
)

// A public_roots root that x509 rejects, named by a chain a check
// verifies, is StoreErr's with the setting's line, as a whole-store load
// would have refused the bundle; before any chain names it, it is not.
func TestStoreErrNamesABrokenRoot(t *testing.T) {
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.PublicIntermediate.Issue(lab.LeafOptions{}, "a.example")
	if err != nil {
		t.Fatal(err)
	}
	chain := []*x509.Certificate{leaf.Leaf, pki.PublicIntermediate.Cert}
	// The root's notAfter made unreadable (the byte before its subject
	// ends the validity): its names stay.
	root := pki.PublicRoot.Cert
	bad := bytes.Clone(root.Raw)
	bad[bytes.LastIndex(bad, root.RawSubject)-1] = 'X'
	if _, err := x509.ParseCertificate(bad); err == nil {
		t.Fatal("the broken root parses")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "public.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: bad}), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(filepath.Join(dir, "rules.yaml"), []byte("trust:\n  public_roots: public.pem\n"), Options{StoresLater: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.StoreErr(); err != nil {
		t.Fatalf("StoreErr() before any chain = %v", err)
	}
	cfg.PublicStore().For(chain)
	var e *Error
	if err := cfg.StoreErr(); !errors.As(err, &e) || e.Line != 2 || e.Path != "trust.public_roots" || !strings.Contains(err.Error(), "certificate 1") {
		t.Errorf("StoreErr() = %v, want the *Error of line 2, trust.public_roots, certificate 1", err)
	}
	if _, err := Parse(filepath.Join(dir, "rules.yaml"), []byte("trust:\n  public_roots: public.pem\n"), Options{}); err == nil {
		t.Error("a whole-store load accepted the bundle")
	}
}
