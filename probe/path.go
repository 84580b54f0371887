package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// PathOptions says how much of the path a probe measures beside its
// handshake. The zero value measures nothing.
type PathOptions struct {
	// Samples is how many round-trip samples to take in all: the probe's
	// own handshake is one, the others are extra connections that send a
	// ClientHello and stop at the first byte of the answer. They run at the
	// same time as the handshake, so they cost no wall time.
	Samples int
	// MaxHops is the highest TTL tried for a TTL-limited ClientHello (one
	// connection per TTL from 1, all at once); zero turns it off.
	MaxHops int
	// TTLAlways sends the TTL-limited hellos at every probe. Otherwise they
	// are sent only when the samples show a split or the handshake was cut
	// off after the connection opened: they are the costlier part (a
	// connection per TTL), and where they matter most.
	TTLAlways bool
}

// recordHandshake is the content type of a TLS handshake record, the first
// byte of a ServerHello.
const recordHandshake = 0x16

// errAnswered stops a sample's handshake at the first byte of the answer:
// its timing is all a sample needs.
var errAnswered = errors.New("answer received")

// helloRecorder sends through a sample's ClientHello and notes when the
// answer begins.
type helloRecorder struct {
	net.Conn
	sent, answered time.Time
	first          byte
}

func (c *helloRecorder) Write(p []byte) (int, error) {
	if c.sent.IsZero() {
		c.sent = time.Now()
	}
	return c.Conn.Write(p)
}

func (c *helloRecorder) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p[:min(len(p), 1)])
	if n > 0 {
		c.answered, c.first = time.Now(), p[0]
		return 0, errAnswered
	}
	return n, err
}

// sample is one connection's timings.
type sample struct {
	connect, hello time.Duration
	answered       bool // a TLS handshake record came back
}

// helloSample opens a connection to addr, sends a ClientHello for host
// (with IP TTL ttl when above zero) and waits until wait for the first
// byte of the answer.
func (p *Prober) helloSample(ctx context.Context, host string, addr netip.AddrPort, ttl int, wait time.Duration) (sample, error) {
	var s sample
	start := time.Now()
	conn, err := p.dialer().DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return s, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	defer conn.Close()
	s.connect = time.Since(start)
	if ttl > 0 {
		restore, err := setTTL(conn, addr.Addr().Is6(), ttl)
		if err != nil {
			return s, err
		}
		// The FIN must reach the server, so that what received the
		// hello does not wait for the rest of it.
		defer restore()
	}
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	rec := &helloRecorder{Conn: conn}
	tc := tls.Client(rec, &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: true, // stopped before any certificate arrives
		NextProtos:         nextProtos,
		// One classic key share keeps the hello in one segment and cheap
		// to make; the timing is the same.
		CurvePreferences: []tls.CurveID{tls.X25519},
	})
	err = tc.HandshakeContext(ctx)
	if !rec.answered.IsZero() {
		s.hello, s.answered = rec.answered.Sub(rec.sent), rec.first == recordHandshake
		return s, nil
	}
	return s, err
}

// trace measures the path to addr: extra round-trip samples started at once
// (their results joined with the handshake's own sample by finish), then,
// when warranted, the TTL-limited hellos and the datagram towards addr.
type trace struct {
	p    *Prober
	host string
	addr netip.AddrPort
	done chan []sample
}

func (p *Prober) startTrace(ctx context.Context, host string, addr netip.AddrPort) *trace {
	t := &trace{p: p, host: host, addr: addr, done: make(chan []sample, 1)}
	n := p.Path.Samples - 1
	if n <= 0 {
		t.done <- nil
		return t
	}
	go func() {
		out := make([]sample, n)
		var wg sync.WaitGroup
		for i := range out {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := p.helloSample(ctx, host, addr, 0, untilDeadline(ctx))
				if err == nil {
					out[i] = s
				}
			}()
		}
		wg.Wait()
		t.done <- out
	}()
	return t
}

// untilDeadline is how long an untimed step may wait: until ctx ends, or a
// while if it never does.
func untilDeadline(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 10 * time.Second
}

// finish joins the handshake's sample (own, when it had one) with the
// extra ones, and sends the TTL-limited hellos when warranted.
func (t *trace) finish(ctx context.Context, own *sample, cutOff bool) *detector.PathTrace {
	tr := &detector.PathTrace{}
	samples := <-t.done
	if own != nil {
		samples = append(samples, *own)
	}
	for _, s := range samples {
		if s.answered {
			tr.ConnectRTTs = append(tr.ConnectRTTs, s.connect)
			tr.HelloRTTs = append(tr.HelloRTTs, s.hello)
		}
	}
	if t.p.Path.MaxHops <= 0 {
		return tr
	}
	_, _, split := tr.Split()
	if !t.p.Path.TTLAlways && !split && !cutOff {
		return tr
	}
	wait := 500 * time.Millisecond // no answered sample to go by
	if len(tr.HelloRTTs) > 0 {
		wait = 2*slices.Min(tr.HelloRTTs) + 50*time.Millisecond
	}
	t.hops(ctx, tr, wait)
	return tr
}

// hops sends a ClientHello at each TTL from 1 to MaxHops, all at once, and
// records the lowest that got a TLS answer; then asks how far the address
// itself is with a datagram of that TTL.
func (t *trace) hops(ctx context.Context, tr *detector.PathTrace, wait time.Duration) {
	tr.MaxHops = t.p.Path.MaxHops
	answered := make([]bool, t.p.Path.MaxHops+1)
	errs := make([]error, t.p.Path.MaxHops+1)
	var wg sync.WaitGroup
	for ttl := 1; ttl <= t.p.Path.MaxHops; ttl++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := t.p.helloSample(ctx, t.host, t.addr, ttl, wait)
			answered[ttl], errs[ttl] = s.answered, err
		}()
	}
	wg.Wait()
	for ttl := 1; ttl <= t.p.Path.MaxHops; ttl++ {
		if answered[ttl] {
			tr.HelloHops = ttl
			break
		}
	}
	if errors.Is(errs[1], errNoTTL) {
		tr.MaxHops, tr.Detail = 0, errs[1].Error() // not tried, as far as the judgement goes
		return
	}
	if tr.HelloHops == 0 {
		return
	}
	if t.p.Dialer != nil {
		// A swapped dialer reroutes TCP (the in-process lab); a datagram
		// would go to the real address instead, so none is sent.
		tr.Detail = "no datagram sent: connections go through a custom dialer"
		return
	}
	hp, err := hopProbe(ctx, t.addr.Addr(), tr.HelloHops, wait)
	if err != nil {
		tr.Detail = err.Error()
		return
	}
	tr.Origin = &hp
}

// errNoTTL says the TTL of a connection cannot be set here.
var errNoTTL = errors.New("the IP TTL of a connection cannot be set here")
