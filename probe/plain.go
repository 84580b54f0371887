package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/plainhttp"
	"github.com/mitmwatch/mitmwatch/trust"
)

// Limits on what is read from a peer that is not the expected one: enough
// to name it, never enough to hurt.
const (
	maxHead = plainhttp.MaxHead
	maxBody = plainhttp.MaxBody
	// headWait bounds the wait for the rest of a plain answer.
	headWait = 500 * time.Millisecond
)

// ProxyError is a proxy's refusal of CONNECT; the answer is kept because a
// 403 page from the proxy is evidence of a block.
type ProxyError struct {
	Status int
	Answer *detector.HTTPAnswer
}

func (e *ProxyError) Error() string { return fmt.Sprintf("proxy refused CONNECT: HTTP %d", e.Status) }

// recordingConn keeps the first bytes read, so that when the peer answers a
// ClientHello with plain HTTP, what it said can still be shown.
// It also notes when the ClientHello went out and when the answer began:
// the handshake's own sample of the hello round trip.
type recordingConn struct {
	net.Conn
	mu             sync.Mutex
	buf            bytes.Buffer
	sent, answered time.Time
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.sent.IsZero() {
		c.sent = time.Now()
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if n > 0 && c.answered.IsZero() {
		c.answered = time.Now()
	}
	if room := maxHead - c.buf.Len(); room > 0 && n > 0 {
		c.buf.Write(p[:min(n, room)])
	}
	c.mu.Unlock()
	return n, err
}

// heard reports whether any byte came back yet.
func (c *recordingConn) heard() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.answered.IsZero()
}

// helloRTT is the time from the ClientHello to the first byte of a TLS
// handshake record in answer.
func (c *recordingConn) helloRTT() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent.IsZero() || c.answered.IsZero() || c.buf.Len() == 0 || c.buf.Bytes()[0] != recordHandshake {
		return 0, false
	}
	return c.answered.Sub(c.sent), true
}

// head returns what was read so far plus what the peer still sends before
// closing, so a response the handshake cut short is whole. The wait ends
// at ctx's deadline too: a peer that trickles its answer must not hold the
// probe past its timeout.
func (c *recordingConn) head(ctx context.Context) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	wait := time.Now().Add(headWait)
	if d, ok := ctx.Deadline(); ok && d.Before(wait) {
		wait = d
	}
	c.Conn.SetReadDeadline(wait)
	out := bytes.Clone(c.buf.Bytes())
	rest := make([]byte, maxHead-len(out))
	n, _ := io.ReadFull(c.Conn, rest)
	return append(out, rest[:n]...)
}

// plainAnswer asks the port a proper HTTP question, as a person pointing a
// browser at it would, and falls back to what the ClientHello got back.
func (p *Prober) plainAnswer(ctx context.Context, t Target, rec *recordingConn) *detector.HTTPAnswer {
	if a := p.httpGet(ctx, t); a != nil {
		return a
	}
	return plainhttp.Parse(rec.head(ctx))
}

func (p *Prober) httpGet(ctx context.Context, t Target) *detector.HTTPAnswer {
	var scratch detector.Observation
	conn, err := p.connect(ctx, t, &scratch)
	if err != nil {
		return nil
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "http", Host: t.Host, Path: "/"},
		Host: t.Host, Header: http.Header{"User-Agent": {"mitmwatch"}}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Close: true}
	if err := req.Write(conn); err != nil {
		return nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(conn, maxHead+maxBody)), req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	return plainhttp.Read(resp)
}

// connectProxy opens a tunnel with CONNECT, as curl, git, npm and Go do
// when HTTPS_PROXY is set.
func (p *Prober) connectProxy(ctx context.Context, proxy *url.URL, hostport string, obs *detector.Observation) (net.Conn, error) {
	paddr := proxy.Host
	if proxy.Port() == "" {
		port := "80"
		if proxy.Scheme == "https" {
			port = "443"
		}
		paddr = net.JoinHostPort(proxy.Hostname(), port)
	}
	conn, err := p.dialer().DialContext(ctx, "tcp", paddr)
	if err != nil {
		return nil, fmt.Errorf("connecting to proxy %s: %w", paddr, err)
	}
	if ap, err := netipAddrPort(conn.RemoteAddr()); err == nil {
		obs.ConnectedAddr = ap
	}
	if proxy.Scheme == "https" {
		cfg := &tls.Config{ServerName: proxy.Hostname(), RootCAs: p.SystemRoots}
		if p.SystemStore != nil {
			cfg = trust.VerifiedBy(cfg, p.SystemStore)
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS to proxy %s: %w", paddr, err)
		}
		conn = tc
	}
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: hostport}, Host: hostport, Header: http.Header{}}
	if u := proxy.User; u != nil {
		pw, _ := u.Password()
		req.SetBasicAuth(u.Username(), pw)
		req.Header.Set("Proxy-Authorization", req.Header.Get("Authorization"))
		req.Header.Del("Authorization")
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sending CONNECT to proxy %s: %w", paddr, err)
	}
	br := bufio.NewReader(io.LimitReader(conn, maxHead+maxBody))
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading CONNECT answer from proxy %s: %w", paddr, err)
	}
	if resp.StatusCode != http.StatusOK {
		a := plainhttp.Read(resp)
		resp.Body.Close()
		conn.Close()
		obs.Plain = a
		return nil, &ProxyError{Status: resp.StatusCode, Answer: a}
	}
	conn.SetDeadline(timeZero)
	if br.Buffered() > 0 {
		return nil, errors.Join(conn.Close(), fmt.Errorf("proxy %s sent data before the tunnel was used", paddr))
	}
	return conn, nil
}

// Failure places the refusal in the failure vocabulary.
func (e *ProxyError) Failure() detector.Failure { return detector.FailureProxy }

var timeZero time.Time

func netipAddrPort(a net.Addr) (netip.AddrPort, error) {
	return netip.ParseAddrPort(a.String())
}
