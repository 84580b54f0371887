package check

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/resolver"
	"github.com/mitmwatch/mitmwatch/sumdb"
)

// heldDNS is a system resolver that answers A and AAAA queries from zone
// (NXDOMAIN for other names) only once release is closed: a lookup as slow
// as the test wants.
func heldDNS(t *testing.T, zone map[string][]netip.Addr, release <-chan struct{}) *DNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		<-release
		m := new(dns.Msg)
		m.SetReply(q)
		qq := q.Question[0]
		addrs, ok := zone[strings.TrimSuffix(qq.Name, ".")]
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		for _, a := range addrs {
			switch {
			case qq.Qtype == dns.TypeA && a.Is4():
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: a.AsSlice()})
			case qq.Qtype == dns.TypeAAAA && a.Is6():
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60}, AAAA: a.AsSlice()})
			}
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	s := server(t, "udp://"+pc.LocalAddr().String())
	s.System, s.Spec = true, "system "+s.Spec
	c := &resolver.Client{Timeout: 5 * time.Second}
	t.Cleanup(func() { c.Close() })
	return &DNS{Client: c, System: []resolver.Server{s}, Fallback: &goDialer{}}
}

// accepting listens on addr:port and hands over every connection it
// accepts.
func accepting(t *testing.T, addr string, port int) <-chan net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		t.Skipf("listening on %s:%d: %v", addr, port, err)
	}
	out := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			out <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-out:
				c.Close()
			default:
				return
			}
		}
	})
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	addr, err := lab.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	return portOf(t, addr)
}

// closedByPeer reports whether c's peer closes it within a few seconds.
func closedByPeer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(fmtErr(err), "reset")
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

type dialed struct {
	conn  net.Conn
	reach sumdb.Reach
	err   error
}

// dialEarlyFrom starts d.DialFrom to db.example:port from last, and, where
// something listens at last (atLast not nil), waits for the early
// connection to arrive there while the lookup is held.
func dialEarlyFrom(t *testing.T, d *DNS, ctx context.Context, port int, last sumdb.Reach, atLast <-chan net.Conn) (<-chan dialed, net.Conn) {
	t.Helper()
	done := make(chan dialed, 1)
	go func() {
		conn, reach, err := d.DialFrom(ctx, "tcp", net.JoinHostPort("db.example", strconv.Itoa(port)), last)
		done <- dialed{conn, reach, err}
	}()
	if atLast == nil {
		return done, nil
	}
	select {
	case early := <-atLast:
		t.Cleanup(func() { early.Close() })
		return done, early
	case <-time.After(5 * time.Second):
		t.Fatal("no connection to the last address while the name resolved")
	}
	return done, nil
}

