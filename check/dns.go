package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/probe"
	"github.com/mitmwatch/mitmwatch/resolver"
	"github.com/mitmwatch/mitmwatch/sumdb"
)

// DNS is how a round asks resolvers about its targets: the system's, whose
// answer the probe then connects to (as build tools would), and reference
// resolvers asked at the same time, so DNS adds one resolver round trip.
type DNS struct {
	Client    *resolver.Client
	System    []resolver.Server
	Reference []resolver.Server
	// Canary is a name that cannot exist; empty skips the wildcard check.
	// Its answers are reused for canaryMaxAge, so a daemon probing one
	// target at a time does not ask it per probe.
	Canary string
	// Hosts is the hosts file, consulted before or after the system
	// resolvers as its Order says (nsswitch.conf); nil consults none. The
	// canary is asked of the resolvers only: it is about them.
	Hosts *resolver.Hosts
	// Fallback dials for DialContext and DialFrom what the system's
	// resolution cannot decide alone; nil is a net.Dialer (Go's resolver
	// and dialer, as the go command uses them).
	Fallback probe.Dialer
	// GoLookup resolves a name in the order Fallback dials it, for
	// DialFrom's head start to a host Fallback reached; nil is Go's
	// resolver with a nil Fallback, and none with another. Fallback must
	// then be a plain TCP dialer: a net.Dialer's connections (the early
	// one, and one family's addresses dialed in order) stand in for its.
	GoLookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// MinGrace, when above zero, is the least a reference still out gets
	// once a probe's evidence is complete (default minGrace): a lab on
	// loopback, whose round trips are microseconds, sets it to what a
	// loaded test machine needs for a TLS handshake.
	MinGrace time.Duration

	mu       sync.Mutex
	canaryAt time.Time
	canaryOf []detector.DNSAnswer

	flightMu sync.Mutex
	inFlight map[string]*systemLookup
}

// systemLookup is one resolution of a name through the system's order,
// shared by whoever asks for the same name while it is out.
type systemLookup struct {
	done     chan struct{}
	answers  []detector.DNSAnswer
	canceled bool // the asker's context ended first: the answers are not the network's
}

// canaryMaxAge is how long the canary's answers stand for every target.
const canaryMaxAge = time.Minute

// lookupSystem asks the system resolvers in order, as the C library does,
// until one answers.
func (d *DNS) lookupSystem(ctx context.Context, name string) []detector.DNSAnswer {
	var out []detector.DNSAnswer
	for _, s := range d.System {
		a := d.Client.Lookup(ctx, s, name)
		out = append(out, a)
		if a.Answered() || ctx.Err() != nil {
			break
		}
	}
	return out
}

// observe resolves the target through the system resolver and probes the
// address it gave while the reference resolvers are asked. Once the probe's
// own evidence is complete the references get a short grace (graceFor),
// unless their answer could change the judgement (detector.NeedsReferences):
// then they are waited for within ctx. Every answer is recorded in the
// observation; a reference cut off by the grace says so.
func (d *DNS) observe(ctx context.Context, p *probe.Prober, t probe.Target, exp detector.Expectation, pol detector.Policy) detector.Observation {
	refs := d.ask(ctx, t.Host)
	sys := d.resolveSystem(ctx, t.Host)
	var obs detector.Observation
	if a, ok := answeredWithAddrs(sys); ok {
		t.Addrs = a.Addrs
		obs = p.Probe(ctx, t)
	} else {
		obs = unresolved(t, sys)
	}
	obs.DNS = sys
	grace := max(graceFor(sys, obs.ConnectTime), d.MinGrace)
	if detector.NeedsReferences(obs, exp, pol) {
		grace = -1
	}
	obs.DNS = append(sys, refs.collect(ctx, grace)...)
	return obs
}

// The grace a reference resolver still out gets once the probe's own
// evidence is complete: one round trip of the path, bounded, so that
// references a network blocks (most corporate networks drop outbound DNS,
// DoT and public DoH) cost little. The round trip is the slower of the
// system resolver's and the probe's TCP connect: a resolver on the LAN
// says nothing of how far the references are, the registry's distance
// does.
const (
	minGrace = 10 * time.Millisecond
	maxGrace = 200 * time.Millisecond
)

