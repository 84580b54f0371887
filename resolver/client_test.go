package resolver

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/trust"
)

// testTimeout bounds every test's lookups.
const testTimeout = 10 * time.Second

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func newPKI(t testing.TB) *lab.PKI {
	t.Helper()
	p, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func closeAtEnd(t testing.TB, c interface{ Close() error }) {
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
}

// The transports a lab resolver can be reached by.
var transports = []string{"udp", "tcp", "tls", "https-post", "https-get"}

// labResolver starts a lab resolver with opts and returns the Server that
// reaches it over transport, a client that trusts it, and its query count.
func labResolver(t testing.TB, p *lab.PKI, transport string, opts lab.DNSOptions) (Server, *Client, func() int) {
	t.Helper()
	c := &Client{TLSConfig: &tls.Config{RootCAs: p.PublicPool()}, Timeout: 2 * time.Second}
	var spec string
	var count func() int
	switch transport {
	case "udp", "tcp":
		s, err := lab.NewDNSServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		closeAtEnd(t, s)
		spec, count = transport+"://"+s.Addr(), func() int { return s.Queries(transport) }
	case "tls":
		s, err := lab.NewDoTServer(p, opts)
		if err != nil {
			t.Fatal(err)
		}
		closeAtEnd(t, s)
		spec, count = "tls://"+s.Addr()+"#"+lab.DNSHost, func() int { return s.Queries("tcp") }
	case "https-post", "https-get":
		s, err := lab.NewDoHServer(p, opts)
		if err != nil {
			t.Fatal(err)
		}
		closeAtEnd(t, s)
		spec, count = s.URL(), s.Queries
		c.DoHGet = transport == "https-get"
	}
	srv, err := ParseServer(spec)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c, count
}

var (
	registryV4 = netip.MustParseAddr("198.51.100.7")
	registryV6 = netip.MustParseAddr("2001:db8::7")
	cdnV4      = netip.MustParseAddr("203.0.113.9")
	steerV4    = netip.MustParseAddr("192.0.2.66")
)

func honestZone() map[string][]netip.Addr {
	return map[string][]netip.Addr{
		"registry.lab.example": {registryV4, registryV6},
		"edge.cdn.lab.example": {cdnV4},
	}
}

// fixedCanary is a canary name drawn from a fixed source.
var fixedCanary = CanaryName(bytes.NewReader([]byte("canary!!")))

// ignoreRTT leaves the one non-deterministic field out of comparisons.
var ignoreRTT = cmpopts.IgnoreFields(detector.DNSAnswer{}, "RTT")

// Each scenario is a resolver's behaviour and what a lookup records of it,
// over every transport.
func TestLookupScenarios(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	zone := honestZone()
	honest := detector.DNSAnswer{Rcode: "NOERROR", Addrs: []netip.Addr{registryV4, registryV6}, MinTTL: lab.DNSTTL}
	sinkholed := detector.DNSAnswer{Rcode: "NOERROR", Addrs: []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}, MinTTL: 0}
	tests := []struct {
		name  string
		opts  lab.DNSOptions
		qname string
		want  detector.DNSAnswer
	}{
		{"honest", lab.DNSOptions{Zone: zone}, "registry.lab.example", honest},
		{"honest, fully qualified and mixed case", lab.DNSOptions{Zone: zone}, "Registry.LAB.example.", honest},
		{"IPv4 only", lab.DNSOptions{Zone: zone}, "edge.cdn.lab.example",
			detector.DNSAnswer{Rcode: "NOERROR", Addrs: []netip.Addr{cdnV4}, MinTTL: lab.DNSTTL}},
		{"unknown name", lab.DNSOptions{Zone: zone}, "nope.lab.example", detector.DNSAnswer{Rcode: "NXDOMAIN"}},
		{"honest canary", lab.DNSOptions{Zone: zone}, fixedCanary, detector.DNSAnswer{Rcode: "NXDOMAIN"}},
		{"NXDOMAIN rewriting", lab.DNSOptions{Zone: zone, NXDomain: []string{"registry.lab.example"}}, "registry.lab.example",
			detector.DNSAnswer{Rcode: "NXDOMAIN"}},
		{"sinkhole", lab.DNSOptions{Zone: zone, Sinkhole: true}, "registry.lab.example", sinkholed},
		{"sinkhole answers the canary", lab.DNSOptions{Zone: zone, Sinkhole: true}, fixedCanary, sinkholed},
		{"steered elsewhere", lab.DNSOptions{Zone: zone, Override: map[string][]netip.Addr{"registry.lab.example": {steerV4}}}, "registry.lab.example",
			detector.DNSAnswer{Rcode: "NOERROR", Addrs: []netip.Addr{steerV4}, MinTTL: lab.DNSTTL}},
		{"refused", lab.DNSOptions{Zone: zone, Refused: []string{"registry.lab.example"}}, "registry.lab.example",
			detector.DNSAnswer{Rcode: "REFUSED"}},
		{"servfail", lab.DNSOptions{Zone: zone, ServFail: []string{"registry.lab.example"}}, "registry.lab.example",
			detector.DNSAnswer{Rcode: "SERVFAIL"}},
		{"CNAME chain", lab.DNSOptions{Zone: zone, CNAME: map[string]string{"registry.lab.example": "alias.cdn.lab.example", "alias.cdn.lab.example": "edge.cdn.lab.example"}},
			"registry.lab.example", detector.DNSAnswer{Rcode: "NOERROR", Addrs: []netip.Addr{cdnV4}, MinTTL: lab.DNSTTL}},
		{"CNAME to a rewritten name", lab.DNSOptions{Zone: zone, CNAME: map[string]string{"registry.lab.example": "edge.cdn.lab.example"}, NXDomain: []string{"edge.cdn.lab.example"}},
			"registry.lab.example", detector.DNSAnswer{Rcode: "NXDOMAIN", MinTTL: lab.DNSTTL}},
	}
	for _, tt := range tests {
		for _, transport := range transports {
			t.Run(tt.name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				srv, c, count := labResolver(t, p, transport, tt.opts)
				got := c.Lookup(testContext(t), srv, tt.qname)
				want := tt.want
				want.Resolver = srv.Spec
				if d := cmp.Diff(want, got, addrCmp, ignoreRTT); d != "" {
					t.Errorf("(-want +got):\n%s", d)
				}
				if got.RTT <= 0 {
					t.Errorf("RTT %v", got.RTT)
				}
				if n := count(); n != 2 {
					t.Errorf("the resolver received %d queries, want 2 (A and AAAA)", n)
				}
			})
		}
	}
}

