package passive

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
)

// TestFixtures judges the committed recordings (see TestRecordLab) without
// root: once following the port each was recorded on, once following any
// port.
func TestFixtures(t *testing.T) {
	t.Parallel()
	m := readManifest(t)
	r := readRoots(t)
	for _, c := range captures {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", c.file)
			assertCapture(t, c, path, Options{Ports: m[c.file]}, r)
			assertCapture(t, c, path, Options{AnyPort: true}, r)
		})
	}
}

// TestFixturesDefaultPort checks that only the watched ports are followed:
// the lab listened on random ports, so following 443 finds nothing.
func TestFixturesDefaultPort(t *testing.T) {
	t.Parallel()
	r := readRoots(t)
	for _, c := range captures {
		rep, stats := analyse(t, filepath.Join("testdata", c.file), Options{}, r, nil)
		if len(rep.Results) != 0 || stats.Watched != 0 {
			t.Errorf("%s: port 443 only: %d results, %d watched packets", c.file, len(rep.Results), stats.Watched)
		}
		if stats.Packets == 0 || stats.TCP != stats.Packets {
			t.Errorf("%s: %d packets, %d decoded to TCP", c.file, stats.Packets, stats.TCP)
		}
	}
}

// TestFixtureFingerprints pins the fingerprints of the committed
// recordings. The JA3 and JA3S values are those tshark 4.0 computes for the
// same files (tshark -d tcp.port==PORT,tls -T fields -e tls.handshake.ja3
// -e tls.handshake.ja3s), an independent implementation.
func TestFixtureFingerprints(t *testing.T) {
	t.Parallel()
	want := map[string]struct{ sni, ja3, ja3s string }{
		"curl-tls12-origin.pcap":        {"registry.lab.example", "87b9bfc7da97115ed2276737b09f8d74", "7bb7401fe70025e71aad555635226c18"},
		"go-tls13-origin.pcapng":        {"proxy.lab.example", "03117a8ed39ef02427ebbc39f121275c", "f4febc55ea12b31ae17cfb7e614afda8"},
		"openssl-forger-fortigate.pcap": {"npm.lab.example", "a3afc2c46ba4a7d7fbe1cfb7a3031c2f", "cca05757f2e4411c7b779f2599c0654d"},
		"curl-goproxy-tls12.pcap":       {"sum.lab.example", "87b9bfc7da97115ed2276737b09f8d74", "7bb7401fe70025e71aad555635226c18"},
		"go-sentinel-relay.pcap":        {"proxy.lab.example", "03117a8ed39ef02427ebbc39f121275c", "7bb7401fe70025e71aad555635226c18"},
	}
	r := readRoots(t)
	for file, w := range want {
		rep, _ := analyse(t, filepath.Join("testdata", file), Options{AnyPort: true}, r, nil)
		if len(rep.Groups) != 1 {
			t.Fatalf("%s: %d groups", file, len(rep.Groups))
		}
		g := rep.Groups[0]
		fp := g.Fingerprints
		if g.Obs.Host != w.sni || fp.JA3 != w.ja3 || fp.JA3S != w.ja3s {
			t.Errorf("%s: sni %q ja3 %s ja3s %s, want %q %s %s", file, g.Obs.Host, fp.JA3, fp.JA3S, w.sni, w.ja3, w.ja3s)
		}
		if !strings.HasPrefix(fp.JA4, "t1") || strings.Count(fp.JA4, "_") != 2 || len(fp.JA4) != 36 {
			t.Errorf("%s: JA4 %q is not shaped like one", file, fp.JA4)
		}
	}
}

// TestFixturesTogether judges all recordings as one capture, as a day of
// real traffic would be: each host keeps its own verdict, and the
// cross-host signals do not confuse them.
func TestFixturesTogether(t *testing.T) {
	t.Parallel()
	r := readRoots(t)
	a := &Analysis{PublicRoots: r.public, SystemRoots: r.system,
		Expect: config.ExpectFor([]config.Target{{Host: "registry.lab.example", Port: 443, Source: "test",
			Expect: detector.Expectation{MinVersion: tls.VersionTLS13}}})}
	tr := NewTracker(Options{AnyPort: true}, a.Add)
	for _, c := range captures {
		if err := ReadFile(context.Background(), filepath.Join("testdata", c.file), tr); err != nil {
			t.Fatal(err)
		}
	}
	rep := judge(a, detector.Policy{})
	got := map[string]detector.Verdict{}
	for _, res := range rep.Results {
		got[fmt.Sprintf("%s:%d %s", res.Obs.Host, res.Obs.Port, res.Obs.Path.Kind)] = res.Verdict
	}
	m := readManifest(t)
	at := func(file string) string { return fmt.Sprint(m[file][0]) }
	want := map[string]detector.Verdict{
		"proxy.lab.example:" + at("go-tls13-origin.pcapng") + " direct":      detector.OK,
		"proxy.lab.example:" + at("go-sentinel-relay.pcap") + " direct":      detector.Downgraded,
		"registry.lab.example:" + at("curl-tls12-origin.pcap") + " direct":   detector.Downgraded, // expects TLS 1.3
		"registry.lab.example:" + at("curl-plain-443.pcap") + " direct":      detector.Plaintext,
		"npm.lab.example:" + at("openssl-forger-fortigate.pcap") + " direct": detector.Intercepted,
		"sum.lab.example:443 proxy":                                          detector.Intercepted,
	}
	if len(got) != len(want) {
		t.Errorf("%d results, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s (all: %v)", k, got[k], v, got)
		}
	}
	if len(rep.Groups) != len(captures) {
		t.Errorf("%d groups, want %d", len(rep.Groups), len(captures))
	}

}
