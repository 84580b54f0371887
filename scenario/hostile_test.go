package scenario

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/report"
	"github.com/mitmwatch/mitmwatch/termsafe"
	"github.com/mitmwatch/mitmwatch/termsafe/termsafetest"
)

// hostileNames is an interceptor that writes escape sequences into every
// name it controls: its certificate's CN, O and DNS names (which the x509
// error then quotes), a block page's title and Via header, a portal's
// Location. A header holds only the 8-bit ones: Go's HTTP parser refuses
// an ASCII control in a header value. t's cleanup stops its servers.
func hostileNames(t *testing.T) Scenario {
	const highOnly = termsafetest.CSI8Bit + termsafetest.Reverse
	return Scenario{
		Name:        "hostile-names",
		Description: "an interceptor whose certificate names, block page and redirect carry terminal escape sequences",
		Build: func(e *Env) (Setup, error) {
			srv := httptest.NewUnstartedServer(http.NotFoundHandler())
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{termsafetest.Chain(t)}}
			srv.StartTLS()
			t.Cleanup(srv.Close)
			block, err := lab.NewPlain(lab.PlainOptions{Status: http.StatusForbidden,
				Headers: http.Header{"Via": {"1.1 filter" + highOnly}},
				Body:    "<html><head><title>" + termsafetest.Hostile("Access Denied") + "</title></head></html>"})
			if err != nil {
				return Setup{}, err
			}
			e.Track(block)
			portal, err := lab.NewPlain(lab.PlainOptions{Status: http.StatusFound,
				Headers: http.Header{"Location": {"http://" + lab.PortalHost + "/login" + highOnly}}})
			if err != nil {
				return Setup{}, err
			}
			e.Track(portal)
			return Setup{Targets: []config.Target{
				e.target("github.com", srv.Listener.Addr().String()),
				e.target("objects.githubusercontent.com", block.Addr()),
				e.target("pypi.org", portal.Addr()),
			}}, nil
		},
	}
}

// TestHostileNamesAreEscaped probes a loopback server whose certificate
// names carry ESC, BEL, OSC and CSI sequences, and plain-HTTP answers
// that do, through the real probe, classification and report: the table
// shows every one escaped and neither it nor the JSON holds one raw.
func TestHostileNamesAreEscaped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*scenarioTimeout)
	defer cancel()
	results, err := e.Run(ctx, hostileNames(t), scenarioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]detector.Verdict{"github.com": detector.Intercepted,
		"objects.githubusercontent.com": detector.Blocked, "pypi.org": detector.CaptivePortal}
	for _, r := range results {
		if r.Verdict != want[r.Obs.Host] {
			t.Errorf("%s: verdict %s, want %s; findings %v", r.Obs.Host, r.Verdict, want[r.Obs.Host], r.Findings)
		}
	}
	var table, js bytes.Buffer
	if err := report.Table(&table, results, false); err != nil {
		t.Fatal(err)
	}
	termsafetest.Check(t, table.String())
	for _, p := range termsafetest.Payloads {
		if !strings.Contains(table.String(), termsafe.String(p)) {
			t.Errorf("table lacks %s:\n%s", termsafe.String(p), table.String())
		}
	}
	t.Logf("\n%s", table.String())
	if err := report.JSON(&js, results); err != nil {
		t.Fatal(err)
	}
	termsafetest.Check(t, js.String())
}
