// Package tools predicts, for each build tool on the machine, what that tool
// will do on the path mitmwatch observed: verify the chain, fail (and with
// which message), accept anything, or talk plain HTTP, and the one change
// that makes it work with verification on.
//
// Tools on one machine disagree because each trusts a different store: Go
// and curl the system's, Node its own bundled copy of the Mozilla roots
// plus NODE_EXTRA_CA_CERTS, pip the certifi bundle it vendors unless told
// otherwise, git its sslCAInfo, dockerd a certs.d directory per registry.
// So `curl` works while `npm` fails, and people copy the fix that turns
// verification off. Discover reads each tool's real configuration (the
// audit's reading of its files, its environment, and the tool itself for
// its bundled roots and defaults); Predict is a pure function of that
// configuration, the chain the probe kept, and the clock.
package tools

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	"github.com/mitmwatch/mitmwatch/trust"
)

// Name is a build tool mitmwatch predicts for.
type Name string

// The tools, as the --tool flag and the report name them.
const (
	Go     Name = "go"
	Git    Name = "git"
	NPM    Name = "npm"
	Pip    Name = "pip"
	Cargo  Name = "cargo"
	Docker Name = "docker"
)

// Names lists every tool, in the order reports show them.
var Names = []Name{Go, Git, NPM, Pip, Cargo, Docker}

// ParseName reads a tool's name, as --tool gives it.
func ParseName(s string) (Name, error) {
	for _, n := range Names {
		if strings.EqualFold(s, string(n)) {
			return n, nil
		}
	}
	return "", fmt.Errorf("unknown tool %q (known: go, git, npm, pip, cargo, docker)", s)
}

// Outcome is what a tool will do with one host, from a closed set: reports,
// metrics and tests key on it.
type Outcome string

// The outcomes.
const (
	// Verifies: the tool's own store vouches for the chain the probe saw.
	Verifies Outcome = "verifies"
	// Fails: the tool refuses the chain; Error says how it says so.
	Fails Outcome = "fails"
	// VerificationOff: a setting makes the tool accept any certificate
	// from the host, or fall back to plain HTTP: it works, and so would an
	// attacker.
	VerificationOff Outcome = "verification-off"
	// PlainHTTP: the tool fetches from the host without TLS, or the
	// host's TLS port answers plain HTTP.
	PlainHTTP Outcome = "plain-http"
	// Unreachable: the probe completed no handshake, so there is no chain
	// to judge; the target's verdict says why.
	Unreachable Outcome = "unreachable"
)

// Outcomes lists every outcome, for metrics and exhaustive tests.
var Outcomes = []Outcome{Verifies, Fails, VerificationOff, PlainHTTP, Unreachable}

// Flavour names the TLS library whose messages a tool prints.
type Flavour string

// The flavours.
const (
	FlavourGo      Flavour = "go"      // crypto/x509: go, dockerd
	FlavourOpenSSL Flavour = "openssl" // OpenSSL through Python or libcurl: pip, cargo, git on most systems
	FlavourNode    Flavour = "node"    // OpenSSL error codes as Node names them: npm
	FlavourGnuTLS  Flavour = "gnutls"  // libcurl-gnutls: git on Debian and Ubuntu
)

// Tool is what one build tool's configuration says about its TLS.
type Tool struct {
	Name Name
	// Version is as the tool reports it; empty when it is not installed,
	// in which case the prediction is for what its configuration says.
	Version string
	Flavour Flavour
	// OpenSSL3 says the library writes "self-signed" (OpenSSL 3) rather
	// than "self signed" (1.1).
	OpenSSL3 bool
	// Store is the roots it verifies with, for hosts without an override.
	Store Store
	// Verify is set when a setting turns verification off for every host.
	Verify *Setting
	// Overrides apply to the hosts they match, the first match winning:
	// git's http.<url>.* settings, dockerd's certs.d, pip's trusted-host,
	// GOINSECURE.
	Overrides []Override
	Proxy     *Setting // the proxy it uses; nil: direct
	Hosts     []Host   // the hosts its configuration names
	// Notes say what could not be read, for the report.
	Notes []string
}

// Installed reports whether the tool was found on the machine.
func (t Tool) Installed() bool { return t.Version != "" }

// Setting is one value of a tool's configuration and where it was read.
type Setting struct {
	Name   string // as the user writes it: "strict-ssl", "http.sslVerify", "NODE_EXTRA_CA_CERTS"
	Value  string // credentials redacted
	Source string // file:line, "environment", "default"
}

// String renders a setting for a sentence: "strict-ssl=false (~/.npmrc:3)".
func (s Setting) String() string {
	out := s.Name
	if s.Value != "" {
		out += "=" + s.Value
	}
	if s.Source != "" {
		out += " (" + s.Source + ")"
	}
	return out
}

