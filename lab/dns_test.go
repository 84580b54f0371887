package lab

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

var (
	registryV4 = netip.MustParseAddr("198.51.100.7")
	registryV6 = netip.MustParseAddr("2001:db8::7")
	cdnV4      = netip.MustParseAddr("203.0.113.9")
	steerV4    = netip.MustParseAddr("192.0.2.66")
)

// honestZone is the zone most tests start from.
func honestZone() map[string][]netip.Addr {
	return map[string][]netip.Addr{
		"registry.lab.example": {registryV4, registryV6},
		"edge.cdn.lab.example": {cdnV4},
	}
}

func newDNSServer(t testing.TB, opts DNSOptions) *DNSServer {
	t.Helper()
	s, err := NewDNSServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, s)
	return s
}

// query asks addr one question with a raw miekg/dns client over network
// ("udp", "tcp" or "tcp-tls").
func query(t testing.TB, c *dns.Client, addr, name string, qtype uint16, edns bool) (*dns.Msg, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	m := new(dns.Msg).SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(dnsEDNSSize, false)
	}
	r, _, err := c.ExchangeContext(ctx, m, addr)
	return r, err
}

// summary renders a reply compactly: rcode, flags, then one line per
// answer record.
func summary(r *dns.Msg) []string {
	out := []string{dns.RcodeToString[r.Rcode]}
	if r.Truncated {
		out[0] += " TC"
	}
	for _, rr := range r.Answer {
		h := rr.Header()
		var v string
		switch rr := rr.(type) {
		case *dns.A:
			v = rr.A.String()
		case *dns.AAAA:
			v = rr.AAAA.String()
		case *dns.CNAME:
			v = rr.Target
		}
		out = append(out, fmt.Sprintf("%s %s %s %d", h.Name, dns.TypeToString[h.Rrtype], v, h.Ttl))
	}
	return out
}

