package resolver

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/mitmwatch/mitmwatch/detector"
)

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestFollow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		qtype   uint16
		answer  []string
		want    []netip.Addr
		wantTTL uint32
		wantN   int
	}{
		{"direct", dns.TypeA, []string{"registry.lab.example. 300 IN A 198.51.100.7", "registry.lab.example. 60 IN A 198.51.100.8"},
			addrs("198.51.100.7", "198.51.100.8"), 60, 2},
		{"other family ignored", dns.TypeA, []string{"registry.lab.example. 300 IN AAAA 2001:db8::7", "registry.lab.example. 300 IN A 198.51.100.7"},
			addrs("198.51.100.7"), 300, 1},
		{"AAAA", dns.TypeAAAA, []string{"registry.lab.example. 300 IN AAAA 2001:db8::7", "registry.lab.example. 300 IN A 198.51.100.7"},
			addrs("2001:db8::7"), 300, 1},
		{"case insensitive", dns.TypeA, []string{"REGISTRY.Lab.Example. 300 IN A 198.51.100.7"},
			addrs("198.51.100.7"), 300, 1},
		{"chain, minimum TTL over it", dns.TypeA, []string{
			"edge.cdn.lab.example. 300 IN A 203.0.113.9",
			"alias.cdn.lab.example. 30 IN CNAME edge.cdn.lab.example.",
			"registry.lab.example. 3600 IN CNAME alias.cdn.lab.example.",
		}, addrs("203.0.113.9"), 30, 3},
		{"off-chain records ignored", dns.TypeA, []string{
			"registry.lab.example. 300 IN CNAME edge.cdn.lab.example.",
			"registry.lab.example. 5 IN A 192.0.2.66",
			"injected.lab.example. 5 IN A 192.0.2.67",
			"edge.cdn.lab.example. 300 IN A 203.0.113.9",
		}, addrs("203.0.113.9"), 300, 2},
		{"chain to nothing", dns.TypeA, []string{"registry.lab.example. 300 IN CNAME gone.lab.example."},
			nil, 300, 1},
		{"loop", dns.TypeA, []string{"registry.lab.example. 300 IN CNAME b.lab.example.", "b.lab.example. 300 IN CNAME registry.lab.example."},
			nil, 300, 1},
		{"other class ignored", dns.TypeA, []string{"registry.lab.example. 300 CH A 192.0.2.66"},
			nil, 0, 0},
		{"empty", dns.TypeA, nil, nil, 0, 0},
	}
	for _, tt := range tests {
		var answer []dns.RR
		for _, s := range tt.answer {
			answer = append(answer, rr(t, s))
		}
		got, ttl, n := follow("registry.lab.example.", tt.qtype, answer)
		if d := cmp.Diff(tt.want, got, addrCmp); d != "" || ttl != tt.wantTTL || n != tt.wantN {
			t.Errorf("%s: TTL %d over %d records, want %d over %d; addresses (-want +got):\n%s", tt.name, ttl, n, tt.wantTTL, tt.wantN, d)
		}
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	timeout := context.DeadlineExceeded
	refused := os.NewSyscallError("read", syscall.ECONNREFUSED)
	ok := func(qtype uint16, rcode int, ttl uint32, as ...string) reply {
		a := addrs(as...)
		return reply{qtype: qtype, rcode: rcode, addrs: a, ttl: ttl, records: len(a)}
	}
	tests := []struct {
		name    string
		a, aaaa reply
		want    detector.DNSAnswer
	}{
		{"both answer: union, sorted, deduplicated",
			ok(dns.TypeA, dns.RcodeSuccess, 300, "198.51.100.8", "198.51.100.7", "198.51.100.8"), ok(dns.TypeAAAA, dns.RcodeSuccess, 60, "2001:db8::7"),
			detector.DNSAnswer{Rcode: "NOERROR", Addrs: addrs("198.51.100.7", "198.51.100.8", "2001:db8::7"), MinTTL: 60}},
		{"NODATA for AAAA keeps A's TTL",
			ok(dns.TypeA, dns.RcodeSuccess, 300, "198.51.100.7"), ok(dns.TypeAAAA, dns.RcodeSuccess, 0),
			detector.DNSAnswer{Rcode: "NOERROR", Addrs: addrs("198.51.100.7"), MinTTL: 300}},
		{"TTL 0 counts",
			ok(dns.TypeA, dns.RcodeSuccess, 0, "0.0.0.0"), ok(dns.TypeAAAA, dns.RcodeSuccess, 0, "::"),
			detector.DNSAnswer{Rcode: "NOERROR", Addrs: addrs("0.0.0.0", "::"), MinTTL: 0}},
		{"NXDOMAIN on one wins",
			ok(dns.TypeA, dns.RcodeNameError, 0), ok(dns.TypeAAAA, dns.RcodeSuccess, 300, "2001:db8::7"),
			detector.DNSAnswer{Rcode: "NXDOMAIN", Addrs: addrs("2001:db8::7"), MinTTL: 300}},
		{"REFUSED beats SERVFAIL",
			ok(dns.TypeA, dns.RcodeServerFailure, 0), ok(dns.TypeAAAA, dns.RcodeRefused, 0),
			detector.DNSAnswer{Rcode: "REFUSED"}},
		{"NXDOMAIN beats REFUSED",
			ok(dns.TypeA, dns.RcodeRefused, 0), ok(dns.TypeAAAA, dns.RcodeNameError, 0),
			detector.DNSAnswer{Rcode: "NXDOMAIN"}},
		{"an unnamed rcode",
			ok(dns.TypeA, 12, 0), ok(dns.TypeAAAA, dns.RcodeSuccess, 0),
			detector.DNSAnswer{Rcode: "RCODE12"}},
		{"one failed: the other's answer stands",
			reply{qtype: dns.TypeA, err: timeout}, ok(dns.TypeAAAA, dns.RcodeSuccess, 300, "2001:db8::7"),
			detector.DNSAnswer{Rcode: "NOERROR", Addrs: addrs("2001:db8::7"), MinTTL: 300}},
		{"both failed: A's failure, both details",
			reply{qtype: dns.TypeA, err: refused}, reply{qtype: dns.TypeAAAA, err: timeout},
			detector.DNSAnswer{Failure: detector.FailureRefused, Detail: "A: read: connection refused; AAAA: context deadline exceeded"}},
		{"a bad reply is a DNS failure",
			reply{qtype: dns.TypeA, err: replyErrorf("reply ID 1 to query ID 2")}, reply{qtype: dns.TypeAAAA, err: timeout},
			detector.DNSAnswer{Failure: detector.FailureDNS, Detail: "A: reply ID 1 to query ID 2; AAAA: context deadline exceeded"}},
	}
	for _, tt := range tests {
		got := merge(tt.a, tt.aaaa)
		if d := cmp.Diff(tt.want, got, addrCmp); d != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, d)
		}
	}
}

