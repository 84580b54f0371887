package detector_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
)

var (
	pubAddr   = netip.MustParseAddr("142.250.1.1") // inside labRange
	otherAddr = netip.MustParseAddr("142.250.9.9") // inside labRange, another CDN node
	offAddr   = netip.MustParseAddr("146.75.0.9")  // public, outside labRange
	zero      = netip.MustParseAddr("0.0.0.0")
	private   = netip.MustParseAddr("10.1.2.3")
)

func sysAns(rcode string, ttl uint32, addrs ...netip.Addr) detector.DNSAnswer {
	return detector.DNSAnswer{Resolver: "system udp://127.0.0.53:53", System: true, Rcode: rcode, Addrs: addrs, MinTTL: ttl}
}

func refAns(rcode string, addrs ...netip.Addr) detector.DNSAnswer {
	return detector.DNSAnswer{Resolver: "tls://192.0.2.53:853", Rcode: rcode, Addrs: addrs, MinTTL: 300}
}

// hostsAns is an answer from the hosts file, which has no rcode and no TTL.
func hostsAns(addrs ...netip.Addr) detector.DNSAnswer {
	return detector.DNSAnswer{Resolver: "hosts /etc/hosts", System: true, Addrs: addrs, Source: detector.SourceHosts}
}

func deadAns(system bool) detector.DNSAnswer {
	return detector.DNSAnswer{Resolver: "udp://192.0.2.54:53", System: system, Failure: detector.FailureTimeout, Detail: "i/o timeout"}
}

