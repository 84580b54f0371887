package resolver

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/trust"
)

// Client asks resolvers. The zero value is usable: system roots, a 3s
// timeout per query attempt.
type Client struct {
	// TLSConfig holds the roots for DoT and DoH; nil means the system's.
	// The server name is set per server.
	TLSConfig *tls.Config
	// Roots, when set, replaces TLSConfig's roots, asked for once a DoT
	// or DoH server's chain has arrived: a store still loading is waited
	// for then, not before the lookups that need no roots, and only the
	// roots the chain names are parsed.
	Roots func() *trust.Roots
	// HTTPClient carries DoH; nil builds one from TLSConfig per lookup,
	// direct (no proxy), not following redirects, and finding servers
	// given by name without the system resolver (see Bootstrap).
	HTTPClient *http.Client
	// Bootstrap are the resolvers that find a DoH server given by name
	// without bootstrap addresses of its own: those of them reached
	// without a lookup are asked in order. The system's resolvers never
	// are: they are the ones under test. Empty leaves such a server
	// unreachable, with the reason as its failure.
	Bootstrap []Server
	// DoHGet sends DoH queries as GET ?dns= instead of POST, for
	// endpoints (or caches in front of them) that only take GET.
	DoHGet bool
	// Timeout bounds each query attempt; zero means 3s. A UDP query
	// truncated and retried over TCP makes two attempts.
	Timeout time.Duration

	pool pool // connections kept to DoT and DoH resolvers; see Close
}

const defaultTimeout = 3 * time.Second

// ednsSize is the UDP answer size offered (DNS flag day 2020's advice):
// large enough for most answers, small enough not to fragment.
const ednsSize = 1232

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return defaultTimeout
}

// Lookup asks srv for the A and AAAA records of name at once and merges
// the replies into one answer: the worse rcode, the addresses at the end of
// any CNAME chain, the lowest TTL, and RTT until both replies came (a TCP
// retry of a truncated UDP reply included). It returns within ctx's
// deadline and two timeouts at most; a failure is part of the answer.
func (c *Client) Lookup(ctx context.Context, srv Server, name string) detector.DNSAnswer {
	start := time.Now()
	ans := c.lookup(ctx, srv, dns.Fqdn(name))
	ans.Resolver, ans.System, ans.RTT = srv.Spec, srv.System, time.Since(start)
	return ans
}

func (c *Client) lookup(ctx context.Context, srv Server, fqdn string) detector.DNSAnswer {
	if _, ok := dns.IsDomainName(fqdn); !ok {
		return detector.DNSAnswer{Failure: detector.FailureDNS, Detail: fmt.Sprintf("invalid name %q", fqdn)}
	}
	exchange, done, err := c.exchanger(srv)
	if err != nil {
		return detector.DNSAnswer{Failure: detector.FailureUnknown, Detail: err.Error()}
	}
	defer done()
	ask := func(qtype uint16) reply {
		q := new(dns.Msg).SetQuestion(fqdn, qtype)
		q.SetEdns0(ednsSize, false)
		if srv.Proto == "https" {
			q.Id = 0 // RFC 8484 section 4.1: so HTTP caches can share answers
		}
		r, err := exchange(ctx, q)
		if err != nil {
			return reply{qtype: qtype, err: err}
		}
		return replyOf(q, r)
	}
	// Both at once; AAAA on this goroutine, whose stack has grown
	// already: a fresh one grows through four copies to hold a TLS or
	// HTTP exchange, and a check makes dozens of lookups.
	var replies [2]reply
	var wg sync.WaitGroup
	wg.Go(func() { replies[0] = ask(dns.TypeA) })
	replies[1] = ask(dns.TypeAAAA)
	wg.Wait()
	return merge(replies[:]...)
}

// exchangeFunc sends one query and returns the reply, unchecked.
type exchangeFunc func(ctx context.Context, q *dns.Msg) (*dns.Msg, error)

