package probe_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/probe"
)

// failureBound bounds every network operation of these tests.
const failureBound = 5 * time.Second

// failureCase produces one real error and names the failure it must map to.
type failureCase struct {
	name string
	err  func(t *testing.T) error
	want detector.Failure
	bug  string // set while Classify is known to be wrong for this error
}

func TestClassify(t *testing.T) {
	t.Parallel()
	pki := newFailurePKI(t)
	for _, c := range []failureCase{
		{name: "nil", err: func(*testing.T) error { return nil }, want: detector.FailureNone},

		// Connecting.
		{name: "connection refused", err: dialClosedPort, want: detector.FailureRefused},
		{name: "dial past its deadline", err: dialExpired, want: detector.FailureTimeout},
		{name: "network unreachable (constructed)", err: func(*testing.T) error {
			return fmt.Errorf("connecting to 192.0.2.1:443: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)})
		}, want: detector.FailureNetUnreachable},
		{name: "host unreachable (constructed)", err: func(*testing.T) error {
			return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}
		}, want: detector.FailureHostUnreachable},
		{name: "broken pipe (constructed)", err: func(*testing.T) error {
			return &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
		}, want: detector.FailureReset},

		// Resolving.
		{name: "DNS NXDOMAIN from a resolver", err: lookupNXDOMAIN, want: detector.FailureDNS},
		{name: "DNS resolver that never answers", err: lookupSilent, want: detector.FailureTimeout},
		{name: "DNS error value wrapped as the probe does", err: func(*testing.T) error {
			return fmt.Errorf("resolving goproxy.lab.example: %w", &net.DNSError{Err: "no such host", Name: "goproxy.lab.example", IsNotFound: true})
		}, want: detector.FailureDNS},
		{name: "DNS timeout value", err: func(*testing.T) error {
			return &net.DNSError{Err: "i/o timeout", Name: "goproxy.lab.example", IsTimeout: true}
		}, want: detector.FailureTimeout},

		// Proxies.
		{name: "proxy refusal", err: func(*testing.T) error {
			return &probe.ProxyError{Status: 407, Answer: &detector.HTTPAnswer{Status: 407}}
		}, want: detector.FailureProxy},
		{name: "wrapped proxy refusal", err: func(*testing.T) error {
			return fmt.Errorf("probe goproxy.lab.example: %w", &probe.ProxyError{Status: 403})
		}, want: detector.FailureProxy},

		// Handshaking.
		{name: "handshake against a listener that never answers (context deadline)", err: handshakeSilentCtx, want: detector.FailureTimeout},
		{name: "handshake against a listener that never answers (conn deadline)", err: handshakeSilentConnDeadline, want: detector.FailureTimeout},
		{name: "reset after the ClientHello", err: handshakeReset, want: detector.FailureReset},
		{name: "closed after the ClientHello", err: handshakeEOF, want: detector.FailureEOF},
		{name: "plain HTTP answer", err: handshakePlainHTTP, want: detector.FailureNotTLS},
		{name: "alert: client certificate required", err: func(t *testing.T) error {
			return handshakeTLS(t, pki,
				&tls.Config{ClientAuth: tls.RequireAnyClientCert},
				&tls.Config{MaxVersion: tls.VersionTLS12})
		}, want: detector.FailureTLSAlert},
		{name: "alert: no common application protocol", err: func(t *testing.T) error {
			return handshakeTLS(t, pki, &tls.Config{NextProtos: []string{"mitmwatch-test"}}, &tls.Config{NextProtos: []string{"h2"}})
		}, want: detector.FailureTLSAlert},
		{name: "alert: server offers only TLS 1.3, client at most 1.2", err: func(t *testing.T) error {
			return handshakeTLS(t, pki, &tls.Config{MinVersion: tls.VersionTLS13}, &tls.Config{MaxVersion: tls.VersionTLS12})
		}, want: detector.FailureProtocolVersion},
		{name: "alert: TLS 1.3 alone against a server at most 1.2", err: func(t *testing.T) error {
			return handshakeTLS(t, pki, &tls.Config{MaxVersion: tls.VersionTLS12}, &tls.Config{MinVersion: tls.VersionTLS13})
		}, want: detector.FailureProtocolVersion},
		{name: "downgrade sentinel in the ServerHello", err: func(t *testing.T) error {
			return handshakeCraftedServerHello(t, true, &tls.Config{})
		}, want: detector.FailureDowngrade},
		{name: "TLS 1.3 alone answered by a TLS 1.2-only server", err: func(t *testing.T) error {
			// RFC 8446 4.2.1: a TLS 1.2 server ignores supported_versions
			// and answers 1.2; Go's client then refuses the version itself.
			return handshakeCraftedServerHello(t, false, &tls.Config{MinVersion: tls.VersionTLS13})
		}, want: detector.FailureProtocolVersion,
			bug: "Classify (probe/failure.go) matches neither tls.AlertError (only set on QUIC) nor the message \"tls: server selected unsupported protocol version 303\", so the probe's TLS-1.3-only attempt against a 1.2-only middlebox reports unknown_failure"},
		{name: "handshake with verification against the wrong roots", err: func(t *testing.T) error {
			return handshakeTLS(t, pki, &tls.Config{}, &tls.Config{RootCAs: x509.NewCertPool()})
		}, want: detector.FailureUnknownAuthority},

		// Verifying, as Prober.verify does.
		{name: "x509 unknown authority", err: func(*testing.T) error {
			_, err := pki.leaf.Verify(x509.VerifyOptions{Roots: x509.NewCertPool(), CurrentTime: pki.now})
			return err
		}, want: detector.FailureUnknownAuthority},
		{name: "x509 hostname mismatch", err: func(*testing.T) error {
			_, err := pki.leaf.Verify(x509.VerifyOptions{Roots: pki.roots, DNSName: "other.example", CurrentTime: pki.now})
			return err
		}, want: detector.FailureHostnameMismatch},
		{name: "x509 hostname mismatch from VerifyHostname", err: func(*testing.T) error {
			return pki.leaf.VerifyHostname("other.example")
		}, want: detector.FailureHostnameMismatch},
		{name: "x509 expired", err: func(*testing.T) error {
			_, err := pki.leaf.Verify(x509.VerifyOptions{Roots: pki.roots, CurrentTime: pki.now.AddDate(2, 0, 0)})
			return err
		}, want: detector.FailureExpired},
		{name: "x509 not yet valid", err: func(*testing.T) error {
			_, err := pki.leaf.Verify(x509.VerifyOptions{Roots: pki.roots, CurrentTime: pki.now.AddDate(-2, 0, 0)})
			return err
		}, want: detector.FailureExpired},
		{name: "x509 leaf not valid for server authentication", err: func(*testing.T) error {
			_, err := pki.clientOnly.Verify(x509.VerifyOptions{Roots: pki.roots, CurrentTime: pki.now,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		}, want: detector.FailureInvalidCert},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := c.err(t)
			got := detector.FailureOf(err)
			if got != c.want {
				t.Errorf("Classify(%T %v) = %q, want %q", err, err, got, c.want)
			}
		})
	}
}

