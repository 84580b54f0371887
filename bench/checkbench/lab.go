//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/netlab"
)

// The benchmark's resolvers, on addresses of its own in the netlab's
// internet namespace (198.19.0.0/16, routed there through the delay).
var (
	systemDNS = netip.MustParseAddr("198.19.54.1") // the client's resolv.conf
	udpRef    = netip.MustParseAddr("198.19.54.2")
	dotRef    = netip.MustParseAddr("198.19.54.3")
	dohRef    = netip.MustParseAddr("198.19.54.4") // dns.lab.example
)

// dohPort is the DoH relay's port: netlab's origins hold port 443 on every
// address of the internet namespace.
const dohPort = 8443

// benchLab is netlab's topology with the benchmark's resolvers: the client
// namespace reaches the origins and every resolver through the router and
// the wan relay, which adds the round-trip latency.
type benchLab struct {
	net     *netlab.Lab
	closers []func() error
	// Addrs maps each benchmark host to its origin.
	addrs map[string]netip.Addr
}

// newBenchLab builds the topology with rtt between client and internet.
// Close undoes it, also after an error.
func newBenchLab(rtt time.Duration) (b *benchLab, err error) {
	l, err := netlab.New(netlab.Options{Delay: rtt / 2})
	if err != nil {
		return nil, err
	}
	b = &benchLab{net: l, addrs: map[string]netip.Addr{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Close())
			b = nil
		}
	}()
	if len(netlab.Hosts) < len(hosts) {
		return b, fmt.Errorf("netlab has %d origin addresses, the benchmark needs %d", len(netlab.Hosts), len(hosts))
	}
	zone := map[string][]netip.Addr{lab.DNSHost: {dohRef}}
	for i, h := range hosts {
		// netlab's origins answer any name with a leaf for it.
		b.addrs[h] = l.Addrs[netlab.Hosts[i]]
		zone[h] = []netip.Addr{b.addrs[h]}
	}
	for _, a := range []netip.Addr{systemDNS, udpRef, dotRef, dohRef} {
		if err := ip("-n", l.Internet, "addr", "add", a.String()+"/32", "dev", "lo"); err != nil {
			return b, err
		}
	}
	opts := lab.DNSOptions{Zone: zone}
	for _, a := range []netip.Addr{systemDNS, udpRef} {
		o := opts
		o.Listen = netip.AddrPortFrom(a, 53).String()
		var s *lab.DNSServer
		if err := netlab.Do(l.Internet, func() (err error) { s, err = lab.NewDNSServer(o); return err }); err != nil {
			return b, err
		}
		b.closers = append(b.closers, s.Close)
	}
	// The lab's DoT and DoH servers listen on this namespace's loopback;
	// a relay in the internet namespace brings them behind the delay.
	dot, err := lab.NewDoTServer(l.PKI, opts)
	if err != nil {
		return b, err
	}
	b.closers = append(b.closers, dot.Close)
	doh, err := lab.NewDoHServer(l.PKI, opts)
	if err != nil {
		return b, err
	}
	b.closers = append(b.closers, doh.Close)
	for _, r := range []struct {
		at netip.AddrPort
		to string
	}{{netip.AddrPortFrom(dotRef, 853), dot.Addr()}, {netip.AddrPortFrom(dohRef, dohPort), doh.Addr()}} {
		closeRelay, err := relayTCP(l.Internet, r.at.String(), r.to)
		if err != nil {
			return b, err
		}
		b.closers = append(b.closers, closeRelay)
	}
	return b, nil
}

// references are the reference resolvers as rules.yaml names them.
func references() []string {
	return []string{
		"udp://" + netip.AddrPortFrom(udpRef, 53).String(),
		"tls://" + netip.AddrPortFrom(dotRef, 853).String() + "#" + lab.DNSHost,
		fmt.Sprintf("https://%s:%d%s", lab.DNSHost, dohPort, lab.DoHPath),
	}
}

// blackhole drops (on) or passes again (off) every packet to the
// reference resolvers at the router, silently, as a firewall that filters
// outbound DNS, DoT and DoH does: no ICMP, no reset.
func (b *benchLab) blackhole(on bool) error {
	verb := "del"
	if on {
		verb = "add"
	}
	for _, a := range []netip.Addr{udpRef, dotRef, dohRef} {
		if err := ip("-n", b.net.Router, "route", verb, "blackhole", a.String()+"/32"); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the resolvers and relays, then the netlab.
func (b *benchLab) Close() error {
	var errs []error
	for i := len(b.closers) - 1; i >= 0; i-- {
		errs = append(errs, b.closers[i]())
	}
	return errors.Join(append(errs, b.net.Close())...)
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// relayTCP accepts connections on listen inside the namespace ns and
// splices each to the address to, dialled from this process's own
// namespace. The returned function closes the listener and every
// connection, and waits for the relay's goroutines.
func relayTCP(ns, listen, to string) (func() error, error) {
	var ln net.Listener
	if err := netlab.Do(ns, func() (err error) { ln, err = net.Listen("tcp", listen); return err }); err != nil {
		return nil, fmt.Errorf("relay %s: %w", listen, err)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	track := func(c net.Conn, add bool) bool {
		mu.Lock()
		defer mu.Unlock()
		if add && conns == nil {
			return false // closed
		}
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
		return true
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if !track(c, true) {
					return
				}
				defer track(c, false)
				u, err := net.DialTimeout("tcp", to, 5*time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				if !track(u, true) {
					return
				}
				defer track(u, false)
				done := make(chan struct{})
				go func() {
					io.Copy(u, c)
					u.(*net.TCPConn).CloseWrite()
					close(done)
				}()
				io.Copy(c, u)
				c.(*net.TCPConn).CloseWrite()
				<-done
			})
		}
	})
	return func() error {
		err := ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
		return err
	}, nil
}
