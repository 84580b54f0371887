package probe

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

// decideWithin bounds how long a probe may take to call a dropped hello,
// with a probe timeout of probeTimeout: the behaviour is "well before the
// timeout", not a benchmark, so the bound is generous for -race on a busy
// machine.
const (
	probeTimeout = 5 * time.Second
	decideWithin = 1500 * time.Millisecond
)

func newSNIFilter(t *testing.T, target string, action lab.SNIAction, names ...string) *lab.SNIFilter {
	t.Helper()
	f, err := lab.NewSNIFilter(target, action, names...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// probeTimed probes host at addr within probeTimeout and says how long it
// took.
func probeTimed(t *testing.T, p *Prober, host, addr string) (detector.Observation, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	start := time.Now()
	obs := p.Probe(ctx, Target{Host: host, Port: 443, Address: addr})
	return obs, time.Since(start)
}

// wantControlAnswered checks that the hello naming the host failed with f
// and a control naming a neutral name was answered.
func wantControlAnswered(t *testing.T, obs detector.Observation, f detector.Failure) {
	t.Helper()
	if obs.Failure != f || obs.TLS != nil {
		t.Errorf("failure %q (%s), want %q", obs.Failure, obs.FailureDetail, f)
	}
	c := obs.Control
	if c == nil || !c.Answered || c.Failure != detector.FailureNone || c.RTT <= 0 {
		t.Fatalf("control %+v, want one answered", c)
	}
	if !strings.HasSuffix(c.SNI, ".invalid") || strings.Contains(c.SNI, obs.Host) {
		t.Errorf("control named %q, want a neutral name under .invalid", c.SNI)
	}
}

// TestProbeSNIReset: a filter resets the hello naming one host; a control
// to the same address is answered, and a host the filter does not list
// passes untouched, with no control.
func TestProbeSNIReset(t *testing.T) {
	t.Parallel()
	l := newLab(t, lab.OriginOptions{})
	f := newSNIFilter(t, l.origin.Addr(), lab.SNIReset, "pypi.org")
	obs, _ := probeTimed(t, l.prober(), "pypi.org", f.Addr())
	wantControlAnswered(t, obs, detector.FailureReset)

	obs, _ = probeTimed(t, l.prober(), "files.pythonhosted.org", f.Addr())
	if obs.Failure != detector.FailureNone || obs.Control != nil {
		t.Errorf("unlisted host: failure %q (%s), control %+v; want a clean handshake and no control", obs.Failure, obs.FailureDetail, obs.Control)
	}
}

// TestProbeSNIDrop: a filter swallows the hello naming the host; the probe
// decides once the control is answered, well before its timeout, also
// while it measures the path (whose samples name the host too).
func TestProbeSNIDrop(t *testing.T) {
	t.Parallel()
	l := newLab(t, lab.OriginOptions{})
	f := newSNIFilter(t, l.origin.Addr(), lab.SNIDrop, "pypi.org")
	for _, path := range []PathOptions{{}, {Samples: 3, MaxHops: 8}} {
		p := l.prober()
		p.Path = path
		obs, took := probeTimed(t, p, "pypi.org", f.Addr())
		wantControlAnswered(t, obs, detector.FailureTimeout)
		if took > decideWithin || took < silenceFloor {
			t.Errorf("path %+v: decided in %v, want between %v and %v (timeout %v)", path, took, silenceFloor, decideWithin, probeTimeout)
		}
		if !strings.Contains(obs.FailureDetail, obs.Control.SNI) {
			t.Errorf("failure detail %q does not name the control", obs.FailureDetail)
		}
		t.Logf("path %+v: dropped hello decided in %v (control answered in %v)", path, took, obs.Control.RTT)
	}
}

// TestProbeSNIBlockedThroughProxy: through a plain forward proxy the hello
// travels in the CONNECT tunnel, and so does the control.
func TestProbeSNIBlockedThroughProxy(t *testing.T) {
	t.Parallel()
	l := newLab(t, lab.OriginOptions{})
	for _, c := range []struct {
		action lab.SNIAction
		want   []detector.Failure // the tunnel may pass the reset on as one, or as a close
	}{
		{lab.SNIReset, []detector.Failure{detector.FailureReset, detector.FailureEOF}},
		{lab.SNIDrop, []detector.Failure{detector.FailureTimeout}},
	} {
		f := newSNIFilter(t, l.origin.Addr(), c.action, "pypi.org")
		proxy, err := lab.NewInterceptor(l.pki, lab.InterceptorOptions{Tunnel: true, Routes: lab.Routes{"pypi.org": f.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proxy.Close() })
		p := l.prober()
		p.Proxy = func(*url.URL) (*url.URL, error) { return proxy.URL(), nil }
		obs, took := probeTimed(t, p, "pypi.org", "")
		if !obs.Path.Proxied() {
			t.Fatalf("path %v, want the proxy", obs.Path)
		}
		if !slices.Contains(c.want, obs.Failure) {
			t.Errorf("%v: failure %q (%s), want one of %v", c.action, obs.Failure, obs.FailureDetail, c.want)
		}
		wantControlAnswered(t, obs, obs.Failure)
		if took > decideWithin {
			t.Errorf("%v: decided in %v, want under %v", c.action, took, decideWithin)
		}
	}
}

// When the address fails every handshake, or never answers, the control
// fails as well; when TCP itself is refused, no control is made.
func TestProbeControlFailsToo(t *testing.T) {
	t.Parallel()
	l := newLab(t, lab.OriginOptions{})
	everyHello := newSNIFilter(t, l.origin.Addr(), lab.SNIReset) // no names: every hello
	obs, _ := probeTimed(t, l.prober(), "pypi.org", everyHello.Addr())
	if obs.Failure != detector.FailureReset || obs.Control == nil || obs.Control.Answered || obs.Control.Failure != detector.FailureReset {
		t.Errorf("every hello reset: failure %q, control %+v; want reset twice", obs.Failure, obs.Control)
	}

	closed, err := lab.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	originDown := newSNIFilter(t, closed, lab.SNIReset, "pypi.org")
	obs, _ = probeTimed(t, l.prober(), "pypi.org", originDown.Addr())
	if obs.Failure != detector.FailureReset || obs.Control == nil || obs.Control.Answered || obs.Control.Failure != detector.FailureEOF {
		t.Errorf("origin down behind the filter: failure %q, control %+v; want reset, and the control closed", obs.Failure, obs.Control)
	}

	obs, _ = probeTimed(t, l.prober(), "pypi.org", closed)
	if obs.Failure != detector.FailureRefused || obs.Control != nil {
		t.Errorf("closed port: failure %q, control %+v; want refused and no control", obs.Failure, obs.Control)
	}

	hole, err := lab.NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hole.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	obs = l.prober().Probe(ctx, Target{Host: "pypi.org", Port: 443, Address: hole.Addr()})
	if obs.Failure != detector.FailureTimeout || obs.Control == nil || obs.Control.Answered || obs.Control.Failure != detector.FailureTimeout {
		t.Errorf("black hole: failure %q, control %+v; want both timed out", obs.Failure, obs.Control)
	}
}

// A server slower than the silence bound still completes: the control sent
// beside its hello is dropped, and the handshake is not cut short.
func TestProbeSlowServerIsNotCut(t *testing.T) {
	t.Parallel()
	l := newLab(t, lab.OriginOptions{Latency: silenceFloor + 300*time.Millisecond})
	obs, took := probeTimed(t, l.prober(), "pypi.org", l.origin.Addr())
	if obs.Failure != detector.FailureNone || obs.TLS == nil || obs.Control != nil {
		t.Errorf("failure %q (%s), control %+v; want a completed handshake and no control", obs.Failure, obs.FailureDetail, obs.Control)
	}
	if took < silenceFloor {
		t.Errorf("took %v, less than the origin's latency", took)
	}
}

func TestSilenceBound(t *testing.T) {
	t.Parallel()
	long, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	short, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	for _, c := range []struct {
		ctx      context.Context
		rtt      time.Duration
		min, max time.Duration
	}{
		{long, 0, silenceFloor, silenceFloor},
		{long, time.Millisecond, silenceFloor, silenceFloor},
		{long, 600 * time.Millisecond, 2400 * time.Millisecond, 2400 * time.Millisecond}, // a satellite link
		{context.Background(), 100 * time.Millisecond, silenceFloor, silenceFloor},
		{short, 0, 400 * time.Millisecond, 500 * time.Millisecond}, // half of what is left
	} {
		if got := silenceBound(c.ctx, c.rtt); got < c.min || got > c.max {
			t.Errorf("silenceBound(rtt %v) = %v, want in [%v, %v]", c.rtt, got, c.min, c.max)
		}
	}
}