// A resolver that never answers costs the timeout, once: A and AAAA are
// asked at the same time.
func TestLookupSilent(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	const timeout = 300 * time.Millisecond
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			srv, c, _ := labResolver(t, p, transport, lab.DNSOptions{Zone: honestZone(), Silent: true})
			c.Timeout = timeout
			start := time.Now()
			got := c.Lookup(testContext(t), srv, "registry.lab.example")
			took := time.Since(start)
			if got.Failure != detector.FailureTimeout || got.Answered() {
				t.Errorf("got %+v, want %s", got, detector.FailureTimeout)
			}
			if took < timeout || took > timeout+time.Second {
				t.Errorf("took %v with a %v timeout", took, timeout)
			}
		})
	}
}

// The caller's deadline bounds a lookup even when the timeout is longer.
func TestLookupContextDeadline(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	srv, c, _ := labResolver(t, p, "udp", lab.DNSOptions{Silent: true})
	c.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	got := c.Lookup(ctx, srv, "registry.lab.example")
	if got.Failure != detector.FailureTimeout || time.Since(start) > 5*time.Second {
		t.Errorf("got %+v after %v", got, time.Since(start))
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if got := c.Lookup(ctx, srv, "registry.lab.example"); got.Failure == detector.FailureNone || got.Answered() {
		t.Errorf("canceled lookup: %+v", got)
	}
}

// A truncated UDP answer is asked again over TCP.
func TestLookupTruncatedFallsBackToTCP(t *testing.T) {
	t.Parallel()
	s, err := lab.NewDNSServer(lab.DNSOptions{Zone: honestZone(), Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, s)
	srv, err := ParseServer("udp://" + s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	got := (&Client{}).Lookup(testContext(t), srv, "registry.lab.example")
	want := detector.DNSAnswer{Resolver: srv.Spec, Rcode: "NOERROR", Addrs: []netip.Addr{registryV4, registryV6}, MinTTL: lab.DNSTTL}
	if d := cmp.Diff(want, got, addrCmp, ignoreRTT); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if u, c := s.Queries("udp"), s.Queries("tcp"); u != 2 || c != 2 {
		t.Errorf("%d udp and %d tcp queries, want 2 and 2", u, c)
	}
}

// Failures to reach or trust the resolver, named from the vocabulary.
func TestLookupFailures(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	closed, err := lab.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	dot, doh := encryptedResolvers(t, p)
	broken, err := lab.NewDoHServer(p, lab.DNSOptions{Zone: honestZone(), DoHStatus: http.StatusInternalServerError})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, broken)
	labRoots := &tls.Config{RootCAs: p.PublicPool()}
	otherRoots := &tls.Config{RootCAs: p.SystemPool()}
	otherRoots.RootCAs = newPKI(t).PublicPool()

	tests := []struct {
		name   string
		spec   string
		tls    *tls.Config
		want   detector.Failure
		detail string // a substring of the detail
	}{
		{"udp port closed", "udp://" + closed, labRoots, detector.FailureRefused, "connection refused"},
		{"tcp port closed", "tcp://" + closed, labRoots, detector.FailureRefused, "connection refused"},
		{"DoT with an unknown root", "tls://" + dot.Addr() + "#" + lab.DNSHost, otherRoots, detector.FailureUnknownAuthority, "certificate signed by unknown authority"},
		{"DoT under another name", "tls://" + dot.Addr() + "#other.lab.example", labRoots, detector.FailureHostnameMismatch, "other.lab.example"},
		{"DoH path not found", strings.TrimSuffix(doh.URL(), lab.DoHPath) + "/resolve", labRoots, detector.FailureDNS,
			"A: doh: HTTP status 404 Not Found; AAAA: doh: HTTP status 404 Not Found"},
		{"DoH server error", broken.URL(), labRoots, detector.FailureDNS,
			"A: doh: HTTP status 500 Internal Server Error; AAAA: doh: HTTP status 500 Internal Server Error"},
		{"DoH with an unknown root", doh.URL(), otherRoots, detector.FailureUnknownAuthority, "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, err := ParseServer(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			got := (&Client{TLSConfig: tt.tls, Timeout: 2 * time.Second}).Lookup(testContext(t), srv, "registry.lab.example")
			if got.Failure != tt.want || got.Answered() || !strings.Contains(got.Detail, tt.detail) || got.Resolver != tt.spec {
				t.Errorf("got %+v, want %s with %q", got, tt.want, tt.detail)
			}
		})
	}
}

// udpResponder answers each query on loopback UDP with what answer
// returns: raw datagrams, sent in order.
func udpResponder(t *testing.T, answer func(q *dns.Msg) [][]byte) Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, dns.MaxMsgSize)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			for _, b := range answer(q) {
				pc.WriteTo(b, from)
			}
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	srv, err := ParseServer("udp://" + pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func pack(t *testing.T, m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		t.Error(err)
	}
	return b
}

