package probe

import (
	"context"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

// hostileTimeout is the probe timeout of the hostile-path tests: short, so
// that a server holding the probe shows as a probe that outlasts it.
const hostileTimeout = 2 * time.Second

// hostileSlack is how far past its timeout a probe may return: the time to
// notice the deadline and close, never another wait.
const hostileSlack = 300 * time.Millisecond

// countingDialer counts the bytes read on every connection it opens, all
// the probe's connections (the handshake, a control, a plain GET) together.
type countingDialer struct{ read atomic.Int64 }

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &d.read}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestHostilePath probes servers that try to hold the probe or make it
// allocate, and checks each is cut off within the probe's timeout having
// read and allocated a bounded amount. crypto/tls refuses a handshake
// message over 64 KiB (a Certificate message over 256 KiB) once its header
// is read, so a 100 MB chain costs at most the cap; the probe's own
// recording keeps at most maxHead bytes. The tests are not parallel: they
// measure the process's allocations.
func TestHostilePath(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out probe timeouts")
	}
	pki, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		start     func() (interface{ Addr() string }, func() error, error)
		maxRead   int64 // bytes the probe may read, all connections together
		maxAlloc  uint64
		want      detector.Failure
		wantCutAt bool // the probe must run to its timeout (the server holds it)
	}{
		{name: "trickles a ServerHello, a byte every 100ms", start: hostile(func() (*lab.Hostile, error) { return lab.NewTrickler(100 * time.Millisecond) }),
			maxRead: 64, maxAlloc: 2 << 20, want: detector.FailureTimeout, wantCutAt: true},
		{name: "answers the connect, then silence", start: func() (interface{ Addr() string }, func() error, error) {
			b, err := lab.NewBlackhole()
			if err != nil {
				return nil, nil, err
			}
			return b, b.Close, nil
		}, maxRead: 0, maxAlloc: 2 << 20, want: detector.FailureTimeout, wantCutAt: true},
		{name: "sends a ServerHello, then stops", start: hostile(lab.NewStaller),
			maxRead: 128, maxAlloc: 2 << 20, want: detector.FailureTimeout, wantCutAt: true},
		{name: "announces a 16 MiB certificate message, streams 100 MB", start: hostile(func() (*lab.Hostile, error) { return lab.NewHugeChain(1<<30, 100<<20) }),
			maxRead: 128 << 10, maxAlloc: 4 << 20, want: detector.FailureUnknown},
		{name: "announces a 256 KiB certificate message (the cap), streams 100 MB", start: hostile(func() (*lab.Hostile, error) { return lab.NewHugeChain(256<<10, 100<<20) }),
			maxRead: 512 << 10, maxAlloc: 8 << 20, want: detector.FailureUnknown},
		{name: "plain text on the TLS port, a header byte every 100ms", start: hostile(func() (*lab.Hostile, error) { return lab.NewPlainTrickler(100 * time.Millisecond) }),
			maxRead: 1 << 10, maxAlloc: 2 << 20, want: detector.FailureNotTLS, wantCutAt: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, closeSrv, err := c.start()
			if err != nil {
				t.Fatal(err)
			}
			defer closeSrv()
			d := &countingDialer{}
			p := &Prober{PublicRoots: pki.PublicPool(), SystemRoots: pki.SystemPool(), Dialer: d}

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
			start := time.Now()
			obs := p.Probe(ctx, Target{Host: "registry.lab.example", Port: 443, Address: srv.Addr()})
			took := time.Since(start)
			cancel()
			runtime.ReadMemStats(&after)
			runtime.GC()
			var settled runtime.MemStats
			runtime.ReadMemStats(&settled)

			alloc := after.TotalAlloc - before.TotalAlloc
			retained := int64(settled.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("failure %s (%s); took %v; read %d bytes; allocated %d KiB, retained %d KiB",
				obs.Failure, obs.FailureDetail, took.Round(time.Millisecond), d.read.Load(), alloc>>10, retained>>10)
			if obs.Failure != c.want {
				t.Errorf("failure %s (%s), want %s", obs.Failure, obs.FailureDetail, c.want)
			}
			if took > hostileTimeout+hostileSlack {
				t.Errorf("probe took %v, past its timeout %v (+%v)", took, hostileTimeout, hostileSlack)
			}
			if c.wantCutAt && took < hostileTimeout/2 {
				t.Errorf("probe took %v: the server was meant to hold it to the timeout", took)
			}
			if n := d.read.Load(); n > c.maxRead {
				t.Errorf("read %d bytes, want at most %d", n, c.maxRead)
			}
			if alloc > c.maxAlloc {
				t.Errorf("allocated %d bytes during the probe, want at most %d", alloc, c.maxAlloc)
			}
			if retained > 1<<20 {
				t.Errorf("heap grew by %d bytes across the probe, want at most 1 MiB", retained)
			}
		})
	}
}

// hostile adapts a lab.Hostile constructor to the table.
func hostile(newServer func() (*lab.Hostile, error)) func() (interface{ Addr() string }, func() error, error) {
	return func() (interface{ Addr() string }, func() error, error) {
		h, err := newServer()
		if err != nil {
			return nil, nil, err
		}
		return h, h.Close, nil
	}
}
