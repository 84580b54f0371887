package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A public_roots root that x509 rejects, named by a chain a check
// verifies, is StoreErr's with the setting's line, as a whole-store load
// would have refused the bundle; before any chain names it, it is not.
func TestStoreErrNamesABrokenRoot(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Broken Root"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "a.example"}, DNSNames: []string{"a.example"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, root, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	// The root's notAfter made unreadable: its names stay.
	bad := bytes.Clone(der)
	bad[bytes.LastIndex(bad, root.RawSubject)-1] = 'X'
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
	cfg.PublicStore().For([]*x509.Certificate{leaf})
	var e *Error
	if err := cfg.StoreErr(); !errors.As(err, &e) || e.Line != 2 || e.Path != "trust.public_roots" || !strings.Contains(err.Error(), "certificate 1") {
		t.Errorf("StoreErr() = %v, want the *Error of line 2, trust.public_roots, certificate 1", err)
	}
	if _, err := Parse(filepath.Join(dir, "rules.yaml"), []byte("trust:\n  public_roots: public.pem\n"), Options{}); err == nil {
		t.Error("a whole-store load accepted the bundle")
	}
}
