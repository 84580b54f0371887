package lab

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"testing"
)

// clientHello captures the first record crypto/tls sends with cfg.
func clientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tls.Client(client, cfg).Handshake()
	}()
	rec, err := readRecord(server)
	server.Close()
	client.Close()
	<-done
	if err != nil {
		t.Fatalf("capture ClientHello: %v", err)
	}
	return rec
}

// extensionTypes lists the extensions of a parsed ClientHello record.
func extensionTypes(t testing.TB, rec []byte) []uint16 {
	t.Helper()
	l, err := parseHello(rec)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var types []uint16
	for p := l.extLenOff + 2; p < l.helloEnd; p += 4 + int(binary.BigEndian.Uint16(rec[p+2:])) {
		types = append(types, binary.BigEndian.Uint16(rec[p:]))
	}
	return types
}

func TestStripSupportedVersions(t *testing.T) {
	t.Parallel()
	hello := clientHello(t, &tls.Config{ServerName: "github.com", NextProtos: []string{"h2"}})
	before := extensionTypes(t, hello)
	out, ok := stripSupportedVersions(hello)
	if !ok {
		t.Fatal("nothing stripped from a TLS 1.3 ClientHello")
	}
	after := extensionTypes(t, out)
	if len(after) != len(before)-1 {
		t.Errorf("extensions %v -> %v, want one fewer", before, after)
	}
	for _, typ := range after {
		if typ == extensionSupportedVersn {
			t.Error("supported_versions survived")
		}
	}

	if again, ok := stripSupportedVersions(out); ok || !bytes.Equal(again, out) {
		t.Error("a ClientHello without supported_versions was changed")
	}
	for _, junk := range [][]byte{nil, {22, 3, 1}, []byte("GET / HTTP/1.1\r\n\r\n"), hello[:len(hello)-1]} {
		if out, ok := stripSupportedVersions(junk); ok || !bytes.Equal(out, junk) {
			t.Errorf("junk % x was changed", junk)
		}
	}
}

func TestSentinelRelay(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	o, err := NewOrigin(p, OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, o)
	r, err := NewSentinelRelay(o.Addr())
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, r)

	_, err = dialTLS(t, r.Addr(), &tls.Config{ServerName: "github.com", RootCAs: p.PublicPool()})
	if err == nil || !strings.Contains(err.Error(), "tls: downgrade attempt detected") {
		t.Errorf("handshake error %v, want the downgrade sentinel", err)
	}

	// A TLS 1.2 client has no sentinel to check, but the Finished messages
	// cover the rewritten hello, so the tampering is caught all the same.
	_, err = dialTLS(t, r.Addr(), &tls.Config{ServerName: "github.com", RootCAs: p.PublicPool(), MaxVersion: tls.VersionTLS12})
	if err == nil || strings.Contains(err.Error(), "downgrade") {
		t.Errorf("TLS 1.2 client got %v, want a failed handshake without the sentinel", err)
	}
}

func TestSentinelRelayPassesOtherTraffic(t *testing.T) {
	t.Parallel()
	pl, err := NewPlain(PlainOptions{Status: http.StatusFound, Headers: http.Header{"Location": {PortalLoginURL}}})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, pl)
	r, err := NewSentinelRelay(pl.Addr())
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, r)
	resp, _ := get(t, httpClient(t, r.Addr(), nil), "http://github.com/")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != PortalLoginURL {
		t.Errorf("through the relay: %s Location %q", resp.Status, resp.Header.Get("Location"))
	}
}

func FuzzStripSupportedVersions(f *testing.F) {
	for _, cfg := range []*tls.Config{
		{ServerName: "github.com"},
		{ServerName: "pypi.org", NextProtos: []string{"h2", "http/1.1"}},
		{ServerName: "example.org", MaxVersion: tls.VersionTLS12},
		{InsecureSkipVerify: true},
	} {
		f.Add(clientHello(f, cfg))
	}
	f.Add([]byte{})
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out, ok := stripSupportedVersions(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("input modified")
		}
		if !ok {
			if !bytes.Equal(out, in) {
				t.Fatal("unchanged result differs from input")
			}
			return
		}
		if len(out) >= len(in) {
			t.Fatalf("stripped %d bytes to %d", len(in), len(out))
		}
		if _, err := parseHello(out); err != nil {
			t.Fatalf("rewritten hello does not parse: %v", err)
		}
		if _, again := stripSupportedVersions(out); again {
			t.Fatal("supported_versions survived")
		}
	})
}