// manyV4 is an answer of 300 addresses: ~5 KB, four times the EDNS size
// offered.
var manyV4 = func() []netip.Addr {
	var out []netip.Addr
	for i := range 300 {
		out = append(out, netip.AddrFrom4([4]byte{198, 51, byte(100 + i/256), byte(i)}))
	}
	return out
}()

// Replies that are not answers to the query: a stray one is skipped, as
// stub resolvers do; a malformed or mismatched one is a DNS failure.
func TestLookupBadReplies(t *testing.T) {
	t.Parallel()
	answerFor := func(q *dns.Msg, name string) *dns.Msg {
		r := new(dns.Msg).SetReply(q)
		r.Question[0].Name = name
		if q.Question[0].Qtype == dns.TypeA {
			r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: registryV4.AsSlice()}}
		}
		return r
	}
	tests := []struct {
		name   string
		answer func(t *testing.T, q *dns.Msg) [][]byte
		want   detector.DNSAnswer
	}{
		{"stray ID first", func(t *testing.T, q *dns.Msg) [][]byte {
			stray := answerFor(q, q.Question[0].Name)
			stray.Id++
			for _, rr := range stray.Answer {
				rr.(*dns.A).A = steerV4.AsSlice()
			}
			return [][]byte{pack(t, stray), pack(t, answerFor(q, q.Question[0].Name))}
		}, detector.DNSAnswer{Rcode: "NOERROR", Addrs: []netip.Addr{registryV4}, MinTTL: 60}},
		{"garbage", func(t *testing.T, q *dns.Msg) [][]byte {
			b := pack(t, answerFor(q, q.Question[0].Name))
			return [][]byte{b[:len(b)-3]}
		}, detector.DNSAnswer{Failure: detector.FailureDNS}},
		// More than the EDNS size offered, in one datagram: read whole
		// (then judged), and kept whole while the other query's reply
		// is read into the same kind of buffer.
		{"larger than offered", func(t *testing.T, q *dns.Msg) [][]byte {
			r := new(dns.Msg).SetReply(q)
			if q.Question[0].Qtype == dns.TypeA {
				for _, a := range manyV4 {
					r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: a.AsSlice()})
				}
			}
			return [][]byte{pack(t, r)}
		}, detector.DNSAnswer{Rcode: "NOERROR", Addrs: manyV4, MinTTL: 60}},
		{"too short", func(t *testing.T, q *dns.Msg) [][]byte {
			return [][]byte{{0, 1, 2}}
		}, detector.DNSAnswer{Failure: detector.FailureDNS}},
		{"truncated, and no TCP", func(t *testing.T, q *dns.Msg) [][]byte {
			r := new(dns.Msg).SetReply(q)
			r.Truncated = true
			return [][]byte{pack(t, r)}
		}, detector.DNSAnswer{Failure: detector.FailureRefused}},
		{"another question", func(t *testing.T, q *dns.Msg) [][]byte {
			return [][]byte{pack(t, answerFor(q, "other.lab.example."))}
		}, detector.DNSAnswer{Failure: detector.FailureDNS,
			Detail: "A: reply for other.lab.example. A to a query for registry.lab.example. A; AAAA: reply for other.lab.example. AAAA to a query for registry.lab.example. AAAA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := udpResponder(t, func(q *dns.Msg) [][]byte { return tt.answer(t, q) })
			got := (&Client{Timeout: 2 * time.Second}).Lookup(testContext(t), srv, "registry.lab.example")
			want := tt.want
			want.Resolver = srv.Spec
			opts := []cmp.Option{addrCmp, ignoreRTT}
			if want.Detail == "" {
				opts = append(opts, cmpopts.IgnoreFields(detector.DNSAnswer{}, "Detail"))
			}
			if d := cmp.Diff(want, got, opts...); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// DoH replies that are not DNS messages.
func TestLookupBadDoHReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ctype  string
		body   []byte
		detail string
	}{
		{"a block page", "text/html", []byte("<html>blocked</html>"), `doh: Content-Type "text/html", want application/dns-message`},
		{"garbage", "application/dns-message", []byte{1, 2, 3}, "doh: malformed reply"},
		{"oversized", "application/dns-message", make([]byte, 70000), "doh: reply larger than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				w.Write(tt.body)
			}))
			t.Cleanup(ts.Close)
			srv, err := ParseServer(ts.URL + "/dns-query")
			if err != nil {
				t.Fatal(err)
			}
			got := (&Client{HTTPClient: ts.Client(), Timeout: 2 * time.Second}).Lookup(testContext(t), srv, "registry.lab.example")
			if got.Failure != detector.FailureDNS || !strings.Contains(got.Detail, tt.detail) {
				t.Errorf("got %+v, want %s with %q", got, detector.FailureDNS, tt.detail)
			}
		})
	}
}