// exchanger returns how to query srv, and what to release after.
func (c *Client) exchanger(srv Server) (exchangeFunc, func(), error) {
	nothing := func() {}
	switch srv.Proto {
	case "udp":
		return func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
			r, err := c.exchangeConn(ctx, "udp", srv.Addr, nil, q)
			if err != nil || !r.Truncated {
				return r, err
			}
			r, err = c.exchangeConn(ctx, "tcp", srv.Addr, nil, q)
			if err != nil {
				return nil, fmt.Errorf("udp reply truncated; tcp retry: %w", err)
			}
			return r, nil
		}, nothing, nil
	case "tcp":
		return func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
			return c.exchangeConn(ctx, "tcp", srv.Addr, nil, q)
		}, nothing, nil
	case "tls":
		cfg := c.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		cfg.ServerName = srv.ServerName
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(srv.Addr)
		}
		return func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
			return c.exchangeDoT(ctx, srv.Addr, cfg, q)
		}, nothing, nil
	case "https":
		c.learnBootstrap(srv)
		hc, done := c.httpClient()
		return func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
			return c.exchangeDoH(ctx, hc, srv.URL, q)
		}, done, nil
	}
	return nil, nil, fmt.Errorf("unsupported protocol %q", srv.Proto)
}

// longAgo is a deadline in the past, to unblock a read at once.
var longAgo = time.Unix(1, 0)

// exchangeConn sends q over a new connection ("udp", "tcp" or "tcp-tls")
// and reads the reply. Over UDP, datagrams with another ID are skipped, as
// stub resolvers do: they may answer an earlier query.
func (c *Client) exchangeConn(ctx context.Context, network, addr string, cfg *tls.Config, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	dc := &dns.Client{Net: network, TLSConfig: cfg, Timeout: c.timeout()}
	co, err := dc.DialContext(ctx, addr)
	if err != nil && network == "tcp-tls" {
		return nil, ctxErr(ctx, fmt.Errorf("dns over tls to %s: %w", addr, err))
	}
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	defer co.Close()
	deadline, _ := ctx.Deadline()
	co.SetDeadline(deadline)
	// Cancellation, not only the deadline, ends the exchange.
	stop := context.AfterFunc(ctx, func() { co.SetDeadline(longAgo) })
	defer stop()

	if err := co.WriteMsg(q); err != nil {
		return nil, ctxErr(ctx, err)
	}
	for {
		p, err := readReply(co, network)
		if errors.Is(err, dns.ErrShortRead) {
			return nil, replyErrorf("malformed reply over %s: %v", network, err)
		}
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		if network == "udp" && binary.BigEndian.Uint16(p) != q.Id {
			continue
		}
		r := new(dns.Msg)
		if err := r.Unpack(p); err != nil {
			return nil, replyErrorf("malformed reply over %s: %v", network, err)
		}
		return r, nil
	}
}

// readReply reads one message from co: a datagram whole, whatever its
// size (then judged); over TCP, miekg/dns's own read, which sizes the
// message by its prefix.
func readReply(co *dns.Conn, network string) ([]byte, error) {
	if network != "udp" {
		return co.ReadMsgHeader(nil)
	}
	p, err := readDatagram(co.Conn)
	if err != nil {
		return nil, err
	}
	if len(p) < 12 { // a header's size
		return nil, dns.ErrShortRead
	}
	return p, nil
}

// ctxErr names a cancellation that ended the exchange, so that it does not
// read as a network timeout.
func ctxErr(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// LookupAll asks every server at once and returns their answers in server
// order.
func (c *Client) LookupAll(ctx context.Context, servers []Server, name string) []detector.DNSAnswer {
	out := make([]detector.DNSAnswer, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() { out[i] = c.Lookup(ctx, srv, name) })
	}
	wg.Wait()
	return out
}

// readDatagramAlloc reads one datagram from c into a buffer of the
// largest DNS message made for it.
func readDatagramAlloc(c net.Conn) ([]byte, error) {
	buf := make([]byte, dns.MaxMsgSize)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}
