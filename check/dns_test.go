package check

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/probe"
	"github.com/mitmwatch/mitmwatch/resolver"
)

// dnsLab is a round's network: the lab PKI and origin, a system resolver
// and a reference over DNS over TLS, each answering from its own zone.
type dnsLab struct {
	pki      *lab.PKI
	origin   *lab.Origin
	port     int // the origin's
	sys, ref *lab.DNSServer
}

func newDNSLab(t *testing.T, sysZone, refZone map[string][]netip.Addr) *dnsLab {
	t.Helper()
	l := &dnsLab{}
	var err error
	if l.pki, err = lab.NewPKI(); err != nil {
		t.Fatal(err)
	}
	if l.origin, err = lab.NewOrigin(l.pki, lab.OriginOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.origin.Close() })
	l.port = portOf(t, l.origin.Addr())
	if l.sys, err = lab.NewDNSServer(lab.DNSOptions{Zone: sysZone}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.sys.Close() })
	if l.ref, err = lab.NewDoTServer(l.pki, lab.DNSOptions{Zone: refZone}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.ref.Close() })
	return l
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func server(t *testing.T, spec string) resolver.Server {
	t.Helper()
	s, err := resolver.ParseServer(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// labGrace is the least grace the lab's references get: loopback round
// trips are microseconds, a DoT handshake on a loaded machine under the
// race detector is not.
const labGrace = time.Second

// runner probes through the lab's resolvers, with a canary; hosts, when
// set, is the hosts file.
func (l *dnsLab) runner(t *testing.T, hosts *resolver.Hosts, refs ...resolver.Server) *Runner {
	t.Helper()
	sys := server(t, "udp://"+l.sys.Addr())
	sys.System, sys.Spec = true, "system "+sys.Spec
	if refs == nil {
		refs = []resolver.Server{server(t, "tls://"+l.ref.Addr()+"#"+lab.DNSHost)}
	}
	c := &resolver.Client{TLSConfig: &tls.Config{RootCAs: l.pki.PublicPool()}, Timeout: 500 * time.Millisecond}
	t.Cleanup(func() { c.Close() })
	return &Runner{
		Prober: &probe.Prober{PublicRoots: l.pki.PublicPool(), SystemRoots: l.pki.SystemPool()},
		// The lab's honest answers are loopback addresses.
		Policy:      detector.Policy{Bogons: []netip.Prefix{}},
		Concurrency: 4, Timeout: 5 * time.Second,
		DNS: &DNS{Client: c, System: []resolver.Server{sys}, Reference: refs, Canary: "4d6974776174636800.example.com.", Hosts: hosts,
			MinGrace: labGrace},
	}
}

func reasons(r detector.Result) []detector.Reason {
	var out []detector.Reason
	for _, f := range r.Findings {
		out = append(out, f.Reason)
	}
	return out
}

// v6Origin is a TLS origin on [::1] whose leaf names ::1, as a server
// reached by address carries it. It skips the test where loopback has no
// IPv6.
func v6Origin(t *testing.T, pki *lab.PKI) int {
	t.Helper()
	leaf, err := pki.PublicIntermediate.Issue(lab.LeafOptions{}, "::1")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "[::1]:0", &tls.Config{Certificates: []tls.Certificate{*leaf}})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.(*tls.Conn).Handshake()
			})
		}
	})
	return portOf(t, ln.Addr().String())
}

// closedV6 is a port where nothing listens on [::1].
func closedV6(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	return portOf(t, ln.Addr().String())
}

// An IP literal is dialled as it is: no resolver is asked, no DNS finding
// or canary is attached, SNI is not sent and the IP SAN is verified.
func TestIPLiteralTargets(t *testing.T) {
	t.Parallel()
	l := newDNSLab(t, nil, nil)
	v6 := v6Origin(t, l.pki)
	closed, err := lab.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	targets := []config.Target{
		{Host: "127.0.0.1", Port: portOf(t, closed)},
		{Host: "::1", Port: closedV6(t)},
		{Host: "127.0.0.1", Port: l.port},
		{Host: "::1", Port: v6},
	}
	want := []struct {
		verdict detector.Verdict
		failure detector.Failure
	}{
		{detector.Unreachable, detector.FailureRefused},
		{detector.Unreachable, detector.FailureRefused},
		{detector.OK, detector.FailureNone},
		{detector.OK, detector.FailureNone},
	}
	results := l.runner(t, nil).Run(context.Background(), targets)
	for i, r := range results {
		name := r.Obs.HostPort()
		if name != net.JoinHostPort(targets[i].Host, strconv.Itoa(targets[i].Port)) {
			t.Errorf("result %d is %s", i, name)
		}
		if r.Verdict != want[i].verdict || r.Obs.Failure != want[i].failure {
			t.Errorf("%s: %s (%s: %s), want %s (%s); findings %v", name, r.Verdict, r.Obs.Failure, r.Obs.FailureDetail,
				want[i].verdict, want[i].failure, r.Findings)
		}
		if len(r.Obs.DNS) > 0 || len(r.Obs.Canary) > 0 {
			t.Errorf("%s: DNS answers %v, canary %v", name, r.Obs.DNS, r.Obs.Canary)
		}
		for _, f := range r.Findings {
			if f.Reason != detector.ReasonUnreachable {
				t.Errorf("%s: finding %s: %s", name, f.Reason, f.Detail)
			}
		}
		if r.Verdict == detector.OK && !r.Obs.TLS.NameMatch {
			t.Errorf("%s: the leaf's IP SAN does not match", name)
		}
	}
	if n := l.sys.Queries("udp") + l.sys.Queries("tcp") + l.ref.Queries("tcp"); n != 0 {
		t.Errorf("%d queries for IP literals", n)
	}
}

