package check

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/sumdb"
)

// hangingListener listens on addr:port with an accept queue of one and
// fills it, so that the kernel drops every further SYN: a connect there
// hangs, as to an address that blackholes. The test is skipped where the
// kernel accepts past a full queue.
func hangingListener(t *testing.T, addr string, port int) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	sa := &syscall.SockaddrInet4{Port: port, Addr: netip.MustParseAddr(addr).As4()}
	if err := syscall.Bind(fd, sa); err != nil {
		t.Skipf("binding %s:%d: %v", addr, port, err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	// Backlog 0 holds one connection; a second fills the SYN's way in.
	for range 2 {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	probe, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if c, err := (&net.Dialer{}).DialContext(probe, "tcp", net.JoinHostPort(addr, strconv.Itoa(port))); err == nil {
		c.Close()
		t.Skip("the kernel accepted past a full queue: no hanging address to test with")
	}
}

// hangingFirst is the system's resolution of db.example to 127.0.0.4,
// which hangs on port, then 127.0.0.5; names the resolution cannot decide
// go to a goDialer.
func hangingFirst(t *testing.T, port int) *DNS {
	t.Helper()
	hangingListener(t, "127.0.0.4", port)
	zone := map[string][]netip.Addr{"db.example": {netip.MustParseAddr("127.0.0.4"), netip.MustParseAddr("127.0.0.5")}}
	d := systemDNS(t, newDNSServer(t, lab.DNSOptions{Zone: zone}))
	d.Fallback = &goDialer{}
	return d
}

// An address that never answers gets its share of the time left, not all
// of it: the next address is tried, as Go's dialer tries it.
func TestDialContextSharesTheTimeAmongAddresses(t *testing.T) {
	listening, port := listenAccepting(t, "127.0.0.5")
	d := hangingFirst(t, port)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("db.example", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("after %v: %v; want the second address reached once the first's share (%v) ran out", time.Since(start).Round(time.Millisecond), err, minAddrTime)
	}
	c.Close()
	if got := c.RemoteAddr().String(); got != listening {
		t.Errorf("connected to %s, want %s", got, listening)
	}
}

// An early connection that hangs gets the share of the time the first
// address would have had, then the next address is dialed; with no other
// address its failure reads as DialContext's, a timeout.
func TestDialFromEarlyHangs(t *testing.T) {
	listening, port := listenAccepting(t, "127.0.0.5")
	hangingListener(t, "127.0.0.4", port)
	last := netip.MustParseAddr("127.0.0.4")
	release := make(chan struct{})
	close(release)

	d := heldDNS(t, map[string][]netip.Addr{"db.example": {last, netip.MustParseAddr("127.0.0.5")}}, release)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, reach, err := d.DialFrom(ctx, "tcp", net.JoinHostPort("db.example", strconv.Itoa(port)), sumdb.Reach{Addr: last})
	if err != nil {
		t.Fatalf("%v; want the second address reached once the first's share ran out", err)
	}
	c.Close()
	if got := c.RemoteAddr().String(); got != listening || reach.ByGo {
		t.Errorf("connected to %s (%+v), want %s in order", got, reach, listening)
	}

	d = heldDNS(t, map[string][]netip.Addr{"db.example": {last}}, release)
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, _, err = d.DialFrom(ctx, "tcp", net.JoinHostPort("db.example", strconv.Itoa(port)), sumdb.Reach{Addr: last})
	if f := detector.FailureOf(err); f != detector.FailureTimeout {
		t.Errorf("failure %s (%v), want %s as DialContext's", f, err, detector.FailureTimeout)
	}
}

// For a host of both families, an early connection that has not connected
// within Go's 300 ms for its first family is given up, and Go's dialer
// dials: it would have raced the other family by then.
func TestDialFromAsGoEarlyHangs(t *testing.T) {
	port := freePort(t)
	hangingListener(t, "127.0.0.4", port)
	last := netip.MustParseAddr("127.0.0.4")
	other := netip.MustParseAddr("127.0.0.2")
	at := accepting(t, other.String(), port)
	release := make(chan struct{})
	defer close(release)
	d := heldDNS(t, nil, release)
	md := &mapDialer{zone: map[string][]netip.Addr{"db.example": {other}}}
	d.Fallback = md
	d.GoLookup = func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{last, netip.MustParseAddr("::1")}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, reach, err := d.DialFrom(ctx, "tcp", net.JoinHostPort("db.example", strconv.Itoa(port)), sumdb.Reach{Addr: last, ByGo: true})
	if err != nil {
		t.Fatalf("%v; want Go's dialer's connection once the early one missed its 300 ms", err)
	}
	c.Close()
	if asked := md.take(); len(asked) != 1 {
		t.Errorf("Go's dialer asked for %v, want one dial", asked)
	}
	if reach != (sumdb.Reach{ByGo: true}) {
		t.Errorf("reached %+v, want Go's dialer's with no first address", reach)
	}
	select {
	case s := <-at:
		s.Close()
	case <-time.After(5 * time.Second):
		t.Error("Go's dialer reached nothing")
	}
}

// As Go's dialer, a dial in order reports the first address's error, the
// most relevant: here a timeout, not the refusal of the address after it.
func TestDialContextReportsTheFirstError(t *testing.T) {
	port := freePort(t)
	d := hangingFirst(t, port) // 127.0.0.5: nothing listens, refused
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := d.DialContext(ctx, "tcp", net.JoinHostPort("db.example", strconv.Itoa(port)))
	if f := detector.FailureOf(err); f != detector.FailureTimeout {
		t.Errorf("failure %s (%v), want the first address's, %s", f, err, detector.FailureTimeout)
	}
}
