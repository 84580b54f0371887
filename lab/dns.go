package lab

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// The lab resolvers' identity and fixed answers.
const (
	// DNSHost is the name in the DoT and DoH servers' certificates (they
	// also carry 127.0.0.1).
	DNSHost = "dns.lab.example"
	// DNSTTL is the TTL of honest answers. Sinkholed answers have TTL 0,
	// as real sinkholes use, so that a lifted block takes effect at once.
	DNSTTL = 300
	// DoHPath is where the DoH server answers (RFC 8484's usual path).
	DoHPath = "/dns-query"
)

// DNSOptions describe a resolver, honest or lying, as data. Names may be
// written with or without the final dot, in any case. A query gets the
// first rule that matches, in the order of the fields below; a name no rule
// knows is answered NXDOMAIN. A queries get only IPv4 addresses, AAAA
// queries only IPv6 ones.
type DNSOptions struct {
	// Silent never answers: a resolver filtered away, where a client can
	// only time out.
	Silent bool
	// Truncate answers every UDP query with TC set and no records, so that
	// the full answer only comes over TCP.
	Truncate bool

	Refused  []string // names answered REFUSED, as a policy block does
	ServFail []string // names answered SERVFAIL
	NXDomain []string // names answered NXDOMAIN even though in Zone: NXDOMAIN rewriting

	// Sinkhole answers every other name, existing or not, with
	// SinkholeAddrs (default 0.0.0.0 and ::) and TTL 0.
	Sinkhole      bool
	SinkholeAddrs []netip.Addr

	// Override answers these names with these addresses instead of Zone's:
	// a resolver that steers a registry elsewhere.
	Override map[string][]netip.Addr
	// CNAME aliases a name to another, answered with the chain and the
	// target's records, as registries behind a CDN are.
	CNAME map[string]string
	// Zone holds the honest answers, with TTL DNSTTL.
	Zone map[string][]netip.Addr

	// DoHStatus, for a DoH server, answers every request with this HTTP
	// status and no DNS message: a DoH endpoint that is gone or broken.
	DoHStatus int

	// Latency delays every answer, as a resolver across a network would.
	Latency time.Duration
	// Listen is the plain resolver's "ip:port"; default a free port on
	// 127.0.0.1. A fixed port 53 on another loopback address lets a
	// resolv.conf (which cannot name a port) point at the lab.
	Listen string
}

// maxCNAMEChain bounds alias chains, so a loop in the options ends.
const maxCNAMEChain = 8

// Bounds on DNS messages: what the UDP server reads and answers at most.
const (
	dnsUDPReadSize = 4096
	dnsEDNSSize    = 1232 // DNS flag day 2020's advice for a UDP answer
)

// zone is DNSOptions compiled: canonical names, validated addresses, and
// the query counters the tests read.
type zone struct {
	silent, truncate, sinkhole bool
	sinkholeAddrs              []netip.Addr
	refused, servfail, nx      map[string]bool
	override, addrs            map[string][]netip.Addr
	cname                      map[string]string
	dohStatus                  int
	latency                    time.Duration

	udp, tcp, https atomic.Int64 // queries received per transport
}

