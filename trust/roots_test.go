package trust

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

// issuer is a CA of the tests below, with its key.
type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serials atomic.Int64

// newCA makes a CA: self-signed when parent is nil. Two CAs may share a
// subject (a root re-keyed, or an interceptor's clone).
func newCA(t *testing.T, name string, parent *issuer) *issuer {
	t.Helper()
	return issue(t, parent, &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, time.Now())
}

// newLeaf makes a server certificate for name, valid from notBefore for a
// day.
func newLeaf(t *testing.T, name string, parent *issuer, notBefore time.Time) *x509.Certificate {
	t.Helper()
	return issue(t, parent, &x509.Certificate{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, notBefore).cert
}

func issue(t *testing.T, parent *issuer, tmpl *x509.Certificate, notBefore time.Time) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(serials.Add(1))
	tmpl.NotBefore, tmpl.NotAfter = notBefore.Add(-time.Minute), notBefore.Add(24*time.Hour)
	signer, signerCert := crypto.Signer(key), tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{cert, key}
}

// TestRootsVerifyAsTheWholeStore: a chain verifies against the roots it
// names exactly as against the whole store: the same outcome, failure,
// words and number of chains, where roots share a subject, where the
// leaf is itself a root, and where nothing anchors it.
func TestRootsVerifyAsTheWholeStore(t *testing.T) {
	t.Parallel()
	now := time.Now()
	sameA, sameB := newCA(t, "Same Name Root", nil), newCA(t, "Same Name Root", nil)
	other, unknown := newCA(t, "Other Root", nil), newCA(t, "Unknown Root", nil)
	inter := newCA(t, "Other Intermediate", other)
	crossed := newCA(t, "Other Intermediate", sameA)     // the same intermediate's name, signed by another root
	pinned := newLeaf(t, "pinned.example", unknown, now) // a leaf the store holds itself
	store := []*x509.Certificate{sameA.cert, sameB.cert, other.cert, newCA(t, "Unrelated Root", nil).cert, pinned}
	whole := x509.NewCertPool()
	for _, c := range store {
		whole.AddCert(c)
	}
	roots := NewRoots(store...)
	chains := map[string][]*x509.Certificate{
		"the second root of a shared name": {newLeaf(t, "a.example", sameB, now)},
		"the first root of a shared name":  {newLeaf(t, "b.example", sameA, now)},
		"through an intermediate":          {newLeaf(t, "c.example", inter, now), inter.cert},
		"through a cross-signed one":       {newLeaf(t, "d.example", crossed, now), crossed.cert, inter.cert},
		"the leaf is a root":               {other.cert},
		"the leaf is in the store":         {pinned},
		"no root of the store":             {newLeaf(t, "e.example", unknown, now)},
		"an intermediate of no root":       {newLeaf(t, "f.example", newCA(t, "Loose", unknown), now)},
		"expired":                          {newLeaf(t, "g.example", inter, now.Add(-48*time.Hour)), inter.cert},
	}
	for name, chain := range chains {
		want, got := Verify(chain, whole, now), Verify(chain, roots.For(chain), now)
		if got.OK() != want.OK() || got.Failure != want.Failure || got.Detail != want.Detail || len(got.Chains) != len(want.Chains) ||
			(got.AtValidTime == nil) != (want.AtValidTime == nil) {
			t.Errorf("%s: For gives ok=%v %v %q (%d chains), the whole store ok=%v %v %q (%d chains)",
				name, got.OK(), got.Failure, got.Detail, len(got.Chains), want.OK(), want.Failure, want.Detail, len(want.Chains))
		}
	}
	if roots.Len() != len(store) {
		t.Errorf("Len() = %d, want %d", roots.Len(), len(store))
	}
	if !roots.Pool().Equal(whole) {
		t.Error("Pool() is not the whole store")
	}
	var none *Roots
	if none.For(chains["the leaf is a root"]) == nil || Verify(chains["the leaf is a root"], none.For(chains["the leaf is a root"]), now).OK() {
		t.Error("a nil Roots trusts something")
	}
}

