package lab

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestHelloServerName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg  *tls.Config
		name string
		ok   bool
	}{
		{&tls.Config{ServerName: "pypi.org"}, "pypi.org", true},
		{&tls.Config{ServerName: "c0ffee12.invalid", NextProtos: []string{"h2", "http/1.1"}}, "c0ffee12.invalid", true},
		{&tls.Config{ServerName: "github.com", MaxVersion: tls.VersionTLS12}, "github.com", true},
		{&tls.Config{InsecureSkipVerify: true}, "", false},                          // no name
		{&tls.Config{ServerName: "192.0.2.1", InsecureSkipVerify: true}, "", false}, // an IP literal is never sent
	} {
		name, ok := helloServerName(clientHello(t, c.cfg))
		if name != c.name || ok != c.ok {
			t.Errorf("%q: got %q %v, want %q %v", c.cfg.ServerName, name, ok, c.name, c.ok)
		}
	}
	if _, ok := helloServerName([]byte("GET / HTTP/1.1\r\n\r\n")); ok {
		t.Error("a name found in plain HTTP")
	}
}

// dialHello connects to addr and runs a handshake naming name ("" for
// none), giving up after a second.
func dialHello(t *testing.T, addr, name string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	return tls.Client(c, &tls.Config{ServerName: name, InsecureSkipVerify: true}).HandshakeContext(ctx)
}

// TestSNIFilter: a listed name is reset or dropped, case aside; any other
// reaches the origin.
func TestSNIFilter(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	o, err := NewOrigin(p, OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, o)
	reset, err := NewSNIFilter(o.Addr(), SNIReset, "PyPI.org")
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, reset)
	drop, err := NewSNIFilter(o.Addr(), SNIDrop, "pypi.org")
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, drop)

	if err := dialHello(t, reset.Addr(), "pypi.org"); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("listed name through the resetting filter: %v, want a reset", err)
	}
	var ne net.Error
	if err := dialHello(t, drop.Addr(), "pypi.org"); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("listed name through the dropping filter: %v, want a timeout", err)
	}
	for _, f := range []*SNIFilter{reset, drop} {
		for _, name := range []string{"files.pythonhosted.org", ""} {
			if err := dialHello(t, f.Addr(), name); err != nil {
				t.Errorf("%v filter, name %q: %v, want it relayed to the origin", f.action, name, err)
			}
		}
	}
	if _, err := NewSNIFilter(o.Addr(), 0); err == nil {
		t.Error("a filter without an action started")
	}
}

func FuzzHelloServerName(f *testing.F) {
	for _, cfg := range []*tls.Config{
		{ServerName: "pypi.org"},
		{ServerName: "c0ffee12.invalid", NextProtos: []string{"h2"}},
		{InsecureSkipVerify: true},
	} {
		f.Add(clientHello(f, cfg))
	}
	f.Add([]byte{})
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		name, ok := helloServerName(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("input modified")
		}
		if !ok && name != "" {
			t.Fatalf("name %q without ok", name)
		}
		if ok && !bytes.Contains(in, []byte(name)) {
			t.Fatalf("name %q is not in the record", name)
		}
	})
}