func compileZone(opts DNSOptions) (*zone, error) {
	z := &zone{
		silent: opts.Silent, truncate: opts.Truncate, sinkhole: opts.Sinkhole,
		sinkholeAddrs: opts.SinkholeAddrs, dohStatus: opts.DoHStatus,
		latency: opts.Latency,
		cname:   make(map[string]string),
	}
	if z.sinkholeAddrs == nil {
		z.sinkholeAddrs = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	}
	var err error
	set := func(field string, names []string) map[string]bool {
		m := make(map[string]bool)
		for _, n := range names {
			c, e := canonicalName(n)
			if e != nil {
				err = errors.Join(err, fmt.Errorf("%s: %w", field, e))
			}
			m[c] = true
		}
		return m
	}
	records := func(field string, in map[string][]netip.Addr) map[string][]netip.Addr {
		m := make(map[string][]netip.Addr)
		for n, addrs := range in {
			c, e := canonicalName(n)
			if e != nil {
				err = errors.Join(err, fmt.Errorf("%s: %w", field, e))
			}
			for _, a := range addrs {
				if !a.IsValid() {
					err = errors.Join(err, fmt.Errorf("%s: %s: invalid address", field, n))
				}
			}
			m[c] = append(m[c], addrs...)
		}
		return m
	}
	z.refused, z.servfail, z.nx = set("Refused", opts.Refused), set("ServFail", opts.ServFail), set("NXDomain", opts.NXDomain)
	z.override, z.addrs = records("Override", opts.Override), records("Zone", opts.Zone)
	for n, target := range opts.CNAME {
		c, e1 := canonicalName(n)
		t, e2 := canonicalName(target)
		if e := errors.Join(e1, e2); e != nil {
			err = errors.Join(err, fmt.Errorf("CNAME: %w", e))
		}
		z.cname[c] = t
	}
	for _, a := range opts.SinkholeAddrs {
		if !a.IsValid() {
			err = errors.Join(err, errors.New("SinkholeAddrs: invalid address"))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lab: dns options: %w", err)
	}
	return z, nil
}

func canonicalName(n string) (string, error) {
	if _, ok := dns.IsDomainName(n); !ok || n == "" {
		return "", fmt.Errorf("invalid name %q", n)
	}
	return dns.CanonicalName(n), nil
}

// resolve answers name for qtype by the rules of DNSOptions, following
// aliases.
func (z *zone) resolve(name string, qtype uint16) (rcode int, answer []dns.RR) {
	for range maxCNAMEChain {
		key := dns.CanonicalName(name)
		override, steered := z.override[key]
		addrs, known := z.addrs[key]
		switch {
		case z.refused[key]:
			return dns.RcodeRefused, nil
		case z.servfail[key]:
			return dns.RcodeServerFailure, nil
		case z.nx[key]:
			return dns.RcodeNameError, answer
		case z.sinkhole:
			return dns.RcodeSuccess, append(answer, addrRecords(name, qtype, z.sinkholeAddrs, 0)...)
		case steered:
			return dns.RcodeSuccess, append(answer, addrRecords(name, qtype, override, DNSTTL)...)
		case z.cname[key] != "":
			target := z.cname[key]
			answer = append(answer, &dns.CNAME{Hdr: header(name, dns.TypeCNAME, DNSTTL), Target: target})
			name = target
		case known:
			return dns.RcodeSuccess, append(answer, addrRecords(name, qtype, addrs, DNSTTL)...)
		default:
			return dns.RcodeNameError, answer
		}
	}
	return dns.RcodeServerFailure, nil // an alias loop, as a real server reports it
}

func header(name string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// addrRecords keeps the addresses of the family qtype asks for.
func addrRecords(name string, qtype uint16, addrs []netip.Addr, ttl uint32) []dns.RR {
	var rrs []dns.RR
	for _, a := range addrs {
		switch {
		case qtype == dns.TypeA && a.Is4():
			rrs = append(rrs, &dns.A{Hdr: header(name, dns.TypeA, ttl), A: a.AsSlice()})
		case qtype == dns.TypeAAAA && a.Is6():
			rrs = append(rrs, &dns.AAAA{Hdr: header(name, dns.TypeAAAA, ttl), AAAA: a.AsSlice()})
		}
	}
	return rrs
}

// reply answers req received over network ("udp", "tcp" or "https"), or
// returns nil for silence.
func (z *zone) reply(req *dns.Msg, network string) *dns.Msg {
	switch network {
	case "udp":
		z.udp.Add(1)
	case "tcp":
		z.tcp.Add(1)
	default:
		z.https.Add(1)
	}
	if z.silent {
		return nil
	}
	m := new(dns.Msg).SetReply(req)
	m.RecursionAvailable = true
	opt := req.IsEdns0()
	if opt != nil {
		m.SetEdns0(dnsEDNSSize, false)
	}
	switch {
	case req.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
		return m
	case len(req.Question) != 1:
		m.Rcode = dns.RcodeFormatError
		return m
	case req.Question[0].Qclass != dns.ClassINET:
		m.Rcode = dns.RcodeRefused
		return m
	case network == "udp" && z.truncate:
		m.Truncated = true
		return m
	}
	q := req.Question[0]
	m.Rcode, m.Answer = z.resolve(q.Name, q.Qtype)
	if network == "udp" {
		size := dns.MinMsgSize
		if opt != nil {
			size = min(int(opt.UDPSize()), dnsEDNSSize)
		}
		m.Truncate(size)
	}
	return m
}

func (z *zone) handler(network string) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if m := z.reply(req, network); m != nil {
			time.Sleep(z.latency) // the network's delay, not a wait for readiness
			w.WriteMsg(m)
		}
	})
}

