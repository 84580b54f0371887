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
	question := func(qtype uint16) *dns.Msg {
		q := new(dns.Msg).SetQuestion(fqdn, qtype)
		q.SetEdns0(ednsSize, false)
		if srv.Proto == "https" {
			q.Id = 0 // RFC 8484 section 4.1: so HTTP caches can share answers
		}
		return q
	}
	exchange, done, err := c.exchanger(srv)
	if err != nil {
		return detector.DNSAnswer{Failure: detector.FailureUnknown, Detail: err.Error()}
	}
	defer done()
	qs := []*dns.Msg{question(dns.TypeA), question(dns.TypeAAAA)}
	rs, errs := exchange(ctx, qs)
	replies := make([]reply, len(qs))
	for i, q := range qs {
		replies[i] = replyTo(q, rs[i], errs[i])
	}
	return merge(replies...)
}

// replyTo is the reply to q of an exchange that gave r or err.
func replyTo(q, r *dns.Msg, err error) reply {
	if err != nil {
		return reply{qtype: q.Question[0].Qtype, err: err}
	}
	return replyOf(q, r)
}

// exchangeFunc asks every query at once and returns the replies,
// unchecked, in order. A check makes dozens of lookups, each of two
// questions: a question given a goroutine of its own grows that fresh
// stack through copies to hold the exchange, so each transport asks from
// as few goroutines as it can.
type exchangeFunc func(ctx context.Context, qs []*dns.Msg) ([]*dns.Msg, []error)

