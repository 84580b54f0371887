package lab

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// OriginOptions describe a genuine host. The zero value is a modern public
// server: crypto/tls's default versions, ALPN h2 and http/1.1, no delay, and
// leaves from PublicIntermediate.
type OriginOptions struct {
	// MinVersion and MaxVersion bound TLS; zero keeps crypto/tls's default.
	MinVersion, MaxVersion uint16
	// NextProtos defaults to h2, http/1.1.
	NextProtos []string
	// Latency is added to every round trip (see latencyConn).
	Latency time.Duration
	// Leaf issues the certificate for an SNI name; nil issues from
	// PublicIntermediate with default LeafOptions.
	Leaf func(name string) (*tls.Certificate, error)
	// Handler answers the requests; nil answers 200 "ok". A registry or
	// Git host played for real build tools answers what they ask.
	Handler http.Handler
}

// Origin is the genuine host, or rather every genuine host at once: it issues
// a leaf for whatever name the client sends in SNI, so one listener plays
// github.com, pypi.org and the rest.
type Origin struct {
	http  *httpServer
	issue func(name string) (*tls.Certificate, error)

	mu    sync.Mutex
	leafs map[string]*tls.Certificate
}

// NewOrigin starts a genuine origin on loopback.
func NewOrigin(p *PKI, opts OriginOptions) (*Origin, error) {
	o := &Origin{issue: opts.Leaf, leafs: make(map[string]*tls.Certificate)}
	if o.issue == nil {
		o.issue = func(name string) (*tls.Certificate, error) {
			return p.PublicIntermediate.Issue(LeafOptions{}, name)
		}
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
			return o.Certificate(serverName(hello))
		},
	}
	wrap := func(l net.Listener) net.Listener {
		if opts.Latency > 0 {
			l = newLatencyListener(l, opts.Latency)
		}
		return tlsWrap(cfg)(l)
	}
	h := opts.Handler
	if h == nil {
		h = ok
	}
	s, err := serveHTTP(h, wrap)
	if err != nil {
		return nil, fmt.Errorf("lab: origin: %w", err)
	}
	o.http = s
	return o, nil
}

// serverName is the name a leaf is wanted for: the SNI, or for a client
// that dialled an IP literal (and so sent none) the address it reached.
func serverName(hello *tls.ClientHelloInfo) string {
	if hello.ServerName != "" {
		return hello.ServerName
	}
	if hello.Conn != nil {
		if host, _, err := net.SplitHostPort(hello.Conn.LocalAddr().String()); err == nil {
			return host
		}
	}
	return "127.0.0.1"
}

// Certificate returns the leaf the origin presents for name, issuing it on
// first use. Scenarios use it to record a baseline pin.
func (o *Origin) Certificate(name string) (*tls.Certificate, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.leafs[name]; ok {
		return c, nil
	}
	c, err := o.issue(name)
	if err != nil {
		return nil, fmt.Errorf("lab: origin leaf for %q: %w", name, err)
	}
	o.leafs[name] = c
	return c, nil
}

// Renew forgets every leaf, so the next handshake for each name gets a new
// key and serial under the same issuer: a routine renewal that must not be
// mistaken for interception.
func (o *Origin) Renew() {
	o.mu.Lock()
	clear(o.leafs)
	o.mu.Unlock()
}

// Addr is the origin's "127.0.0.1:port".
func (o *Origin) Addr() string { return o.http.Addr() }

// Close stops the origin and ends its connections.
func (o *Origin) Close() error { return o.http.Close() }

// latencyListener makes each accepted connection slow, see latencyConn.
type latencyListener struct {
	net.Listener
	delay time.Duration
	done  chan struct{}
	once  sync.Once
}

func newLatencyListener(l net.Listener, d time.Duration) *latencyListener {
	return &latencyListener{Listener: l, delay: d, done: make(chan struct{})}
}

func (l *latencyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &latencyConn{Conn: c, delay: l.delay, done: l.done}, nil
}

// Close also wakes every delayed write, so shutting down never waits out a
// delay.
func (l *latencyListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// latencyConn approximates a link with round-trip time delay, all of it
// spent on the server side: the first write after the server has read
// something (the answer to a client's flight) waits delay; further writes in
// the same flight do not. A TLS 1.3 handshake thus costs one delay, a TLS
// 1.2 one two, and each HTTP request one more. TCP's own handshake, done by
// the kernel, is not delayed.
type latencyConn struct {
	net.Conn
	delay   time.Duration
	done    <-chan struct{}
	pending atomic.Bool // read since last write
}

func (c *latencyConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.pending.Store(true)
	}
	return n, err
}

func (c *latencyConn) Write(b []byte) (int, error) {
	if c.pending.Swap(false) {
		t := time.NewTimer(c.delay)
		select {
		case <-t.C:
		case <-c.done:
			t.Stop()
			return 0, net.ErrClosed
		}
	}
	return c.Conn.Write(b)
}