func TestLookupAll(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	honest, c, _ := labResolver(t, p, "udp", lab.DNSOptions{Zone: honestZone()})
	lying, _, _ := labResolver(t, p, "tls", lab.DNSOptions{Zone: honestZone(), NXDomain: []string{"registry.lab.example"}})
	silent, _, _ := labResolver(t, p, "tcp", lab.DNSOptions{Silent: true})
	honest.System = true
	c.Timeout = 300 * time.Millisecond
	got := c.LookupAll(testContext(t), []Server{honest, lying, silent}, "registry.lab.example")
	want := []detector.DNSAnswer{
		{Resolver: honest.Spec, System: true, Rcode: "NOERROR", Addrs: []netip.Addr{registryV4, registryV6}, MinTTL: lab.DNSTTL},
		{Resolver: lying.Spec, Rcode: "NXDOMAIN"},
		{Resolver: silent.Spec, Failure: detector.FailureTimeout},
	}
	if d := cmp.Diff(want, got, addrCmp, ignoreRTT, cmpopts.IgnoreFields(detector.DNSAnswer{}, "Detail")); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got := c.LookupAll(testContext(t), nil, "registry.lab.example"); len(got) != 0 {
		t.Errorf("no servers: %v", got)
	}
}

func TestLookupUnusable(t *testing.T) {
	t.Parallel()
	c := &Client{Timeout: time.Second}
	srv, err := ParseServer("udp://127.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Lookup(testContext(t), srv, "a..lab.example"); got.Failure != detector.FailureDNS || got.Detail != `invalid name "a..lab.example."` {
		t.Errorf("invalid name: %+v", got)
	}
	got := c.Lookup(testContext(t), Server{Spec: "quic://127.0.0.1", Proto: "quic"}, "registry.lab.example")
	if got.Failure != detector.FailureUnknown || got.Detail != `unsupported protocol "quic"` || got.Resolver != "quic://127.0.0.1" {
		t.Errorf("unsupported protocol: %+v", got)
	}
}