// TestRootsParseLazily: a bundle is indexed without parsing its roots,
// and a chain parses the roots it names and no other.
func TestRootsParseLazily(t *testing.T) {
	t.Parallel()
	named, unnamed := newCA(t, "Lazy Named Root", nil), newCA(t, "Lazy Unnamed Root", nil)
	r, err := PublicIndex(writePEM(t, unnamed.cert, named.cert))
	if err != nil {
		t.Fatal(err)
	}
	asked := func(c *x509.Certificate) bool {
		_, ok := parsedCerts.Load(sha256.Sum256(c.Raw))
		return ok
	}
	if asked(named.cert) || asked(unnamed.cert) {
		t.Fatal("indexing parsed a root")
	}
	chain := []*x509.Certificate{newLeaf(t, "lazy.example", named, time.Now())}
	if !Verify(chain, r.For(chain), time.Now()).OK() {
		t.Fatal("the chain does not verify against its root")
	}
	if !asked(named.cert) || asked(unnamed.cert) {
		t.Errorf("parsed: named %v, unnamed %v; want only the named", asked(named.cert), asked(unnamed.cert))
	}
}

// TestStoreIndexesAreTheStores: the indexes hold what the pools hold:
// the compiled-in Mozilla roots, and the system store as x509 reads it
// (here a bundle and a directory named by SSL_CERT_FILE and SSL_CERT_DIR).
func TestStoreIndexesAreTheStores(t *testing.T) {
	public, err := PublicIndex(Mozilla)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := PublicRoots(Mozilla)
	if err != nil {
		t.Fatal(err)
	}
	if !public.Pool().Equal(pool) || public.Len() < 100 {
		t.Errorf("the Mozilla index (%d roots) is not the Mozilla pool", public.Len())
	}
	a, b, c := newCA(t, "Bundle Root", nil), newCA(t, "Dir Root", nil), newCA(t, "Both Root", nil)
	dir := t.TempDir()
	if err := os.Rename(writePEM(t, b.cert, c.cert), filepath.Join(dir, "dir.pem")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", writePEM(t, a.cert, c.cert))
	t.Setenv("SSL_CERT_DIR", dir)
	system, err := SystemIndexLater(System)()
	if err != nil {
		t.Fatal(err)
	}
	want, err := SystemRoots(System)
	if err != nil {
		t.Fatal(err)
	}
	if !system.Pool().Equal(want) || system.Len() != 3 {
		t.Errorf("the system index (%d roots) is not the system pool", system.Len())
	}
}

// TestLoadBlocks: LoadCerts' errors, without the parse.
func TestLoadBlocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := writePEM(t, newCA(t, "One", nil).cert, newCA(t, "Two", nil).cert)
	if blocks, err := LoadBlocks(good); err != nil || len(blocks) != 2 {
		t.Errorf("LoadBlocks(good) = %d blocks, %v", len(blocks), err)
	}
	for _, tt := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "missing.pem"), "no such file"},
		{"empty", write("empty.pem", "# nothing\n"), "no certificates found"},
		{"garbled", write("garbled.pem", "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n"), "certificate 1: x509: malformed certificate"},
	} {
		if _, err := LoadBlocks(tt.path); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("%s: %v, want an error naming the file and %q", tt.name, err, tt.want)
		}
		if _, err := PublicIndex(tt.path); err == nil {
			t.Errorf("%s: PublicIndex loaded it", tt.name)
		}
	}
}

