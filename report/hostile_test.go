package report

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/termsafe"
	"github.com/mitmwatch/mitmwatch/termsafe/termsafetest"
)

const hostileHost = "hostile.lab.example"

// hostileResults judges what a hostile interceptor shows: a chain whose
// every name carries escape sequences, verified against a system store
// that trusts its root, the x509 error that quotes those names, an ALPN,
// and a block page whose status line, title and headers carry them too.
func hostileResults(t *testing.T) []detector.Result {
	cert := termsafetest.Chain(t)
	leaf := cert.Leaf
	root, err := x509.ParseCertificate(cert.Certificate[1])
	if err != nil {
		t.Fatal(err)
	}
	nameErr := x509.HostnameError{Certificate: leaf, Host: hostileHost}
	cases := []detector.Case{
		{Source: "rules.yaml:3", Obs: detector.Observation{
			Host: hostileHost, Port: 443, Path: detector.Path{Kind: detector.PathDirect},
			TLS: &detector.TLSState{
				Version: tls.VersionTLS12, ALPN: termsafetest.Hostile("h2"), Chain: []*x509.Certificate{leaf, root},
				Public: detector.Verification{Failure: detector.FailureUnknownAuthority, Detail: nameErr.Error()},
				System: detector.Verification{Chains: [][]*x509.Certificate{{leaf, root}}},
			},
		}},
		{Source: "rules.yaml:9", Obs: detector.Observation{
			Host: "blocked.lab.example", Port: 443, Path: detector.Path{Kind: detector.PathDirect},
			Failure: detector.FailureNotTLS, FailureDetail: "tls: first record does not look like a TLS handshake",
			Plain: &detector.HTTPAnswer{Status: 403, Title: termsafetest.Hostile("Blocked"),
				Location:     "http://portal.lab.example/" + termsafetest.Clear,
				ProxyHeaders: []string{"Via: " + termsafetest.Hostile("1.1 proxy")}, BodySnippet: termsafetest.Hostile("<p>")},
		}},
	}
	return detector.Judge(cases, detector.Policy{}, time.Now())
}

// checkEscaped fails unless out shows every payload escaped: the test saw
// the hostile fields printed, not merely left out.
func checkEscaped(t *testing.T, out string) {
	t.Helper()
	for _, p := range termsafetest.Payloads {
		if !strings.Contains(out, termsafe.String(p)) {
			t.Errorf("output lacks %s:\n%s", termsafe.String(p), out)
		}
	}
}

// TestTableEscapesHostileText renders names, errors, ALPN and titles
// that carry escape sequences: the table shows them escaped.
func TestTableEscapesHostileText(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := Table(&buf, hostileResults(t), false); err != nil {
		t.Fatal(err)
	}
	termsafetest.Check(t, buf.String())
	checkEscaped(t, buf.String())
	t.Logf("\n%s", buf.String())
}

// TestJSONKeepsHostileTextExact checks that the JSON report holds nothing
// raw a terminal acts on, and still decodes to the exact names.
func TestJSONKeepsHostileTextExact(t *testing.T) {
	t.Parallel()
	results := hostileResults(t)
	var buf bytes.Buffer
	if err := JSON(&buf, results); err != nil {
		t.Fatal(err)
	}
	termsafetest.Check(t, buf.String())
	var doc Document
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	leaf := results[0].Obs.TLS.Chain[0]
	if got := doc.Targets[0].TLS; got.ALPN != results[0].Obs.TLS.ALPN || got.Chain[0].Subject != leaf.Subject.String() ||
		strings.Join(got.Chain[0].DNSNames, ",") != strings.Join(leaf.DNSNames, ",") {
		t.Errorf("JSON changed the names: ALPN %q, subject %q, names %q", got.ALPN, got.Chain[0].Subject, got.Chain[0].DNSNames)
	}
	if got, want := doc.Targets[1].HTTP.Title, results[1].Obs.Plain.Title; got != want {
		t.Errorf("JSON title %q, want %q", got, want)
	}
}