func TestDNSServerAnswers(t *testing.T) {
	t.Parallel()
	zone := honestZone()
	tests := []struct {
		name  string
		opts  DNSOptions
		qname string
		qtype uint16
		want  []string
	}{
		{"honest A", DNSOptions{Zone: zone}, "registry.lab.example.", dns.TypeA,
			[]string{"NOERROR", "registry.lab.example. A 198.51.100.7 300"}},
		{"honest AAAA", DNSOptions{Zone: zone}, "registry.lab.example.", dns.TypeAAAA,
			[]string{"NOERROR", "registry.lab.example. AAAA 2001:db8::7 300"}},
		{"name case as asked", DNSOptions{Zone: zone}, "ReGistry.LAB.example.", dns.TypeA,
			[]string{"NOERROR", "ReGistry.LAB.example. A 198.51.100.7 300"}},
		{"no IPv6: NODATA", DNSOptions{Zone: zone}, "edge.cdn.lab.example.", dns.TypeAAAA,
			[]string{"NOERROR"}},
		{"other type: NODATA", DNSOptions{Zone: zone}, "registry.lab.example.", dns.TypeTXT,
			[]string{"NOERROR"}},
		{"unknown name", DNSOptions{Zone: zone}, "nope.lab.example.", dns.TypeA,
			[]string{"NXDOMAIN"}},
		{"NXDOMAIN rewriting", DNSOptions{Zone: zone, NXDomain: []string{"registry.lab.example."}}, "registry.lab.example.", dns.TypeA,
			[]string{"NXDOMAIN"}},
		{"refused", DNSOptions{Zone: zone, Refused: []string{"REGISTRY.lab.example"}}, "registry.lab.example.", dns.TypeA,
			[]string{"REFUSED"}},
		{"servfail", DNSOptions{Zone: zone, ServFail: []string{"registry.lab.example"}}, "registry.lab.example.", dns.TypeAAAA,
			[]string{"SERVFAIL"}},
		{"sinkhole A", DNSOptions{Zone: zone, Sinkhole: true}, "registry.lab.example.", dns.TypeA,
			[]string{"NOERROR", "registry.lab.example. A 0.0.0.0 0"}},
		{"sinkhole AAAA of a name that cannot exist", DNSOptions{Zone: zone, Sinkhole: true}, "0123456789abcdef.example.com.", dns.TypeAAAA,
			[]string{"NOERROR", "0123456789abcdef.example.com. AAAA :: 0"}},
		{"sinkhole elsewhere", DNSOptions{Zone: zone, Sinkhole: true, SinkholeAddrs: []netip.Addr{steerV4}}, "x.lab.example.", dns.TypeA,
			[]string{"NOERROR", "x.lab.example. A 192.0.2.66 0"}},
		{"override", DNSOptions{Zone: zone, Override: map[string][]netip.Addr{"registry.lab.example": {steerV4}}}, "registry.lab.example.", dns.TypeA,
			[]string{"NOERROR", "registry.lab.example. A 192.0.2.66 300"}},
		{"override to nothing", DNSOptions{Zone: zone, Override: map[string][]netip.Addr{"registry.lab.example": nil}}, "registry.lab.example.", dns.TypeA,
			[]string{"NOERROR"}},
		{"cname chain", DNSOptions{Zone: zone, CNAME: map[string]string{"registry.lab.example": "alias.cdn.lab.example", "alias.cdn.lab.example": "edge.cdn.lab.example."}},
			"registry.lab.example.", dns.TypeA,
			[]string{"NOERROR", "registry.lab.example. CNAME alias.cdn.lab.example. 300", "alias.cdn.lab.example. CNAME edge.cdn.lab.example. 300", "edge.cdn.lab.example. A 203.0.113.9 300"}},
		{"cname to nowhere", DNSOptions{Zone: zone, CNAME: map[string]string{"registry.lab.example": "gone.lab.example"}}, "registry.lab.example.", dns.TypeA,
			[]string{"NXDOMAIN", "registry.lab.example. CNAME gone.lab.example. 300"}},
		{"cname loop", DNSOptions{CNAME: map[string]string{"a.lab.example": "b.lab.example", "b.lab.example": "a.lab.example"}}, "a.lab.example.", dns.TypeA,
			[]string{"SERVFAIL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newDNSServer(t, tt.opts)
			for _, network := range []string{"udp", "tcp"} {
				r, err := query(t, &dns.Client{Net: network}, s.Addr(), tt.qname, tt.qtype, false)
				if err != nil {
					t.Fatalf("%s: %v", network, err)
				}
				if d := cmp.Diff(tt.want, summary(r)); d != "" {
					t.Errorf("%s: answer (-want +got):\n%s", network, d)
				}
				if !r.Response || !r.RecursionAvailable || len(r.Question) != 1 || r.Question[0].Name != tt.qname || r.Question[0].Qtype != tt.qtype {
					t.Errorf("%s: header or question not echoed: %v", network, r.MsgHdr)
				}
			}
			if u, c := s.Queries("udp"), s.Queries("tcp"); u != 1 || c != 1 {
				t.Errorf("counted %d udp and %d tcp queries, want 1 and 1", u, c)
			}
		})
	}
}

func TestDNSServerTruncate(t *testing.T) {
	t.Parallel()
	s := newDNSServer(t, DNSOptions{Zone: honestZone(), Truncate: true})
	r, err := query(t, &dns.Client{Net: "udp"}, s.Addr(), "registry.lab.example.", dns.TypeA, true)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"NOERROR TC"}, summary(r)); d != "" {
		t.Errorf("udp (-want +got):\n%s", d)
	}
	r, err = query(t, &dns.Client{Net: "tcp"}, s.Addr(), "registry.lab.example.", dns.TypeA, true)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"NOERROR", "registry.lab.example. A 198.51.100.7 300"}, summary(r)); d != "" {
		t.Errorf("tcp (-want +got):\n%s", d)
	}
}

