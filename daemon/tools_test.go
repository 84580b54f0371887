package daemon

import (
	"log/slog"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/lab"
	"github.com/mitmwatch/mitmwatch/tools"
	"github.com/mitmwatch/mitmwatch/trust"
)

// TestToolOutcomes: after each probe the daemon records what each build
// tool that fetches from the target would do, for mitmwatch_tool_verifies:
// npm, whose own roots lack the interception root, breaks while the path
// is intercepted, and works again when it is not.
func TestToolOutcomes(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	forger, err := lab.NewForger(lab.ForgerOptions{CA: l.env.PKI.EnterpriseRoot})
	if err != nil {
		t.Fatal(err)
	}
	l.env.Track(forger)
	tg := l.target("npm.lab.example", 1)
	l.router.route(tg.Address, l.env.Origin.Addr())
	npm := tools.Tool{Name: tools.NPM, Version: "11.19.1", Flavour: tools.FlavourNode, OpenSSL3: true,
		Store: tools.Store{Description: "Node's bundled roots", Certs: []trust.Block{trust.BlockOf(l.env.PKI.PublicRoot.Cert)}},
		Hosts: []tools.Host{{Host: tg.Host, Port: tg.Port, Scheme: "https", Source: "registry"}}}
	predict := func(r detector.Result) []exporter.ToolOutcome {
		var out []exporter.ToolOutcome
		for _, f := range tools.PredictAll([]tools.Tool{npm}, []detector.Result{r}, tools.Context{Now: time.Now()}) {
			for _, p := range f.Predictions {
				out = append(out, exporter.ToolOutcome{Tool: string(p.Tool), Outcome: string(p.Outcome)})
			}
		}
		return out
	}
	d, err := New(Options{Logger: slog.New(&logSink{}), Load: (&loader{cfg: l.config(200*time.Millisecond, 2*time.Second, tg)}).load,
		NewRunner: l.newRunner, Tools: predict, Jitter: func(d time.Duration) time.Duration { return d / 2 }})
	if err != nil {
		t.Fatal(err)
	}
	run(t, d)
	outcome := func(want string) func() bool {
		return func() bool {
			r, ok := rec(d, tg.Key())
			return ok && len(r.Tools) == 1 && r.Tools[0] == exporter.ToolOutcome{Tool: "npm", Outcome: want}
		}
	}
	waitFor(t, d, wait, "npm verifies the genuine chain", outcome("verifies"))
	l.router.route(tg.Address, forger.Addr())
	waitFor(t, d, wait, "npm fails on the intercepted path", outcome("fails"))
	l.router.route(tg.Address, l.env.Origin.Addr())
	waitFor(t, d, wait, "npm verifies again", outcome("verifies"))
}