// DialFrom opens its connection to where the host was while the name
// resolves, and keeps it only when the resolution puts that address
// first; otherwise it goes where the resolution says, closing the early
// connection, exactly as DialContext would have gone.
func TestDialFrom(t *testing.T) {
	// The system's resolution is dialed in the order the resolver
	// client sorts it, so moved comes before last and after after it.
	moved := netip.MustParseAddr("127.0.0.2")
	last := netip.MustParseAddr("127.0.0.3")
	after := netip.MustParseAddr("127.0.0.5")
	oldAge := earlyMaxAge
	earlyMaxAge = 500 * time.Millisecond
	t.Cleanup(func() { earlyMaxAge = oldAge })
	for _, c := range []struct {
		name     string
		zone     []netip.Addr // db.example's addresses; nil: NXDOMAIN
		lastUp   bool         // something listens at last
		hold     time.Duration
		wantTo   netip.Addr  // the address connected to; invalid: an error
		wantUsed bool        // the early connection is the one returned
		reach    sumdb.Reach // what is kept for next time
	}{
		{"unmoved", []netip.Addr{last}, true, 0, last, true, sumdb.Reach{Addr: last}},
		{"moved", []netip.Addr{moved}, true, 0, moved, false, sumdb.Reach{Addr: moved}},
		{"second of two", []netip.Addr{moved, last}, true, 0, moved, false, sumdb.Reach{Addr: moved}},
		{"gone from the name", nil, true, 0, netip.Addr{}, false, sumdb.Reach{}},
		// Both families: Go's dialer orders and races them.
		{"both families", []netip.Addr{last, netip.MustParseAddr("::1")}, true, 0, netip.Addr{}, false, sumdb.Reach{}},
		// The address reached is not the first: opening it early next
		// time would be in vain.
		{"unmoved but down", []netip.Addr{after, last}, false, 0, after, false, sumdb.Reach{}},
		// A connection that waited longer than earlyMaxAge may have been
		// given up on: the dial starts again.
		{"unmoved, a slow lookup", []netip.Addr{last}, true, time.Second, last, false, sumdb.Reach{Addr: last}},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := freePort(t)
			var atLast <-chan net.Conn
			if c.lastUp {
				atLast = accepting(t, last.String(), port)
			}
			atNew := map[netip.Addr]<-chan net.Conn{moved: accepting(t, moved.String(), port), after: accepting(t, after.String(), port)}
			release := make(chan struct{})
			released := false
			defer func() {
				if !released {
					close(release)
				}
			}()
			zone := map[string][]netip.Addr{}
			if c.zone != nil {
				zone["db.example"] = c.zone
			}
			d := heldDNS(t, zone, release)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// The resolver has not answered: only the head start can
			// have connected.
			done, early := dialEarlyFrom(t, d, ctx, port, sumdb.Reach{Addr: last}, atLast)
			time.Sleep(c.hold)
			close(release)
			released = true
			got := <-done
			if got.reach != c.reach {
				t.Errorf("reached %+v, want %+v", got.reach, c.reach)
			}
			if !c.wantTo.IsValid() {
				if got.err == nil {
					got.conn.Close()
					t.Fatalf("connected to %v, want an error", got.conn.RemoteAddr())
				}
				if !errors.Is(got.err, errNameNotDialled) {
					t.Errorf("error %v, want Go's dialer's, as DialContext gives", got.err)
				}
				if asked := d.Fallback.(*goDialer).take(); len(asked) != 1 {
					t.Errorf("Go's dialer asked for %v, want the name once", asked)
				}
			} else {
				if got.err != nil {
					t.Fatalf("dial: %v", got.err)
				}
				defer got.conn.Close()
				to := got.conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
				if to != c.wantTo {
					t.Errorf("connected to %v, want %v", to, c.wantTo)
				}
			}
			if early == nil {
				return
			}
			used := got.conn != nil && early.RemoteAddr().String() == got.conn.LocalAddr().String()
			if used != c.wantUsed {
				t.Errorf("early connection used: %v, want %v", used, c.wantUsed)
			}
			if !c.wantUsed && !closedByPeer(early) {
				t.Error("the early connection was left open")
			}
			if c.wantUsed {
				select {
				case extra := <-atLast:
					extra.Close()
					t.Error("a second connection reached the last address")
				case <-time.After(100 * time.Millisecond):
				}
			}
			at, ok := atNew[c.wantTo]
			if c.wantTo == last && !c.wantUsed {
				at, ok = atLast, true
			}
			if ok {
				select {
				case m := <-at:
					m.Close()
				case <-time.After(5 * time.Second):
					t.Error("the new address accepted nothing")
				}
			}
		})
	}
}