// TestRootsLater: with Roots set, DoT and DoH servers are verified against
// the roots it gives, asked when a TLS server is dialled and never for a
// plain one: a store still loading does not hold up UDP lookups.
func TestRootsLater(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	dot, doh := encryptedResolvers(t, p)
	udp, err := lab.NewDNSServer(lab.DNSOptions{Zone: honestZone()})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, udp)
	for _, tt := range []struct {
		name  string
		roots *trust.Roots
		want  detector.Failure
	}{
		{"the lab's roots", trust.NewRoots(p.PublicRoot.Cert), detector.FailureNone},
		{"another PKI's roots", trust.NewRoots(newPKI(t).PublicRoot.Cert), detector.FailureUnknownAuthority},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var asked atomic.Int32
			c := &Client{Roots: func() *trust.Roots { asked.Add(1); return tt.roots }, Timeout: 2 * time.Second}
			plain := c.Lookup(testContext(t), Server{Proto: "udp", Addr: udp.Addr()}, "registry.lab.example")
			if !plain.Answered() || asked.Load() != 0 {
				t.Fatalf("udp lookup: %+v, roots asked %d times, want an answer and none", plain, asked.Load())
			}
			for _, spec := range []string{"tls://" + dot.Addr() + "#" + lab.DNSHost, doh.URL()} {
				srv, err := ParseServer(spec)
				if err != nil {
					t.Fatal(err)
				}
				got := c.Lookup(testContext(t), srv, "registry.lab.example")
				if got.Failure != tt.want || got.Answered() != (tt.want == detector.FailureNone) {
					t.Errorf("%s: got %+v, want %s", spec, got, tt.want)
				}
			}
			if asked.Load() == 0 {
				t.Error("Roots was never asked")
			}
		})
	}
}