func writeHosts(t *testing.T, content string) *resolver.Hosts {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return &resolver.Hosts{Path: path}
}

var (
	labV4   = netip.MustParseAddr("127.0.0.1")
	otherV4 = netip.MustParseAddr("127.0.0.2")
)

// Names the hosts file lists resolve from it, as the system's tools
// resolve them: localhost, a pinned mirror (a warning where the
// references answer otherwise), a block (0.0.0.0). Names it does not list
// go to the system resolver.
func TestHostsFileFirst(t *testing.T) {
	t.Parallel()
	zone := map[string][]netip.Addr{
		"registry.lab.example": {labV4},
		"mirror.lab.example":   {otherV4},
		"blocked.lab.example":  {labV4},
	}
	l := newDNSLab(t, zone, zone)
	hosts := writeHosts(t, "127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.0.1 mirror.lab.example\n0.0.0.0 blocked.lab.example\n")
	var targets []config.Target
	for _, h := range []string{"localhost", "mirror.lab.example", "blocked.lab.example", "registry.lab.example"} {
		targets = append(targets, config.Target{Host: h, Port: l.port})
	}
	results := l.runner(t, hosts).Run(context.Background(), targets)
	for _, tt := range []struct {
		verdict   detector.Verdict
		reasons   []detector.Reason
		fromHosts bool
	}{
		{detector.OK, nil, true},
		{detector.OK, []detector.Reason{detector.ReasonHostsOverride}, true},
		{detector.Blocked, []detector.Reason{detector.ReasonHostsBlock}, true},
		{detector.OK, nil, false},
	} {
		r := results[0]
		results = results[1:]
		got := reasons(r)
		got = slices.DeleteFunc(got, func(x detector.Reason) bool { return x == detector.ReasonUnreachable })
		if r.Verdict != tt.verdict || !slices.Equal(got, tt.reasons) {
			t.Errorf("%s: %s %v, want %s %v; findings %v", r.Obs.Host, r.Verdict, got, tt.verdict, tt.reasons, r.Findings)
		}
		sys := r.Obs.DNS[0]
		if fromHosts := sys.Source == detector.SourceHosts; fromHosts != tt.fromHosts || !sys.System {
			t.Errorf("%s: system answer %+v, from the hosts file: want %v", r.Obs.Host, sys, tt.fromHosts)
		}
		if tt.fromHosts && (sys.Resolver != "hosts "+hosts.Path || len(r.Obs.DNS) != 2) {
			t.Errorf("%s: answers %+v; want the hosts file's, then the reference's", r.Obs.Host, r.Obs.DNS)
		}
	}
	// The system resolver heard of the registry and the canary, nothing else.
	if n := l.sys.Queries("udp"); n != 4 {
		t.Errorf("the system resolver got %d queries, want 4 (A and AAAA for the registry and the canary)", n)
	}
}

// Where nsswitch.conf puts dns before files, the hosts file answers only
// what DNS did not.
func TestHostsFileAfterDNS(t *testing.T) {
	t.Parallel()
	zone := map[string][]netip.Addr{"registry.lab.example": {labV4}}
	l := newDNSLab(t, zone, zone)
	hosts := writeHosts(t, "127.0.0.2 registry.lab.example\n127.0.0.1 mirror.lab.example\n")
	hosts.Order = resolver.HostsAfterDNS
	results := l.runner(t, hosts).Run(context.Background(), []config.Target{
		{Host: "registry.lab.example", Port: l.port},
		{Host: "mirror.lab.example", Port: l.port},
	})
	if r := results[0]; r.Verdict != detector.OK || r.Obs.DNS[0].Source != detector.SourceDNS || r.Obs.ConnectedAddr.Addr() != labV4 {
		t.Errorf("registry: %s via %+v", r.Verdict, r.Obs.DNS)
	}
	r := results[1]
	if r.Verdict != detector.OK || len(r.Obs.DNS) != 3 || r.Obs.DNS[1].Source != detector.SourceHosts {
		t.Errorf("mirror: %s via %+v; findings %v", r.Verdict, r.Obs.DNS, r.Findings)
	}
}

