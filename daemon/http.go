package daemon

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/grade"
	"github.com/mitmwatch/mitmwatch/termsafe"
)

// Handler serves the status page and the lifecycle endpoints the Prometheus
// tools share: "/" (HTML status), "/-/healthy" (the scheduler loop is
// alive), "/-/ready" (config loaded and first round done) and "/-/reload"
// (POST only; calls reload, which the CLI points at whatever a SIGHUP does).
// A reload costs a run of every build tool and a new runner, so it is a
// state change a stranger on the network must not trigger: with a nil
// reload (the default, as Prometheus keeps it behind
// --web.enable-lifecycle) it answers 403, and a cross-origin browser
// request is refused either way.
func (d *Daemon) Handler(reload func() error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.serveStatus)
	mux.HandleFunc("GET /target/{key}", d.serveTarget)
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, d.healthy(), "mitmwatch is healthy.\n", "mitmwatch's scheduler is not running.\n")
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, d.Ready(), "mitmwatch is ready.\n", "mitmwatch is not ready: config not loaded or first round not done.\n")
	})
	// Other methods get 405 from the mux: a reload must not be triggered
	// by a crawler or a prefetching browser.
	mux.Handle("POST /-/reload", http.NewCrossOriginProtection().Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if reload == nil {
			http.Error(w, "Lifecycle API is not enabled: start mitmwatch run with --web.enable-lifecycle, or send SIGHUP.", http.StatusForbidden)
			return
		}
		if err := reload(); err != nil {
			http.Error(w, fmt.Sprintf("failed to reload config: %v", err), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "config reloaded.\n")
	})))
	return mux
}

func answer(w http.ResponseWriter, ok bool, yes, no string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, no)
		return
	}
	fmt.Fprint(w, yes)
}

// statusPage is what the template shows; every string is escaped by
// html/template, which matters: issuers and details come from the network.
type statusPage struct {
	// Counts is the tally per verdict; LastRound when the last complete
	// round ended (empty before the first).
	Counts    []verdictCount
	LastRound string
	// Timeline is a strip per target that changed verdict since From.
	Timeline   []timelineRow
	From       string
	Source     string
	LoadedAt   string
	LoadFailed bool
	LoadErr    string
	Ready      bool
	Rows       []statusRow
	Passive    *passivePage // nil without passive capture
	// Interceptors are the graded interceptors (grade.go); check details
	// quote certificates and error pages.
	Interceptors []interceptorRow
}

type interceptorRow struct {
	SPKI, Path, Product, Grade, Class, Targets string
	Approved                                   bool
	Checks                                     []grade.Check // those that lower the grade or leave it incomplete
}

// passivePage is the build traffic section: hosts come from the network
// (SNI), so they are escaped like everything else.
type passivePage struct {
	Interface, Error string
	Capturing        bool
	Connections      uint64
	Dropped          uint64
	Rows             []statusRow
}

type statusRow struct {
	Target, Href, Verdict, Class, Product string
	LastProbe, Ago                        string
	Issuer, Reason, Detail, Source        string
}