// relay forwards every connection it accepts to addr, counting them: a
// view of when a client's TCP connection is up.
type relay struct {
	ln       net.Listener
	accepted atomic.Int32
}

func newRelay(t *testing.T, addr string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.accepted.Add(1)
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return r
}

// TestRootsAfterConnect: the roots that verify a DoT or DoH server are
// asked for only once the TCP connection to it is up, so a store still
// loading beside the probes does not hold the connection back.
func TestRootsAfterConnect(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	dot, doh := encryptedResolvers(t, p)
	for _, tt := range []struct {
		name string
		spec func(r *relay) string
		addr string
	}{
		{"dot", func(r *relay) string { return "tls://" + r.ln.Addr().String() + "#" + lab.DNSHost }, dot.Addr()},
		{"doh", func(r *relay) string { return strings.Replace(doh.URL(), doh.Addr(), r.ln.Addr().String(), 1) }, doh.Addr()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRelay(t, tt.addr)
			// Roots waits for the relay to accept: asked before the client
			// connects, it would wait in vain, and says so.
			var asked, early atomic.Int32
			c := &Client{Roots: func() *trust.Roots {
				asked.Add(1)
				for deadline := time.Now().Add(time.Second); r.accepted.Load() == 0; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						early.Add(1)
						break
					}
				}
				return trust.NewRoots(p.PublicRoot.Cert)
			}, Timeout: 3 * time.Second}
			srv, err := ParseServer(tt.spec(r))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Lookup(testContext(t), srv, "registry.lab.example"); !got.Answered() {
				t.Fatalf("lookup through the relay: %+v", got)
			}
			if asked.Load() == 0 || early.Load() > 0 {
				t.Errorf("the roots were asked for %d times, %d of them before a TCP connection was up", asked.Load(), early.Load())
			}
		})
	}
}

// encryptedResolvers starts an honest DoT and an honest DoH resolver whose
// certificates p issues, stopped when the test ends.
func encryptedResolvers(t *testing.T, p *lab.PKI) (*lab.DNSServer, *lab.DoHServer) {
	t.Helper()
	dot, err := lab.NewDoTServer(p, lab.DNSOptions{Zone: honestZone()})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, dot)
	doh, err := lab.NewDoHServer(p, lab.DNSOptions{Zone: honestZone()})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, doh)
	return dot, doh
}

// policyServer is a DNS server on loopback (miekg/dns for UDP and TCP on
// one port; DoT answering each query of a connection as it comes, as RFC
// 7766 asks, where miekg/dns's server answers them in turn) whose answers
// a test's policy writes, and which records the client's ports.
type policyServer struct {
	addr   string
	policy func(network string, q *dns.Msg, write func(*dns.Msg))
	mu     sync.Mutex
	ports  map[string][]int // by network
}

