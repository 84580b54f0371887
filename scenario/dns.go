package scenario

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"crypto/tls"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/resolver"
)

// In the lab every honest answer is 127.0.0.1, where the genuine origin
// listens; a lying resolver steers to 127.0.0.2 or to the unspecified
// address.
var (
	labAddr   = netip.MustParseAddr("127.0.0.1")
	steerAddr = netip.MustParseAddr("127.0.0.2")
	// labCanary is the round's name that cannot exist.
	labCanary = "4d6974776174636800.example.com."
)

// labBogons are the default bogons less loopback, which the lab's honest
// answers use.
func labBogons() []netip.Prefix {
	return slices.DeleteFunc(slices.Clone(detector.DefaultBogons), func(p netip.Prefix) bool {
		return p == netip.MustParsePrefix("127.0.0.0/8")
	})
}

// dnsSetup starts a system resolver with the given behaviour and an honest
// reference over DNS over TLS, and returns the setup of a target whose name
// they resolve: port is the origin's, so an honest answer leads to it.
func (e *Env) dnsSetup(host string, system lab.DNSOptions, routes map[netip.Addr]string) (Setup, error) {
	zone := map[string][]netip.Addr{host: {labAddr}}
	if system.Zone == nil {
		system.Zone = zone
	}
	sys, err := lab.NewDNSServer(system)
	if err != nil {
		return Setup{}, err
	}
	e.Track(sys)
	ref, err := lab.NewDoTServer(e.PKI, lab.DNSOptions{Zone: zone})
	if err != nil {
		return Setup{}, err
	}
	e.Track(ref)
	sysSrv, err := resolver.ParseServer("udp://" + sys.Addr())
	if err != nil {
		return Setup{}, err
	}
	sysSrv.System, sysSrv.Spec = true, "system "+sysSrv.Spec
	refSrv, err := resolver.ParseServer("tls://" + ref.Addr() + "#" + lab.DNSHost)
	if err != nil {
		return Setup{}, err
	}
	_, portText, _ := net.SplitHostPort(e.Origin.Addr())
	port, _ := strconv.Atoi(portText)
	exp := e.expect()
	exp.IPRanges = []netip.Prefix{netip.PrefixFrom(labAddr, 32)}
	return Setup{
		Targets: []config.Target{{Host: host, Port: port, Expect: exp}},
		Dialer:  routeDialer(routes),
		Policy:  detector.Policy{Bogons: labBogons()},
		DNS: &check.DNS{
			Client:    &resolver.Client{TLSConfig: &tls.Config{RootCAs: e.PKI.PublicPool()}, Timeout: 500 * time.Millisecond},
			System:    []resolver.Server{sysSrv},
			Reference: []resolver.Server{refSrv},
			Canary:    labCanary,
			// Loopback round trips are microseconds; a DoT handshake on
			// a loaded machine is not.
			MinGrace: time.Second,
		},
	}, nil
}

// hostsFile writes a hosts file for a scenario, removed with the
// environment, and returns it as the system consults it: before DNS.
func (e *Env) hostsFile(content string) (*resolver.Hosts, error) {
	f, err := os.CreateTemp("", "mitmwatch-hosts-")
	if err != nil {
		return nil, fmt.Errorf("scenario: hosts file: %w", err)
	}
	e.Track(removeOnClose(f.Name()))
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return nil, fmt.Errorf("scenario: hosts file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("scenario: hosts file: %w", err)
	}
	return &resolver.Hosts{Path: f.Name(), Order: resolver.HostsFirst}, nil
}

// removeOnClose removes a file when the environment closes.
type removeOnClose string

func (r removeOnClose) Close() error { return os.Remove(string(r)) }

// routeDialer is the lab's routing: the origin's own address is dialled as
// is, a steered address goes where routes say, and anything else (the
// unspecified address of a sinkhole) is refused, so nothing leaves the
// machine.
func routeDialer(routes map[netip.Addr]string) funcDialer {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, fmt.Errorf("lab route %q: %w", addr, err)
		}
		target := addr
		if to, ok := routes[ap.Addr()]; ok {
			target = to
		} else if ap.Addr() != labAddr {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, target)
	}
}

