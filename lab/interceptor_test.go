package lab

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
)

const goproxyOrg = "GoProxy untrusted MITM proxy Inc"

func newInterceptorLab(t *testing.T) (*PKI, *Interceptor) {
	t.Helper()
	p := newTestPKI(t)
	o, err := NewOrigin(p, OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, o)
	i, err := NewInterceptor(p, InterceptorOptions{CA: p.EnterpriseRoot, Routes: Routes{"github.com": o.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, i)
	return p, i
}

// checkGoproxyLeaf asserts the chain is goproxy's forgery: signed by the
// enterprise root, trusted by the corporate store only.
func checkGoproxyLeaf(t *testing.T, p *PKI, chain []*x509.Certificate) {
	t.Helper()
	leaf := chain[0]
	if leaf.Issuer.CommonName != p.EnterpriseRoot.Cert.Subject.CommonName || leaf.CheckSignatureFrom(p.EnterpriseRoot.Cert) != nil {
		t.Errorf("leaf issued by %q, want the enterprise root", leaf.Issuer)
	}
	if !slices.Equal(leaf.Subject.Organization, []string{goproxyOrg}) {
		t.Errorf("leaf subject O %v, want goproxy's", leaf.Subject.Organization)
	}
	if err := verifyChain(chain, p.PublicPool(), "github.com"); err == nil {
		t.Error("forged chain verifies against the public pool")
	}
	if err := verifyChain(chain, p.SystemPool(), "github.com"); err != nil {
		t.Errorf("forged chain against the system pool: %v", err)
	}
}

func TestInterceptorExplicitProxy(t *testing.T) {
	t.Parallel()
	p, i := newInterceptorLab(t)
	client := func(roots *x509.CertPool) *http.Client {
		tr := &http.Transport{Proxy: http.ProxyURL(i.URL()), TLSClientConfig: &tls.Config{RootCAs: roots}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: testTimeout}
	}

	resp, body := get(t, client(p.SystemPool()), "https://github.com/mitmwatch")
	if resp.StatusCode != 200 || body != "ok" {
		t.Errorf("through the proxy: %s %q, want the origin's 200 ok", resp.Status, body)
	}
	checkGoproxyLeaf(t, p, resp.TLS.PeerCertificates)

	_, err := client(p.PublicPool()).Get("https://github.com/")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("public-store client got %v, want unknown authority", err)
	}
}

func TestInterceptorRedirectDialer(t *testing.T) {
	t.Parallel()
	p, i := newInterceptorLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	raw, err := i.RedirectDialer()(ctx, "tcp", "github.com:443")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := tls.Client(raw, &tls.Config{ServerName: "github.com", InsecureSkipVerify: true})
	if err := c.HandshakeContext(ctx); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	checkGoproxyLeaf(t, p, c.ConnectionState().PeerCertificates)

	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: github.com\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("through the redirect: %s %q", resp.Status, body)
	}
}

func TestRoutesStayOnLoopback(t *testing.T) {
	t.Parallel()
	_, err := Routes{}.DialContext(context.Background(), "tcp", "github.com:443")
	if err == nil {
		t.Error("unrouted host dialled")
	}
}