// A large answer is truncated over UDP to what the client can take: 512
// bytes without EDNS, more with it, everything over TCP.
func TestDNSServerUDPSize(t *testing.T) {
	t.Parallel()
	var many []netip.Addr
	for i := range 60 {
		many = append(many, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
	}
	s := newDNSServer(t, DNSOptions{Zone: map[string][]netip.Addr{"big.lab.example": many}})
	for _, tt := range []struct {
		network string
		edns    bool
		tc      bool
	}{{"udp", false, true}, {"udp", true, false}, {"tcp", false, false}} {
		r, err := query(t, &dns.Client{Net: tt.network}, s.Addr(), "big.lab.example.", dns.TypeA, tt.edns)
		if err != nil {
			t.Fatal(err)
		}
		if r.Truncated != tt.tc || (!tt.tc && len(r.Answer) != len(many)) {
			t.Errorf("%s edns=%v: TC=%v with %d records, want TC=%v", tt.network, tt.edns, r.Truncated, len(r.Answer), tt.tc)
		}
	}
}

func TestDNSServerSilent(t *testing.T) {
	t.Parallel()
	s := newDNSServer(t, DNSOptions{Zone: honestZone(), Silent: true})
	for _, network := range []string{"udp", "tcp"} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		c := &dns.Client{Net: network}
		_, _, err := c.ExchangeContext(ctx, new(dns.Msg).SetQuestion("registry.lab.example.", dns.TypeA), s.Addr())
		cancel()
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s: got %v, want a timeout", network, err)
		}
	}
	if s.Queries("udp") != 1 || s.Queries("tcp") != 1 {
		t.Errorf("silent server did not receive the queries")
	}
}

func TestDoTServer(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	s, err := NewDoTServer(p, DNSOptions{Zone: honestZone()})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, s)
	for _, name := range []string{DNSHost, "127.0.0.1"} {
		c := &dns.Client{Net: "tcp-tls", TLSConfig: &tls.Config{RootCAs: p.PublicPool(), ServerName: name}}
		r, err := query(t, c, s.Addr(), "registry.lab.example.", dns.TypeAAAA, true)
		if err != nil {
			t.Fatalf("server name %s: %v", name, err)
		}
		if d := cmp.Diff([]string{"NOERROR", "registry.lab.example. AAAA 2001:db8::7 300"}, summary(r)); d != "" {
			t.Errorf("server name %s (-want +got):\n%s", name, d)
		}
	}
	if n := s.Queries("tcp"); n != 2 {
		t.Errorf("counted %d queries, want 2", n)
	}
	// The lab's public root is not a real one.
	c := &dns.Client{Net: "tcp-tls", TLSConfig: &tls.Config{ServerName: DNSHost}}
	if _, err := query(t, c, s.Addr(), "registry.lab.example.", dns.TypeA, false); err == nil {
		t.Error("handshake verified against the system roots")
	}
}

func newDoHServer(t testing.TB, p *PKI, opts DNSOptions) *DoHServer {
	t.Helper()
	s, err := NewDoHServer(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, s)
	return s
}