// DNSServer is a resolver on loopback, plain (UDP and TCP on one port) or
// DNS over TLS, answering by its DNSOptions.
type DNSServer struct {
	zone    *zone
	addr    string
	servers []*dns.Server
	served  []chan error // each server's ActivateAndServe result
	raw     *rawServer   // the DoT server's own loop
	once    sync.Once
	err     error
}

// NewDNSServer starts a plain resolver, UDP and TCP on the same port.
func NewDNSServer(opts DNSOptions) (*DNSServer, error) {
	z, err := compileZone(opts)
	if err != nil {
		return nil, err
	}
	pc, ln, err := listenUDPAndTCP(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("lab: dns: %w", err)
	}
	s := &DNSServer{zone: z, addr: ln.Addr().String()}
	if err := s.start(&dns.Server{PacketConn: pc, Handler: z.handler("udp"), UDPSize: dnsUDPReadSize}); err != nil {
		pc.Close()
		ln.Close()
		return nil, fmt.Errorf("lab: dns: udp: %w", err)
	}
	if err := s.start(&dns.Server{Listener: ln, Handler: z.handler("tcp")}); err != nil {
		ln.Close()
		s.Close()
		return nil, fmt.Errorf("lab: dns: tcp: %w", err)
	}
	return s, nil
}

// NewDoTServer starts a DNS-over-TLS resolver (RFC 7858) whose leaf, from
// PublicIntermediate, names DNSHost and 127.0.0.1. Like public resolvers it
// answers pipelined queries concurrently, each after Latency, so a client
// that shares one connection is not served one query at a time.
func NewDoTServer(p *PKI, opts DNSOptions) (*DNSServer, error) {
	z, err := compileZone(opts)
	if err != nil {
		return nil, err
	}
	cfg, err := dnsTLSConfig(p)
	if err != nil {
		return nil, fmt.Errorf("lab: dot: %w", err)
	}
	raw, err := serveRaw(func(c net.Conn, _ *connSet) { z.serveDoT(tls.Server(c, cfg)) })
	if err != nil {
		return nil, fmt.Errorf("lab: dot: %w", err)
	}
	return &DNSServer{zone: z, addr: raw.Addr(), raw: raw}, nil
}

// serveDoT reads length-prefixed queries (RFC 1035 section 4.2.2) and
// answers each in its own goroutine, writes serialised; it returns when the
// connection ends, after its answers.
func (z *zone) serveDoT(c *tls.Conn) {
	var (
		wmu sync.Mutex
		wg  sync.WaitGroup
	)
	defer wg.Wait()
	c.SetDeadline(time.Now().Add(dotIdle))
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		buf := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		req := new(dns.Msg)
		if err := req.Unpack(buf); err != nil {
			return // a broken stream: drop the connection, as resolvers do
		}
		wg.Go(func() {
			m := z.reply(req, "tcp")
			if m == nil {
				return // silent
			}
			time.Sleep(z.latency) // the network's delay
			out, err := m.Pack()
			if err != nil {
				return
			}
			wmu.Lock()
			defer wmu.Unlock()
			c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(out))))
			c.Write(out)
		})
	}
}

// dotIdle bounds how long a DoT connection may stay open, so nothing in the
// lab waits forever.
const dotIdle = time.Minute

func dnsTLSConfig(p *PKI) (*tls.Config, error) {
	leaf, err := p.PublicIntermediate.Issue(LeafOptions{}, DNSHost, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{*leaf}, NextProtos: defaultNextProtos}, nil
}

// listenUDPAndTCP binds UDP on a kernel-chosen port and TCP on the same
// one, retrying when another socket already holds that TCP port.
func listenUDPAndTCP(addr string) (net.PacketConn, net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var err error
	for range 16 {
		var pc net.PacketConn
		pc, err = net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		var ln net.Listener
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
	}
	return nil, nil, fmt.Errorf("no port free for both udp and tcp: %w", err)
}