// Without a last address, or for an address rather than a name, DialFrom
// is DialContext.
func TestDialFromWithoutAHeadStart(t *testing.T) {
	port := freePort(t)
	at := accepting(t, "127.0.0.4", port)
	release := make(chan struct{})
	close(release)
	d := heldDNS(t, map[string][]netip.Addr{"db.example": {netip.MustParseAddr("127.0.0.4")}}, release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct {
		addr string
		last netip.Addr
	}{
		{net.JoinHostPort("db.example", strconv.Itoa(port)), netip.Addr{}},
		{net.JoinHostPort("127.0.0.4", strconv.Itoa(port)), netip.MustParseAddr("127.0.0.3")},
	} {
		conn, reach, err := d.DialFrom(ctx, "tcp", c.addr, sumdb.Reach{Addr: c.last})
		// A name is resolved and dialed in order; an address is dialed as
		// it is, and reaches nothing to keep.
		want := sumdb.Reach{Addr: netip.MustParseAddr("127.0.0.4")}
		if net.ParseIP(strings.Split(c.addr, ":")[0]) != nil {
			want = sumdb.Reach{}
		}
		if reach != want {
			t.Errorf("%s: reached %+v, want %+v", c.addr, reach, want)
		}
		if host, _, _ := net.SplitHostPort(c.addr); host == "127.0.0.4" {
			// An address goes to Go's dialer, as DialContext sends it.
			if asked := d.Fallback.(*goDialer).take(); !slices.Equal(asked, []string{c.addr}) {
				t.Errorf("%s: Go's dialer asked for %v", c.addr, asked)
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", c.addr, err)
		}
		conn.Close()
		select {
		case s := <-at:
			s.Close()
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing reached the listener", c.addr)
		}
	}
}

// mapDialer is Go's dialer over a zone of its own: names it resolves from
// zone, in order, and it records what it was asked for.
type mapDialer struct {
	zone map[string][]netip.Addr
	goDialer
}

func (m *mapDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, _ := net.SplitHostPort(addr)
	if addrs, ok := m.zone[host]; ok {
		m.goDialer.DialContext(ctx, network, addr) // recorded; a name errs
		var nd net.Dialer
		return nd.DialContext(ctx, network, net.JoinHostPort(addrs[0].String(), port))
	}
	return m.goDialer.DialContext(ctx, network, addr)
}

// A host Go's dialer reached (both families) is resolved as Go's dialer
// resolves it, without waiting for the system's answer, and the early
// connection stands for Go's first attempt when Go's order puts its address
// first; otherwise Go's dialer dials afresh.
func TestDialFromAsGo(t *testing.T) {
	moved := netip.MustParseAddr("127.0.0.2")
	last := netip.MustParseAddr("127.0.0.3")
	v6 := netip.MustParseAddr("::1")
	for _, c := range []struct {
		name     string
		order    []netip.Addr // Go's resolution; nil: it fails
		lastUp   bool
		wantTo   netip.Addr
		wantUsed bool
		asked    int         // names Go's dialer was asked to dial
		reach    sumdb.Reach // what is kept for next time
	}{
		{"unmoved", []netip.Addr{last, v6}, true, last, true, 0, sumdb.Reach{Addr: last, ByGo: true}},
		{"moved", []netip.Addr{moved, v6}, true, moved, false, 1, sumdb.Reach{Addr: moved, ByGo: true}},
		{"lookup fails", nil, true, moved, false, 1, sumdb.Reach{ByGo: true}},
		// Go's dialer reached an address that was not its first: nothing
		// to open early next time, but still Go's to decide.
		{"unmoved but down", []netip.Addr{last, v6}, false, moved, false, 1, sumdb.Reach{ByGo: true}},
		// One family now: dialed in order as Go's dialer would, and still
		// Go's to decide (the system's resolution may still not).
		{"one family now", []netip.Addr{last}, true, last, true, 0, sumdb.Reach{Addr: last, ByGo: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := freePort(t)
			var atLast <-chan net.Conn
			if c.lastUp {
				atLast = accepting(t, last.String(), port)
			}
			atMoved := accepting(t, moved.String(), port)
			// The system's resolver never answers: this path must not wait
			// for it.
			never := make(chan struct{})
			defer close(never)
			d := heldDNS(t, map[string][]netip.Addr{"db.example": {last, v6}}, never)
			md := &mapDialer{zone: map[string][]netip.Addr{"db.example": {moved}}}
			d.Fallback = md
			release := make(chan struct{})
			d.GoLookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				<-release
				if c.order == nil {
					return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
				}
				return c.order, nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Go's resolver has not answered: only the head start can
			// have connected.
			done, early := dialEarlyFrom(t, d, ctx, port, sumdb.Reach{Addr: last, ByGo: true}, atLast)
			close(release)
			got := <-done
			if got.err != nil {
				t.Fatalf("dial: %v", got.err)
			}
			defer got.conn.Close()
			if got.reach != c.reach {
				t.Errorf("reached %+v, want %+v", got.reach, c.reach)
			}
			if asked := md.take(); len(asked) != c.asked {
				t.Errorf("Go's dialer asked for %v, want %d dials", asked, c.asked)
			}
			if c.wantTo == moved {
				select {
				case m := <-atMoved:
					m.Close()
				case <-time.After(5 * time.Second):
					t.Error("Go's dialer reached nothing")
				}
			}
			if early == nil {
				return
			}
			used := early.RemoteAddr().String() == got.conn.LocalAddr().String()
			if used != c.wantUsed {
				t.Errorf("early connection used: %v, want %v", used, c.wantUsed)
			}
			if !c.wantUsed && !closedByPeer(early) {
				t.Error("the early connection was left open")
			}
		})
	}
}

// A host the system's resolution cannot answer for learns Go's order: the
// first dial goes to Go's dialer, the second asks Go's resolver at once
// and keeps its first address, the third opens it early and uses it.
func TestDialFromLearnsGoOrder(t *testing.T) {
	last := netip.MustParseAddr("127.0.0.3")
	port := freePort(t)
	at := accepting(t, last.String(), port)
	release := make(chan struct{})
	close(release)
	d := heldDNS(t, nil, release) // NXDOMAIN: Go's dialer decides
	md := &mapDialer{zone: map[string][]netip.Addr{"db.example": {last}}}
	d.Fallback = md
	d.GoLookup = func(context.Context, string) ([]netip.Addr, error) { return []netip.Addr{last}, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := net.JoinHostPort("db.example", strconv.Itoa(port))
	var reach sumdb.Reach
	for i, want := range []struct {
		reach sumdb.Reach
		asked int
	}{
		{sumdb.Reach{ByGo: true}, 1},
		{sumdb.Reach{Addr: last, ByGo: true}, 0},
		{sumdb.Reach{Addr: last, ByGo: true}, 0},
	} {
		conn, r, err := d.DialFrom(ctx, "tcp", addr, reach)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conn.Close()
		if r != want.reach {
			t.Errorf("dial %d: reached %+v, want %+v", i, r, want.reach)
		}
		if asked := md.take(); len(asked) != want.asked {
			t.Errorf("dial %d: Go's dialer asked for %v", i, asked)
		}
		// One connection each: the third's is the early one.
		select {
		case s := <-at:
			s.Close()
		case <-time.After(5 * time.Second):
			t.Fatalf("dial %d reached nothing", i)
		}
		select {
		case s := <-at:
			s.Close()
			t.Errorf("dial %d: a second connection", i)
		case <-time.After(50 * time.Millisecond):
		}
		reach = r
	}
}
