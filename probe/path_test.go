package probe

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

// A direct loopback origin: every sample answers, TCP and TLS are equally
// near, the hello is answered at TTL 1 and so is the datagram.
func TestPathDirect(t *testing.T) {
	l := newLab(t, lab.OriginOptions{})
	p := l.prober()
	p.Path = PathOptions{Samples: 3, MaxHops: 3, TTLAlways: true}
	obs := p.Probe(ctxT(t), Target{Host: "github.com", Port: 443, Address: l.origin.Addr()})
	if obs.TLS == nil {
		t.Fatalf("no handshake: %s", obs.FailureDetail)
	}
	tr := obs.Trace
	if tr == nil {
		t.Fatal("no path trace")
	}
	if len(tr.ConnectRTTs) != 3 || len(tr.HelloRTTs) != 3 {
		t.Errorf("samples: %d connects, %d hellos, want 3 each (the handshake's and two more)", len(tr.ConnectRTTs), len(tr.HelloRTTs))
	}
	// Whether the samples split is the machine's load, not the path's: a
	// busy machine answers a loopback hello late. What must hold is that
	// the datagram then clears it (the findings below).
	if c, h, split := tr.Split(); split {
		t.Logf("the loopback samples split under load: connect %v, hello %v", c, h)
	}
	if tr.HelloHops != 1 || tr.MaxHops != 3 {
		t.Errorf("hello hops %d of %d, want 1 of 3 (loopback answers at TTL 1)", tr.HelloHops, tr.MaxHops)
	}
	if runtime.GOOS == "linux" {
		if o := tr.Origin; o == nil || !o.Reached || o.Expired || o.From != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("datagram to the origin: %+v (%s), want reached from 127.0.0.1", o, tr.Detail)
		}
	}
	fs, _ := detector.Classify(obs, detector.Expectation{}, detector.Policy{}, time.Now())
	for _, f := range fs {
		if f.Reason == detector.ReasonTCPTerminatedNearby || f.Reason == detector.ReasonTLSAnsweredEarly {
			t.Errorf("direct path raised %s: %s", f.Reason, f.Detail)
		}
	}
}

// A splicer answers TCP at once and relays TLS to an origin 40 ms away:
// the samples split, and the verdict is transparent-proxy with the genuine
// chain.
func TestPathSplicer(t *testing.T) {
	l := newLab(t, lab.OriginOptions{})
	sp, err := lab.NewSplicer(l.origin.Addr(), 40*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	p := l.prober()
	// No TTL-limited hellos: on loopback the splicer is the very address
	// dialled, so the datagram would reach it and clear it (see
	// TestPathSlowServer), which no transparent splicer can arrange.
	p.Path = PathOptions{Samples: 3}
	obs := p.Probe(ctxT(t), Target{Host: "github.com", Port: 443, Address: sp.Addr()})
	if obs.TLS == nil || !obs.TLS.Public.OK() {
		t.Fatalf("the splicer must pass the genuine chain: %s %+v", obs.FailureDetail, obs.TLS)
	}
	tr := obs.Trace
	c, h, split := tr.Split()
	if !split {
		t.Fatalf("no split through a 40 ms splicer: connect %v, hello %v (%+v)", c, h, tr)
	}
	if h < 40*time.Millisecond {
		t.Errorf("hello round trip %v, below the splicer's 40 ms", h)
	}
	// Timing alone — no hop evidence, which loopback cannot give — warns
	// and sets no verdict (netlab places the relay by TTL).
	fs, _ := detector.Classify(obs, detector.Expectation{}, detector.Policy{}, time.Now())
	if v := detector.VerdictOf(fs); v != detector.OK || !slices.ContainsFunc(fs, func(f detector.Finding) bool { return f.Reason == detector.ReasonRTTSplit }) {
		t.Errorf("verdict %s, want ok with rtt-split; findings %+v", v, fs)
	}
}

// A server that takes 40 ms to answer a hello splits the samples just as
// a splicer does; the split sends the TTL-limited hellos, and the datagram
// to the address answered at the same hop clears it.
func TestPathSlowServer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the datagram's answer is read with IP_RECVERR, Linux only")
	}
	l := newLab(t, lab.OriginOptions{Latency: 40 * time.Millisecond})
	p := l.prober()
	p.Path = PathOptions{Samples: 3, MaxHops: 2}
	obs := p.Probe(ctxT(t), Target{Host: "github.com", Port: 443, Address: l.origin.Addr()})
	tr := obs.Trace
	if _, _, split := tr.Split(); !split {
		t.Fatalf("a 40 ms server did not split the samples: %+v", tr)
	}
	if tr.HelloHops != 1 || tr.Origin == nil || !tr.Origin.Reached {
		t.Fatalf("the split did not send the TTL-limited hellos and the datagram: %+v %+v (%s)", tr, tr.Origin, tr.Detail)
	}
	fs, _ := detector.Classify(obs, detector.Expectation{}, detector.Policy{}, time.Now())
	if v := detector.VerdictOf(fs); v != detector.OK {
		t.Errorf("verdict %s, want ok: the address itself answered; findings %+v", v, fs)
	}
}

