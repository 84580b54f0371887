package daemon

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/lab"
)

// requireRoot skips without root, or fails where CI demands every tool
// (MITMWATCH_REQUIRE_TOOLS=1): live capture needs CAP_NET_RAW.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("MITMWATCH_REQUIRE_TOOLS") == "1" {
		t.Fatal("root is required for live capture (MITMWATCH_REQUIRE_TOOLS=1)")
	}
	t.Skip("live capture needs root")
}

func port(t *testing.T, addr string) uint16 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(n)
}

// handshakes makes real TLS handshakes, as a build's clients would, until
// ctx ends: TLS 1.2 with the forger (whose chain a capture can read) and
// TLS 1.3 with the genuine origin.
func handshakes(ctx context.Context, to map[string]string) {
	for ctx.Err() == nil {
		for name, addr := range to {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr,
				&tls.Config{ServerName: name, InsecureSkipVerify: true}) // the capture judges, not this client
			if err == nil {
				c.Close()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Passive capture in run: real handshakes on loopback, captured with
// AF_PACKET, judged by the same classification as the probes, exported
// per host; the probes go on beside it.
func TestPassiveCaptureJudgesRealTraffic(t *testing.T) {
	requireRoot(t)
	l := newLab(t)
	forger, err := lab.NewForger(lab.ForgerOptions{CA: l.env.PKI.EnterpriseRoot, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { forger.Close() })
	tg := l.target("github.com", 1)
	l.router.route(tg.Address, l.env.Origin.Addr())
	cfg := l.config(time.Hour, 5*time.Second, tg)
	cfg.Passive = config.Passive{Interface: "lo", Window: 300 * time.Millisecond,
		Ports: []uint16{port(t, forger.Addr()), port(t, l.env.Origin.Addr())}}
	d, logs := l.daemon(t, &loader{cfg: cfg}, "")
	run(t, d)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go handshakes(ctx, map[string]string{"pypi.org": forger.Addr(), "ghcr.io": l.env.Origin.Addr()})

	forged := "pypi.org:" + strconv.Itoa(int(port(t, forger.Addr())))
	genuine := "ghcr.io:" + strconv.Itoa(int(port(t, l.env.Origin.Addr())))
	passiveOf := func(key string) (exporter.Target, bool) {
		p := d.Snapshot().Passive
		if p == nil {
			return exporter.Target{}, false
		}
		for _, t := range p.Targets {
			if t.Key == key {
				return t, true
			}
		}
		return exporter.Target{}, false
	}
	waitFor(t, d, 20*time.Second, "both hosts judged from captured traffic", func() bool {
		_, a := passiveOf(forged)
		_, b := passiveOf(genuine)
		return a && b
	})
	p := d.Snapshot().Passive
	if !p.Capturing || p.Interface != "lo" || p.Connections == 0 {
		t.Errorf("capture state %+v", p)
	}
	if got, _ := passiveOf(forged); got.Verdict != detector.Intercepted {
		t.Errorf("%s: %s (%+v), want intercepted: its chain is forged by the enterprise root", forged, got.Verdict, got.Findings)
	}
	if got, _ := passiveOf(genuine); got.Verdict != detector.OK {
		t.Errorf("%s: %s (%+v), want ok", genuine, got.Verdict, got.Findings)
	}
	if got := logs.find("verdict changed", map[string]string{"target": "passive " + forged, "to": "intercepted"}); len(got) != 1 {
		t.Errorf("%d verdict-change events for %s, want 1", len(got), forged)
	}
	waitFor(t, d, 10*time.Second, "the probe of github.com", verdictIs(d, tg.Key(), detector.OK))
}

// Without CAP_NET_RAW, or on an interface that does not exist, capture is
// reported as not running, with the reason, and the probes go on.
func TestPassiveCaptureThatCannotOpen(t *testing.T) {
	l := newLab(t)
	tg := l.target("github.com", 1)
	l.router.route(tg.Address, l.env.Origin.Addr())
	cfg := l.config(time.Hour, 5*time.Second, tg)
	cfg.Passive = config.Passive{Interface: "mwnosuch0", Window: time.Second}
	d, logs := l.daemon(t, &loader{cfg: cfg}, "")
	run(t, d)
	waitFor(t, d, 10*time.Second, "the capture reported down", func() bool {
		p := d.Snapshot().Passive
		return p != nil && p.Interface == "mwnosuch0" && !p.Capturing && strings.Contains(p.Error, "mwnosuch0")
	})
	waitFor(t, d, 10*time.Second, "the probe of github.com", verdictIs(d, tg.Key(), detector.OK))
	if got := logs.find("passive capture is not running; probes go on", map[string]string{"interface": "mwnosuch0"}); len(got) != 1 {
		t.Errorf("%d error events, want exactly 1 however often it retries", len(got))
	}
}