// dnsScenarios are the resolvers that lie, and the ones that merely work
// or fail.
func dnsScenarios() []Scenario {
	return []Scenario{
		{
			Name:        "dns-clean",
			Description: "honest system and reference resolvers",
			Build: func(e *Env) (Setup, error) {
				return e.dnsSetup("github.com", lab.DNSOptions{}, nil)
			},
			Want: Want{Verdict: detector.OK},
		},
		{
			Name:        "dns-truncating",
			Description: "the system resolver truncates over UDP; the answer comes over TCP",
			Build: func(e *Env) (Setup, error) {
				return e.dnsSetup("ghcr.io", lab.DNSOptions{Truncate: true}, nil)
			},
			Want: Want{Verdict: detector.OK},
		},
		{
			Name:        "dns-nxdomain",
			Description: "a DNS filter answers NXDOMAIN for the registry",
			Build: func(e *Env) (Setup, error) {
				return e.dnsSetup("pypi.org", lab.DNSOptions{NXDomain: []string{"pypi.org"}}, nil)
			},
			Want: Want{Verdict: detector.DNSTampered, Reasons: []detector.Reason{detector.ReasonDNSDenied}},
		},
		{
			Name:        "dns-sinkhole",
			Description: "a DNS filter answers every name with 0.0.0.0",
			Build: func(e *Env) (Setup, error) {
				return e.dnsSetup("index.crates.io", lab.DNSOptions{Sinkhole: true}, nil)
			},
			Want: Want{Verdict: detector.DNSTampered, Reasons: []detector.Reason{
				detector.ReasonDNSBogon, detector.ReasonDNSWildcard, detector.ReasonDNSTTLZero, detector.ReasonUnreachable}},
		},
		{
			Name:        "dns-steer",
			Description: "the system resolver steers the registry to a box with a certificate for another name",
			Build: func(e *Env) (Setup, error) {
				p, err := lab.NewPortal(e.PKI)
				if err != nil {
					return Setup{}, err
				}
				e.Track(p)
				return e.dnsSetup("files.pythonhosted.org",
					lab.DNSOptions{Override: map[string][]netip.Addr{"files.pythonhosted.org": {steerAddr}}},
					map[netip.Addr]string{steerAddr: p.Addr()})
			},
			Want: Want{Verdict: detector.DNSTampered, Reasons: []detector.Reason{
				detector.ReasonDNSMismatch, detector.ReasonCertOtherName}},
		},
		{
			Name:        "dns-dead",
			Description: "every resolver times out: the network is down, nothing lies",
			Build: func(e *Env) (Setup, error) {
				s, err := e.dnsSetup("static.crates.io", lab.DNSOptions{Silent: true}, nil)
				if err != nil {
					return s, err
				}
				dead, err := lab.NewDNSServer(lab.DNSOptions{Silent: true})
				if err != nil {
					return s, err
				}
				e.Track(dead)
				ref, err := resolver.ParseServer("udp://" + dead.Addr())
				if err != nil {
					return s, err
				}
				s.DNS.Reference = []resolver.Server{ref}
				return s, nil
			},
			Want: Want{Verdict: detector.Unreachable, Reasons: []detector.Reason{detector.ReasonUnreachable}},
		},
		{
			Name:        "dns-unverified",
			Description: "outbound DNS, DoT and DoH are blocked: the system's answer is used but not cross-checked",
			Build: func(e *Env) (Setup, error) {
				s, err := e.dnsSetup("proxy.golang.org", lab.DNSOptions{}, nil)
				if err != nil {
					return s, err
				}
				bh, err := lab.NewBlackhole()
				if err != nil {
					return s, err
				}
				e.Track(bh)
				silent, err := lab.NewDNSServer(lab.DNSOptions{Silent: true})
				if err != nil {
					return s, err
				}
				e.Track(silent)
				dot, err := resolver.ParseServer("tls://" + bh.Addr() + "#" + lab.DNSHost)
				if err != nil {
					return s, err
				}
				udp, err := resolver.ParseServer("udp://" + silent.Addr())
				if err != nil {
					return s, err
				}
				s.DNS.Reference = []resolver.Server{dot, udp}
				return s, nil
			},
			Want: Want{Verdict: detector.OK, Reasons: []detector.Reason{detector.ReasonDNSUnverified}},
		},
		{
			Name:        "hosts-file-mirror",
			Description: "/etc/hosts pins the registry to an internal mirror the references do not give",
			Build: func(e *Env) (Setup, error) {
				s, err := e.dnsSetup("registry.npmjs.org", lab.DNSOptions{}, map[netip.Addr]string{steerAddr: e.Origin.Addr()})
				if err != nil {
					return s, err
				}
				s.DNS.Hosts, err = e.hostsFile("127.0.0.1 localhost\n" + steerAddr.String() + " registry.npmjs.org\n")
				return s, err
			},
			Want: Want{Verdict: detector.OK, Reasons: []detector.Reason{detector.ReasonHostsOverride}},
		},
		{
			Name:        "hosts-file-block",
			Description: "/etc/hosts blocks the registry with 0.0.0.0, as ad blockers and malware do",
			Build: func(e *Env) (Setup, error) {
				s, err := e.dnsSetup("crates.io", lab.DNSOptions{}, nil)
				if err != nil {
					return s, err
				}
				s.DNS.Hosts, err = e.hostsFile("0.0.0.0 crates.io\n")
				return s, err
			},
			Want: Want{Verdict: detector.Blocked, Reasons: []detector.Reason{detector.ReasonHostsBlock}},
		},
		{
			Name:        "ip-literal",
			Description: "a target given as an IP address is dialled as it is, without DNS or SNI, and verified against its IP SAN",
			Build: func(e *Env) (Setup, error) {
				s, err := e.dnsSetup("127.0.0.1", lab.DNSOptions{}, nil)
				if err != nil {
					return s, err
				}
				s.Targets[0].Expect.IPRanges = nil
				return s, nil
			},
			Want: Want{Verdict: detector.OK},
		},
	}
}