func packQuery(t testing.TB, name string, qtype uint16) []byte {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.Id = 0
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDoHServer(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	s := newDoHServer(t, p, DNSOptions{Zone: honestZone()})
	if !strings.HasPrefix(s.URL(), "https://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/dns-query") {
		t.Errorf("URL %s", s.URL())
	}
	c := httpClient(t, s.Addr(), &tls.Config{RootCAs: p.PublicPool()})
	wire := packQuery(t, "registry.lab.example.", dns.TypeA)
	do := func(req *http.Request) (*http.Response, []byte) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	get, _ := http.NewRequest(http.MethodGet, s.URL()+"?dns="+base64.RawURLEncoding.EncodeToString(wire), nil)
	post, _ := http.NewRequest(http.MethodPost, s.URL(), bytes.NewReader(wire))
	post.Header.Set("Content-Type", "application/dns-message")
	for _, req := range []*http.Request{get, post} {
		resp, body := do(req)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/dns-message" || resp.ProtoMajor != 2 {
			t.Fatalf("%s: %s %s %q", req.Method, resp.Proto, resp.Status, resp.Header.Get("Content-Type"))
		}
		r := new(dns.Msg)
		if err := r.Unpack(body); err != nil {
			t.Fatalf("%s: %v", req.Method, err)
		}
		if d := cmp.Diff([]string{"NOERROR", "registry.lab.example. A 198.51.100.7 300"}, summary(r)); d != "" || r.Id != 0 {
			t.Errorf("%s: id %d, answer (-want +got):\n%s", req.Method, r.Id, d)
		}
	}
	if n := s.Queries(); n != 2 {
		t.Errorf("counted %d queries, want 2", n)
	}

	bad := func(method, url, ctype string, body []byte) *http.Request {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		return req
	}
	for _, tt := range []struct {
		name string
		req  *http.Request
		want int
	}{
		{"other path", bad(http.MethodGet, strings.TrimSuffix(s.URL(), "/dns-query")+"/resolve?dns="+base64.RawURLEncoding.EncodeToString(wire), "", nil), http.StatusNotFound},
		{"no dns parameter", bad(http.MethodGet, s.URL(), "", nil), http.StatusBadRequest},
		{"padded base64", bad(http.MethodGet, s.URL()+"?dns="+base64.URLEncoding.EncodeToString(wire), "", nil), http.StatusBadRequest},
		{"not a DNS message", bad(http.MethodPost, s.URL(), "application/dns-message", []byte("hello")), http.StatusBadRequest},
		{"a DNS answer", bad(http.MethodPost, s.URL(), "application/dns-message", func() []byte {
			m := new(dns.Msg).SetReply(new(dns.Msg).SetQuestion("x.", dns.TypeA))
			b, _ := m.Pack()
			return b
		}()), http.StatusBadRequest},
		{"wrong content type", bad(http.MethodPost, s.URL(), "application/json", wire), http.StatusUnsupportedMediaType},
		{"too large", bad(http.MethodPost, s.URL(), "application/dns-message", make([]byte, dns.MaxMsgSize+1)), http.StatusRequestEntityTooLarge},
		{"other method", bad(http.MethodPut, s.URL(), "application/dns-message", wire), http.StatusMethodNotAllowed},
	} {
		if resp, _ := do(tt.req); resp.StatusCode != tt.want {
			t.Errorf("%s: %s, want %d", tt.name, resp.Status, tt.want)
		}
	}
}

func TestDoHServerStatus(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	s := newDoHServer(t, p, DNSOptions{Zone: honestZone(), DoHStatus: http.StatusInternalServerError})
	resp, _ := get(t, httpClient(t, s.Addr(), &tls.Config{RootCAs: p.PublicPool()}),
		s.URL()+"?dns="+base64.RawURLEncoding.EncodeToString(packQuery(t, "registry.lab.example.", dns.TypeA)))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("got %s, want 500", resp.Status)
	}
}