func (d *Daemon) serveStatus(w http.ResponseWriter, _ *http.Request) {
	now := d.now()
	snap := d.Snapshot()
	d.mu.Lock()
	page := statusPage{LoadFailed: d.cfg != nil && !d.loaded, LoadErr: d.loadErr, Ready: d.ready}
	if d.cfg != nil {
		page.Source = d.cfg.Source
	}
	d.mu.Unlock()
	if !snap.ConfigLoadedAt.IsZero() {
		page.LoadedAt = snap.ConfigLoadedAt.UTC().Format(time.RFC3339) + " (" + ago(now.Sub(snap.ConfigLoadedAt)) + ")"
	}
	sortForPage(snap.Targets)
	page.Counts = tally(snap.Targets)
	if at := lastRound(snap.Targets); !at.IsZero() && len(snap.Targets) > 0 {
		page.LastRound = stamp(at, now)
	}
	var from time.Time
	if page.Timeline, from = timelineOf(snap.Targets, d.allChanges(), now); !from.IsZero() {
		page.From = from.UTC().Format(time.RFC3339)
	}
	for _, t := range snap.Targets {
		row := statusRowOf(t, now)
		row.Href = targetHref(t.Key)
		page.Rows = append(page.Rows, row)
	}
	if p := snap.Passive; p != nil {
		page.Passive = &passivePage{Interface: p.Interface, Error: p.Error, Capturing: p.Capturing,
			Connections: p.Connections, Dropped: p.Dropped}
		for _, t := range p.Targets {
			page.Passive.Rows = append(page.Passive.Rows, statusRowOf(t, now))
		}
	}
	for _, ic := range snap.Interceptors {
		row := interceptorRow{SPKI: ic.SPKI, Path: string(ic.Path), Product: ic.Product, Grade: string(ic.Grade),
			Class: "inspected", Targets: strings.Join(ic.Targets, ", "), Approved: ic.Approved}
		switch ic.Grade {
		case grade.F:
			row.Class = "detected"
		case grade.Incomplete:
			row.Class = "unreachable"
		}
		for _, c := range ic.Checks {
			switch c.Result {
			case grade.ReSigned, grade.Accepted, grade.Weak, grade.NotIntercepted:
				row.Checks = append(row.Checks, c)
			}
		}
		page.Interceptors = append(page.Interceptors, row)
	}
	render(w, statusTemplate, page)
}

// statusRowOf flattens a target into a row. Names from the network (the
// issuer, a product matched in one, a finding's detail) go through
// termsafe and clip as well as html/template: the template escapes markup
// but passes terminal escapes, which `curl` of the page would obey, and a
// forged name can be kilobytes long.
func statusRowOf(t exporter.Target, now time.Time) statusRow {
	row := statusRow{Target: t.Key, Verdict: string(t.Verdict), Class: verdictClass(t.Verdict),
		Product: clip(termsafe.String(t.Product)), Issuer: clip(termsafe.String(t.IssuerCN)), Source: t.Source}
	if row.Verdict == "" {
		row.Verdict = "pending"
	}
	if !t.LastProbe.IsZero() {
		row.LastProbe, row.Ago = t.LastProbe.UTC().Format(time.RFC3339), ago(now.Sub(t.LastProbe))
	}
	if f, ok := keyFinding(t.Findings); ok {
		row.Reason, row.Detail = string(f.Reason), clip(termsafe.String(f.Detail))
	}
	switch {
	case t.SSHHostKey != "":
		row.Issuer = "host key " + t.SSHKeyType + " " + t.SSHHostKey
	case t.SumDBSignature != "":
		row.Issuer = "tree head " + t.SumDBSignature
		if t.SumDBTree > 0 {
			row.Issuer = fmt.Sprintf("tree of size %d, %s", t.SumDBTree, t.SumDBSignature)
		}
	}
	return row
}

// verdictClass picks the row colour: red when something is in the way.
func verdictClass(v detector.Verdict) string {
	switch {
	case v == "":
		return "pending"
	case v == detector.OK:
		return "ok"
	case v == detector.Inspected:
		return "inspected"
	case v == detector.Unreachable:
		return "unreachable"
	case v.Detected():
		return "detected"
	}
	return "pending"
}

// ago renders an age coarsely, as people read it.
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

