package audit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/trust"
)

// newRoot makes a self-signed CA certificate.
func newRoot(t testing.TB, cn, org string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{org}},
		NotBefore:             time.Unix(1_700_000_000, 0),
		NotAfter:              time.Unix(2_000_000_000, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	c, err := x509.ParseCertificate(der)
	must(t, err)
	return c
}

// writeRoots writes a PEM bundle, with a comment line first as OS
// bundles have, and returns its path.
func writeRoots(t testing.TB, path string, certs ...*x509.Certificate) string {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("# a bundle\n")
	for _, c := range certs {
		must(t, pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, b.Bytes(), 0o644))
	return path
}

// lineOf returns the line of a bundle where c's PEM block starts.
func lineOf(t testing.TB, path string, c *x509.Certificate) int {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	i := bytes.Index(data, block)
	if i < 0 {
		t.Fatalf("%s does not hold %s", path, c.Subject)
	}
	return 1 + bytes.Count(data[:i], []byte("\n"))
}

func mozillaRoot(t testing.TB) *x509.Certificate {
	t.Helper()
	for r := range bundle.Roots() {
		c, err := x509.ParseCertificate(r.Certificate)
		must(t, err)
		return c
	}
	t.Fatal("empty Mozilla bundle")
	return nil
}

func TestTrustStore(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	zscaler := newRoot(t, "Zscaler Root CA", "Zscaler Inc.")
	corp := newRoot(t, "Example Corp Root", "Example Corp")
	old := newRoot(t, "Old Public Root", "Old CA")
	older := newRoot(t, "Older Public Root", "Old CA")
	extra := newRoot(t, "Extra Root", "Extra")

	certs := filepath.Join(tr.root, "etc", "ssl", "certs")
	bundlePath := writeRoots(t, filepath.Join(certs, "ca-certificates.crt"), mozillaRoot(t), old, zscaler, older)
	// The distribution ships old and older, which Mozilla has since dropped.
	writeRoots(t, filepath.Join(tr.root, "usr", "share", "ca-certificates", "mozilla", "Old_Public_Root.crt"), old)
	writeRoots(t, filepath.Join(tr.root, "usr", "share", "ca-certificates", "mozilla", "Older_Public_Root.crt"), older)
	// An administrator added corp, with the c_rehash link beside it.
	local := writeRoots(t, filepath.Join(tr.root, "usr", "local", "share", "ca-certificates", "corp.crt"), corp)
	must(t, os.Symlink(local, filepath.Join(certs, "corp.pem")))
	must(t, os.Symlink("corp.pem", filepath.Join(certs, "0a1b2c3d.0")))
	// Node is given zscaler (already reported) and extra.
	tr.env["NODE_EXTRA_CA_CERTS"] = writeRoots(t, filepath.Join(tr.base, "node-extra.pem"), zscaler, extra)

	r := tr.audit(false)
	checkFindings(t, tr, r.Findings, []string{
		fmt.Sprintf("warning trust system store CN=Zscaler Root CA,O=Zscaler Inc. @$T/root/etc/ssl/certs/ca-certificates.crt:%d", lineOf(t, bundlePath, zscaler)),
		"info trust system store CN=Example Corp Root,O=Example Corp @$T/root/usr/local/share/ca-certificates/corp.crt:2",
		"info trust system store 2 roots @$T/root/etc/ssl/certs/ca-certificates.crt, $T/root/etc/ssl/certs",
		fmt.Sprintf("info npm NODE_EXTRA_CA_CERTS CN=Extra Root,O=Extra @$T/node-extra.pem:%d", lineOf(t, tr.env["NODE_EXTRA_CA_CERTS"], extra)),
	})
	for _, f := range r.Findings {
		// The dropped roots are counted, and the first in the store is
		// the example.
		if f.Value == "2 roots" && (!strings.Contains(f.Why, "still ships 2 public roots") || !strings.Contains(f.Why, "e.g. CN=Old Public Root,O=Old CA)")) {
			t.Errorf("dropped roots: %q", f.Why)
		}
		if f.Value == "CN=Zscaler Root CA,O=Zscaler Inc." {
			want := Root{Subject: f.Value, SPKI: detector.SPKIOf(zscaler).String(), Product: "Zscaler"}
			if f.Root == nil || *f.Root != want {
				t.Errorf("root = %+v, want %+v", f.Root, want)
			}
		}
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings: %q", r.Warnings)
	}
}

