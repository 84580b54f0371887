//go:build linux

package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/netlab"
	"github.com/mitmwatch/mitmwatch/sumdb/sumdbtest"
)

// The benchmark's resolvers and checksum database, on addresses of its own
// in the netlab's internet namespace (198.19.0.0/16, routed there through
// the delay).
var (
	systemDNS = netip.MustParseAddr("198.19.54.1") // the client's resolv.conf
	udpRef    = netip.MustParseAddr("198.19.54.2")
	dotRef    = netip.MustParseAddr("198.19.54.3")
	dohRef    = netip.MustParseAddr("198.19.54.4") // dns.lab.example
	// sumdbAddr is the checksum database's, sumdbHost in the zone.
	sumdbAddr = netip.MustParseAddr("198.19.54.5")
)

// dohPort is the DoH relay's port, and sumdbPort the checksum database's:
// netlab's origins hold port 443 on every address of the internet
// namespace.
const (
	dohPort   = 8443
	sumdbPort = 8443
)

// The checksum database's log: sumdbSize records to start with, and
// sumdbGrowth more before every check that reads it. A database that
// serves builds grows between two checks, so each check after the first
// proves with the log's tiles that the tree it is served extends the one
// it kept, as on a build machine; a log that stood still would let it
// stop at the signed head.
//
// The real one is far larger, and its proofs read a few more tiles, all
// at once. This one stays small because this process's peak RSS is the
// floor of every child's the kernel reports: Go starts children with
// vfork, and exec records the parent's high-water mark as the child's.
// At this size the log moves that floor by less than its noise.
const (
	sumdbSize   = 10_000
	sumdbGrowth = 100
)

// benchLab is netlab's topology with the benchmark's resolvers and
// checksum database: the client namespace reaches the origins, the
// database and every resolver through the router and the wan relay, which
// adds the round-trip latency.
type benchLab struct {
	net     *netlab.Lab
	closers []func() error
	// Addrs maps each benchmark host to its server's address: a
	// netlab origin, or sumdbAddr for the checksum database.
	addrs map[string]netip.Addr
	// sumdb is the checksum database's log, served at sumdbAddr; the
	// children's go env names it with its key.
	sumdb *sumdbtest.Log
	// sumdbKept says which cache directories ("" for the home's) a
	// check has verified and kept one of its trees in: every later check
	// with that cache must prove an extension.
	sumdbKept map[string]bool
}

// newBenchLab builds the topology with rtt between client and internet.
// Close undoes it, also after an error.
func newBenchLab(rtt time.Duration) (b *benchLab, err error) {
	l, err := netlab.New(netlab.Options{Delay: rtt / 2})
	if err != nil {
		return nil, err
	}
	b = &benchLab{net: l, addrs: map[string]netip.Addr{}, sumdbKept: map[string]bool{}}
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
		// netlab's origins answer any name with a leaf for it; the
		// checksum database is the benchmark's own server.
		b.addrs[h] = l.Addrs[netlab.Hosts[i]]
		if h == sumdbHost {
			b.addrs[h] = sumdbAddr
		}
		zone[h] = []netip.Addr{b.addrs[h]}
	}
	for _, a := range []netip.Addr{systemDNS, udpRef, dotRef, dohRef, sumdbAddr} {
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
	if b.sumdb, err = sumdbtest.NewLog(sumdbHost); err != nil {
		return b, err
	}
	if err := b.sumdb.Add(sumdbSize, "bench"); err != nil {
		return b, err
	}
	closeDB, err := serveTLS(l.Internet, netip.AddrPortFrom(sumdbAddr, sumdbPort).String(), l.PKI, sumdbHost, b.sumdb)
	if err != nil {
		return b, err
	}
	b.closers = append(b.closers, closeDB)
	return b, nil
}

// growSumDB adds records to the checksum database before a check with
// the cache directory cache reads it, and returns the consistency that
// check must report: the first tree it keeps, or one that extends the
// tree an earlier check with that cache kept.
func (b *benchLab) growSumDB(cache string) (string, error) {
	if err := b.sumdb.Add(sumdbGrowth, "bench"); err != nil {
		return "", err
	}
	if b.sumdbKept[cache] {
		return "extends", nil
	}
	return "first", nil
}

// serveTLS serves h over TLS on listen inside the namespace ns, with a
// leaf for name from the lab's stand-in public intermediate, as a public
// CA issues one to a real registry: the children trust it through the
// system store, and the TLS probe judges it as it judges the origins'.
// The returned function stops the server and ends every connection.
func serveTLS(ns, listen string, pki *lab.PKI, name string, h http.Handler) (func() error, error) {
	leaf, err := pki.PublicIntermediate.Issue(lab.LeafOptions{}, name)
	if err != nil {
		return nil, err
	}
	var ln net.Listener
	if err := netlab.Do(ns, func() (err error) { ln, err = net.Listen("tcp", listen); return err }); err != nil {
		return nil, fmt.Errorf("%s at %s: %w", name, listen, err)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{*leaf}, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // a probe's handshake without a request is no news
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeTLS(ln, "", "")
	}()
	return func() error {
		err := srv.Close()
		<-done
		return err
	}, nil
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
