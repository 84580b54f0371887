package resolver

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/mitmwatch/mitmwatch/detector"
)

// reply is what one query, A or AAAA, brought back.
type reply struct {
	qtype   uint16
	rcode   int
	addrs   []netip.Addr
	ttl     uint32 // the minimum over the records used, when records > 0
	records int
	err     error // no usable reply came
}

// replyError is a reply that came but cannot be used: it does not parse,
// or it answers another question. Such a reply is the resolver's (or an
// injector's) doing, not the network's, hence FailureDNS.
type replyError struct{ reason string }

func (e *replyError) Error() string { return e.reason }

func replyErrorf(format string, args ...any) error {
	return &replyError{fmt.Sprintf(format, args...)}
}

func failureOf(err error) detector.Failure {
	var re *replyError
	if errors.As(err, &re) {
		return detector.FailureDNS
	}
	return detector.FailureOf(err)
}

// checkReply refuses a reply that does not answer q.
func checkReply(q, r *dns.Msg) error {
	switch {
	case !r.Response:
		return replyErrorf("reply without the response flag")
	case r.Id != q.Id:
		return replyErrorf("reply ID %d to query ID %d", r.Id, q.Id)
	case r.Opcode != q.Opcode:
		return replyErrorf("reply opcode %d to a query", r.Opcode)
	}
	// Some servers leave the question out of an error; the rcode still
	// tells.
	if len(r.Question) == 0 && r.Rcode != dns.RcodeSuccess && len(r.Answer) == 0 {
		return nil
	}
	if len(r.Question) != 1 {
		return replyErrorf("reply with %d questions", len(r.Question))
	}
	want, got := q.Question[0], r.Question[0]
	if !strings.EqualFold(got.Name, want.Name) || got.Qtype != want.Qtype || got.Qclass != want.Qclass {
		return replyErrorf("reply for %s %s to a query for %s %s", got.Name, dns.TypeToString[got.Qtype], want.Name, dns.TypeToString[want.Qtype])
	}
	return nil
}

// replyOf reads the answer to q out of r.
func replyOf(q, r *dns.Msg) reply {
	qq := q.Question[0]
	if err := checkReply(q, r); err != nil {
		return reply{qtype: qq.Qtype, err: err}
	}
	addrs, ttl, n := follow(qq.Name, qq.Qtype, r.Answer)
	return reply{qtype: qq.Qtype, rcode: r.Rcode, addrs: addrs, ttl: ttl, records: n}
}

// maxCNAMEChain bounds the aliases followed; real resolvers stop near
// there too.
const maxCNAMEChain = 16

// follow walks the CNAME chain from qname within an answer section and
// returns the addresses of type qtype at its end, and the minimum TTL over
// the chain and those addresses. Records off the chain are ignored: an
// answer for another name is not an answer for this one.
func follow(qname string, qtype uint16, answer []dns.RR) (addrs []netip.Addr, ttl uint32, n int) {
	use := func(h *dns.RR_Header) {
		if n == 0 || h.Ttl < ttl {
			ttl = h.Ttl
		}
		n++
	}
	name := qname
	seen := map[string]bool{dns.CanonicalName(name): true}
chain:
	for range maxCNAMEChain {
		for _, rr := range answer {
			c, ok := rr.(*dns.CNAME)
			if !ok || c.Hdr.Class != dns.ClassINET || !strings.EqualFold(c.Hdr.Name, name) || seen[dns.CanonicalName(c.Target)] {
				continue
			}
			use(&c.Hdr)
			name = c.Target
			seen[dns.CanonicalName(name)] = true
			continue chain
		}
		break
	}
	for _, rr := range answer {
		h := rr.Header()
		if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, name) {
			continue
		}
		var a netip.Addr
		var ok bool
		switch rr := rr.(type) {
		case *dns.A:
			a, ok = netip.AddrFromSlice(rr.A.To4())
			ok = ok && qtype == dns.TypeA
		case *dns.AAAA:
			a, ok = netip.AddrFromSlice(rr.AAAA.To16())
			ok = ok && qtype == dns.TypeAAAA
		}
		if ok {
			addrs = append(addrs, a)
			use(h)
		}
	}
	return addrs, ttl, n
}

// rcodeRank orders rcodes for merging the A and AAAA answers: any error
// beats NOERROR, and NXDOMAIN, the claim that the name does not exist
// (what a tampering resolver asserts), beats a refusal, which beats a
// failure.
func rcodeRank(rcode int) int {
	switch rcode {
	case dns.RcodeSuccess:
		return 0
	case dns.RcodeServerFailure:
		return 2
	case dns.RcodeRefused:
		return 3
	case dns.RcodeNameError:
		return 4
	}
	return 1
}

func rcodeString(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rcode)
}

// merge makes one answer of the A and AAAA replies. When neither came, the
// failure is the first reply's (A: IPv4 is what every client tries) and
// the detail tells both.
func merge(replies ...reply) detector.DNSAnswer {
	var out detector.DNSAnswer
	best, answered, ttlSet := 0, false, false
	var details []string
	for _, r := range replies {
		if r.err != nil {
			details = append(details, fmt.Sprintf("%s: %v", dns.TypeToString[r.qtype], r.err))
			if out.Failure == detector.FailureNone {
				out.Failure = failureOf(r.err)
			}
			continue
		}
		if !answered || rcodeRank(r.rcode) > rcodeRank(best) {
			best = r.rcode
		}
		if r.records > 0 && (!ttlSet || r.ttl < out.MinTTL) {
			out.MinTTL, ttlSet = r.ttl, true
		}
		answered = true
		out.Addrs = append(out.Addrs, r.addrs...)
	}
	if !answered {
		out.Detail = strings.Join(details, "; ")
		return out
	}
	out.Failure = detector.FailureNone
	out.Rcode = rcodeString(best)
	slices.SortFunc(out.Addrs, netip.Addr.Compare)
	out.Addrs = slices.Compact(out.Addrs)
	return out
}
