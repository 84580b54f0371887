//go:build linux

package netlab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/lab"
)

// The lab's addresses, all from the benchmarking range 198.18.0.0/15
// (RFC 2544): nothing in the lab can ever be mistaken for, or reach, a
// real host.
var (
	ClientAddr   = netip.MustParseAddr("198.18.1.2") // the build agent
	RouterAddr   = netip.MustParseAddr("198.18.1.1") // the client's gateway; explicit proxies listen here
	routerUpAddr = netip.MustParseAddr("198.18.2.1")
	internetAddr = netip.MustParseAddr("198.18.2.2")
	// DNSAddr is the lab's resolver, in every namespace's resolv.conf.
	DNSAddr = netip.MustParseAddr("198.19.53.53")
	// originPrefix holds one address per impersonated host.
	originPrefix = netip.MustParsePrefix("198.19.0.0/16")
)

// Hosts are the targets the lab impersonates: the default rules.yaml's
// hosts, less those whose names the project does not write down (the Go
// toolchain's and npm's, which rules.yaml fills in from the toolchain).
var Hosts = []string{
	"github.com",
	"codeload.github.com",
	"objects.githubusercontent.com",
	"pypi.org",
	"files.pythonhosted.org",
	"index.crates.io",
	"static.crates.io",
	"registry-1.docker.io",
	"ghcr.io",
	"repo.maven.apache.org",
}

// hostAddr is the origin address of Hosts[i]: 198.19.0.(i+1).
func hostAddr(i int) netip.Addr {
	a := originPrefix.Addr().As4()
	a[3] = byte(i + 1)
	return netip.AddrFrom4(a)
}

// Options shape the topology.
type Options struct {
	// Delay is added one way to every frame between the router and the
	// internet (so twice to a round trip), by a relay in a fourth, "wan",
	// namespace. Zero links them directly.
	Delay time.Duration
}

// Lab is one running instance of the topology.
type Lab struct {
	ID                       string // random, in every name the lab creates
	Client, Router, Internet string // namespace names
	WAN                      string // the delay relay's namespace, if any
	Delay                    time.Duration
	Dir                      string // configs, CA files and logs; removed by Close
	PKI                      *lab.PKI
	// Addrs maps each of Hosts, and each test host of grading
	// (GradeHosts, ControlHost), to its origin address.
	Addrs map[string]netip.Addr
	// Scenario names the scenario set up, if any.
	Scenario string
	// Interceptor is the scenario's middlebox, nil when there is none.
	Interceptor *Interceptor
	// Rules is the rules.yaml mitmwatch runs with in the client namespace.
	Rules string
	// ClientEnv is the environment of programs in the client namespace, on
	// top of PATH and HOME: the scenario's HTTPS_PROXY, and
	// MITMWATCH_CONFIG naming Rules.
	ClientEnv []string

	procs   []*Proc
	closers []func() error // run last first
	nets    []string       // namespaces created so far
	record  *record
	origins *origins
}

// New builds the topology with its origins and DNS server up. On error,
// everything it had done is undone.
func New(opts Options) (l *Lab, err error) {
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	l = &Lab{ID: hex.EncodeToString(id[:]), Addrs: map[string]netip.Addr{}, Delay: opts.Delay}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close())
			l = nil
		}
	}()
	l.Client, l.Router, l.Internet = "netlab-"+l.ID+"-c", "netlab-"+l.ID+"-r", "netlab-"+l.ID+"-i"
	if l.Delay > 0 {
		l.WAN = "netlab-" + l.ID + "-w"
	}
	// Readable by squid, which drops to its own user.
	if l.Dir, err = os.MkdirTemp("", "netlab-"+l.ID+"-"); err != nil {
		return l, err
	}
	if err = os.Chmod(l.Dir, 0o755); err != nil {
		return l, err
	}
	if l.record, err = newRecord(l); err != nil {
		return l, err
	}
	if l.PKI, err = lab.NewPKI(); err != nil {
		return l, err
	}
	for i, h := range Hosts {
		l.Addrs[h] = hostAddr(i)
	}
	for h, a := range gradeAddrs() {
		l.Addrs[h] = a
	}
	if err = l.wire(); err != nil {
		return l, fmt.Errorf("netlab: topology: %w", err)
	}
	if err = l.startInternet(); err != nil {
		return l, fmt.Errorf("netlab: internet: %w", err)
	}
	return l, nil
}