// Without a split, the TTL-limited hellos are kept for suspicious probes;
// through an explicit proxy nothing is measured.
func TestPathOnlyWhereItMeansSomething(t *testing.T) {
	l := newLab(t, lab.OriginOptions{})
	p := l.prober()
	p.Path = PathOptions{Samples: 2, MaxHops: 4}
	obs := p.Probe(ctxT(t), Target{Host: "github.com", Port: 443, Address: l.origin.Addr()})
	if obs.Trace == nil || obs.Trace.MaxHops != 0 || obs.Trace.HelloHops != 0 {
		t.Errorf("clean probe sent TTL-limited hellos: %+v", obs.Trace)
	}

	ic, err := lab.NewInterceptor(l.pki, lab.InterceptorOptions{Routes: lab.Routes{"pypi.org": l.origin.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ic.Close() })
	p.Proxy = func(*url.URL) (*url.URL, error) { return ic.URL(), nil }
	obs = p.Probe(ctxT(t), Target{Host: "pypi.org", Port: 443})
	if !obs.Path.Proxied() || obs.Trace != nil {
		t.Errorf("through a proxy: path %v, trace %+v, want no trace", obs.Path, obs.Trace)
	}
}

// A handshake cut off after the connection opened (a box that accepts and
// never answers) is suspicious: the TTL-limited hellos go out, and find
// nothing that answers.
func TestPathCutOff(t *testing.T) {
	l := newLab(t, lab.OriginOptions{})
	bh, err := lab.NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bh.Close() })
	p := l.prober()
	p.Path = PathOptions{Samples: 2, MaxHops: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	obs := p.Probe(ctx, Target{Host: "github.com", Port: 443, Address: bh.Addr()})
	if obs.Failure != detector.FailureTimeout {
		t.Fatalf("failure %s, want a timeout", obs.Failure)
	}
	if tr := obs.Trace; tr == nil || len(tr.HelloRTTs) != 0 || tr.HelloHops != 0 {
		t.Errorf("trace of a black hole: %+v", tr)
	}
	fs, _ := detector.Classify(obs, detector.Expectation{}, detector.Policy{}, time.Now())
	if v := detector.VerdictOf(fs); v != detector.Unreachable {
		t.Errorf("verdict %s, want unreachable: a silent box is no evidence", v)
	}
}

// setTTL changes the socket's TTL and restore puts the old one back.
func TestSetTTL(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no TTL on Windows sockets here")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ttl := func() int {
		raw, _ := c.(*net.TCPConn).SyscallConn()
		var v int
		raw.Control(func(fd uintptr) { v, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL) })
		return v
	}
	before := ttl()
	restore, err := setTTL(c, false, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := ttl(); got != 3 {
		t.Errorf("TTL %d after setting 3", got)
	}
	restore()
	if got := ttl(); got != before {
		t.Errorf("TTL %d after restoring, want %d", got, before)
	}
	if _, err := setTTL(struct{ net.Conn }{c}, false, 3); err == nil {
		t.Error("a wrapped connection's TTL was set")
	}
}

// slowDialer takes delay to open every connection and notes when each
// dial began.
type slowDialer struct {
	delay  time.Duration
	mu     sync.Mutex
	starts []time.Time
}

func (d *slowDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.starts = append(d.starts, time.Now())
	d.mu.Unlock()
	select {
	case <-time.After(d.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// The path samples start with the main connection, not after it opened:
// they cost the probe no round trip of their own.
func TestPathSamplesStartWithTheConnection(t *testing.T) {
	l := newLab(t, lab.OriginOptions{})
	p := l.prober()
	const delay = 100 * time.Millisecond
	d := &slowDialer{delay: delay}
	p.Dialer = d
	p.Path = PathOptions{Samples: 3}
	obs := p.Probe(ctxT(t), Target{Host: "github.com", Port: 443, Address: l.origin.Addr()})
	if obs.TLS == nil || obs.Trace == nil {
		t.Fatalf("no handshake or trace: %s", obs.FailureDetail)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.starts) != 3 {
		t.Fatalf("%d dials, want 3 (the connection and two samples)", len(d.starts))
	}
	if spread := d.starts[2].Sub(d.starts[0]); spread >= delay/2 {
		t.Errorf("the samples began %v after the connection, which took %v to open: they waited for it", spread, delay)
	}
}
