package detector_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

func msD(f ...float64) []time.Duration {
	out := make([]time.Duration, len(f))
	for i, v := range f {
		out[i] = time.Duration(v * float64(time.Millisecond))
	}
	return out
}

// pathTable judges path traces: the RTT split, the TTL-limited hello and
// the TTLs a capture saw, on a genuine chain and on a forged one, and the
// paths that must not raise anything.
func pathTable(p *labPKI) []classifyCase {
	genuine := p.leaf(p.publicCA, leafSpec{names: []string{labHost}, sct: true})
	forged := p.leaf(p.corpCA, leafSpec{names: []string{labHost}, notBefore: labNow.AddDate(0, 0, -3)})
	clean := p.observe(labHost, p.system, genuine, p.publicCA.cert)
	with := func(o detector.Observation, tr detector.PathTrace) detector.Observation {
		o.Trace = &tr
		return o
	}
	router := netip.MustParseAddr("198.18.1.1")
	split := detector.PathTrace{ConnectRTTs: msD(0.4, 0.3, 0.5), HelloRTTs: msD(101, 104, 100.5)}
	tcp, ttl, ttlChanged := detector.ReasonTCPTerminatedNearby, detector.ReasonTLSAnsweredEarly, detector.ReasonServerTTLChanged
	timing := detector.ReasonRTTSplit
	captured := split
	captured.Captured = true
	return []classifyCase{
		{
			name:    "path: TCP answered nearby, TLS 100 ms away, by timing alone: a warning, no verdict",
			obs:     with(clean, split),
			reasons: rs(timing),
			verdict: detector.OK,
		},
		{
			name:    "path: TCP answered nearby, TLS 100 ms away, and the hello answered within the hops tried",
			obs:     with(clean, detector.PathTrace{ConnectRTTs: split.ConnectRTTs, HelloRTTs: split.HelloRTTs, HelloHops: 2, MaxHops: 8}),
			reasons: rs(tcp),
			verdict: detector.TransparentProxy,
		},
		{
			name:    "path: the split on three connections of a capture",
			obs:     with(clean, captured),
			reasons: rs(tcp),
			verdict: detector.TransparentProxy,
		},
		{
			name:    "path: the split on two connections of a capture is too little",
			obs:     with(clean, detector.PathTrace{ConnectRTTs: msD(0.4, 0.3), HelloRTTs: msD(101, 104), Captured: true}),
			verdict: detector.OK,
		},
		{
			name: "path: the split and the server's TTLs changed in a capture",
			obs: with(clean, detector.PathTrace{ConnectRTTs: msD(0.4, 0.3), HelloRTTs: msD(101, 104), Captured: true,
				SYNACKTTL: 64, ServerTTLs: []uint8{64, 52}}),
			reasons: rs(tcp, ttlChanged),
			verdict: detector.TransparentProxy,
		},
		{
			name: "path: RTT split and the hello answered before the origin",
			obs: with(clean, detector.PathTrace{ConnectRTTs: split.ConnectRTTs, HelloRTTs: split.HelloRTTs,
				HelloHops: 1, MaxHops: 8, Origin: &detector.HopProbe{TTL: 1, Expired: true, From: router}}),
			reasons: rs(tcp, ttl),
			verdict: detector.TransparentProxy,
		},
		{
			name: "path: hello answered before the origin, no timing gap (an injector near the origin)",
			obs: with(clean, detector.PathTrace{ConnectRTTs: msD(30, 31), HelloRTTs: msD(32, 33),
				HelloHops: 3, MaxHops: 8, Origin: &detector.HopProbe{TTL: 3, Expired: true, From: router}}),
			reasons: rs(ttl),
			verdict: detector.TransparentProxy,
		},
		{
			name: "path: split, the hello answered at hop 1, and ICMP filtered: the split stands",
			obs: with(clean, detector.PathTrace{ConnectRTTs: split.ConnectRTTs, HelloRTTs: split.HelloRTTs,
				HelloHops: 1, MaxHops: 8, Origin: &detector.HopProbe{TTL: 1}}),
			reasons: rs(tcp),
			verdict: detector.TransparentProxy,
		},
		{
			name:    "path: the split beside a forged chain is interception",
			obs:     with(p.observe(labHost, p.system, forged, p.corpCA.cert), split),
			reasons: rs(detector.ReasonSystemRootOnly, detector.ReasonLeafWithoutSCT, timing),
			verdict: detector.Intercepted,
		},
		{
			name:    "path: a capture saw the SYN-ACK and the server's data at different TTLs",
			obs:     with(clean, detector.PathTrace{SYNACKTTL: 63, ServerTTLs: []uint8{63, 51}}),
			reasons: rs(ttlChanged),
			verdict: detector.OK,
		},
		{
			name: "path: approved inspection explains the split",
			obs: with(p.observe(labHost, p.system, p.leaf(p.zRoot, leafSpec{names: []string{labHost}, notBefore: labNow.AddDate(0, 0, -3)})),
				split),
			pol:     detector.Policy{ApprovedInspection: spkis(p.zRoot)},
			reasons: rs(detector.ReasonApprovedInspection, timing),
			verdict: detector.Inspected,
			product: "Zscaler",
		},
		// Negative cases: direct paths, slow servers, too few samples.
		{
			name: "path: a loaded server answers late, and the datagram shows the address itself answered",
			obs: with(clean, detector.PathTrace{ConnectRTTs: msD(0.3, 0.4, 0.3), HelloRTTs: msD(41, 45, 42),
				HelloHops: 2, MaxHops: 8, Origin: &detector.HopProbe{TTL: 2, Reached: true, From: labAddr.Addr()}}),
			verdict: detector.OK,
		},
		{
			name:    "path: direct, 50 ms each way, server takes 2 ms to sign",
			obs:     with(clean, detector.PathTrace{ConnectRTTs: msD(100.2, 101, 100.4), HelloRTTs: msD(102.5, 103, 108)}),
			verdict: detector.OK,
		},
		{
			name:    "path: loopback, RSA-4096 origin signing for 8 ms",
			obs:     with(clean, detector.PathTrace{ConnectRTTs: msD(0.05, 0.06), HelloRTTs: msD(8.2, 8.5)}),
			verdict: detector.OK,
		},
		{
			name:    "path: one sample only, however split",
			obs:     with(clean, detector.PathTrace{ConnectRTTs: msD(0.4), HelloRTTs: msD(120)}),
			verdict: detector.OK,
		},
		{
			name:    "path: queueing on one sample does not make a split",
			obs:     with(clean, detector.PathTrace{ConnectRTTs: msD(20, 21, 20.5), HelloRTTs: msD(22, 180, 23)}),
			verdict: detector.OK,
		},
		{
			name: "path: the origin itself answers at the hello's hop",
			obs: with(clean, detector.PathTrace{ConnectRTTs: msD(100, 101), HelloRTTs: msD(101, 102),
				HelloHops: 2, MaxHops: 8, Origin: &detector.HopProbe{TTL: 2, Reached: true, From: labAddr.Addr()}}),
			verdict: detector.OK,
		},
		{
			name: "path: nothing came back for the datagram (ICMP filtered)",
			obs: with(clean, detector.PathTrace{ConnectRTTs: msD(1, 1), HelloRTTs: msD(2, 2),
				HelloHops: 1, MaxHops: 8, Origin: &detector.HopProbe{TTL: 1}}),
			verdict: detector.OK,
		},
		{
			name: "path: split, but nothing within 8 hops answers the TTL-limited hellos (a server's own front end, or a busy server)",
			obs: with(clean, detector.PathTrace{ConnectRTTs: split.ConnectRTTs, HelloRTTs: split.HelloRTTs,
				MaxHops: 8}),
			verdict: detector.OK,
		},
		{
			name:    "path: the hello got no answer within the hops tried",
			obs:     with(clean, detector.PathTrace{ConnectRTTs: msD(40, 41), HelloRTTs: msD(42, 43), MaxHops: 8}),
			verdict: detector.OK,
		},
		{
			name:    "path: a network that is down measured nothing",
			obs:     with(failed(labHost, detector.FailureTimeout, "i/o timeout"), detector.PathTrace{Detail: "no sample answered"}),
			reasons: rs(detector.ReasonUnreachable),
			verdict: detector.Unreachable,
		},
		{
			name: "path: through an explicit proxy the split is the proxy's own",
			obs: with(tweak(clean, func(o *detector.Observation) {
				o.Path = detector.Path{Kind: detector.PathProxy, Proxy: "proxy.corp.example:3128"}
			}), split),
			verdict: detector.OK,
		},
		{
			name:    "path: the SYN-ACK and the server's data at one TTL",
			obs:     with(clean, detector.PathTrace{SYNACKTTL: 51, ServerTTLs: []uint8{51}}),
			verdict: detector.OK,
		},
	}
}

func TestClassifyPath(t *testing.T) {
	t.Parallel()
	runClassifyTable(t, pathTable(newLabPKI(t)))
}

// The evidence names the figures an operator checks: both round trips and
// the hop.
func TestPathFindingsCarryTheEvidence(t *testing.T) {
	p := newLabPKI(t)
	obs := p.observe(labHost, p.system, p.leaf(p.publicCA, leafSpec{names: []string{labHost}, sct: true}), p.publicCA.cert)
	obs.Trace = &detector.PathTrace{ConnectRTTs: msD(0.4, 0.3), HelloRTTs: msD(101, 104),
		HelloHops: 1, MaxHops: 8, Origin: &detector.HopProbe{TTL: 1, Expired: true, From: netip.MustParseAddr("198.18.1.1")}}
	fs, _ := detector.Classify(obs, detector.Expectation{}, detector.Policy{}, labNow)
	text := ""
	for _, f := range fs {
		text += f.Detail + "\n"
	}
	for _, want := range []string{"0.3 ms", "101.0 ms", "TTL 1", "198.18.1.1"} {
		if !strings.Contains(text, want) {
			t.Errorf("findings lack %q:\n%s", want, text)
		}
	}
}