// wire creates the namespaces, links, addresses and routes.
func (l *Lab) wire() error {
	for _, ns := range []string{l.Client, l.Router, l.Internet, l.WAN} {
		if ns == "" {
			continue
		}
		if err := addNetns(ns); err != nil {
			return err
		}
		l.nets = append(l.nets, ns)
		if err := l.record.save(l); err != nil {
			return err
		}
	}
	c, r, i := l.Client, l.Router, l.Internet
	if err := l.wireWAN(); err != nil {
		return err
	}
	steps := [][]string{
		{"-n", c, "link", "add", "c0", "type", "veth", "peer", "name", "r0", "netns", r},
		{"-n", c, "addr", "add", ClientAddr.String() + "/24", "dev", "c0"},
		{"-n", r, "addr", "add", RouterAddr.String() + "/24", "dev", "r0"},
		{"-n", r, "addr", "add", routerUpAddr.String() + "/24", "dev", "r1"},
		{"-n", i, "addr", "add", internetAddr.String() + "/24", "dev", "i0"},
		{"-n", c, "link", "set", "c0", "up"},
		{"-n", r, "link", "set", "r0", "up"},
		{"-n", r, "link", "set", "r1", "up"},
		{"-n", i, "link", "set", "i0", "up"},
		{"-n", c, "route", "add", "default", "via", RouterAddr.String()},
		{"-n", r, "route", "add", originPrefix.String(), "via", internetAddr.String()},
		{"-n", i, "route", "add", "default", "via", routerUpAddr.String()},
		{"-n", i, "addr", "add", DNSAddr.String() + "/32", "dev", "lo"},
	}
	for _, a := range l.Addrs {
		steps = append(steps, []string{"-n", i, "addr", "add", a.String() + "/32", "dev", "lo"})
	}
	for _, s := range steps {
		if err := run("ip", s...); err != nil {
			return err
		}
	}
	if err := inNS(r, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"); err != nil {
		return err
	}
	// The internet namespace is many hosts in one kernel: each real origin
	// answers a datagram to a closed port (ICMP port unreachable) out of
	// its own rate limit, not one shared by every origin toward the
	// client (Linux's default: a burst of 6, then one a second). The
	// router keeps the default, as one real gateway has one limit for its
	// time-exceeded messages.
	if err := inNS(i, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/icmp_ratelimit"); err != nil {
		return err
	}
	etc := map[string]string{
		"resolv.conf": "nameserver " + DNSAddr.String() + "\noptions timeout:2 attempts:2\n",
		"hosts":       "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	}
	for _, ns := range []string{c, r} {
		if err := writeEtc(ns, etc); err != nil {
			return err
		}
	}
	return nil
}

// wireWAN links the router's r1 to the internet's i0: directly, or through
// the delay relay of the wan namespace.
func (l *Lab) wireWAN() error {
	r, i, w := l.Router, l.Internet, l.WAN
	if w == "" {
		return run("ip", "-n", r, "link", "add", "r1", "type", "veth", "peer", "name", "i0", "netns", i)
	}
	for _, s := range [][]string{
		{"-n", r, "link", "add", "r1", "type", "veth", "peer", "name", "w0", "netns", w},
		{"-n", w, "link", "add", "w1", "type", "veth", "peer", "name", "i0", "netns", i},
		{"-n", w, "link", "set", "w0", "up"},
		{"-n", w, "link", "set", "w1", "up"},
	} {
		if err := run("ip", s...); err != nil {
			return err
		}
	}
	// The wan namespace only relays: it sends nothing of its own.
	if err := inNS(w, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6"); err != nil {
		return err
	}
	if err := noOffload(r, "r1"); err != nil {
		return err
	}
	if err := noOffload(i, "i0"); err != nil {
		return err
	}
	rel, err := startRelay(w, "w0", "w1", l.Delay)
	if err != nil {
		return err
	}
	l.closers = append(l.closers, rel.Close)
	return nil
}

// startInternet starts the DNS server and the origins.
func (l *Lab) startInternet() error {
	zone := map[string][]netip.Addr{}
	for h, a := range l.Addrs {
		zone[h] = []netip.Addr{a}
	}
	var dns *lab.DNSServer
	err := Do(l.Internet, func() (err error) {
		dns, err = lab.NewDNSServer(lab.DNSOptions{Listen: netip.AddrPortFrom(DNSAddr, 53).String(), Zone: zone})
		return err
	})
	if err != nil {
		return err
	}
	l.closers = append(l.closers, dns.Close)
	fixed, err := gradeCerts(l.PKI)
	if err != nil {
		return err
	}
	if l.origins, err = startOrigins(l.Internet, l.PKI, fixed); err != nil {
		return err
	}
	l.closers = append(l.closers, l.origins.Close)
	return nil
}

// StopOrigins takes every origin down: their addresses stay, answering
// connections with a reset, as hosts whose server is down do.
func (l *Lab) StopOrigins() error { return l.origins.Close() }

// Start runs a program inside the namespace ns, tracked: Close stops it.
// env is its whole environment (PATH is added when missing).
func (l *Lab) Start(ns, label string, env []string, name string, args ...string) (*Proc, error) {
	if !hasVar(env, "PATH") {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	p, err := startProc(ns, l.Dir, label, env, name, args...)
	if err != nil {
		return nil, err
	}
	l.procs = append(l.procs, p)
	return p, l.record.save(l)
}

// WriteFile writes a file into the lab's directory, readable by all (the
// proxies drop privileges), and returns its path.
func (l *Lab) WriteFile(name string, data []byte) (string, error) {
	path := filepath.Join(l.Dir, name)
	return path, os.WriteFile(path, data, 0o644)
}

// Close stops every program, then every server, deletes the namespaces and
// the directory. It is safe on a half-built Lab and reports every failure.
func (l *Lab) Close() error {
	var errs []error
	errs = append(errs, stopAll(l.procs))
	l.procs = nil
	for i := len(l.closers) - 1; i >= 0; i-- {
		errs = append(errs, l.closers[i]())
	}
	l.closers = nil
	for _, ns := range l.nets {
		errs = append(errs, delNetns(ns))
	}
	l.nets = nil
	if l.record != nil {
		errs = append(errs, l.record.remove())
	}
	if l.Dir != "" && os.Getenv("NETLAB_KEEP") != "1" {
		errs = append(errs, os.RemoveAll(l.Dir))
	}
	return errors.Join(errs...)
}

func hasVar(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}
