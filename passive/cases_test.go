package passive

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
)

// capture is one recorded scenario: a real client against a lab server,
// recorded on loopback. The recording test makes the files; the fixture
// test reads the committed copies under testdata/ without root.
type capture struct {
	file   string // under testdata/
	host   string // the SNI the client sends
	client string // "go", "curl" or "openssl"
	via    string // "live" (our AF_PACKET capture), "tcpdump-lo", "tcpdump-any"
	pcapng bool   // write pcapng instead of pcap (live only)
	// checks: each judges the capture under one expectation.
	checks []verdictCheck
}

type verdictCheck struct {
	name         string
	expect       detector.Expectation
	verdict      detector.Verdict
	product      string // substring of the product, "" for none
	reason       detector.Reason
	version      uint16 // negotiated, 0 when no TLS state
	chainVisible bool
	path         detector.PathKind
}

// captures are the scenarios, in the order they are recorded.
var captures = []capture{
	{file: "go-tls13-origin.pcapng", host: "proxy.lab.example", client: "go", via: "live", pcapng: true,
		checks: []verdictCheck{{name: "genuine TLS 1.3", verdict: detector.OK, version: tls.VersionTLS13, path: "direct"}}},
	{file: "curl-tls12-origin.pcap", host: "registry.lab.example", client: "curl", via: "tcpdump-lo",
		checks: []verdictCheck{
			{name: "genuine TLS 1.2", verdict: detector.OK, version: tls.VersionTLS12, chainVisible: true, path: "direct"},
			{name: "TLS 1.2 below an expected 1.3", expect: detector.Expectation{MinVersion: tls.VersionTLS13},
				verdict: detector.Downgraded, reason: detector.ReasonVersionBelow, version: tls.VersionTLS12, chainVisible: true, path: "direct"},
		}},
	{file: "openssl-forger-fortigate.pcap", host: "npm.lab.example", client: "openssl", via: "tcpdump-any",
		checks: []verdictCheck{{name: "forged by a product CA", verdict: detector.Intercepted, product: "Fortinet",
			reason: detector.ReasonKnownProduct, version: tls.VersionTLS12, chainVisible: true, path: "direct"}}},
	{file: "curl-goproxy-tls12.pcap", host: "sum.lab.example", client: "curl", via: "live",
		checks: []verdictCheck{{name: "goproxy through CONNECT", verdict: detector.Intercepted,
			reason: detector.ReasonSystemRootOnly, version: tls.VersionTLS12, chainVisible: true, path: "proxy"}}},
	{file: "go-sentinel-relay.pcap", host: "proxy.lab.example", client: "go", via: "live",
		checks: []verdictCheck{{name: "ClientHello rewritten on the path", verdict: detector.Downgraded,
			reason: detector.ReasonDowngradeSentinel, path: "direct"}}},
	{file: "curl-plain-443.pcap", host: "registry.lab.example", client: "curl", via: "live",
		checks: []verdictCheck{{name: "plain HTTP on the TLS port", verdict: detector.Plaintext,
			reason: detector.ReasonPlaintext, path: "direct"}}},
}

// manifest records, per fixture, the server port the lab listened on.
type manifest map[string][]uint16

const manifestFile = "testdata/captures.json"

func readManifest(t testing.TB) manifest {
	t.Helper()
	b, err := os.ReadFile(manifestFile)
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// roots are the lab's trust stores as the fixtures were recorded with.
type roots struct{ public, system *x509.CertPool }

func readRoots(t testing.TB) roots {
	t.Helper()
	pool := func(name string) *x509.CertPool {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(b) {
			t.Fatalf("%s: no certificates", name)
		}
		return p
	}
	return roots{public: pool("lab-public-roots.pem"), system: pool("lab-system-roots.pem")}
}

// analyse runs a capture file through the tracker and judges it.
func analyse(t *testing.T, path string, opts Options, r roots, targets []config.Target) (judged, Stats) {
	t.Helper()
	a := &Analysis{PublicRoots: r.public, SystemRoots: r.system, Expect: config.ExpectFor(targets)}
	tr := NewTracker(opts, a.Add)
	if err := ReadFile(context.Background(), path, tr); err != nil {
		t.Fatal(err)
	}
	return judge(a, detector.Policy{}), tr.Stats()
}

// assertCapture checks every expectation of a scenario against a file.
func assertCapture(t *testing.T, c capture, path string, opts Options, r roots) {
	t.Helper()
	for _, vc := range c.checks {
		targets := []config.Target{{Host: c.host, Port: 443, Source: "test", Expect: vc.expect}}
		rep, stats := analyse(t, path, opts, r, targets)
		if len(rep.Results) != 1 {
			t.Fatalf("%s / %s: %d results, want 1: %+v (stats %+v)", c.file, vc.name, len(rep.Results), rep.Results, stats)
		}
		res := rep.Results[0]
		if res.Obs.Host != c.host {
			t.Errorf("%s / %s: host %q, want %q", c.file, vc.name, res.Obs.Host, c.host)
		}
		if res.Verdict != vc.verdict || !strings.Contains(res.Product, vc.product) {
			t.Errorf("%s / %s: verdict %s product %q, want %s %q; findings %v; obs failure %q %q", c.file, vc.name,
				res.Verdict, res.Product, vc.verdict, vc.product, res.Findings, res.Obs.Failure, res.Obs.FailureDetail)
		}
		if vc.reason != "" && !slices.ContainsFunc(res.Findings, func(f detector.Finding) bool { return f.Reason == vc.reason }) {
			t.Errorf("%s / %s: reason %s missing from %v", c.file, vc.name, vc.reason, res.Findings)
		}
		if res.Obs.Path.Kind != vc.path {
			t.Errorf("%s / %s: path %s, want %s", c.file, vc.name, res.Obs.Path, vc.path)
		}
		if res.Source != "test" {
			t.Errorf("%s / %s: source %q: the target's expectation was not applied", c.file, vc.name, res.Source)
		}
		if res.Obs.ConnectTime < 0 || res.Obs.HandshakeTime < 0 {
			t.Errorf("%s / %s: negative RTTs %v %v", c.file, vc.name, res.Obs.ConnectTime, res.Obs.HandshakeTime)
		}
		var version uint16
		if res.Obs.TLS != nil {
			version = res.Obs.TLS.Version
		}
		if version != vc.version {
			t.Errorf("%s / %s: version %#x, want %#x", c.file, vc.name, version, vc.version)
		}
		g := groupOf(rep, c.host)
		if g == nil {
			t.Fatalf("%s: no group for %s", c.file, c.host)
		}
		visible := g.ChainVisible && g.Obs.TLS != nil
		if visible != vc.chainVisible {
			t.Errorf("%s / %s: chain visible %t, want %t (%s)", c.file, vc.name, visible, vc.chainVisible, g.ChainNote)
		}
		if version == tls.VersionTLS13 && !strings.Contains(g.ChainNote, "TLS 1.3 encrypts") {
			t.Errorf("%s: TLS 1.3 group does not say the chain is encrypted: %q", c.file, g.ChainNote)
		}
		if g.Fingerprints.JA3 == "" || g.Fingerprints.JA4 == "" || len(g.Fingerprints.JA3) != 32 {
			t.Errorf("%s: client fingerprints missing: %+v", c.file, g.Fingerprints)
		}
		if g.SYNACKTTL == 0 {
			t.Errorf("%s: no SYN-ACK TTL", c.file)
		}
	}
}

func groupOf(rep judged, host string) *Group {
	for _, g := range rep.Groups {
		if g.Obs.Host == host {
			return g
		}
	}
	return nil
}
