package detector

import (
	"cmp"
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
// network is down, and that is no finding here. An answer from the hosts
// file is judged apart (hostsFindings): it is this machine's own
// configuration, not a resolver's word.
func dnsFindings(obs Observation, exp Expectation, pol Policy) []Finding {
	if obs.Path.Proxied() {
		return nil // the proxy resolves; this machine's resolver is not on the path
	}
	var system, hosts, refs []DNSAnswer
	for _, a := range obs.DNS {
		switch {
		case a.Source == SourceHosts:
			hosts = append(hosts, a)
		case a.System:
			system = append(system, a)
		default:
			refs = append(refs, a)
		}
	}
	bogons := pol.Bogons
	if bogons == nil {
		bogons = DefaultBogons
	}
	var fs []Finding
	sys, sysOK := firstAnswered(system)
	if sysOK {
		fs = append(fs, resolverFindings(obs, sys, refs, exp, bogons)...)
	}
	h, hostsOK := firstAnswered(hosts)
	if hostsOK {
		fs = append(fs, hostsFindings(obs.Host, h, refs, exp)...)
	}
	if (sysOK || hostsOK) && len(refs) > 0 && !slices.ContainsFunc(refs, DNSAnswer.Answered) {
		fs = append(fs, unverified(obs.Host, refs))
	}
	return fs
}

// resolverFindings judges the system resolver's answer sys against the
// references' and the expected ranges.
func resolverFindings(obs Observation, sys DNSAnswer, refs []DNSAnswer, exp Expectation, bogons []netip.Prefix) []Finding {
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
		if publicName || slices.ContainsFunc(bad, netip.Addr.IsUnspecified) {
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

// hostsFindings judges an answer from the hosts file. Pinning a registry
// to an internal mirror there is common and deliberate, so an address
// the references do not give (or outside the expected ranges) is a
// warning that names the line's effect, not dns-tampered: the resolver
// did not lie, this machine was configured. The unspecified address is
// different: nothing serves there, and ad blockers, security tools and
// malware write "0.0.0.0 name" to block a name. That is a block, and the
// verdict says so. A loopback address may be a local mirror or a block;
// what answers there decides.
func hostsFindings(host string, h DNSAnswer, refs []DNSAnswer, exp Expectation) []Finding {
	if slices.ContainsFunc(h.Addrs, unspecified) {
		return []Finding{{ReasonHostsBlock, Critical,
			fmt.Sprintf("%s maps %s to %s: a block on this machine, not on the network", h.Resolver, host, addrList(h.Addrs))}}
	}
	refAddrs, refBy := referenceAddrs(refs)
	var why []string
	if len(refAddrs) > 0 && !overlaps(h.Addrs, refAddrs) {
		why = append(why, fmt.Sprintf("%s answers %s", refBy, addrList(refAddrs)))
	}
	if len(exp.IPRanges) > 0 && len(outside(h.Addrs, exp.IPRanges)) == len(h.Addrs) {
		why = append(why, "the expected ranges do not hold it")
	}
	if len(why) == 0 {
		return nil
	}
	return []Finding{{ReasonHostsOverride, Warning,
		fmt.Sprintf("%s pins %s to %s, and build tools use the hosts file instead of DNS, while %s: an internal mirror on purpose, or a redirect nobody meant", h.Resolver, host, addrList(h.Addrs), strings.Join(why, " and "))}}
}

// unspecified reports whether a is 0.0.0.0 or ::, mapped or not.
func unspecified(a netip.Addr) bool { return a.Unmap().IsUnspecified() }

// unverified says that no reference resolver answered, so nothing
// cross-checked the answer the connection used: without it a reader
// would take the absence of DNS findings for a clean bill.
func unverified(host string, refs []DNSAnswer) Finding {
	failed := make([]string, len(refs))
	for i, a := range refs {
		failed[i] = fmt.Sprintf("%s (%s)", a.Resolver, cmp.Or(string(a.Failure), "no answer"))
	}
	return Finding{ReasonDNSUnverified, Info,
		fmt.Sprintf("no reference resolver answered for %s, so the system's answer was not cross-checked: %s", host, strings.Join(failed, ", "))}
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

// NeedsReferences reports whether the reference resolvers' answers could
// change the judgement of obs, whose DNS holds the system's answers only:
// when the system gave no address, a bogon, an address pinned in the
// hosts file, or led to a connection, chain or address that is not clean.
// Otherwise the references can only confirm, and a probe need not wait
// long for them.
func NeedsReferences(obs Observation, exp Expectation, pol Policy) bool {
	sys, ok := firstAnswered(obs.DNS)
	if !ok || len(sys.Addrs) == 0 || sys.Source == SourceHosts || obs.Failure != FailureNone || obs.TLS == nil {
		return true
	}
	bogons := pol.Bogons
	if bogons == nil {
		bogons = DefaultBogons
	}
	if len(inAny(sys.Addrs, bogons)) > 0 {
		return true
	}
	if !trusted(obs.TLS.Public) || !obs.TLS.NameMatch {
		return true
	}
	if a := obs.ConnectedAddr; len(exp.IPRanges) > 0 && a.IsValid() &&
		!slices.ContainsFunc(exp.IPRanges, func(p netip.Prefix) bool { return p.Contains(a.Addr().Unmap()) }) {
		return true
	}
	return false
}