func TestDNSOptionsInvalid(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		opts DNSOptions
		want string
	}{
		{"empty label", DNSOptions{NXDomain: []string{"a..lab.example"}}, `NXDomain: invalid name "a..lab.example"`},
		{"empty name", DNSOptions{Refused: []string{""}}, `Refused: invalid name ""`},
		{"zero address", DNSOptions{Zone: map[string][]netip.Addr{"a.lab.example": {{}}}}, "Zone: a.lab.example: invalid address"},
		{"bad alias target", DNSOptions{CNAME: map[string]string{"a.lab.example": "b..lab.example"}}, `CNAME: invalid name "b..lab.example"`},
	} {
		_, err := NewDNSServer(tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestDNSCloseEndsEverything holds connections and a silent DoH request
// open, closes the servers, and checks no goroutine outlives them. It is not
// parallel so the goroutine count is its own.
func TestDNSCloseEndsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newTestPKI(t)
	plain, err := NewDNSServer(DNSOptions{Silent: true})
	if err != nil {
		t.Fatal(err)
	}
	dot, err := NewDoTServer(p, DNSOptions{Silent: true})
	if err != nil {
		t.Fatal(err)
	}
	doh, err := NewDoHServer(p, DNSOptions{Silent: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	// A TCP query left unanswered, and a DoT connection mid-session.
	var held []net.Conn
	for _, c := range []*dns.Client{{Net: "tcp"}, {Net: "tcp-tls", TLSConfig: &tls.Config{RootCAs: p.PublicPool(), ServerName: DNSHost}}} {
		addr := plain.Addr()
		if c.Net == "tcp-tls" {
			addr = dot.Addr()
		}
		co, err := c.DialContext(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := co.WriteMsg(new(dns.Msg).SetQuestion("a.lab.example.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		held = append(held, co)
	}
	// A DoH request the silent server holds.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.PublicPool()}, ForceAttemptHTTP2: true}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, doh.URL()+"?dns="+base64.RawURLEncoding.EncodeToString(packQuery(t, "a.lab.example.", dns.TypeA)), nil)
	dohDone := make(chan error, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		dohDone <- err
	}()
	for doh.Queries() == 0 && ctx.Err() == nil {
		runtime.Gosched() // wait until the request is in the handler
	}

	for _, s := range []closer{plain, dot, doh} {
		if err := s.Close(); err != nil {
			t.Errorf("%T: close: %v", s, err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("%T: second close: %v", s, err)
		}
	}
	for n, c := range held {
		c.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := io.Copy(io.Discard, c); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("connection %d still open after Close", n)
			}
		}
		c.Close()
	}
	if err := <-dohDone; err == nil {
		t.Error("silent DoH request got an answer")
	}
	tr.CloseIdleConnections()

	deadline := time.Now().Add(testTimeout)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// FuzzDoHQuery feeds arbitrary requests to the DoH handler: it must answer
// a DNS message or a client error, never panic.
func FuzzDoHQuery(f *testing.F) {
	f.Add(true, "", base64.RawURLEncoding.EncodeToString(packQuery(f, "registry.lab.example.", dns.TypeA)), []byte(nil))
	f.Add(false, "application/dns-message", "", packQuery(f, "x.lab.example.", dns.TypeAAAA))
	f.Add(false, "application/dns-message; charset=x", "", []byte{0, 0, 1, 0, 0, 1})
	f.Add(true, "", "AAABAAABAAAAAAAAAXgAAAEAAQ", []byte(nil))
	z, err := compileZone(DNSOptions{Zone: honestZone(), CNAME: map[string]string{"alias.lab.example": "registry.lab.example"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, isGet bool, ctype, param string, body []byte) {
		var req *http.Request
		if isGet {
			req = httptest.NewRequest(http.MethodGet, DoHPath, nil)
			req.URL.RawQuery = "dns=" + param
		} else {
			req = httptest.NewRequest(http.MethodPost, DoHPath, bytes.NewReader(body))
			req.Header.Set("Content-Type", ctype)
		}
		w := httptest.NewRecorder()
		z.serveDoH(w, req)
		switch w.Code {
		case http.StatusOK:
			if err := new(dns.Msg).Unpack(w.Body.Bytes()); err != nil {
				t.Fatalf("200 with a reply that does not parse: %v", err)
			}
		case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d", w.Code)
		}
	})
}

// TestDNSLatencyAndListen: answers wait Latency, and Listen picks the
// address, so a resolv.conf can point at the lab.
func TestDNSLatencyAndListen(t *testing.T) {
	const latency = 40 * time.Millisecond
	s, err := NewDNSServer(DNSOptions{Zone: map[string][]netip.Addr{"pypi.org": {netip.MustParseAddr("127.0.0.1")}},
		Latency: latency, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion("pypi.org.", dns.TypeA)
	start := time.Now()
	r, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < latency {
		t.Errorf("answer after %v, want at least %v", elapsed, latency)
	}
	if len(r.Answer) != 1 {
		t.Errorf("answer %v", r.Answer)
	}
}