// graceFor is the grace after the system's answers sys and a probe whose
// TCP connect took connect.
func graceFor(sys []detector.DNSAnswer, connect time.Duration) time.Duration {
	rtt := connect
	for _, a := range sys {
		rtt = max(rtt, a.RTT)
	}
	return min(max(rtt, minGrace), maxGrace)
}

// references are the reference resolvers' answers for one name, asked in
// the background.
type references struct {
	servers []resolver.Server
	cancel  context.CancelFunc
	done    chan struct{}

	mu       sync.Mutex
	out      []detector.DNSAnswer
	answered []bool
}

// ask starts asking every reference resolver about name.
func (d *DNS) ask(ctx context.Context, name string) *references {
	ctx, cancel := context.WithCancel(ctx)
	q := &references{servers: d.Reference, cancel: cancel, done: make(chan struct{}),
		out: make([]detector.DNSAnswer, len(d.Reference)), answered: make([]bool, len(d.Reference))}
	var wg sync.WaitGroup
	for i, srv := range d.Reference {
		wg.Go(func() {
			a := d.Client.Lookup(ctx, srv, name)
			q.mu.Lock()
			q.out[i], q.answered[i] = a, true
			q.mu.Unlock()
		})
	}
	go func() {
		wg.Wait()
		close(q.done)
	}()
	return q
}

// collect returns the references' answers, waiting for those still out at
// most grace (a negative grace: until ctx ends). One still out then is
// recorded as a timeout that names the grace, and its query is dropped.
func (q *references) collect(ctx context.Context, grace time.Duration) []detector.DNSAnswer {
	var expired <-chan time.Time
	if grace >= 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-q.done:
	case <-expired:
	case <-ctx.Done():
	}
	q.cancel()
	q.mu.Lock()
	defer q.mu.Unlock()
	out := slices.Clone(q.out)
	for i, ok := range q.answered {
		if !ok {
			detail := "no answer within the probe's time"
			if grace >= 0 {
				detail = fmt.Sprintf("no answer within %s of the probe's own evidence, which it could not have changed", grace.Round(time.Millisecond))
			}
			out[i] = detector.DNSAnswer{Resolver: q.servers[i].Spec, Failure: detector.FailureTimeout, Detail: detail}
		}
	}
	return out
}

// resolveSystem resolves name as the system's tools do: from the hosts
// file when it comes first and lists the name, else from the system
// resolvers, then from the hosts file when it comes after them and they
// gave no address. Every answer asked for is returned, in order.
//
// A name already being resolved is not asked again: the probe of a host and
// the checksum database on it start at the same moment, and one answer is
// what the system's tools would both get. Only lookups in flight are
// shared, so a daemon's next round asks afresh.
func (d *DNS) resolveSystem(ctx context.Context, name string) []detector.DNSAnswer {
	d.flightMu.Lock()
	if l, ok := d.inFlight[name]; ok {
		d.flightMu.Unlock()
		select {
		case <-l.done:
			if !l.canceled {
				return slices.Clone(l.answers)
			}
		case <-ctx.Done():
		}
		return d.resolveOwn(ctx, name)
	}
	l := &systemLookup{done: make(chan struct{})}
	if d.inFlight == nil {
		d.inFlight = map[string]*systemLookup{}
	}
	d.inFlight[name] = l
	d.flightMu.Unlock()
	l.answers = d.resolveOwn(ctx, name)
	l.canceled = ctx.Err() != nil
	d.flightMu.Lock()
	delete(d.inFlight, name)
	d.flightMu.Unlock()
	close(l.done)
	return slices.Clip(l.answers)
}

// resolveOwn is resolveSystem's lookup itself.
func (d *DNS) resolveOwn(ctx context.Context, name string) []detector.DNSAnswer {
	if d.Hosts != nil && d.Hosts.Order == resolver.HostsFirst {
		if a, ok := d.Hosts.Lookup(name); ok {
			return []detector.DNSAnswer{a}
		}
	}
	sys := d.lookupSystem(ctx, name)
	if d.Hosts != nil && d.Hosts.Order == resolver.HostsAfterDNS {
		if _, ok := answeredWithAddrs(sys); !ok {
			if a, ok := d.Hosts.Lookup(name); ok {
				sys = append(sys, a)
			}
		}
	}
	return sys
}

