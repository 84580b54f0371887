package lab

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestCloseEndsEverything holds a connection open on every kind of server,
// closes the servers, and checks that the connections end and no goroutine
// outlives them. It is not parallel so the goroutine count is its own.
func TestCloseEndsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newTestPKI(t)
	o, err := NewOrigin(p, OriginOptions{Latency: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	plainOrigin, err := NewOrigin(p, OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	i, err := NewInterceptor(p, InterceptorOptions{Routes: Routes{"github.com": plainOrigin.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewForger(ForgerOptions{CA: p.EnterpriseRoot})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := NewPlain(PlainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	po, err := NewPortal(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewSentinelRelay(plainOrigin.Addr())
	if err != nil {
		t.Fatal(err)
	}
	sf, err := NewSNIFilter(plainOrigin.Addr(), SNIDrop)
	if err != nil {
		t.Fatal(err)
	}
	servers := []interface {
		closer
		Addr() string
	}{o, i, f, pl, po, b, r, sf, plainOrigin}

	var held []net.Conn
	for _, s := range servers {
		c, err := net.DialTimeout("tcp", s.Addr(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// An intercepted tunnel, which goproxy owns after hijacking.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tunnel, err := i.RedirectDialer()(ctx, "tcp", "github.com:443")
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(tunnel, &tls.Config{ServerName: "github.com", InsecureSkipVerify: true})
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	held = append(held, tunnel)
	// A handshake stuck in the hour-long latency.
	slow := held[0]
	go tls.Client(slow, &tls.Config{ServerName: "github.com", InsecureSkipVerify: true}).Handshake()

	for _, s := range servers {
		if err := s.Close(); err != nil {
			t.Errorf("%T: close: %v", s, err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("%T: second close: %v", s, err)
		}
	}
	for n, c := range held {
		c.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := io.Copy(io.Discard, c); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("connection %d still open after Close", n)
			}
		}
		c.Close()
	}

	deadline := time.Now().Add(testTimeout)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
