package detector

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// DefaultBogons are the ranges no public name should resolve into: the
// unspecified address, loopback, private and shared address space,
// link-local, documentation and benchmarking ranges, multicast and the
// reserved block. A resolver that answers one for a public registry is
// steering traffic away from it.
var DefaultBogons = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("224.0.0.0/3"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// dnsLie are the rcodes by which a resolver denies a name exists or that it
// will answer; NOERROR without addresses (NODATA) counts too.
var dnsLie = map[string]bool{"NXDOMAIN": true, "REFUSED": true, "NOERROR": true}

// dnsFindings compares what the system resolver said with the reference
// resolvers. Interference is concluded only when a reference answers where
// the system resolver denies or lies; when every resolver fails the
// network is down, and that is no finding here.
func dnsFindings(obs Observation, exp Expectation, pol Policy) []Finding {
	if obs.Path.Proxied() {
		return nil // the proxy resolves; this machine's resolver is not on the path
	}
	var system, refs []DNSAnswer
	for _, a := range obs.DNS {
		if a.System {
			system = append(system, a)
		} else {
			refs = append(refs, a)
		}
	}
	sys, ok := firstAnswered(system)
	if !ok {
		return nil
	}
	bogons := pol.Bogons
	if bogons == nil {
		bogons = DefaultBogons
	}
	refAddrs, refBy := referenceAddrs(refs)
	var fs []Finding

	switch {
	case len(sys.Addrs) == 0 && dnsLie[sys.Rcode] && len(refAddrs) > 0:
		what := sys.Rcode
		if what == "NOERROR" {
			what = "no address (NODATA)"
		}
		fs = append(fs, Finding{ReasonDNSDenied, Critical,
			fmt.Sprintf("the system resolver (%s) answers %s for %s while %s answers %s", sys.Resolver, what, obs.Host, refBy, addrList(refAddrs))})
	case len(sys.Addrs) == 0 && sys.Rcode == "SERVFAIL" && len(refAddrs) > 0:
		fs = append(fs, Finding{ReasonDNSServfail, Warning,
			fmt.Sprintf("the system resolver (%s) fails (SERVFAIL) for %s while %s answers", sys.Resolver, obs.Host, refBy)})
	}

	if bad := inAny(sys.Addrs, bogons); len(bad) > 0 {
		publicName := len(refAddrs) > 0 && len(inAny(refAddrs, bogons)) < len(refAddrs)
		if publicName || slices.ContainsFunc(bad, func(a netip.Addr) bool { return a.IsUnspecified() }) {
			fs = append(fs, Finding{ReasonDNSBogon, Critical,
				fmt.Sprintf("the system resolver (%s) answers %s for %s, an address no public host has", sys.Resolver, addrList(bad), obs.Host)})
		}
	}

	if len(sys.Addrs) > 0 && len(refAddrs) > 0 && !overlaps(sys.Addrs, refAddrs) {
		switch {
		case len(exp.IPRanges) > 0 && len(outside(sys.Addrs, exp.IPRanges)) == len(sys.Addrs) && len(outside(refAddrs, exp.IPRanges)) < len(refAddrs):
			fs = append(fs, Finding{ReasonDNSMismatch, Critical,
				fmt.Sprintf("the system resolver (%s) sends %s to %s, outside its expected ranges, while %s answers %s", sys.Resolver, obs.Host, addrList(sys.Addrs), refBy, addrList(refAddrs))})
		case len(fs) == 0:
			fs = append(fs, Finding{ReasonDNSDiffers, Info,
				fmt.Sprintf("the system resolver answers %s, %s answers %s (CDNs answer differently by place)", addrList(sys.Addrs), refBy, addrList(refAddrs))})
		}
	}

	if c, ok := firstAnswered(systemOnly(obs.Canary)); ok && len(c.Addrs) > 0 {
		refCanary, _ := referenceAddrs(nonSystem(obs.Canary))
		if len(refCanary) == 0 {
			detail := fmt.Sprintf("the system resolver (%s) answers %s for a name that does not exist", c.Resolver, addrList(c.Addrs))
			if overlaps(c.Addrs, sys.Addrs) {
				detail += fmt.Sprintf(", the same as for %s: it answers every name", obs.Host)
			}
			fs = append(fs, Finding{ReasonDNSWildcard, Critical, detail})
		}
	}
	if len(sys.Addrs) > 0 && sys.MinTTL == 0 {
		fs = append(fs, Finding{ReasonDNSTTLZero, Warning,
			fmt.Sprintf("the system resolver answers %s with TTL 0, as sinkholes do", obs.Host)})
	}
	return fs
}

func firstAnswered(as []DNSAnswer) (DNSAnswer, bool) {
	for _, a := range as {
		if a.Answered() {
			return a, true
		}
	}
	return DNSAnswer{}, false
}

func systemOnly(as []DNSAnswer) []DNSAnswer {
	return slices.DeleteFunc(slices.Clone(as), func(a DNSAnswer) bool { return !a.System })
}

func nonSystem(as []DNSAnswer) []DNSAnswer {
	return slices.DeleteFunc(slices.Clone(as), func(a DNSAnswer) bool { return a.System })
}

// referenceAddrs merges the reference resolvers' addresses and names those
// that gave them.
func referenceAddrs(refs []DNSAnswer) ([]netip.Addr, string) {
	var addrs []netip.Addr
	var who []string
	for _, a := range refs {
		if !a.Answered() || len(a.Addrs) == 0 {
			continue
		}
		who = append(who, a.Resolver)
		for _, x := range a.Addrs {
			if !slices.Contains(addrs, x) {
				addrs = append(addrs, x)
			}
		}
	}
	return addrs, strings.Join(who, ", ")
}

func inAny(addrs []netip.Addr, ps []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) }) {
			out = append(out, a)
		}
	}
	return out
}

func outside(addrs []netip.Addr, ps []netip.Prefix) []netip.Addr {
	return slices.DeleteFunc(slices.Clone(addrs), func(a netip.Addr) bool {
		return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) })
	})
}

func overlaps(a, b []netip.Addr) bool {
	return slices.ContainsFunc(a, func(x netip.Addr) bool { return slices.Contains(b, x) })
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