func answeredWithAddrs(as []detector.DNSAnswer) (detector.DNSAnswer, bool) {
	for _, a := range as {
		if a.Answered() && len(a.Addrs) > 0 {
			return a, true
		}
	}
	return detector.DNSAnswer{}, false
}

// unresolved is the observation of a target the system resolver gave no
// address for: the connection never started.
func unresolved(t probe.Target, sys []detector.DNSAnswer) detector.Observation {
	obs := detector.Observation{Host: t.Host, Port: t.Port, Path: detector.Path{Kind: detector.PathDirect},
		Failure: detector.FailureDNS, FailureDetail: "the system resolver gave no address"}
	if len(sys) == 0 {
		obs.FailureDetail = "no system resolver is configured"
		return obs
	}
	last := sys[len(sys)-1]
	switch {
	case last.Failure != detector.FailureNone:
		obs.Failure = last.Failure
		obs.FailureDetail = fmt.Sprintf("resolving %s with %s: %s", t.Host, last.Resolver, last.Detail)
	case last.Rcode != "":
		obs.FailureDetail = fmt.Sprintf("resolving %s with %s: %s", t.Host, last.Resolver, last.Rcode)
	}
	return obs
}

// canary asks every resolver about the canary name, or returns what they
// said less than canaryMaxAge ago. The system resolvers' answer is what it
// needs; the references get until probesDone is closed.
func (d *DNS) canary(ctx context.Context, probesDone <-chan struct{}) []detector.DNSAnswer {
	if d == nil || d.Canary == "" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.canaryOf != nil && time.Since(d.canaryAt) < canaryMaxAge {
		return d.canaryOf
	}
	refs := d.ask(ctx, d.Canary)
	sys := d.lookupSystem(ctx, d.Canary)
	select {
	case <-refs.done:
	case <-probesDone:
	case <-ctx.Done():
	}
	// The references only tell a wildcard the system resolver shares with
	// the world from one of its own: once the probes are done they get no
	// grace beyond MinGrace.
	d.canaryOf, d.canaryAt = append(sys, refs.collect(ctx, d.MinGrace)...), time.Now()
	return d.canaryOf
}

// DialContext connects to addr (host:port) as the go command would, to
// what reaches a host the way it does (the checksum database): it shares
// the system's resolution a probe of the same host makes at the same
// moment (resolveSystem), so no resolver is asked twice. Where that
// resolution alone cannot stand for the go command's, Fallback dials:
// when it gave no address (Go's resolver then tries the search list and
// the next servers) and when it gave both IPv4 and IPv6 (Go orders them by
// RFC 6724 and races the families). Addresses of one family are tried in
// order, each with its share of the time left, as Go's dialer does.
func (d *DNS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return d.fallback().DialContext(ctx, network, addr)
	}
	conn, _, err := d.dialResolved(ctx, network, addr, host, port, nil)
	return conn, err
}

// DialFrom is DialContext with a head start (sumdb.DialerFrom): last is
// where addr's host was reached before. A connection to it opens while
// the name resolves, and is used only when the resolution that decides
// the dial puts that address first; otherwise it is closed, and the dial
// goes on as it would have. A host that has not moved is then reached in
// the time of the slower of its lookup and its connect instead of both.
//
// Which resolution decides is the one that decided last time. A host of
// one family was dialed at the system's resolution, in order. One the
// system's resolution could not decide (no address, or both families) was
// dialed by Go's dialer, which orders addresses by RFC 6724 and races the
// families: it is resolved as Go's dialer resolves it (GoLookup) straight
// away, without waiting for the system's answer that would only send it
// there. An early connection stands for Go's first attempt: within the
// first address's share of the time for one family, within Go's 300 ms
// before it races the other family for both.
//
// Nothing is sent before the lookup agrees but a TCP handshake, and the
// connection used is one DialContext or Go's dialer would have made, to
// the same address: the path judged is the path the go command takes. The
// Reach returned keeps an address only where it was the resolution's first
// (one that was not would be opened in vain next time), and is zero for
// an address dialed as it is, or an error.
func (d *DNS) DialFrom(ctx context.Context, network, addr string, last sumdb.Reach) (net.Conn, sumdb.Reach, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, sumdb.Reach{}, err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		conn, err := d.fallback().DialContext(ctx, network, addr)
		return conn, sumdb.Reach{}, err
	}
	var early *earlyDial
	if last.Addr.IsValid() {
		to := last.Addr.Unmap()
		early = dialEarly(ctx, network, net.JoinHostPort(to.String(), port), to)
	}
	var conn net.Conn
	var reach sumdb.Reach
	if lookup := d.goLookup(); last.ByGo && lookup != nil {
		conn, reach, err = d.dialAsGo(ctx, network, addr, host, port, early, lookup)
	} else {
		conn, reach, err = d.dialResolved(ctx, network, addr, host, port, early)
	}
	if err != nil {
		return nil, sumdb.Reach{}, err
	}
	return conn, reach, nil
}