// exchanger returns how to query srv, and what to release after.
func (c *Client) exchanger(srv Server) (exchangeFunc, func(), error) {
	nothing := func() {}
	switch srv.Proto {
	case "udp", "tcp":
		return func(ctx context.Context, qs []*dns.Msg) ([]*dns.Msg, []error) {
			return c.askPlain(ctx, srv.Proto, srv.Addr, qs)
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
		return func(ctx context.Context, qs []*dns.Msg) ([]*dns.Msg, []error) {
			return c.exchangeDoT(ctx, srv.Addr, cfg, qs)
		}, nothing, nil
	case "https":
		c.learnBootstrap(srv)
		hc, done := c.httpClient()
		return func(ctx context.Context, qs []*dns.Msg) ([]*dns.Msg, []error) {
			return eachAtOnce(qs, func(q *dns.Msg) (*dns.Msg, error) {
				return c.exchangeDoH(ctx, hc, srv.URL, q)
			})
		}, done, nil
	}
	return nil, nil, fmt.Errorf("unsupported protocol %q", srv.Proto)
}

// eachAtOnce runs exchange for every query at once, each on a goroutine
// of its own but the last, which runs on this one (whose stack has grown
// already), and returns the replies in order.
func eachAtOnce(qs []*dns.Msg, exchange func(q *dns.Msg) (*dns.Msg, error)) ([]*dns.Msg, []error) {
	rs := make([]*dns.Msg, len(qs))
	errs := make([]error, len(qs))
	if len(qs) == 0 {
		return rs, errs
	}
	var wg sync.WaitGroup
	for i := range len(qs) - 1 {
		wg.Go(func() { rs[i], errs[i] = exchange(qs[i]) })
	}
	last := len(qs) - 1
	rs[last], errs[last] = exchange(qs[last])
	wg.Wait()
	return rs, errs
}

// longAgo is a deadline in the past, to unblock a read at once.
var longAgo = time.Unix(1, 0)

// askPlain asks a plain DNS server ("udp" or "tcp") every query at once,
// each on a connection of its own as Go's resolver asks them. A UDP reply
// that comes truncated is asked again over TCP, as stub resolvers do,
// those retries at once too.
func (c *Client) askPlain(ctx context.Context, network, addr string, qs []*dns.Msg) ([]*dns.Msg, []error) {
	rs, errs := c.exchangeAll(ctx, network, addr, qs)
	if network != "udp" {
		return rs, errs
	}
	var again []int
	for i, r := range rs {
		if errs[i] == nil && r.Truncated {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return rs, errs
	}
	retry := make([]*dns.Msg, len(again))
	for j, i := range again {
		retry[j] = qs[i]
	}
	trs, terrs := c.exchangeAll(ctx, "tcp", addr, retry)
	for j, i := range again {
		rs[i], errs[i] = trs[j], terrs[j]
		if terrs[j] != nil {
			rs[i], errs[i] = nil, fmt.Errorf("udp reply truncated; tcp retry: %w", terrs[j])
		}
	}
	return rs, errs
}

// exchangeAll asks every query at once, each over a new connection of
// its own, and returns the replies in order.
//
// Over UDP all are sent from this goroutine, then their replies read in
// turn: connecting a UDP socket sends nothing, and a reply waits in its
// socket meanwhile, so the exchange takes as long as its slowest, as if
// each had a goroutine (whose fresh stack would grow through copies to
// hold the exchange). Over TCP the dial itself waits for the server, so
// each query has its own goroutine, the last this one.
func (c *Client) exchangeAll(ctx context.Context, network, addr string, qs []*dns.Msg) ([]*dns.Msg, []error) {
	if network == "udp" {
		rs := make([]*dns.Msg, len(qs))
		errs := make([]error, len(qs))
		ss := make([]*sent, len(qs))
		for i, q := range qs {
			ss[i], errs[i] = c.send(ctx, network, addr, q)
		}
		for i, s := range ss {
			if errs[i] == nil {
				rs[i], errs[i] = s.receive()
			}
		}
		return rs, errs
	}
	return eachAtOnce(qs, func(q *dns.Msg) (*dns.Msg, error) {
		s, err := c.send(ctx, network, addr, q)
		if err != nil {
			return nil, err
		}
		return s.receive()
	})
}

// sent is a query written on a connection of its own, whose reply is
// still to be read, within the query's timeout.
type sent struct {
	ctx     context.Context
	cancel  context.CancelFunc
	co      *dns.Conn
	stop    func() bool // the cancellation's hold on the connection
	network string
	id      uint16
}

// send dials addr over network ("udp" or "tcp") and writes q, the
// query's timeout starting now.
func (c *Client) send(ctx context.Context, network, addr string, q *dns.Msg) (*sent, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	dc := &dns.Client{Net: network, Timeout: c.timeout()}
	co, err := dc.DialContext(ctx, addr)
	if err != nil {
		err = ctxErr(ctx, err)
		cancel()
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	co.SetDeadline(deadline)
	s := &sent{ctx: ctx, cancel: cancel, co: co, network: network, id: q.Id}
	// Cancellation, not only the deadline, ends the exchange.
	s.stop = context.AfterFunc(ctx, func() { co.SetDeadline(longAgo) })
	if err := co.WriteMsg(q); err != nil {
		err = ctxErr(ctx, err)
		s.close()
		return nil, err
	}
	return s, nil
}

// receive reads the reply, and closes the connection. Over UDP, datagrams
// with another ID are skipped, as stub resolvers do: they may answer an
// earlier query.
func (s *sent) receive() (*dns.Msg, error) {
	defer s.close()
	for {
		p, err := readReply(s.co, s.network)
		if errors.Is(err, dns.ErrShortRead) {
			return nil, replyErrorf("malformed reply over %s: %v", s.network, err)
		}
		if err != nil {
			return nil, ctxErr(s.ctx, err)
		}
		if s.network == "udp" && binary.BigEndian.Uint16(p) != s.id {
			continue
		}
		r := new(dns.Msg)
		if err := r.Unpack(p); err != nil {
			return nil, replyErrorf("malformed reply over %s: %v", s.network, err)
		}
		return r, nil
	}
}

func (s *sent) close() {
	s.stop()
	s.co.Close()
	s.cancel()
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