// failureCtx is a context bounded for one network operation.
func failureCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// serveOnce accepts one connection on loopback and runs handle on it; the
// test waits for handle at cleanup. Every connection has a deadline.
func serveOnce(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(failureBound))
		handle(c)
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// dial connects to addr and closes the connection at cleanup.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	var d net.Dialer
	c, err := d.DialContext(failureCtx(t, failureBound), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// handshake runs a TLS client handshake on conn, bounded.
func handshake(t *testing.T, conn net.Conn, cfg *tls.Config) error {
	t.Helper()
	if cfg.ServerName == "" {
		cfg.ServerName = "good.example"
	}
	if cfg.RootCAs == nil && cfg.VerifyConnection == nil {
		cfg.InsecureSkipVerify = true // as the probe does; verification is separate
	}
	return tls.Client(conn, cfg).HandshakeContext(failureCtx(t, failureBound))
}

// readClientHello consumes what the client sent first.
func readClientHello(c net.Conn) {
	buf := make([]byte, 4096)
	c.Read(buf)
}

func dialClosedPort(t *testing.T) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var d net.Dialer
	c, err := d.DialContext(failureCtx(t, failureBound), "tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("dialling closed port %s succeeded", addr)
	}
	return fmt.Errorf("connecting to %s: %w", addr, err)
}

func dialExpired(t *testing.T) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		c.Close()
		t.Fatal("dial with an expired deadline succeeded")
	}
	return err
}

// silentListener accepts connections in the kernel backlog and never
// answers: a handshake against it only ends at its deadline.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func handshakeSilentCtx(t *testing.T) error {
	conn := dial(t, silentListener(t))
	cfg := &tls.Config{ServerName: "good.example", InsecureSkipVerify: true}
	return tls.Client(conn, cfg).HandshakeContext(failureCtx(t, 100*time.Millisecond))
}

func handshakeSilentConnDeadline(t *testing.T) error {
	conn := dial(t, silentListener(t))
	conn.SetDeadline(time.Now().Add(100 * time.Millisecond))
	return tls.Client(conn, &tls.Config{ServerName: "good.example", InsecureSkipVerify: true}).Handshake()
}

func handshakeReset(t *testing.T) error {
	addr := serveOnce(t, func(c net.Conn) {
		readClientHello(c)
		c.(*net.TCPConn).SetLinger(0)
	})
	return handshake(t, dial(t, addr), &tls.Config{})
}

func handshakeEOF(t *testing.T) error {
	addr := serveOnce(t, readClientHello)
	return handshake(t, dial(t, addr), &tls.Config{})
}

func handshakePlainHTTP(t *testing.T) error {
	addr := serveOnce(t, func(c net.Conn) {
		readClientHello(c)
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		io.Copy(io.Discard, c) // until the client gives up
	})
	return handshake(t, dial(t, addr), &tls.Config{})
}

