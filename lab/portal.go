package lab

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
)

// The captive portal's identity.
const (
	PortalHost     = "portal.lab.example"
	PortalLoginURL = "https://" + PortalHost + "/login"
)

// Portal is a captive portal that answers TLS: whatever name the client
// asks for, it presents a publicly valid leaf for PortalHost only, and
// redirects every request to its login page. Clients see a name mismatch,
// not an unknown authority.
type Portal struct {
	http *httpServer
}

// NewPortal starts a captive portal on loopback.
func NewPortal(p *PKI) (*Portal, error) {
	leaf, err := p.PublicIntermediate.Issue(LeafOptions{}, PortalHost)
	if err != nil {
		return nil, fmt.Errorf("lab: portal: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{*leaf}, NextProtos: []string{"http/1.1"}}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<html><head><title>Guest Wi-Fi</title></head><body><form>Accept the terms to continue</form></body></html>")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, PortalLoginURL, http.StatusFound)
	})
	s, err := serveHTTP(mux, tlsWrap(cfg))
	if err != nil {
		return nil, fmt.Errorf("lab: portal: %w", err)
	}
	return &Portal{http: s}, nil
}

// Addr is the portal's "127.0.0.1:port".
func (p *Portal) Addr() string { return p.http.Addr() }

// Close stops the portal and ends its connections.
func (p *Portal) Close() error { return p.http.Close() }
