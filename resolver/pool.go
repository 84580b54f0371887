package resolver

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mitmwatch/mitmwatch/trust"
)

// Encrypted resolvers are asked over connections the Client keeps: a TLS
// handshake per query would cost more than the query, and a round asks
// every reference resolver about every target at once. RFC 7858 asks DoT
// clients to reuse and pipeline connections; DoH multiplexes over HTTP/2.

// pool holds a Client's shared connections; the zero value is empty.
type pool struct {
	mu  sync.Mutex
	dot map[string]*dotEntry
	doh *http.Transport
	// bootstrap holds the addresses of DoH servers given by name, by
	// name, for the DoH transport's dialer.
	bootstrap map[string][]netip.Addr
}

// dotEntry is a connection to one DoT resolver, or the dial of one in
// progress: queries that arrive meanwhile wait for it instead of dialling
// their own.
type dotEntry struct {
	ready chan struct{} // closed when the dial ended
	conn  *dotConn
	err   error
}

// Close releases the connections the Client keeps to encrypted resolvers.
// The Client stays usable: the next query dials again.
func (c *Client) Close() error {
	c.pool.mu.Lock()
	conns := c.pool.dot
	c.pool.dot = nil
	tr := c.pool.doh
	c.pool.doh = nil
	c.pool.mu.Unlock()
	for _, e := range conns {
		select {
		case <-e.ready:
			if e.conn != nil {
				e.conn.fail(net.ErrClosed)
			}
		default: // still dialling: the dialler finds it removed and keeps it to itself
		}
	}
	if tr != nil {
		tr.CloseIdleConnections()
	}
	return nil
}

// dohTransport is the Client's shared DoH transport.
func (c *Client) dohTransport() *http.Transport {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	if c.pool.doh == nil {
		cfg := c.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.NextProtos == nil {
			cfg.NextProtos = []string{"h2", "http/1.1"}
		}
		c.pool.doh = &http.Transport{
			// Never the system resolver: see dialDoH.
			DialContext: c.dialDoH,
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				raw, err := c.dialDoH(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return c.handshake(ctx, raw, addr, cfg)
			},
			ForceAttemptHTTP2: true,
			IdleConnTimeout:   30 * time.Second,
			// HTTP/2 multiplexes every query over one connection; without
			// this cap a burst of first queries would each dial their own.
			MaxConnsPerHost: 2,
		}
	}
	return c.pool.doh
}

// exchangeDoT sends q over the shared connection to addr, dialling one when
// there is none. A reused connection the server has meanwhile closed is
// replaced once.
func (c *Client) exchangeDoT(ctx context.Context, addr string, cfg *tls.Config, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	for attempt := 0; ; attempt++ {
		d, fresh, err := c.dotConn(ctx, addr, cfg)
		if err != nil {
			return nil, ctxErr(ctx, fmt.Errorf("dns over tls to %s: %w", addr, err))
		}
		r, err := d.exchange(ctx, q)
		var stale *connError
		if errors.As(err, &stale) && !fresh && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return r, ctxErr(ctx, err)
	}
}

// dotConn returns a live shared connection to addr, and whether it was
// dialled just now. One dial per resolver is in flight at a time.
func (c *Client) dotConn(ctx context.Context, addr string, cfg *tls.Config) (*dotConn, bool, error) {
	for range 2 {
		c.pool.mu.Lock()
		e := c.pool.dot[addr]
		if e == nil {
			e = &dotEntry{ready: make(chan struct{})}
			if c.pool.dot == nil {
				c.pool.dot = map[string]*dotEntry{}
			}
			c.pool.dot[addr] = e
			c.pool.mu.Unlock()
			co, err := c.dialDoT(ctx, addr, cfg)
			if err == nil {
				e.conn = newDotConn(co)
			}
			e.err = err
			close(e.ready)
			if err != nil {
				c.forget(addr, e)
			}
			return e.conn, true, err
		}
		c.pool.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		if e.err == nil && e.conn.alive() {
			return e.conn, false, nil
		}
		c.forget(addr, e) // dead or failed: the next pass dials anew
	}
	return nil, false, errors.New("no connection")
}