// Store is the set of roots a tool verifies with.
type Store struct {
	// Description says what the store is, as a person knows it: "Node's
	// bundled roots (146) + NODE_EXTRA_CA_CERTS /etc/corp/ca.pem (1)".
	Description string
	// Certs are the store's roots, read but parsed only when a chain
	// names them (PoolFor): a check predicts for stores of hundreds of
	// roots and uses a handful.
	Certs []trust.Block
	// Files are the bundles it was read from, the one a fix appends to
	// first; empty for a store compiled into the tool.
	Files []string
	// By is the setting that chose the store; nil for the tool's default.
	By *Setting
	// System says the store is the machine's system store.
	System bool
	// Err says why the tool cannot load the store it is told to use: it
	// then fails every connection.
	Err string
}

// PoolFor is the part of the store that can anchor chain, as a
// certificate pool: the roots whose subject is the issuer of one of its
// certificates, or that are one of them. crypto/x509 finds parents by
// exactly that name, so a chain verifies against it as against the whole
// store, and a prediction for each tool and target does not build a pool
// of every root.
func (s Store) PoolFor(chain []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, root := range s.Certs {
		n, ok := trust.RawNames(root.DER)
		if !ok {
			continue
		}
		for _, c := range chain {
			if bytes.Equal(n.Subject, c.RawIssuer) || bytes.Equal(root.DER, c.Raw) {
				if cert, err := root.Cert(); err == nil {
					pool.AddCert(cert)
				}
				break
			}
		}
	}
	return pool
}

// Override changes a tool's TLS for the hosts it matches.
type Override struct {
	// Pattern matches host names as path.Match does ("*.corp.example");
	// Port, when not zero, must match too.
	Pattern string
	Port    int
	Store   *Store   // nil: the tool's store
	Off     *Setting // verification is off for these hosts
	// Plain says the tool falls back to plain HTTP for these hosts when
	// https fails (GOINSECURE, insecure-registries).
	Plain bool
}

func (o Override) matches(host string, port int) bool {
	ok, _ := path.Match(strings.ToLower(o.Pattern), strings.ToLower(host))
	return ok && (o.Port == 0 || o.Port == port)
}

// Host is a host a tool fetches from.
type Host struct {
	Host   string
	Port   int
	Scheme string // https or http
	Source string // the setting that names it and where, or "rules.yaml" for a target of the tool's kind
}

// Key is "host:port", as config.Target.Key.
func (h Host) Key() string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

// URL is the host as the tool's settings write it.
func (h Host) URL() string {
	scheme := h.Scheme
	if scheme == "" {
		scheme = "https"
	}
	if (scheme == "https" && h.Port == 443) || (scheme == "http" && h.Port == 80) {
		return scheme + "://" + h.Host + "/"
	}
	return scheme + "://" + h.Key() + "/"
}

// knownHosts are public hosts each tool fetches from by default, so that
// the targets of rules.yaml are matched to their tools. The defaults of
// Go, npm and pip are not listed: they are asked of the tools themselves.
var knownHosts = map[Name][]string{
	Git:    {"github.com", "codeload.github.com", "objects.githubusercontent.com", "gitlab.com", "bitbucket.org", "codeberg.org"},
	Cargo:  {"index.crates.io", "static.crates.io", "crates.io"},
	Docker: {"registry-1.docker.io", "auth.docker.io", "production.cloudflare.docker.com", "ghcr.io", "quay.io", "gcr.io", "mcr.microsoft.com", "public.ecr.aws"},
}

// Uses reports whether the tool fetches from host:port, and how it names
// it: a host its configuration names, or a public host of its kind on 443.
func (t Tool) Uses(host string, port int) (Host, bool) {
	host = strings.ToLower(host)
	for _, h := range t.Hosts {
		if h.Host == host && h.Port == port {
			return h, true
		}
	}
	for _, k := range knownHosts[t.Name] {
		if k == host && port == 443 {
			return Host{Host: host, Port: port, Scheme: "https", Source: "a host " + string(t.Name) + " uses by default"}, true
		}
	}
	return Host{}, false
}

// override returns the first override matching host:port.
func (t Tool) override(host string, port int) (Override, bool) {
	for _, o := range t.Overrides {
		if o.matches(host, port) {
			return o, true
		}
	}
	return Override{}, false
}

// StoreFor is the store the tool verifies host:port with.
func (t Tool) StoreFor(host string, port int) Store {
	if o, ok := t.override(host, port); ok && o.Store != nil {
		return *o.Store
	}
	return t.Store
}
