package report

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func readCert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// results judges fixed observations: an interception by a named product,
// a plain-HTTP answer and an unreachable host.
func results(t *testing.T) []detector.Result {
	leaf, root := readCert(t, "leaf.pem"), readCert(t, "root.pem")
	now := leaf.NotBefore.Add(40 * 24 * time.Hour)
	cases := []detector.Case{
		{Obs: detector.Observation{
			Host: "github.com", Port: 443, Path: detector.Path{Kind: detector.PathDirect},
			ResolvedAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
			ConnectedAddr: netip.MustParseAddrPort("192.0.2.10:443"),
			ConnectTime:   12 * time.Millisecond, HandshakeTime: 31500 * time.Microsecond,
			TLS: &detector.TLSState{
				Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256, ALPN: "h2",
				Chain: []*x509.Certificate{leaf}, NameMatch: true,
				Public: detector.Verification{Failure: detector.FailureUnknownAuthority, Detail: "x509: certificate signed by unknown authority"},
				System: detector.Verification{Chains: [][]*x509.Certificate{{leaf, root}}},
			},
			BestVersion: tls.VersionTLS13,
			Trace: &detector.PathTrace{
				ConnectRTTs: []time.Duration{400 * time.Microsecond, 12 * time.Millisecond, 350 * time.Microsecond},
				HelloRTTs:   []time.Duration{31 * time.Millisecond, 30500 * time.Microsecond, 30 * time.Millisecond},
				HelloHops:   1, MaxHops: 8,
				Origin: &detector.HopProbe{TTL: 1, Expired: true, From: netip.MustParseAddr("192.0.2.1")},
			},
		}},
		{Obs: detector.Observation{
			Host: "repo.maven.apache.org", Port: 443, Path: detector.Path{Kind: detector.PathProxy, Proxy: "proxy.corp.example:3128"},
			Failure: detector.FailureNotTLS, FailureDetail: "tls: first record does not look like a TLS handshake",
			Plain: &detector.HTTPAnswer{Status: 400, Title: "Bad Request", BodySnippet: "<title>Bad Request</title>"},
		}},
		{Obs: detector.Observation{
			Host: "ghcr.io", Port: 443, Path: detector.Path{Kind: detector.PathDirect},
			Failure: detector.FailureTimeout, FailureDetail: "context deadline exceeded",
		}},
		{Obs: detector.Observation{
			Host: "pypi.org", Port: 443, Path: detector.Path{Kind: detector.PathDirect},
			Failure: detector.FailureDNS, FailureDetail: "resolving pypi.org with system udp://192.0.2.53:53: NXDOMAIN",
			DNS: []detector.DNSAnswer{
				{Resolver: "system udp://192.0.2.53:53", System: true, Rcode: "NXDOMAIN"},
				{Resolver: "tls://192.0.2.153:853", Rcode: "NOERROR", Addrs: []netip.Addr{netip.MustParseAddr("151.101.0.223")}, MinTTL: 300},
				{Resolver: "udp://192.0.2.154:53", Failure: detector.FailureTimeout, Detail: "i/o timeout"},
			},
			Canary: []detector.DNSAnswer{{Resolver: "system udp://192.0.2.53:53", System: true, Rcode: "NXDOMAIN"}},
		}},
	}
	for i, src := range []string{"rules.yaml:12", "rules.yaml:20", "--target", "npm config get registry"} {
		cases[i].Source = src
	}
	return detector.Judge(cases, detector.Policy{}, now)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, diff)
	}
}

func TestJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := JSON(&buf, results(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", buf.Bytes())

	// The contract external tooling relies on.
	var doc struct {
		SchemaVersion int `json:"schema_version"`
		Targets       []struct {
			Host     string `json:"host"`
			Port     int    `json:"port"`
			Verdict  string `json:"verdict"`
			Product  string `json:"product"`
			Path     string `json:"path"`
			Findings []struct {
				Reason, Severity, Detail string
			} `json:"findings"`
			Remediation string `json:"remediation"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SchemaVersion != 1 || len(doc.Targets) != 4 {
		t.Fatalf("schema %d, %d targets", doc.SchemaVersion, len(doc.Targets))
	}
	first := doc.Targets[0]
	if first.Verdict != "intercepted" || first.Product != "Zscaler" || first.Path != "direct" || first.Findings[0].Severity != "critical" || first.Remediation == "" {
		t.Errorf("first target = %+v", first)
	}
}

func TestTableGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := Table(&buf, results(t), false); err != nil {
		t.Fatal(err)
	}
	buf.WriteString(Summary(results(t)) + "\n")
	golden(t, "report.txt", buf.Bytes())
}

func TestTableColour(t *testing.T) {
	var plain, coloured bytes.Buffer
	rs := results(t)
	if err := Table(&plain, rs, false); err != nil {
		t.Fatal(err)
	}
	if err := Table(&coloured, rs, true); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain.Bytes(), []byte("\x1b[")) {
		t.Error("uncoloured table has escape codes")
	}
	if !bytes.Contains(coloured.Bytes(), []byte(red+"intercepted")) {
		t.Error("coloured table does not paint the intercepted verdict red")
	}
}

// An IPv6 target prints in brackets wherever host and port are joined;
// the JSON keeps the bare address. A target whose DNS was not
// cross-checked adds one line under the tally, and only then.
func TestTableIPv6AndUnverified(t *testing.T) {
	unverified := detector.Finding{Reason: detector.ReasonDNSUnverified, Severity: detector.Info,
		Detail: "no reference resolver answered for registry.lab.example, so the system's answer was not cross-checked: udp://192.0.2.53:53 (generic_timeout_error)"}
	rs := []detector.Result{
		{Obs: detector.Observation{Host: "::1", Port: 9, Failure: detector.FailureRefused}, Verdict: detector.Unreachable,
			Findings: []detector.Finding{{Reason: detector.ReasonUnreachable, Detail: "connection_refused"}}},
		{Obs: detector.Observation{Host: "registry.lab.example", Port: 443}, Verdict: detector.OK},
	}
	var buf bytes.Buffer
	if err := Table(&buf, rs, false); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte("\n[::1]:9 ")) || !bytes.Contains(buf.Bytes(), []byte("unreachable [::1]:9 (")) || bytes.Contains(buf.Bytes(), []byte("::1:9")) {
		t.Errorf("table:\n%s", buf.String())
	}
	if s := Summary(rs[:1]); s != "1 target: 1 unreachable" && s != "1 target: 1 ok" {
		t.Errorf("Summary of one = %q", s)
	}
	if s := Summary(rs); s != "2 targets: 1 unreachable, 1 ok" {
		t.Errorf("summary %q", s)
	}
	rs[1].Findings = []detector.Finding{unverified}
	want := "2 targets: 1 unreachable, 1 ok\nDNS was not cross-checked for 1 of them: no reference resolver answered (dns-unverified)"
	if s := Summary(rs); s != want {
		t.Errorf("summary %q, want %q", s, want)
	}
	var doc struct {
		Targets []struct{ Host string } `json:"targets"`
	}
	buf.Reset()
	if err := JSON(&buf, rs); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || doc.Targets[0].Host != "::1" {
		t.Errorf("JSON host %+v, %v", doc.Targets, err)
	}
}
