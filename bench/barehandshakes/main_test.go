package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun: the bare program completes a handshake verified against the
// system's roots (here SSL_CERT_FILE, naming the test server's
// certificate) and prints its time; a name the certificate does not cover
// fails, so the handshake is verified, not only made.
func TestRun(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the program closes at once
	srv.StartTLS()
	defer srv.Close()
	roots := filepath.Join(t.TempDir(), "roots.pem")
	der := srv.Certificate().Raw
	if err := os.WriteFile(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	// Read once, at the first verification: set before it.
	t.Setenv("SSL_CERT_FILE", roots)
	t.Setenv("SSL_CERT_DIR", t.TempDir())

	addr := srv.Listener.Addr().String()
	var out bytes.Buffer
	if err := run(&out, []string{addr, addr}); err != nil {
		t.Fatalf("trusted server: %v", err)
	}
	var ms []float64
	if err := json.Unmarshal(out.Bytes(), &ms); err != nil || len(ms) != 2 || ms[0] <= 0 || ms[1] <= 0 {
		t.Errorf("printed %q: want two handshake times", out.String())
	}

	_, port, _ := net.SplitHostPort(addr)
	out.Reset()
	err := run(&out, []string{net.JoinHostPort("localhost", port)})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a name the certificate does not cover: %v, want a verification error", err)
	}
	if out.Len() != 0 {
		t.Errorf("printed %q after a failed handshake", out.String())
	}
}