var statusTemplate = template.Must(template.Must(pageParts.Clone()).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="60">
<title>mitmwatch</title>
{{template "style"}}
</head>
<body>
<h1>mitmwatch</h1>
<p class="counts">{{range .Counts}}<span class="verdict {{.Class}}">{{.N}} {{.Verdict}}</span> {{else}}No targets yet.{{end}}</p>
<p>{{if .LastRound}}Last complete round: <span class="nowrap">{{.LastRound}}</span>{{else}}No complete round yet.{{end}}
· <a href="/metrics">metrics</a> · <a href="#about">what the verdicts mean</a></p>
<p>Config: <code>{{if .Source}}{{.Source}}{{else}}not loaded{{end}}</code>{{if .LoadedAt}}, loaded {{.LoadedAt}}{{end}}.
{{if .Ready}}First round done.{{else}}First round not done yet.{{end}}</p>
{{if .LoadFailed}}<p class="warn">The last reload failed; the config above keeps running: <code>{{.LoadErr}}</code></p>{{end}}
<table>
<thead><tr><th>Target</th><th>Verdict</th><th>Product</th><th>Last probe</th><th>Issuer</th><th>Reason</th><th>Source</th></tr></thead>
<tbody>
{{range .Rows}}<tr class="target">
<td class="name"><a href="{{.Href}}">{{.Target}}</a></td>
<td class="verdict {{.Class}}">{{.Verdict}}</td>
<td>{{.Product}}</td>
<td class="nowrap">{{if .LastProbe}}{{.LastProbe}}<br><small>{{.Ago}}</small>{{else}}never{{end}}</td>
<td>{{.Issuer}}</td>
<td>{{if .Reason}}<b>{{.Reason}}</b><br>{{.Detail}}{{end}}</td>
<td><small>{{.Source}}</small></td>
</tr>
{{else}}<tr><td colspan="7">No targets.</td></tr>
{{end}}</tbody>
</table>
{{with .Timeline}}<h2 id="timeline">Changes of verdict since {{$.From}}</h2>
<table class="timeline">
<tbody>
{{range .}}<tr><td class="name"><a href="{{.Href}}">{{.Target}}</a></td><td>{{template "strip" .Strip}}</td></tr>
{{end}}</tbody>
</table>
{{end}}{{with .Interceptors}}<h2 id="interceptors">Interceptors on these paths</h2>
<p>Graded with handshakes through each: A validates upstream and speaks modern TLS only; F re-signs invalid upstream certificates.</p>
<table>
<thead><tr><th>CA key (SPKI)</th><th>Path</th><th>Product</th><th>Grade</th><th>Behind it</th><th>What lowers the grade</th></tr></thead>
<tbody>
{{range .}}<tr>
<td><code>{{.SPKI}}</code>{{if .Approved}}<br><small>approved</small>{{end}}</td>
<td>{{.Path}}</td>
<td>{{.Product}}</td>
<td class="verdict {{.Class}}">{{.Grade}}</td>
<td>{{.Targets}}</td>
<td>{{range .Checks}}<b>{{.Name}}</b> {{.Result}}: {{.Detail}}<br>{{end}}</td>
</tr>
{{end}}</tbody>
</table>
{{end}}{{with .Passive}}<h2 id="passive">Build traffic on {{.Interface}}</h2>
{{if .Capturing}}<p>Capturing: {{.Connections}} connections judged{{if .Dropped}}, <span class="warn">{{.Dropped}} packets dropped by the kernel</span>{{end}}.</p>
{{else}}<p class="warn">Not capturing; the probes go on: <code>{{.Error}}</code></p>
{{end}}<table>
<thead><tr><th>Host</th><th>Verdict</th><th>Product</th><th>Last seen</th><th>Issuer</th><th>Reason</th></tr></thead>
<tbody>
{{range .Rows}}<tr>
<td class="name">{{.Target}}</td>
<td class="verdict {{.Class}}">{{.Verdict}}</td>
<td>{{.Product}}</td>
<td class="nowrap">{{.LastProbe}}<br><small>{{.Ago}}</small></td>
<td>{{.Issuer}}</td>
<td>{{if .Reason}}<b>{{.Reason}}</b><br>{{.Detail}}{{end}}</td>
</tr>
{{else}}<tr><td colspan="6">No TLS seen yet.</td></tr>
{{end}}</tbody>
</table>
{{end}}{{template "about"}}
</body>
</html>
`))
