package check

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/resolver"
)

// systemDNS is a round's DNS with one system resolver, sys, and no
// references.
func systemDNS(t *testing.T, sys *lab.DNSServer) *DNS {
	t.Helper()
	s := server(t, "udp://"+sys.Addr())
	s.System, s.Spec = true, "system "+s.Spec
	c := &resolver.Client{Timeout: 500 * time.Millisecond}
	t.Cleanup(func() { c.Close() })
	return &DNS{Client: c, System: []resolver.Server{s}}
}

func newDNSServer(t *testing.T, opts lab.DNSOptions) *lab.DNSServer {
	t.Helper()
	s, err := lab.NewDNSServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A name asked for while a lookup of it is out gets that lookup's answer:
// one query of each type reaches the resolver. Once it is back, the next
// asks again.
func TestSystemLookupShared(t *testing.T) {
	addr := netip.MustParseAddr("127.0.0.1")
	sys := newDNSServer(t, lab.DNSOptions{Zone: map[string][]netip.Addr{"db.shared.example": {addr}}, Latency: 150 * time.Millisecond})
	d := systemDNS(t, sys)
	ctx := context.Background()

	const askers = 4
	answers := make([][]detector.DNSAnswer, askers)
	var wg sync.WaitGroup
	for i := range askers {
		wg.Go(func() { answers[i] = d.resolveSystem(ctx, "db.shared.example") })
		time.Sleep(10 * time.Millisecond) // all within the first's 150 ms
	}
	wg.Wait()
	if n := sys.Queries("udp"); n != 2 {
		t.Errorf("%d asked at once: the resolver got %d queries, want 2 (A and AAAA once)", askers, n)
	}
	for i, a := range answers {
		got, ok := answeredWithAddrs(a)
		if !ok || !slices.Equal(got.Addrs, []netip.Addr{addr}) {
			t.Fatalf("asker %d got %+v, want %v", i, a, addr)
		}
	}
	// Each asker owns its slice: appending (as observe does with the
	// references') must not show in another's.
	answers[0] = append(answers[0], detector.DNSAnswer{Resolver: "appended"})
	for i, a := range answers[1:] {
		if len(a) != 1 || slices.ContainsFunc(a[:cap(a)], func(x detector.DNSAnswer) bool { return x.Resolver == "appended" }) {
			t.Errorf("asker %d sees another's append: %+v", i+1, a[:cap(a)])
		}
	}

	d.resolveSystem(ctx, "db.shared.example")
	if n := sys.Queries("udp"); n != 4 {
		t.Errorf("a lookup after the shared one is back: %d queries in all, want 4", n)
	}
}

// A lookup that ended because its asker gave up is no answer for another
// asker still waiting: that one asks for itself.
func TestSystemLookupCanceledNotShared(t *testing.T) {
	addr := netip.MustParseAddr("127.0.0.1")
	sys := newDNSServer(t, lab.DNSOptions{Zone: map[string][]netip.Addr{"db.shared.example": {addr}}, Latency: 150 * time.Millisecond})
	d := systemDNS(t, sys)

	first, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.resolveSystem(first, "db.shared.example")
	}()
	time.Sleep(20 * time.Millisecond)
	time.AfterFunc(30*time.Millisecond, cancel)
	a := d.resolveSystem(context.Background(), "db.shared.example")
	<-done
	if got, ok := answeredWithAddrs(a); !ok || !slices.Equal(got.Addrs, []netip.Addr{addr}) {
		t.Fatalf("the asker still waiting got %+v, want %v", a, addr)
	}
}

// goDialer stands for Go's own resolver and dialer, DialContext's
// fallback: it records what it was asked to dial, connects to addresses,
// and refuses names (Go's resolver would ask this machine's resolvers,
// outside the test's network).
type goDialer struct {
	mu    sync.Mutex
	asked []string
}

var errNameNotDialled = errors.New("a name reached Go's resolver")

func (g *goDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	g.asked = append(g.asked, addr)
	g.mu.Unlock()
	host, _, _ := net.SplitHostPort(addr)
	if _, err := netip.ParseAddr(host); err != nil {
		return nil, errNameNotDialled
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (g *goDialer) take() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.asked
	g.asked = nil
	return out
}

// listenAccepting listens on addr (a loopback address, port 0) for the
// test, accepting and closing every connection, and returns the
// listener's address and port.
func listenAccepting(t *testing.T, addr string) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String(), portOf(t, ln.Addr().String())
}

// DialContext reaches a host at the addresses the system's resolution
// gives, in order, when they are of one family; Go's own resolver and
// dialer decide what that resolution cannot: no address (search lists,
// other servers) and both families (RFC 6724 order, families raced).
func TestDialContextResolvesAsTheSystem(t *testing.T) {
	// 127.0.0.3 and 127.0.0.2 are loopback too. Nothing listens on the
	// second: refused, so the dial moves on to the next address. The
	// refusing one comes first however the answer is ordered.
	listening, p := listenAccepting(t, "127.0.0.3")
	port := strconv.Itoa(p)
	zone := map[string][]netip.Addr{
		"db.example":   {netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")},
		"dual.example": {netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("::1")},
	}
	sys := newDNSServer(t, lab.DNSOptions{Zone: zone, NXDomain: []string{"gone.example"}, ServFail: []string{"broken.example"}})
	d := systemDNS(t, sys)
	g := &goDialer{}
	d.Fallback = g
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("db.example", port))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if got := c.RemoteAddr().String(); got != listening {
		t.Errorf("connected to %s, want the second address, the first refusing", got)
	}
	c.Close()
	if asked := g.take(); len(asked) != 0 {
		t.Errorf("one family's addresses went to Go's dialer too: %v", asked)
	}

	before := sys.Queries("udp")
	if c, err := d.DialContext(ctx, "tcp", listening); err != nil {
		t.Errorf("dialling an address: %v", err)
	} else {
		c.Close()
	}
	if n := sys.Queries("udp"); n != before {
		t.Errorf("dialling an address asked the resolver %d times", n-before)
	}
	g.take()

	silent := newDNSServer(t, lab.DNSOptions{Silent: true})
	for _, c := range []struct {
		name string
		d    *DNS
	}{
		{"gone.example", d},                  // NXDOMAIN: Go tries the search list
		{"broken.example", d},                // SERVFAIL: Go asks the next server
		{"dual.example", d},                  // both families: Go orders and races them
		{"db.example", systemDNS(t, silent)}, // no answer in time
	} {
		c.d.Fallback = g
		addr := net.JoinHostPort(c.name, port)
		if _, err := c.d.DialContext(ctx, "tcp", addr); !errors.Is(err, errNameNotDialled) {
			t.Errorf("%s: error %v, want Go's dialer's", c.name, err)
		}
		if asked := g.take(); !slices.Equal(asked, []string{addr}) {
			t.Errorf("%s: Go's dialer asked for %v, want %s", c.name, asked, addr)
		}
	}
}