// TestTrustEnvironment: SSL_CERT_FILE and SSL_CERT_DIR replace the system
// store, as they do for Go and OpenSSL; a missing one is a warning.
func TestTrustEnvironment(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	writeRoots(t, filepath.Join(tr.root, "etc", "ssl", "certs", "ca-certificates.crt"), newRoot(t, "Not Read", "Nobody"))
	dir := filepath.Join(tr.base, "certs")
	writeRoots(t, filepath.Join(dir, "corp.pem"), newRoot(t, "Corp", "Corp"))
	tr.env["SSL_CERT_FILE"] = filepath.Join(tr.base, "missing.pem")
	tr.env["SSL_CERT_DIR"] = dir
	r := tr.audit(false)
	checkFindings(t, tr, r.Findings, []string{
		"warning env SSL_CERT_FILE $T/missing.pem @environment",
		"info trust SSL_CERT_DIR CN=Corp,O=Corp @$T/certs/corp.pem:2",
	})
}

// TestTrustStoreDistroFile: on Fedora, RHEL and Arch the distribution's
// roots are one p11-kit file, read as a bundle: a root it ships that the
// public set dropped is counted, not reported as a local one.
func TestTrustStoreDistroFile(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	old := newRoot(t, "Old Public Root", "Old CA")
	bundle := writeRoots(t, filepath.Join(tr.root, "etc", "ssl", "certs", "ca-certificates.crt"), mozillaRoot(t), old)
	writeRoots(t, filepath.Join(tr.root, "usr", "share", "pki", "ca-trust-source", "ca-bundle.trust.p11-kit"), old)
	checkFindings(t, tr, tr.audit(false).Findings, []string{
		"info trust system store 1 root @" + tr.rel(bundle) + ", $T/root/etc/ssl/certs",
	})
}

// TestTrustStoreDistroSetKept: with check's snapshot in use, the next
// audit takes the distribution's roots as the set an earlier one read
// (trust.DirBlocks), without reading the directory's files: one
// rewritten in place, the directory unchanged, still counts as shipped.
// The snapshot serves the files of another user (root's to a user) or
// every file to root, so it runs as root; it replaces the process's
// snapshot, so it does not run in parallel.
func TestTrustStoreDistroSetKept(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the snapshot serves this user's own files to root alone")
	}
	tr := newTree(t).without()
	old := newRoot(t, "Old Public Root", "Old CA")
	bundle := writeRoots(t, filepath.Join(tr.root, "etc", "ssl", "certs", "ca-certificates.crt"), mozillaRoot(t), old)
	shipped := writeRoots(t, filepath.Join(tr.root, "usr", "share", "ca-certificates", "mozilla", "Old_Public_Root.crt"), old)
	// Past the snapshot's window for files changed just before a read.
	time.Sleep(2100 * time.Millisecond)
	snapshot := filepath.Join(tr.base, "stores.bin")
	t.Cleanup(func() { trust.UseSnapshot("") })
	counted := []string{"info trust system store 1 root @" + tr.rel(bundle) + ", $T/root/etc/ssl/certs"}

	trust.UseSnapshot(snapshot)
	checkFindings(t, tr, tr.audit(false).Findings, counted)
	must(t, trust.SaveSnapshot())

	writeRoots(t, shipped, newRoot(t, "Replaced In Place", "Nobody")) // the same inode: the directory unchanged
	trust.UseSnapshot(filepath.Join(tr.base, "another"))              // the next check
	trust.UseSnapshot(snapshot)
	checkFindings(t, tr, tr.audit(false).Findings, counted)
}