// TestVerifiedBy: a TLS client verifies a real server as crypto/tls
// would, asking for the roots only once the chain is in: the roots that
// anchor it, another PKI's, a name the leaf does not carry, an IP
// address, a clock past the leaf, and a config that skips verification.
func TestVerifiedBy(t *testing.T) {
	t.Parallel()
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	other, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.PublicIntermediate.Issue(lab.LeafOptions{}, "dot.lab.example", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*leaf}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for range 16 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.(*tls.Conn).Handshake()
				c.Read(make([]byte, 1))
			}()
		}
	}()
	good, bad := NewRoots(pki.PublicRoot.Cert), NewRoots(other.PublicRoot.Cert)
	for _, tt := range []struct {
		name  string
		cfg   *tls.Config
		roots *Roots
		want  func(error) bool
	}{
		{"its roots", &tls.Config{ServerName: "dot.lab.example"}, good, func(err error) bool { return err == nil }},
		{"its roots, by address", &tls.Config{ServerName: "127.0.0.1"}, good, func(err error) bool { return err == nil }},
		{"another PKI", &tls.Config{ServerName: "dot.lab.example"}, bad, func(err error) bool {
			var ua x509.UnknownAuthorityError
			var cv *tls.CertificateVerificationError
			return errors.As(err, &ua) && errors.As(err, &cv) && detector.FailureOf(err) == detector.FailureUnknownAuthority
		}},
		{"another name", &tls.Config{ServerName: "other.lab.example"}, good, func(err error) bool {
			var he x509.HostnameError
			return errors.As(err, &he)
		}},
		{"another address", &tls.Config{ServerName: "127.0.0.2"}, good, func(err error) bool {
			var he x509.HostnameError
			return errors.As(err, &he)
		}},
		{"a clock past the leaf", &tls.Config{ServerName: "dot.lab.example", Time: func() time.Time { return time.Now().AddDate(1, 0, 0) }}, good, func(err error) bool {
			return detector.FailureOf(err) == detector.FailureExpired
		}},
		{"no name", &tls.Config{}, good, func(err error) bool { return err != nil && strings.Contains(err.Error(), "ServerName") }},
		{"verification skipped", &tls.Config{ServerName: "other.lab.example", InsecureSkipVerify: true}, bad, func(err error) bool { return err == nil }},
	} {
		asked := 0
		cfg := VerifiedBy(tt.cfg, func() *Roots { asked++; return tt.roots })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", ln.Addr().String())
		cancel()
		if conn != nil {
			conn.Close()
		}
		if !tt.want(err) {
			t.Errorf("%s: %v", tt.name, err)
		}
		if wantAsked := map[bool]int{true: 0, false: 1}[tt.cfg.InsecureSkipVerify || tt.cfg.ServerName == ""]; asked != wantAsked {
			t.Errorf("%s: roots asked %d times, want %d", tt.name, asked, wantAsked)
		}
	}
}

// broken is c's DER with its first time unreadable ('Z' made 'X'): the
// shape of a certificate, with its names, that x509 rejects.
func broken(t *testing.T, c *x509.Certificate) []byte {
	t.Helper()
	der := bytes.Clone(c.Raw)
	i := bytes.LastIndex(der, c.RawSubject) // validity comes just before the subject
	for j := i - 1; j > 0; j-- {
		if der[j] == 'Z' {
			der[j] = 'X'
			break
		}
	}
	if _, err := x509.ParseCertificate(der); err == nil {
		t.Fatal("the broken certificate parses")
	}
	if _, ok := RawNames(der); !ok {
		t.Fatal("the broken certificate has lost its names")
	}
	return der
}

// TestRootsNameABrokenRoot: a bundle root that x509 rejects is skipped
// like x509's pools skip it, and is the strict store's Err once a chain
// names it, not before; the system store and a pool have none.
func TestRootsNameABrokenRoot(t *testing.T) {
	t.Parallel()
	good, bad := newCA(t, "Good Root", nil), newCA(t, "Broken Root", nil)
	text := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good.cert.Raw})
	text = append(text, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: broken(t, bad.cert)})...)
	path := filepath.Join(t.TempDir(), "public.pem")
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := PublicIndex(path)
	if err != nil || r.Len() != 2 {
		t.Fatalf("PublicIndex: %d roots, %v", r.Len(), err)
	}
	now := time.Now()
	fine := []*x509.Certificate{newLeaf(t, "good.example", good, now)}
	if !Verify(fine, r.For(fine), now).OK() || r.Err() != nil {
		t.Fatalf("a chain of the good root: Err %v", r.Err())
	}
	named := []*x509.Certificate{newLeaf(t, "broken.example", bad, now)}
	if Verify(named, r.For(named), now).OK() {
		t.Error("a chain verified against a root x509 rejects")
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), path+": certificate 2: x509:") {
		t.Errorf("Err() = %v, want the bundle's certificate 2", err)
	}
	if err := PoolRoots(nil).Err(); err != nil || PoolRoots(nil).Pool() == nil || PoolRoots(nil).For(named) == nil {
		t.Error("a nil pool is not an empty store")
	}
}