func TestCheckReply(t *testing.T) {
	t.Parallel()
	q := new(dns.Msg).SetQuestion("registry.lab.example.", dns.TypeA)
	q.Id = 7
	good := func() *dns.Msg { return new(dns.Msg).SetReply(q) }
	tests := []struct {
		name string
		r    func() *dns.Msg
		want string
	}{
		{"good", good, ""},
		{"0x20 case", func() *dns.Msg {
			r := good()
			r.Question[0].Name = "REGISTRY.lab.EXAMPLE."
			return r
		}, ""},
		{"not a response", func() *dns.Msg { r := good(); r.Response = false; return r }, "reply without the response flag"},
		{"other ID", func() *dns.Msg { r := good(); r.Id = 8; return r }, "reply ID 8 to query ID 7"},
		{"other opcode", func() *dns.Msg { r := good(); r.Opcode = dns.OpcodeStatus; return r }, "reply opcode 2 to a query"},
		{"other name", func() *dns.Msg {
			r := good()
			r.Question[0].Name = "other.lab.example."
			return r
		}, "reply for other.lab.example. A to a query for registry.lab.example. A"},
		{"other type", func() *dns.Msg {
			r := good()
			r.Question[0].Qtype = dns.TypeAAAA
			return r
		}, "reply for registry.lab.example. AAAA to a query for registry.lab.example. A"},
		{"no question in an error", func() *dns.Msg {
			r := good()
			r.Question, r.Rcode = nil, dns.RcodeFormatError
			return r
		}, ""},
		{"no question in an answer", func() *dns.Msg { r := good(); r.Question = nil; return r }, "reply with 0 questions"},
	}
	for _, tt := range tests {
		err := checkReply(q, tt.r())
		var got string
		if err != nil {
			got = err.Error()
			var re *replyError
			if !errors.As(err, &re) {
				t.Errorf("%s: %T is not a replyError", tt.name, err)
			}
		}
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