// forget drops e from the pool if it is still the entry for addr.
func (c *Client) forget(addr string, e *dotEntry) {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	if c.pool.dot[addr] == e {
		delete(c.pool.dot, addr)
	}
}

// connError is a failure of the shared connection itself, as opposed to
// one query's reply.
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

type result struct {
	msg *dns.Msg
	err error
}

// dotConn is one pipelined DNS-over-TLS connection: queries are written
// under a lock, and one reader hands each reply to the query with its ID.
type dotConn struct {
	co   *dns.Conn
	wmu  sync.Mutex
	done chan struct{}

	mu      sync.Mutex
	pending map[uint16]chan result
	err     error // why the connection ended
}

// dialDoT connects to a DNS-over-TLS server, asking for the roots that
// verify it only once the TCP connection is up.
func (c *Client) dialDoT(ctx context.Context, addr string, cfg *tls.Config) (*dns.Conn, error) {
	d := net.Dialer{Timeout: c.timeout()}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc, err := c.handshake(ctx, raw, addr, cfg)
	if err != nil {
		return nil, err
	}
	return &dns.Conn{Conn: tc}, nil
}

// handshake runs TLS over raw, verified against the roots Roots gives (or
// cfg's), as crypto/tls verifies a dialled connection; raw is closed on
// failure.
func (c *Client) handshake(ctx context.Context, raw net.Conn, addr string, cfg *tls.Config) (*tls.Conn, error) {
	if cfg = cfg.Clone(); cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	if c.Roots != nil {
		cfg = trust.VerifiedBy(cfg, c.Roots)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

func newDotConn(co *dns.Conn) *dotConn {
	co.UDPSize = dns.MaxMsgSize
	d := &dotConn{co: co, done: make(chan struct{}), pending: map[uint16]chan result{}}
	go d.read()
	return d
}

func (d *dotConn) alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// fail ends the connection and every query waiting on it.
func (d *dotConn) fail(err error) {
	d.mu.Lock()
	if d.err != nil {
		d.mu.Unlock()
		return
	}
	d.err = &connError{err}
	d.mu.Unlock()
	close(d.done)
	d.co.Close()
}

func (d *dotConn) read() {
	for {
		p, err := d.co.ReadMsgHeader(nil)
		if errors.Is(err, dns.ErrShortRead) {
			err = replyErrorf("malformed reply over tcp-tls: %v", err)
		}
		if err != nil {
			d.fail(err)
			return
		}
		var res result
		res.msg = new(dns.Msg)
		if err := res.msg.Unpack(p); err != nil {
			res = result{err: replyErrorf("malformed reply over tcp-tls: %v", err)}
		}
		d.mu.Lock()
		ch := d.pending[binary.BigEndian.Uint16(p)]
		d.mu.Unlock()
		if ch != nil {
			ch <- res // buffered, and each ID is answered once
		}
	}
}

// exchange sends q with an ID no other pending query uses and waits for its
// reply.
func (d *dotConn) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	ch := make(chan result, 1)
	d.mu.Lock()
	if d.err != nil {
		err := d.err
		d.mu.Unlock()
		return nil, err
	}
	for {
		q.Id = dns.Id()
		if _, busy := d.pending[q.Id]; !busy {
			break
		}
	}
	d.pending[q.Id] = ch
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.pending, q.Id)
		d.mu.Unlock()
	}()

	d.wmu.Lock()
	deadline, _ := ctx.Deadline()
	d.co.SetWriteDeadline(deadline)
	err := d.co.WriteMsg(q)
	d.wmu.Unlock()
	if err != nil {
		d.fail(err)
		return nil, &connError{err}
	}
	select {
	case r := <-ch:
		return r.msg, r.err
	case <-d.done:
		d.mu.Lock()
		defer d.mu.Unlock()
		return nil, d.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
