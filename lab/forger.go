package lab

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ForgerOptions describe a home-made interceptor. The zero value (with a CA)
// is a cheap one: leaves minted a minute ago, no SCTs, one key shared by
// every host, and the issuing CA sent after the leaf unless it is a root.
type ForgerOptions struct {
	// CA signs the forged leaves; required.
	CA *CA
	// Chain, if not nil, is sent after the leaf instead of the default, e.g.
	// ClonedIntermediate to borrow a public issuer's name.
	Chain []*x509.Certificate
	// MinVersion and MaxVersion bound TLS, e.g. MaxVersion tls.VersionTLS12
	// for an interceptor that never learned TLS 1.3.
	MinVersion, MaxVersion uint16
	// NextProtos defaults to h2, http/1.1; many boxes offer only http/1.1.
	NextProtos []string
	// SCT embeds a fake SCT list, as a careful forger would.
	SCT bool
	// KeyPerHost gives each host its own key instead of one shared key.
	KeyPerHost bool
	// NotBefore defaults to one minute ago: freshly minted.
	NotBefore time.Time
}

// Forger is an interceptor that needs no upstream: it terminates TLS with a
// leaf forged for the SNI name and answers 200 itself. It models the boxes
// whose certificates, not whose proxying, give them away.
type Forger struct {
	http  *httpServer
	opts  ForgerOptions
	chain [][]byte
	key   crypto.Signer // shared leaf key; nil with KeyPerHost

	mu    sync.Mutex
	leafs map[string]*tls.Certificate
}

// NewForger starts a forging interceptor on loopback.
func NewForger(opts ForgerOptions) (*Forger, error) {
	if opts.CA == nil {
		return nil, errors.New("lab: forger: no CA")
	}
	f := &Forger{opts: opts, leafs: make(map[string]*tls.Certificate)}
	if opts.Chain != nil {
		f.chain = make([][]byte, 0, len(opts.Chain))
		for _, c := range opts.Chain {
			f.chain = append(f.chain, c.Raw)
		}
	}
	if !opts.KeyPerHost {
		k, err := newKey()
		if err != nil {
			return nil, fmt.Errorf("lab: forger: %w", err)
		}
		f.key = k
	}
	protos := opts.NextProtos
	if protos == nil {
		protos = defaultNextProtos
	}
	cfg := &tls.Config{
		MinVersion: opts.MinVersion,
		MaxVersion: opts.MaxVersion,
		NextProtos: protos,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return f.forge(serverName(hello))
		},
	}
	s, err := serveHTTP(ok, tlsWrap(cfg))
	if err != nil {
		return nil, fmt.Errorf("lab: forger: %w", err)
	}
	f.http = s
	return f, nil
}

func (f *Forger) forge(name string) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.leafs[name]; ok {
		return c, nil
	}
	opts := LeafOptions{NotBefore: f.opts.NotBefore, SCT: f.opts.SCT, NoSCT: !f.opts.SCT, Key: f.key}
	if opts.NotBefore.IsZero() {
		opts.NotBefore = time.Now().Add(-mintBackdate)
	}
	c, err := f.opts.CA.Issue(opts, name)
	if err != nil {
		return nil, fmt.Errorf("lab: forger: %w", err)
	}
	if f.chain != nil {
		c.Certificate = append(c.Certificate[:1:1], f.chain...)
	}
	f.leafs[name] = c
	return c, nil
}

// Addr is the forger's "127.0.0.1:port".
func (f *Forger) Addr() string { return f.http.Addr() }

// Close stops the forger and ends its connections.
func (f *Forger) Close() error { return f.http.Close() }