// handshakeTLS runs a real TLS server with srv (certificate added) against a
// client with cli and returns the client's handshake error.
func handshakeTLS(t *testing.T, pki *failurePKI, srv, cli *tls.Config) error {
	srv.Certificates = []tls.Certificate{pki.serverCert}
	addr := serveOnce(t, func(c net.Conn) {
		tc := tls.Server(c, srv)
		if err := tc.Handshake(); err == nil {
			io.Copy(io.Discard, tc)
		}
	})
	return handshake(t, dial(t, addr), cli)
}

// handshakeCraftedServerHello answers the ClientHello with a hand-made TLS
// 1.2 ServerHello, carrying the RFC 8446 downgrade sentinel or not, as a
// middlebox that speaks only TLS 1.2 would.
func handshakeCraftedServerHello(t *testing.T, sentinel bool, cli *tls.Config) error {
	var random [32]byte
	rand.Read(random[:24])
	if sentinel {
		copy(random[24:], "DOWNGRD\x01")
	}
	body := []byte{3, 3} // TLS 1.2
	body = append(body, random[:]...)
	body = append(body, 0) // empty session ID
	suite := tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
	body = append(body, byte(suite>>8), byte(suite), 0) // cipher suite, null compression
	msg := append([]byte{2, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	record := append([]byte{22, 3, 3, byte(len(msg) >> 8), byte(len(msg))}, msg...)
	addr := serveOnce(t, func(c net.Conn) {
		readClientHello(c)
		c.Write(record)
		io.Copy(io.Discard, c)
	})
	return handshake(t, dial(t, addr), cli)
}

// dnsServer answers every query on loopback UDP with answer(query), or not
// at all when answer returns nil, and returns a resolver that asks it.
func dnsServer(t *testing.T, answer func(q []byte) []byte) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if a := answer(buf[:n]); a != nil {
				pc.WriteTo(a, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// nxdomain turns a query into an NXDOMAIN answer: the header and the
// question, QR and RA set, RCODE 3, no records.
func nxdomain(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	i += 1 + 4 // root label, QTYPE, QCLASS
	if i > len(q) {
		return nil
	}
	a := append([]byte(nil), q[:i]...)
	a[2] = 0x80 | q[2]&0x01 // QR, keep RD
	a[3] = 0x80 | 3         // RA, NXDOMAIN
	a[4], a[5] = 0, 1       // one question
	clear(a[6:12])          // no answer, authority or additional records
	return a
}

func lookupNXDOMAIN(t *testing.T) error {
	r := dnsServer(t, nxdomain)
	_, err := r.LookupNetIP(failureCtx(t, failureBound), "ip", "nowhere.mitmwatch.test.")
	if err == nil {
		t.Fatal("lookup of an NXDOMAIN name succeeded")
	}
	return fmt.Errorf("resolving nowhere.mitmwatch.test: %w", err)
}

func lookupSilent(t *testing.T) error {
	r := dnsServer(t, func([]byte) []byte { return nil })
	_, err := r.LookupNetIP(failureCtx(t, 200*time.Millisecond), "ip", "slow.mitmwatch.test.")
	if err == nil {
		t.Fatal("lookup against a silent server succeeded")
	}
	return err
}

// failurePKI is a root, a server certificate under it, and a certificate
// under it that is only good for client authentication.
type failurePKI struct {
	now        time.Time
	roots      *x509.CertPool
	leaf       *x509.Certificate
	clientOnly *x509.Certificate
	serverCert tls.Certificate
}

func newFailurePKI(t *testing.T) *failurePKI {
	t.Helper()
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(1)
	issue := func(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rootKey, leafKey, otherKey := newKey(), newKey(), newKey()
	rootTmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "mitmwatch failure test root"},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	root := issue(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	leafTmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "good.example"},
		DNSNames:  []string{"good.example"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 6, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leaf := issue(leafTmpl, root, &leafKey.PublicKey, rootKey)
	clientOnly := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "client.example"},
		DNSNames:    []string{"client.example"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(0, 1, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, root, &otherKey.PublicKey, rootKey)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	return &failurePKI{
		now:        now,
		roots:      roots,
		leaf:       leaf,
		clientOnly: clientOnly,
		serverCert: tls.Certificate{Certificate: [][]byte{leaf.Raw, root.Raw}, PrivateKey: leafKey, Leaf: leaf},
	}
}

// TestClassifyPrecedence: when an error carries several causes, the most
// specific wins.
func TestClassifyPrecedence(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		err  error
		want detector.Failure
	}{
		{"proxy refusal joined with a reset", errors.Join(&probe.ProxyError{Status: 502}, syscall.ECONNRESET), detector.FailureProxy},
		{"DNS timeout is a timeout, not a DNS answer", &net.DNSError{IsTimeout: true}, detector.FailureTimeout},
		{"unexpected EOF", fmt.Errorf("reading CONNECT answer: %w", io.ErrUnexpectedEOF), detector.FailureEOF},
		{"unknown error", errors.New("something else"), detector.FailureUnknown},
	} {
		if got := detector.FailureOf(c.err); got != c.want {
			t.Errorf("%s: Classify(%v) = %q, want %q", c.name, c.err, got, c.want)
		}
	}
}