// dnsTable holds the DNS situations: lies the system resolver tells, and
// the honest, CDN-varied or dead networks that must raise no dns-tampered.
func dnsTable(p *labPKI) []classifyCase {
	genuine := p.leaf(p.publicCA, leafSpec{names: []string{labHost}, sct: true})
	clean := p.observe(labHost, p.system, genuine, p.publicCA.cert)
	ranged := detector.Expectation{IPRanges: []netip.Prefix{labRange}}
	with := func(o detector.Observation, dns []detector.DNSAnswer, canary ...detector.DNSAnswer) detector.Observation {
		return tweak(o, func(o *detector.Observation) { o.DNS, o.Canary = dns, canary })
	}
	refused := failed(labHost, detector.FailureRefused, "connect: connection refused")
	dnsFail := failed(labHost, detector.FailureDNS, "no such host")
	nx := detector.DNSAnswer{Resolver: "tls://192.0.2.53:853", Rcode: "NXDOMAIN"}
	const tampered, ok, unreachable = detector.DNSTampered, detector.OK, detector.Unreachable
	return []classifyCase{
		{name: "dns: honest system and reference agree",
			obs: with(clean, []detector.DNSAnswer{sysAns("NOERROR", 300, pubAddr), refAns("NOERROR", pubAddr)}, sysAns("NXDOMAIN", 0), nx),
			exp: ranged, verdict: ok},
		{name: "dns: CDN answers differ but stay in range",
			obs: with(clean, []detector.DNSAnswer{sysAns("NOERROR", 60, pubAddr), refAns("NOERROR", otherAddr)}),
			exp: ranged, reasons: rs(detector.ReasonDNSDiffers), verdict: ok},
		{name: "dns: answers differ and no ranges are known",
			obs:     with(clean, []detector.DNSAnswer{sysAns("NOERROR", 60, offAddr), refAns("NOERROR", pubAddr)}),
			reasons: rs(detector.ReasonDNSDiffers), verdict: ok},
		{name: "dns: every resolver dead is no lie",
			obs:     with(dnsFail, []detector.DNSAnswer{deadAns(true), deadAns(false)}, deadAns(true)),
			reasons: rs(detector.ReasonUnreachable), verdict: unreachable},
		{name: "dns: NXDOMAIN everywhere is a name that does not exist",
			obs:     with(dnsFail, []detector.DNSAnswer{sysAns("NXDOMAIN", 0), nx}),
			reasons: rs(detector.ReasonUnreachable), verdict: unreachable},
		{name: "dns: NXDOMAIN from the system while the reference answers",
			obs:     with(dnsFail, []detector.DNSAnswer{sysAns("NXDOMAIN", 0), refAns("NOERROR", pubAddr)}),
			reasons: rs(detector.ReasonDNSDenied, detector.ReasonUnreachable), verdict: tampered},
		{name: "dns: REFUSED from the system while the reference answers",
			obs:     with(dnsFail, []detector.DNSAnswer{sysAns("REFUSED", 0), refAns("NOERROR", pubAddr)}),
			reasons: rs(detector.ReasonDNSDenied, detector.ReasonUnreachable), verdict: tampered},
		{name: "dns: SERVFAIL is a broken resolver, not proof of a lie",
			obs:     with(dnsFail, []detector.DNSAnswer{sysAns("SERVFAIL", 0), refAns("NOERROR", pubAddr)}),
			reasons: rs(detector.ReasonDNSServfail, detector.ReasonUnreachable), verdict: unreachable},
		{name: "dns: sinkhole to 0.0.0.0 with TTL 0, then refused",
			obs: with(refused, []detector.DNSAnswer{sysAns("NOERROR", 0, zero), refAns("NOERROR", pubAddr)},
				sysAns("NOERROR", 0, zero), nx),
			reasons: rs(detector.ReasonDNSBogon, detector.ReasonDNSTTLZero, detector.ReasonDNSWildcard, detector.ReasonUnreachable),
			verdict: tampered},
		{name: "dns: 0.0.0.0 with every reference dead is still a sinkhole",
			obs:     with(refused, []detector.DNSAnswer{sysAns("NOERROR", 300, zero), deadAns(false)}),
			reasons: rs(detector.ReasonDNSBogon, detector.ReasonDNSUnverified, detector.ReasonUnreachable), verdict: tampered},
		{name: "dns: every reference dead leaves the answer unverified, the verdict alone",
			obs: with(clean, []detector.DNSAnswer{sysAns("NOERROR", 300, pubAddr), deadAns(false), deadAns(false)}),
			exp: ranged, reasons: rs(detector.ReasonDNSUnverified), verdict: ok},
		{name: "dns: one reference answering is a cross-check",
			obs:     with(clean, []detector.DNSAnswer{sysAns("NOERROR", 300, pubAddr), deadAns(false), nx}),
			verdict: ok},
		{name: "dns: no reference configured is no claim of one failing",
			obs:     with(clean, []detector.DNSAnswer{sysAns("NOERROR", 300, pubAddr)}),
			verdict: ok},
		{name: "hosts: the registry's own address pinned",
			obs: with(clean, []detector.DNSAnswer{hostsAns(pubAddr), refAns("NOERROR", pubAddr, otherAddr)}, sysAns("NOERROR", 300, offAddr), nx),
			exp: ranged, verdict: ok},
		{name: "hosts: localhost, which no reference knows",
			obs:     with(clean, []detector.DNSAnswer{hostsAns(netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")), nx}),
			verdict: ok},
		{name: "hosts: a mirror pinned where the references answer otherwise",
			obs:     with(clean, []detector.DNSAnswer{hostsAns(private), refAns("NOERROR", pubAddr)}),
			reasons: rs(detector.ReasonHostsOverride), verdict: ok},
		{name: "hosts: pinned outside the expected ranges, references dead",
			obs: with(clean, []detector.DNSAnswer{hostsAns(offAddr), deadAns(false)}),
			exp: ranged, reasons: rs(detector.ReasonHostsOverride, detector.ReasonDNSUnverified), verdict: ok},
		{name: "hosts: 0.0.0.0 is a block on this machine",
			obs:     with(refused, []detector.DNSAnswer{hostsAns(zero), refAns("NOERROR", pubAddr)}),
			reasons: rs(detector.ReasonHostsBlock, detector.ReasonUnreachable), verdict: detector.Blocked},
		{name: "hosts: :: is a block too, with no reference to compare",
			obs:     with(refused, []detector.DNSAnswer{hostsAns(netip.IPv6Unspecified()), nx}),
			reasons: rs(detector.ReasonHostsBlock, detector.ReasonUnreachable), verdict: detector.Blocked},
		{name: "hosts: after a lying resolver (nsswitch dns before files) the lie stands",
			obs:     with(clean, []detector.DNSAnswer{sysAns("NXDOMAIN", 0), hostsAns(pubAddr), refAns("NOERROR", pubAddr)}),
			reasons: rs(detector.ReasonDNSDenied), verdict: tampered},
		{name: "dns: a private mirror resolving privately is not a bogon",
			obs:     with(clean, []detector.DNSAnswer{sysAns("NOERROR", 300, private), nx}),
			verdict: ok},
		{name: "dns: a public name steered to a private address",
			obs:     with(clean, []detector.DNSAnswer{sysAns("NOERROR", 300, private), refAns("NOERROR", pubAddr)}),
			reasons: rs(detector.ReasonDNSBogon), verdict: tampered},
		{name: "dns: steered off range while the reference stays in range",
			obs: with(clean, []detector.DNSAnswer{sysAns("NOERROR", 300, offAddr), refAns("NOERROR", pubAddr)}),
			exp: ranged, reasons: rs(detector.ReasonDNSMismatch), verdict: tampered},
		{name: "dns: wildcard answers for a name that cannot exist",
			obs: with(clean, []detector.DNSAnswer{sysAns("NOERROR", 300, pubAddr), refAns("NOERROR", pubAddr)},
				sysAns("NOERROR", 300, offAddr), nx),
			reasons: rs(detector.ReasonDNSWildcard), verdict: tampered},
		{name: "dns: a canary answered by the references too is no wildcard of the system's",
			obs: with(clean, []detector.DNSAnswer{sysAns("NOERROR", 300, pubAddr), refAns("NOERROR", pubAddr)},
				sysAns("NOERROR", 300, offAddr), refAns("NOERROR", offAddr)),
			verdict: ok},
		{name: "dns: through a proxy this machine's resolver is off the path",
			obs: tweak(with(clean, []detector.DNSAnswer{sysAns("NXDOMAIN", 0), refAns("NOERROR", pubAddr)}), func(o *detector.Observation) {
				o.Path = detector.Path{Kind: detector.PathProxy, Proxy: "proxy.corp.example:3128"}
			}),
			verdict: ok},
	}
}

func TestClassifyDNS(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	for _, c := range dnsTable(p) {
		t.Run(c.name, func(t *testing.T) {
			fs, _ := detector.Classify(c.obs, c.exp, c.pol, labNow)
			checkFindings(t, fs)
			if diff := cmp.Diff(c.reasons, reasonsOf(fs)); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
			if got := detector.VerdictOf(fs); got != c.verdict {
				t.Errorf("verdict %s, want %s; findings %v", got, c.verdict, fs)
			}
			if v := detector.VerdictOf(fs); v != detector.OK && detector.Remediation(v, c.obs, "", nil) == "" {
				t.Errorf("no remediation for %s", v)
			}
		})
	}
}

// TestDNSRemediationExplainsTheConsequence: when DNS lies and TLS then
// fails, the fix names the lie as the cause.
func TestDNSRemediationExplainsTheConsequence(t *testing.T) {
	obs := failed(labHost, detector.FailureRefused, "connection refused")
	text := detector.Remediation(detector.DNSTampered, obs, "", nil)
	for _, want := range []string{"system resolver lies", "connection_refused", "consequence"} {
		if !slices.ContainsFunc([]string{text}, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("remediation %q lacks %q", text, want)
		}
	}
}

// TestHostsBlockRemediation: a block written in the hosts file is fixed on
// this machine, not by asking the network team.
func TestHostsBlockRemediation(t *testing.T) {
	obs := failed(labHost, detector.FailureRefused, "connection refused")
	if text := detector.Remediation(detector.Blocked, obs, "", nil); !strings.Contains(text, "Network policy") {
		t.Errorf("remediation of a network block = %q", text)
	}
	obs.DNS = []detector.DNSAnswer{hostsAns(zero)}
	text := detector.Remediation(detector.Blocked, obs, "", nil)
	for _, want := range []string{"hosts /etc/hosts", "this machine", "remove it"} {
		if !strings.Contains(text, want) {
			t.Errorf("remediation %q lacks %q", text, want)
		}
	}
}

func TestHostPort(t *testing.T) {
	for host, want := range map[string]string{"github.com": "github.com:443", "10.1.2.3": "10.1.2.3:443", "::1": "[::1]:443"} {
		if got := (detector.Observation{Host: host, Port: 443}).HostPort(); got != want {
			t.Errorf("%s: %s, want %s", host, got, want)
		}
	}
}

// TestNeedsReferences: the references are waited for only where their
// answer could change the judgement.
func TestNeedsReferences(t *testing.T) {
	t.Parallel()
	p := newLabPKI(t)
	clean := p.observe(labHost, p.system, p.leaf(p.publicCA, leafSpec{names: []string{labHost}, sct: true}), p.publicCA.cert)
	forged := p.observe(labHost, p.system, p.leaf(p.corpCA, leafSpec{names: []string{labHost}}), p.corpCA.cert)
	sys := func(o detector.Observation, a ...detector.DNSAnswer) detector.Observation {
		o.DNS = a
		return o
	}
	inRange := detector.Expectation{IPRanges: []netip.Prefix{labRange}}
	offRange := detector.Expectation{IPRanges: []netip.Prefix{netip.MustParsePrefix("146.75.0.0/16")}}
	for _, c := range []struct {
		name string
		obs  detector.Observation
		exp  detector.Expectation
		want bool
	}{
		{"clean chain at an expected address: they only confirm", sys(clean, sysAns("NOERROR", 60, pubAddr)), inRange, false},
		{"clean chain, no ranges expected", sys(clean, sysAns("NOERROR", 60, pubAddr)), detector.Expectation{}, false},
		{"the system denies the name", sys(failed(labHost, detector.FailureDNS, "NXDOMAIN"), sysAns("NXDOMAIN", 0)), inRange, true},
		{"the system resolver failed", sys(failed(labHost, detector.FailureTimeout, "i/o timeout"),
			detector.DNSAnswer{Resolver: "system", System: true, Failure: detector.FailureTimeout}), inRange, true},
		{"a bogon answer", sys(clean, sysAns("NOERROR", 60, private)), detector.Expectation{}, true},
		{"the connection failed", sys(failed(labHost, detector.FailureRefused, "refused"), sysAns("NOERROR", 60, pubAddr)), inRange, true},
		{"a chain the public roots reject", sys(forged, sysAns("NOERROR", 60, pubAddr)), inRange, true},
		{"an address outside the expected ranges", sys(clean, sysAns("NOERROR", 60, pubAddr)), offRange, true},
		{"an address the hosts file pins", sys(clean, hostsAns(pubAddr)), inRange, true},
	} {
		if got := detector.NeedsReferences(c.obs, c.exp, detector.Policy{}); got != c.want {
			t.Errorf("%s: NeedsReferences = %v, want %v", c.name, got, c.want)
		}
	}
}