// answerTo is the answer to q: one record of its type for its name.
func answerTo(q *dns.Msg) *dns.Msg {
	r := new(dns.Msg).SetReply(q)
	name := q.Question[0].Name
	hdr := dns.RR_Header{Name: name, Rrtype: q.Question[0].Qtype, Class: dns.ClassINET, Ttl: 60}
	switch q.Question[0].Qtype {
	case dns.TypeA:
		r.Answer = append(r.Answer, &dns.A{Hdr: hdr, A: net.ParseIP("192.0.2.1")})
	case dns.TypeAAAA:
		r.Answer = append(r.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.ParseIP("2001:db8::1")})
	}
	return r
}

func (s *policyServer) handle(remote net.Addr, q *dns.Msg, write func(*dns.Msg)) {
	port := 0
	switch a := remote.(type) {
	case *net.UDPAddr:
		port = a.Port
	case *net.TCPAddr:
		port = a.Port
	}
	s.mu.Lock()
	s.ports[remote.Network()] = append(s.ports[remote.Network()], port)
	s.mu.Unlock()
	s.policy(remote.Network(), q, write)
}

// newPolicyServer serves plain DNS (proto "udp" or "tcp", both served)
// or DoT ("tls", with a certificate for lab.DNSHost from p), and returns
// the server and the Server that reaches it.
func newPolicyServer(t *testing.T, p *lab.PKI, proto string, policy func(network string, q *dns.Msg, write func(*dns.Msg))) (*policyServer, Server) {
	t.Helper()
	s := &policyServer{policy: policy, ports: map[string][]int{}}
	spec := proto + "://"
	if proto == "tls" {
		leaf, err := p.PublicIntermediate.Issue(lab.LeafOptions{}, lab.DNSHost, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*leaf}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go s.servePipelined(&dns.Conn{Conn: c})
			}
		}()
		s.addr, spec = l.Addr().String(), spec+l.Addr().String()+"#"+lab.DNSHost
	} else {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			t.Fatal(err)
		}
		h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			s.handle(w.RemoteAddr(), q, func(m *dns.Msg) { w.WriteMsg(m) })
		})
		for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			go srv.ActivateAndServe()
			<-started
			t.Cleanup(func() { srv.Shutdown() })
		}
		s.addr, spec = pc.LocalAddr().String(), spec+pc.LocalAddr().String()
	}
	srv, err := ParseServer(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s, srv
}

// servePipelined answers each query of co in a goroutine of its own until
// co ends.
func (s *policyServer) servePipelined(co *dns.Conn) {
	defer co.Close()
	co.SetDeadline(time.Now().Add(testTimeout))
	var wmu sync.Mutex
	for {
		q, err := co.ReadMsg()
		if err != nil {
			return
		}
		go s.handle(co.RemoteAddr(), q, func(m *dns.Msg) {
			wmu.Lock()
			defer wmu.Unlock()
			co.WriteMsg(m)
		})
	}
}

// together answers each question only once the other has been asked
// over the same network (or, with truncate, truncates every UDP reply):
// a client that waits for one reply before it asks the other question
// gets neither in time.
func together(truncate bool) func(string, *dns.Msg, func(*dns.Msg)) {
	var mu sync.Mutex
	arrived := map[string]map[uint16]chan struct{}{}
	seen := func(network string, qtype uint16) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if arrived[network] == nil {
			arrived[network] = map[uint16]chan struct{}{dns.TypeA: make(chan struct{}), dns.TypeAAAA: make(chan struct{})}
		}
		return arrived[network][qtype]
	}
	var once sync.Map // network/qtype → *sync.Once
	return func(network string, q *dns.Msg, write func(*dns.Msg)) {
		if network == "udp" && truncate {
			r := new(dns.Msg).SetReply(q)
			r.Truncated = true
			write(r)
			return
		}
		qtype := q.Question[0].Qtype
		o, _ := once.LoadOrStore(fmt.Sprint(network, qtype), new(sync.Once))
		o.(*sync.Once).Do(func() { close(seen(network, qtype)) })
		other := dns.TypeA
		if qtype == dns.TypeA {
			other = dns.TypeAAAA
		}
		select {
		case <-seen(network, other):
			write(answerTo(q))
		case <-time.After(testTimeout):
		}
	}
}

