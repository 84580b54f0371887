package termsafetest

import (
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/termsafe"
)

// recorder stands in for a testing.T to see whether Check fails.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

// Check must fail on every payload written raw and pass once termsafe
// escaped it: a check that cannot fail would make every test using it
// pass.
func TestCheckFailsOnEveryPayloadRaw(t *testing.T) {
	for _, p := range append(Payloads, "\xff", "\u2028") {
		raw := &recorder{TB: t}
		Check(raw, "name "+p+" end\n")
		if !raw.failed {
			t.Errorf("Check passed %q written raw", p)
		}
		escaped := &recorder{TB: t}
		Check(escaped, termsafe.String("name "+p+" end")+"\n")
		if escaped.failed {
			t.Errorf("Check failed %q once escaped", p)
		}
	}
}

// The chain carries the payloads where an interceptor would put them.
func TestChainCarriesThePayloads(t *testing.T) {
	c := Chain(t)
	if len(c.Certificate) < 2 {
		t.Fatalf("%d certificates, want leaf and root", len(c.Certificate))
	}
	for i, der := range c.Certificate {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		fields := fmt.Sprint(cert.Subject.CommonName, cert.Subject.Organization)
		for _, p := range Payloads {
			if !strings.Contains(fields, p) {
				t.Errorf("certificate %d lacks %q in CN and O: %q", i, p, fields)
			}
		}
	}
}
