package sshtest

import (
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The servers behave as the probe's tests assume: the SSH server shows the
// key and version it was given, the raw one its bytes, the silent one
// nothing, and the closed port refuses.
func TestServers(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(key, "OpenSSH_9.6")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var seen ssh.PublicKey
	refused := errors.New("recorded")
	_, err = ssh.Dial("tcp", srv.Addr(), &ssh.ClientConfig{User: "git", Timeout: 5 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error { seen = k; return refused }})
	if !errors.Is(err, refused) || seen == nil {
		t.Fatalf("dial: %v, key %v", err, seen)
	}
	if sha256.Sum256(seen.Marshal()) != [32]byte(key.Fingerprint()) {
		t.Error("the server showed another key than it was given")
	}

	raw, err := NewRaw([]byte("HTTP/1.1 403 Forbidden\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if got := firstBytes(t, raw.Addr()); !strings.HasPrefix(got, "HTTP/1.1 403") {
		t.Errorf("raw server said %q", got)
	}

	silent, err := NewSilent()
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if got := firstBytes(t, silent.Addr()); got != "" {
		t.Errorf("silent server said %q", got)
	}

	closed, err := ClosedPort()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", closed, time.Second); err == nil {
		c.Close()
		t.Errorf("%s accepted a connection", closed)
	}
}

// firstBytes reads what a server sends first, within 300 ms.
func firstBytes(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(c, buf, 1)
	if err != nil && n == 0 {
		return ""
	}
	return string(buf[:n])
}