// start runs srv and returns once it serves (miekg/dns signals readiness,
// so nothing waits on a clock).
func (s *DNSServer) start(srv *dns.Server) error {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	select {
	case <-started:
		s.servers = append(s.servers, srv)
		s.served = append(s.served, served)
		return nil
	case err := <-served:
		return err
	}
}

// Addr is the resolver's "127.0.0.1:port", for UDP and TCP alike.
func (s *DNSServer) Addr() string { return s.addr }

// Queries counts the queries received over network: "udp" or "tcp" (DoT
// counts as "tcp").
func (s *DNSServer) Queries(network string) int {
	switch network {
	case "udp":
		return int(s.zone.udp.Load())
	case "tcp":
		return int(s.zone.tcp.Load())
	}
	return 0
}

// Close stops the resolver; it returns once its goroutines have ended.
func (s *DNSServer) Close() error {
	s.once.Do(func() {
		for i, srv := range s.servers {
			s.err = errors.Join(s.err, srv.Shutdown(), <-s.served[i])
		}
		if s.raw != nil {
			s.err = errors.Join(s.err, s.raw.Close())
		}
	})
	return s.err
}

// DoHServer is a DNS-over-HTTPS resolver (RFC 8484) on loopback, answering
// GET and POST at DoHPath, over HTTP/2 or HTTP/1.1.
type DoHServer struct {
	zone *zone
	http *httpServer
}

// NewDoHServer starts a DoH resolver whose leaf, from PublicIntermediate,
// names DNSHost and 127.0.0.1.
func NewDoHServer(p *PKI, opts DNSOptions) (*DoHServer, error) {
	z, err := compileZone(opts)
	if err != nil {
		return nil, err
	}
	cfg, err := dnsTLSConfig(p)
	if err != nil {
		return nil, fmt.Errorf("lab: doh: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+DoHPath, z.serveDoH)
	mux.HandleFunc("POST "+DoHPath, z.serveDoH)
	s, err := serveHTTP(mux, tlsWrap(cfg))
	if err != nil {
		return nil, fmt.Errorf("lab: doh: %w", err)
	}
	return &DoHServer{zone: z, http: s}, nil
}

// dnsMessageType is RFC 8484's media type.
const dnsMessageType = "application/dns-message"

func (z *zone) serveDoH(w http.ResponseWriter, r *http.Request) {
	if z.dohStatus != 0 {
		http.Error(w, http.StatusText(z.dohStatus), z.dohStatus)
		return
	}
	wire, status, err := dohQuery(w, r)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	req := new(dns.Msg)
	if err := req.Unpack(wire); err != nil || req.Response {
		http.Error(w, "not a DNS query", http.StatusBadRequest)
		return
	}
	m := z.reply(req, "https")
	if m == nil {
		<-r.Context().Done() // silent until the client gives up or Close
		return
	}
	out, err := m.Pack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	time.Sleep(z.latency) // the network's delay
	w.Header().Set("Content-Type", dnsMessageType)
	w.Write(out)
}

// dohQuery extracts the DNS query of a DoH request: base64url in ?dns= for
// GET, the body for POST.
func dohQuery(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	if r.Method == http.MethodGet {
		b, err := base64.RawURLEncoding.DecodeString(r.URL.Query().Get("dns"))
		if err != nil || len(b) == 0 {
			return nil, http.StatusBadRequest, errors.New("want a base64url DNS query in ?dns=")
		}
		return b, 0, nil
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != dnsMessageType {
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("want Content-Type %s", dnsMessageType)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, dns.MaxMsgSize))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, err
	case err != nil:
		return nil, http.StatusBadRequest, err
	}
	return b, 0, nil
}

// Addr is the DoH server's "127.0.0.1:port".
func (s *DoHServer) Addr() string { return s.http.Addr() }

// URL is the DoH endpoint, "https://127.0.0.1:port/dns-query".
func (s *DoHServer) URL() string { return "https://" + s.Addr() + DoHPath }

// Queries counts the DNS queries received.
func (s *DoHServer) Queries() int { return int(s.zone.https.Load()) }

// Close stops the server and ends its connections.
func (s *DoHServer) Close() error { return s.http.Close() }
