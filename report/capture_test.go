//go:build !lean

package report

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/passive"
	"github.com/mitmwatch/mitmwatch/termsafe/termsafetest"
)

// judgeRecordings judges passive's committed recordings as one capture,
// as `mitmwatch pcap` does.
func judgeRecordings(t *testing.T) Capture {
	t.Helper()
	dir := filepath.Join("..", "passive", "testdata")
	pool := func(name string) *x509.CertPool {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(b) {
			t.Fatalf("%s: no certificates", name)
		}
		return p
	}
	a := &passive.Analysis{PublicRoots: pool("lab-public-roots.pem"), SystemRoots: pool("lab-system-roots.pem"),
		Expect: func(host string, port int) (detector.Expectation, string, bool) {
			if host == "registry.lab.example" {
				return detector.Expectation{MinVersion: tls.VersionTLS13}, "test", true
			}
			return detector.Expectation{}, "", false
		}}
	tr := passive.NewTracker(passive.Options{AnyPort: true}, a.Add)
	files, err := filepath.Glob(filepath.Join(dir, "*.pcap*"))
	if err != nil || len(files) < 5 {
		t.Fatalf("recordings: %v %v", files, err)
	}
	for _, f := range files {
		if err := passive.ReadFile(context.Background(), f, tr); err != nil {
			t.Fatal(err)
		}
	}
	c := a.Capture()
	return Capture{Capture: c, Judged: detector.Judge(c.Cases(), detector.Policy{}, c.At), Stats: tr.Stats()}
}

// TestCaptureOutput renders a judged capture as JSON and as a table: one
// target per host, one group per kind of connection, and what only a
// capture shows.
func TestCaptureOutput(t *testing.T) {
	c := judgeRecordings(t)
	var buf bytes.Buffer
	if err := CaptureJSON(&buf, c); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SchemaVersion int `json:"schema_version"`
		Targets       []struct {
			Host    string `json:"host"`
			Verdict string `json:"verdict"`
		} `json:"targets"`
		Passive struct {
			Groups []struct {
				Host         string `json:"host"`
				ChainVisible bool   `json:"chain_visible"`
				Fingerprints struct {
					JA3 string `json:"ja3"`
				} `json:"fingerprints"`
			} `json:"groups"`
		} `json:"passive"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	hosts := c.Hosts()
	if doc.SchemaVersion != 1 || len(doc.Targets) != len(hosts) || len(doc.Passive.Groups) != len(c.Capture.Groups) {
		t.Errorf("JSON document: schema %d, %d targets (want %d), %d groups (want %d)", doc.SchemaVersion,
			len(doc.Targets), len(hosts), len(doc.Passive.Groups), len(c.Capture.Groups))
	}
	for i := 1; i < len(doc.Targets); i++ {
		if doc.Targets[i-1].Host > doc.Targets[i].Host {
			t.Errorf("targets not sorted by host: %s before %s", doc.Targets[i-1].Host, doc.Targets[i].Host)
		}
	}
	var text bytes.Buffer
	if err := CaptureTable(&text, c, false); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"TARGET", "intercepted", "Fortinet", "encrypted (TLS 1.3)", "TLS 1.3 encrypts the certificate", "connections in the capture:"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, text.String())
		}
	}
}

// TestCaptureEmpty renders a capture with no handshake in it.
func TestCaptureEmpty(t *testing.T) {
	var text bytes.Buffer
	if err := CaptureTable(&text, Capture{Stats: passive.Stats{Packets: 7}}, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "no TLS handshake in 7 packets") {
		t.Errorf("table:\n%s", text.String())
	}
}

// TestCaptureEscapesHostileText feeds a capture a connection whose SNI,
// ALPN, certificates and notes carry escape sequences, as a hostile
// client and server would send them: the capture's table shows them
// escaped and its JSON holds none of them raw.
func TestCaptureEscapesHostileText(t *testing.T) {
	t.Parallel()
	cert := termsafetest.Chain(t)
	start := time.Now().Add(-time.Minute)
	a := &passive.Analysis{PublicRoots: x509.NewCertPool(), SystemRoots: x509.NewCertPool()}
	a.Add(&passive.Conn{
		Client: netip.MustParseAddrPort("192.0.2.7:40000"), Server: netip.MustParseAddrPort("192.0.2.80:443"),
		Start: start, SYN: start, SYNACK: start.Add(time.Millisecond), SYNACKTTL: 64,
		ClientHelloAt: start.Add(2 * time.Millisecond), ServerHelloAt: start.Add(3 * time.Millisecond),
		Hello: &passive.ClientHello{LegacyVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			ServerName: termsafetest.Hostile("sni"), ALPN: []string{termsafetest.Hostile("h2")}},
		ServerHello: &passive.ServerHello{LegacyVersion: tls.VersionTLS12, CipherSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			ALPN: termsafetest.Hostile("h2")},
		Certificates: cert.Certificate,
		End:          passive.EndHandshake,
		Note:         termsafetest.Hostile("note"),
	})
	pc := a.Capture()
	c := Capture{Capture: pc, Judged: detector.Judge(pc.Cases(), detector.Policy{}, pc.At)}
	var text, js bytes.Buffer
	if err := CaptureTable(&text, c, false); err != nil {
		t.Fatal(err)
	}
	termsafetest.Check(t, text.String())
	checkEscaped(t, text.String())
	t.Logf("\n%s", text.String())
	if err := CaptureJSON(&js, c); err != nil {
		t.Fatal(err)
	}
	termsafetest.Check(t, js.String())
}
