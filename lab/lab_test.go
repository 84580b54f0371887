package lab

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testTimeout bounds every network step of a test.
const testTimeout = 10 * time.Second

type closer interface{ Close() error }

func cleanup(t testing.TB, c closer) {
	t.Helper()
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
}

// dialTLS dials addr and runs a client handshake with cfg.
func dialTLS(t testing.TB, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn), nil
}

// verifyChain verifies a presented chain against roots, as a client with
// that trust store would.
func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, name string) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter})
	return err
}

// httpClient talks to the lab server at addr whatever host a URL names.
func httpClient(t testing.TB, addr string, cfg *tls.Config) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:   cfg,
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       testTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t testing.TB, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp, string(body)
}

func TestOrigin(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	o, err := NewOrigin(p, OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, o)

	c, err := dialTLS(t, o.Addr(), &tls.Config{ServerName: "github.com", RootCAs: p.PublicPool(), NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	st := c.ConnectionState()
	if st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != "h2" {
		t.Errorf("got %s ALPN %q, want TLS 1.3 and h2", tls.VersionName(st.Version), st.NegotiatedProtocol)
	}
	if n := len(st.PeerCertificates); n != 2 || st.PeerCertificates[1].Subject.CommonName != "Lab Public TLS CA 2026" {
		t.Errorf("chain of %d, want leaf + public intermediate", n)
	}

	resp, body := get(t, httpClient(t, o.Addr(), &tls.Config{RootCAs: p.PublicPool()}), "https://pypi.org/simple/")
	if resp.StatusCode != 200 || body != "ok" || resp.ProtoMajor != 2 {
		t.Errorf("got %s %s %q, want HTTP/2 200 ok", resp.Proto, resp.Status, body)
	}
}

func TestOriginVersionsAndALPN(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	o, err := NewOrigin(p, OriginOptions{MaxVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, o)
	c, err := dialTLS(t, o.Addr(), &tls.Config{ServerName: "goproxy.lab.example", RootCAs: p.PublicPool(), NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if st := c.ConnectionState(); st.Version != tls.VersionTLS12 || st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("got %s ALPN %q, want TLS 1.2 and http/1.1", tls.VersionName(st.Version), st.NegotiatedProtocol)
	}
	resp, body := get(t, httpClient(t, o.Addr(), &tls.Config{RootCAs: p.PublicPool()}), "https://goproxy.lab.example/")
	if resp.ProtoMajor != 1 || body != "ok" {
		t.Errorf("got %s %q", resp.Proto, body)
	}
}

func TestOriginRenew(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	o, err := NewOrigin(p, OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, o)
	leaf := func() *x509.Certificate {
		c, err := dialTLS(t, o.Addr(), &tls.Config{ServerName: "github.com", RootCAs: p.PublicPool()})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		return c.ConnectionState().PeerCertificates[0]
	}
	before := leaf()
	if again := leaf(); again.SerialNumber.Cmp(before.SerialNumber) != 0 {
		t.Error("leaf changed without a renewal")
	}
	o.Renew()
	after := leaf()
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 || string(after.RawSubjectPublicKeyInfo) == string(before.RawSubjectPublicKeyInfo) {
		t.Error("renewal kept the serial or the key")
	}
	if string(after.RawIssuer) != string(before.RawIssuer) {
		t.Error("renewal changed the issuer")
	}
}

func TestOriginLatency(t *testing.T) {
	t.Parallel()
	const latency = 150 * time.Millisecond
	p := newTestPKI(t)
	o, err := NewOrigin(p, OriginOptions{Latency: latency})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, o)
	start := time.Now()
	if _, err := dialTLS(t, o.Addr(), &tls.Config{ServerName: "github.com", RootCAs: p.PublicPool()}); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if took := time.Since(start); took < latency {
		t.Errorf("handshake took %v, want at least %v", took, latency)
	}
}

func TestForgerClonedDN(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	f, err := NewForger(ForgerOptions{CA: p.ClonedIntermediate, MaxVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, f)

	present := func(name string) tls.ConnectionState {
		c, err := dialTLS(t, f.Addr(), &tls.Config{ServerName: name, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatalf("handshake %s: %v", name, err)
		}
		return c.ConnectionState()
	}
	st := present("pypi.org")
	if st.Version != tls.VersionTLS12 || st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("got %s ALPN %q, want TLS 1.2 and http/1.1", tls.VersionName(st.Version), st.NegotiatedProtocol)
	}
	chain := st.PeerCertificates
	if len(chain) != 2 || string(chain[1].RawSubject) != string(p.PublicIntermediate.Cert.RawSubject) {
		t.Fatalf("chain of %d should end in an intermediate named like the public one", len(chain))
	}
	if err := verifyChain(chain, p.PublicPool(), "pypi.org"); err == nil {
		t.Error("cloned-DN chain verifies against the public pool")
	}
	if err := verifyChain(chain, p.SystemPool(), "pypi.org"); err != nil {
		t.Errorf("cloned-DN chain against the system pool: %v", err)
	}
	leaf := chain[0]
	if age := time.Since(leaf.NotBefore); age > 2*time.Minute {
		t.Errorf("forged leaf is %v old, want freshly minted", age)
	}
	for _, ext := range leaf.Extensions {
		if ext.Id.Equal(oidSCTList) {
			t.Error("forged leaf carries SCTs")
		}
	}
	other := present("github.com").PeerCertificates[0]
	if string(other.RawSubjectPublicKeyInfo) != string(leaf.RawSubjectPublicKeyInfo) {
		t.Error("forger should reuse one key for every host")
	}
}

func TestPlain(t *testing.T) {
	t.Parallel()
	pl, err := NewPlain(PlainOptions{
		Status:  http.StatusFound,
		Headers: http.Header{"Location": {"http://portal.lab.example/login"}, "Via": {"1.1 lab-firewall"}},
		Body:    "<html><title>Access Denied</title><body>blocked by policy</body></html>",
	})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, pl)

	_, err = dialTLS(t, pl.Addr(), &tls.Config{ServerName: "github.com"})
	if err == nil || !strings.Contains(err.Error(), "tls: first record does not look like a TLS handshake") {
		t.Errorf("handshake error %v, want the plaintext one", err)
	}

	resp, body := get(t, httpClient(t, pl.Addr(), nil), "http://github.com/")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://portal.lab.example/login" || !strings.Contains(body, "blocked by policy") {
		t.Errorf("got %s Location %q body %q", resp.Status, resp.Header.Get("Location"), body)
	}
}

func TestPlainDefault(t *testing.T) {
	t.Parallel()
	pl, err := NewPlain(PlainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, pl)
	// What a raw ClientHello gets back: read the answer as HTTP.
	c, err := net.DialTimeout("tcp", pl.Addr(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write(clientHello(t, &tls.Config{ServerName: "github.com"})); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %s, want 400", resp.Status)
	}
}

func TestPortal(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	po, err := NewPortal(p)
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, po)

	_, err = dialTLS(t, po.Addr(), &tls.Config{ServerName: "github.com", RootCAs: p.PublicPool()})
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Fatalf("handshake error %v, want a name mismatch", err)
	}
	if err := verifyChain([]*x509.Certificate{hostErr.Certificate, p.PublicIntermediate.Cert}, p.PublicPool(), PortalHost); err != nil {
		t.Errorf("portal leaf should be publicly valid for %s: %v", PortalHost, err)
	}

	resp, _ := get(t, httpClient(t, po.Addr(), &tls.Config{RootCAs: p.PublicPool()}), "https://"+PortalHost+"/simple/")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != PortalLoginURL {
		t.Errorf("got %s Location %q", resp.Status, resp.Header.Get("Location"))
	}
}

func TestBlackhole(t *testing.T) {
	t.Parallel()
	b, err := NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, b)
	c, err := net.DialTimeout("tcp", b.Addr(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	err = tls.Client(c, &tls.Config{ServerName: "github.com"}).Handshake()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("handshake error %v, want a timeout", err)
	}
}

func TestClosedAddr(t *testing.T) {
	t.Parallel()
	addr, err := ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, err = net.DialTimeout("tcp", addr, testTimeout)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial error %v, want connection refused", err)
	}
}