var _ sumdb.DialerFrom = (*DNS)(nil)

// firstReach is where conn reached: its address where that was first, the
// one to open early next time.
func firstReach(conn net.Conn, first netip.Addr, byGo bool) sumdb.Reach {
	r := sumdb.Reach{ByGo: byGo}
	if conn == nil {
		return r
	}
	if ap, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err == nil && ap.Addr().Unmap() == first.Unmap() {
		r.Addr = first.Unmap()
	}
	return r
}

// earlyMaxAge is how long an early connection may wait for its lookup and
// still be used: a server or a middlebox may give up on a client that says
// nothing, where the go command, connecting after its lookup, would be
// answered.
var earlyMaxAge = time.Second

// goFallbackDelay is how long Go's dialer gives the first family before it
// races the other (net.Dialer.FallbackDelay's default).
const goFallbackDelay = 300 * time.Millisecond

// goLookup resolves a name as the Fallback dialer does, in its order: Go's
// resolver for the default net.Dialer; nil, with a Fallback of another
// kind and no GoLookup, when that order is unknown.
func (d *DNS) goLookup() func(context.Context, string) ([]netip.Addr, error) {
	switch {
	case d.GoLookup != nil:
		return d.GoLookup
	case d.Fallback == nil:
		return func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	return nil
}

// dialAsGo dials addr (host:port) as Go's dialer does, at Go's resolution of it: one
// family in order, using early for the first address when it is early's;
// both families through Go's dialer, unless early is the first address and
// connects before Go would race the other family.
func (d *DNS) dialAsGo(ctx context.Context, network, addr, host, port string, early *earlyDial, lookup func(context.Context, string) ([]netip.Addr, error)) (net.Conn, sumdb.Reach, error) {
	addrs, err := lookup(ctx, host)
	if err != nil || len(addrs) == 0 {
		early.drop()
		conn, err := d.fallback().DialContext(ctx, network, addr)
		return conn, sumdb.Reach{ByGo: true}, err
	}
	if !early.usableFor(addrs[0]) {
		early.drop()
		early = nil
	}
	if oneFamily(addrs) {
		// Go's dialer tries one family in order, each address with its
		// share of the time. It stays Go's to decide: the system's
		// resolution that sent the host here may still not decide alone.
		conn, err := dialInOrder(ctx, network, port, addrs, early)
		return conn, firstReach(conn, addrs[0], true), err
	}
	if early != nil {
		wctx, cancel := context.WithTimeout(ctx, goFallbackDelay)
		conn, err := early.wait(wctx, network)
		cancel()
		if err == nil {
			return conn, firstReach(conn, addrs[0], true), nil
		}
	}
	conn, err := d.fallback().DialContext(ctx, network, addr)
	return conn, firstReach(conn, addrs[0], true), err
}

// dialResolved dials addr (host:port) at the system's resolution of host, using
// early (nil: none) for its first address when that is early's. What that
// resolution cannot decide alone goes to Go's dialer.
func (d *DNS) dialResolved(ctx context.Context, network, addr, host, port string, early *earlyDial) (net.Conn, sumdb.Reach, error) {
	a, ok := answeredWithAddrs(d.resolveSystem(ctx, host))
	if !ok || !oneFamily(a.Addrs) {
		// Go's order is not known here: the next dial asks Go's
		// resolver first, and learns it.
		early.drop()
		conn, err := d.fallback().DialContext(ctx, network, addr)
		return conn, sumdb.Reach{ByGo: true}, err
	}
	if !early.usableFor(a.Addrs[0]) {
		early.drop()
		early = nil
	}
	conn, err := dialInOrder(ctx, network, port, a.Addrs, early)
	return conn, firstReach(conn, a.Addrs[0], false), err
}

// dialInOrder dials addrs (one family) in order, each with its share of the
// time left, using early (nil: none) for the first; as Go's dialer, it
// reports the first address's error, the most relevant.
func dialInOrder(ctx context.Context, network, port string, addrs []netip.Addr, early *earlyDial) (net.Conn, error) {
	var nd net.Dialer
	var firstErr error
	for i, ip := range addrs {
		actx, cancel := withPartialDeadline(ctx, len(addrs)-i)
		var conn net.Conn
		var err error
		if i == 0 && early != nil {
			conn, err = early.wait(actx, network)
		} else {
			conn, err = nd.DialContext(actx, network, net.JoinHostPort(ip.Unmap().String(), port))
		}
		cancel()
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// earlyDial is a connection opened before the lookup that decides whether
// it is used.
type earlyDial struct {
	to     netip.Addr
	addr   string
	start  time.Time
	cancel context.CancelFunc
	done   chan struct{}
	conn   net.Conn
	err    error
}

func dialEarly(ctx context.Context, network, addr string, to netip.Addr) *earlyDial {
	ctx, cancel := context.WithCancel(ctx)
	e := &earlyDial{to: to, addr: addr, start: time.Now(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		var nd net.Dialer
		e.conn, e.err = nd.DialContext(ctx, network, addr)
	}()
	return e
}

// wait is the early connection, once the lookup has put its address first:
// within ctx, the time that address would have had.
func (e *earlyDial) wait(ctx context.Context, network string) (net.Conn, error) {
	select {
	case <-e.done:
		e.cancel() // the dial is over; the connection outlives its context
		return e.conn, e.err
	case <-ctx.Done():
		e.drop()
		err := ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			err = os.ErrDeadlineExceeded // as net.Dialer reports its deadline
		}
		return nil, &net.OpError{Op: "dial", Net: network, Addr: tcpAddr(e.addr), Err: err}
	}
}

// usableFor reports whether e can stand for a dial to first: it goes
// there, and has not waited so long for the lookup that the other end may
// have given up on it.
func (e *earlyDial) usableFor(first netip.Addr) bool {
	return e != nil && first.Unmap() == e.to && time.Since(e.start) <= earlyMaxAge
}

// drop abandons the early connection, closing it if it was made.
func (e *earlyDial) drop() {
	if e == nil {
		return
	}
	e.cancel()
	go func() {
		<-e.done
		if e.conn != nil {
			e.conn.Close()
		}
	}()
}

// tcpAddr is addr (ip:port) as a net.Addr for an error.
func tcpAddr(addr string) net.Addr {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}

func (d *DNS) fallback() probe.Dialer {
	if d.Fallback != nil {
		return d.Fallback
	}
	return &net.Dialer{}
}

// oneFamily reports whether addrs are all IPv4 or all IPv6.
func oneFamily(addrs []netip.Addr) bool {
	for _, a := range addrs[1:] {
		if a.Unmap().Is4() != addrs[0].Unmap().Is4() {
			return false
		}
	}
	return true
}

// minAddrTime is the least time an address gets while others remain, as
// in Go's dialer: a deadline shared among many addresses still leaves each
// long enough to connect across the world.
const minAddrTime = 2 * time.Second

// withPartialDeadline gives the next of remaining addresses its share of
// the time ctx has left.
func withPartialDeadline(ctx context.Context, remaining int) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	left := time.Until(deadline)
	share := left / time.Duration(remaining)
	if share < minAddrTime {
		share = min(left, minAddrTime)
	}
	return context.WithTimeout(ctx, share)
}