// With every reference unreachable, each resolved target says DNS was not
// cross-checked, and no verdict changes; one reference answering is
// enough.
func TestDNSUnverified(t *testing.T) {
	t.Parallel()
	zone := map[string][]netip.Addr{"registry.lab.example": {labV4}, "pkg.lab.example": {labV4}}
	l := newDNSLab(t, zone, zone)
	bh, err := lab.NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bh.Close() })
	closed, err := lab.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	blackholed := []resolver.Server{server(t, "tls://"+bh.Addr()+"#"+lab.DNSHost), server(t, "udp://"+closed)}
	targets := []config.Target{
		{Host: "registry.lab.example", Port: l.port},
		{Host: "pkg.lab.example", Port: l.port},
		{Host: "127.0.0.1", Port: l.port},
	}
	clean := l.runner(t, nil).Run(context.Background(), targets)
	// References that never answer must not hold the round: they get a
	// grace once the probes' evidence is complete, however long the
	// resolver client and the probe would wait.
	darkRunner := l.runner(t, nil, blackholed...)
	darkRunner.DNS.Client.Timeout = darkRunner.Timeout
	darkRunner.DNS.MinGrace = 0 // the grace is what is tested
	start := time.Now()
	dark := darkRunner.Run(context.Background(), targets)
	if took := time.Since(start); took > darkRunner.Timeout/2 {
		t.Errorf("the round took %v with the references blackholed: it waited for them (timeout %v)", took, darkRunner.Timeout)
	}
	for i := range targets {
		if clean[i].Verdict != detector.OK || dark[i].Verdict != clean[i].Verdict {
			t.Errorf("%s: %s with references, %s without", targets[i].Host, clean[i].Verdict, dark[i].Verdict)
		}
		if slices.Contains(reasons(clean[i]), detector.ReasonDNSUnverified) {
			t.Errorf("%s: unverified with an answering reference: %v", targets[i].Host, clean[i].Findings)
		}
		wantUnverified := i < 2 // the IP literal was never resolved
		if got := slices.Contains(reasons(dark[i]), detector.ReasonDNSUnverified); got != wantUnverified {
			t.Errorf("%s: dns-unverified %v, want %v; findings %v", targets[i].Host, got, wantUnverified, dark[i].Findings)
		}
	}
}

// A reference slower than the probe is waited for only where its answer
// can change the verdict: a name the system resolver denies is judged
// with the reference's answer (dns-denied), a clean one is not held up.
func TestSlowReferenceWaitedForOnlyWhereItMatters(t *testing.T) {
	t.Parallel()
	sysZone := map[string][]netip.Addr{"registry.lab.example": {labV4}}
	refZone := map[string][]netip.Addr{"registry.lab.example": {labV4}, "denied.lab.example": {labV4}}
	l := newDNSLab(t, sysZone, refZone)
	const delay = 400 * time.Millisecond
	slow, err := lab.NewDNSServer(lab.DNSOptions{Zone: refZone, Latency: delay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	r := l.runner(t, nil, server(t, "udp://"+slow.Addr()))
	r.DNS.Client.Timeout = r.Timeout
	r.DNS.MinGrace = 0 // the grace is what is tested

	start := time.Now()
	clean := r.Run(context.Background(), []config.Target{{Host: "registry.lab.example", Port: l.port}})
	if took := time.Since(start); took >= delay {
		t.Errorf("a clean target waited %v for a reference that could not change its verdict", took)
	}
	if clean[0].Verdict != detector.OK || !slices.Contains(reasons(clean[0]), detector.ReasonDNSUnverified) {
		t.Errorf("clean target: %s %v, want ok with dns-unverified", clean[0].Verdict, clean[0].Findings)
	}

	denied := r.Run(context.Background(), []config.Target{{Host: "denied.lab.example", Port: l.port}})
	if denied[0].Verdict != detector.DNSTampered || !slices.Contains(reasons(denied[0]), detector.ReasonDNSDenied) {
		t.Errorf("denied target: %s %v, want dns-tampered by dns-denied once the slow reference answered", denied[0].Verdict, denied[0].Findings)
	}
}