// TestLookupAsksBothAtOnce: A and AAAA are both in flight before either
// reply comes, each from a port of its own over UDP and TCP (as Go's
// resolver asks them), over the TCP retries of two truncated UDP replies,
// and on the one connection over DNS over TLS.
func TestLookupAsksBothAtOnce(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	for _, c := range []struct {
		name, proto string
		truncate    bool
		networks    []string
	}{
		{"udp", "udp", false, []string{"udp"}},
		{"tcp", "tcp", false, []string{"tcp"}},
		{"udp truncated", "udp", true, []string{"udp", "tcp"}},
		{"tls", "tls", false, []string{"tcp"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, srv := newPolicyServer(t, p, c.proto, together(c.truncate))
			// Within the server's wait for the other question.
			cl := &Client{TLSConfig: &tls.Config{RootCAs: p.PublicPool()}, Timeout: testTimeout / 2}
			defer cl.Close()
			if got := cl.Lookup(testContext(t), srv, "both.lab.example"); got.Failure != detector.FailureNone || len(got.Addrs) != 2 {
				t.Fatalf("lookup: %+v; want A and AAAA, asked at once", got)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, network := range c.networks {
				ports := s.ports[network]
				sameConn := c.proto == "tls"
				if len(ports) != 2 || (ports[0] == ports[1]) != sameConn {
					t.Errorf("%s: questions from ports %v; want two, on one connection only over DoT", network, ports)
				}
			}
		})
	}
}

// TestLookupKeepsTheReplyThatCame: a resolver that never answers A but
// answers AAAA at once (over UDP, TCP and DoT) gives a lookup with the
// AAAA address: the reply that came stands, whatever became of the other
// question.
func TestLookupKeepsTheReplyThatCame(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	aaaaOnly := func(_ string, q *dns.Msg, write func(*dns.Msg)) {
		if q.Question[0].Qtype == dns.TypeAAAA {
			write(answerTo(q))
		}
	}
	for _, proto := range []string{"udp", "tcp", "tls"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			_, srv := newPolicyServer(t, p, proto, aaaaOnly)
			// A's timeout, waited out at each lookup; long enough for a
			// DoT handshake on a loaded machine under -race.
			cl := &Client{TLSConfig: &tls.Config{RootCAs: p.PublicPool()}, Timeout: 2 * time.Second}
			defer cl.Close()
			for range 3 {
				got := cl.Lookup(testContext(t), srv, "half.lab.example")
				if got.Failure != detector.FailureNone || len(got.Addrs) != 1 || got.Addrs[0] != netip.MustParseAddr("2001:db8::1") {
					t.Fatalf("lookup: %+v; want the AAAA reply that came", got)
				}
			}
		})
	}
}

// TestDoTDuplicateReply: a DoT server (or a box on its path) that sends a
// reply twice leaves the shared connection working for the next lookups.
func TestDoTDuplicateReply(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	twice := func(_ string, q *dns.Msg, write func(*dns.Msg)) {
		if q.Question[0].Qtype == dns.TypeAAAA {
			write(answerTo(q))
			write(answerTo(q))
			return
		}
		time.Sleep(50 * time.Millisecond)
		write(answerTo(q))
	}
	s, srv := newPolicyServer(t, p, "tls", twice)
	cl := &Client{TLSConfig: &tls.Config{RootCAs: p.PublicPool()}, Timeout: 2 * time.Second}
	defer cl.Close()
	for i := range 3 {
		if got := cl.Lookup(testContext(t), srv, "twice.lab.example"); got.Failure != detector.FailureNone || len(got.Addrs) != 2 {
			t.Fatalf("lookup %d: %+v; want A and AAAA", i+1, got)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.ports["tcp"]); n != 6 {
		t.Errorf("%d queries, want 6", n)
	}
}
