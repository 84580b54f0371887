package main

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestPace(t *testing.T) {
	for _, c := range []struct {
		n    int
		rate float64
		want time.Duration
	}{
		{64 << 10, 1, 524288 * time.Nanosecond}, // 64 KiB at 1 Gbit/s
		{64 << 10, 2, 262144 * time.Nanosecond},
		{125000, 1, time.Millisecond},
	} {
		if got := pace(c.n, c.rate); got != c.want {
			t.Errorf("pace(%d, %g) = %v, want %v", c.n, c.rate, got, c.want)
		}
	}
}

// The server's certificate answers every name the client sends.
func TestSelfSignedCoversTheClientsNames(t *testing.T) {
	cert, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bulk.bench.example", "h000.bench.example", "h199.bench.example"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if leaf.VerifyHostname("bench.example.org") == nil {
		t.Error("the certificate covers a name outside bench.example")
	}
}
