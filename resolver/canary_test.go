package resolver

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/miekg/dns"
)

func TestCanaryName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    io.Reader
		want string
	}{
		{"fixed source", bytes.NewReader([]byte{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4}), "deadbeef00010203.example.com."},
		{"short source", bytes.NewReader([]byte{0xff, 0xff}), "ffff000000000000.example.com."},
		{"failing source", iotest.ErrReader(errors.New("no entropy")), "0000000000000000.example.com."},
	}
	for _, tt := range tests {
		if got := CanaryName(tt.r); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
	a, b := CanaryName(rand.Reader), CanaryName(rand.Reader)
	if a == b {
		t.Errorf("two canaries from crypto/rand are both %s", a)
	}
	for _, n := range []string{a, b} {
		if _, ok := dns.IsDomainName(n); !ok || !dns.IsFqdn(n) || !strings.HasSuffix(n, ".example.com.") || len(strings.Split(n, ".")[0]) != 16 {
			t.Errorf("canary %q", n)
		}
	}
}
