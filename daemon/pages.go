package daemon

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
)

// What the status page adds to the table: the tally, the order people
// read in (problems first, ok last), a strip of each target's verdicts
// over time, and a page per target with the evidence of its last probe.
// Everything from the network goes through html/template.

// statusCSP is the status pages' policy: no script, no external asset,
// inline styles only (inline SVG needs nothing more).
const statusCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

// verdictCount is one entry of the page header's tally.
type verdictCount struct {
	Verdict, Class string
	N              int
}

// rankOf orders the status table: what is in the way first (in the order
// of detector.Verdicts), then a critical finding beside a clean verdict,
// unreachable, never probed, inspected, and ok last.
func rankOf(t exporter.Target) (int, int) {
	v := t.Verdict
	class := 5
	switch {
	case v == "":
		class = 3
	case v.Detected():
		class = 0
	case slices.ContainsFunc(t.Findings, func(f detector.Finding) bool { return f.Severity == detector.Critical }):
		class = 1
	case v == detector.Unreachable:
		class = 2
	case v == detector.Inspected:
		class = 4
	}
	return class, slices.Index(detector.Verdicts, v)
}

// sortForPage orders targets as the status table shows them.
func sortForPage(ts []exporter.Target) {
	slices.SortStableFunc(ts, func(a, b exporter.Target) int {
		ca, va := rankOf(a)
		cb, vb := rankOf(b)
		return cmp.Or(cmp.Compare(ca, cb), cmp.Compare(va, vb), cmp.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port))
	})
}

// tally counts the targets per verdict, most severe first.
func tally(ts []exporter.Target) []verdictCount {
	counts := map[detector.Verdict]int{}
	for _, t := range ts {
		counts[t.Verdict]++
	}
	var out []verdictCount
	for _, v := range detector.Verdicts {
		if n := counts[v]; n > 0 {
			out = append(out, verdictCount{Verdict: string(v), Class: verdictClass(v), N: n})
		}
	}
	if n := counts[""]; n > 0 {
		out = append(out, verdictCount{Verdict: "pending", Class: "pending", N: n})
	}
	return out
}

// lastRound is when the last complete round ended: the oldest of the
// targets' last probes, since every target has been probed since. Zero
// while some target has never been probed.
func lastRound(ts []exporter.Target) time.Time {
	var oldest time.Time
	for _, t := range ts {
		if t.LastProbe.IsZero() {
			return time.Time{}
		}
		if oldest.IsZero() || t.LastProbe.Before(oldest) {
			oldest = t.LastProbe
		}
	}
	return oldest
}

// stamp is a time as the pages print it: UTC, to the second, and how long
// ago.
func stamp(t, now time.Time) string {
	return t.UTC().Format(time.RFC3339) + " (" + ago(now.Sub(t)) + ")"
}

// strip is a target's verdicts over a window as an inline SVG: one
// coloured segment per verdict held, a title on each for who hovers.
type strip struct {
	Width, Height int
	Segments      []segment
}

type segment struct {
	X, W  int
	Fill  string
	Title string
}

const stripWidth, stripHeight = 240, 14

// fills are the strip's colours, those of the table's verdict cells.
var fills = map[string]string{
	"ok": "#5cb85c", "inspected": "#6f9fd8", "unreachable": "#aaa", "pending": "#ddd", "detected": "#d9534f",
}

// stripOf draws changes (oldest first) between from and now. Before the
// first change the verdict is unknown (left blank).
func stripOf(changes []verdictChange, from, now time.Time) strip {
	s := strip{Width: stripWidth, Height: stripHeight}
	span := now.Sub(from)
	if span <= 0 || len(changes) == 0 {
		return s
	}
	x := func(t time.Time) int {
		if t.Before(from) {
			t = from
		}
		return int(int64(stripWidth) * int64(t.Sub(from)) / int64(span))
	}
	for i, c := range changes {
		end := now
		if i+1 < len(changes) {
			end = changes[i+1].At
		}
		x0, x1 := x(c.At), x(end)
		if x1 <= x0 {
			x1 = x0 + 1 // a verdict held briefly still shows
		}
		s.Segments = append(s.Segments, segment{X: x0, W: x1 - x0, Fill: fills[verdictClass(c.To)],
			Title: fmt.Sprintf("%s from %s", c.To, c.At.UTC().Format(time.RFC3339))})
	}
	return s
}

// timelineRow is one target's strip in the page's timeline.
type timelineRow struct {
	Target, Href string
	Strip        strip
}

// timelineOf draws every target with a change since the earliest change
// kept, in the table's order.
func timelineOf(ts []exporter.Target, all map[string][]verdictChange, now time.Time) (rows []timelineRow, from time.Time) {
	for _, cs := range all {
		if len(cs) > 0 && (from.IsZero() || cs[0].At.Before(from)) {
			from = cs[0].At
		}
	}
	for _, t := range ts {
		if cs := all[t.Key]; len(cs) > 0 {
			rows = append(rows, timelineRow{Target: t.Key, Href: targetHref(t.Key), Strip: stripOf(cs, from, now)})
		}
	}
	return rows, from
}

// targetHref is the address of a target's page.
func targetHref(key string) string { return "/target/" + key }

// targetPage is the page of one target.
type targetPage struct {
	Key, Verdict, Class, Product, Source string
	LastProbe, Remediation               string
	Findings                             []detector.Finding
	Probed                               bool // this process has probed it: the evidence below is there
	Conn                                 []fact
	Chain                                []certRow
	Trace                                []fact
	DNS                                  []dnsRow
	Strip                                strip
	Changes                              []changeRow
}

type fact struct{ Name, Value string }

type certRow struct {
	N                         int
	Subject, Issuer, SPKI     string
	NotBefore, NotAfter, SCTs string
}

type dnsRow struct {
	Resolver, Rcode, Addrs, TTL, Failure string
	System, Canary                       bool
}

type changeRow struct{ At, From, To, Class string }

func (d *Daemon) serveTarget(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	now := d.now()
	d.mu.Lock()
	var (
		rec   exporter.Target
		last  *detector.Result
		found bool
	)
	if t, ok := d.targets[key]; ok {
		rec, last, found = t.rec, t.last, true
	} else if d.cfg == nil {
		rec, found = d.restored[key]
	}
	d.mu.Unlock()
	if !found {
		http.Error(w, "no such target; the status page lists them", http.StatusNotFound)
		return
	}
	page := targetPage{Key: rec.Key, Verdict: string(rec.Verdict), Class: verdictClass(rec.Verdict),
		Product: rec.Product, Source: rec.Source, Findings: slices.Clone(rec.Findings)}
	if page.Verdict == "" {
		page.Verdict = "pending"
	}
	if !rec.LastProbe.IsZero() {
		page.LastProbe = stamp(rec.LastProbe, now)
	}
	obs := detector.Observation{Host: rec.Host, Port: rec.Port}
	if last != nil {
		obs, page.Probed = last.Obs, true
	}
	if rec.Verdict != "" {
		page.Remediation = detector.Remediation(rec.Verdict, obs, rec.Product, rec.Findings)
	}
	if page.Probed {
		page.Conn, page.Chain, page.Trace, page.DNS = connFacts(obs), chainRows(obs.TLS), traceFacts(obs.Trace), dnsRows(obs)
	}
	changes := d.changesOf(key)
	if len(changes) > 0 {
		page.Strip = stripOf(changes, changes[0].At, now)
	}
	for _, c := range slices.Backward(changes) {
		from := string(c.From)
		if from == "" {
			from = "first verdict"
		}
		page.Changes = append(page.Changes, changeRow{At: stamp(c.At, now), From: from, To: string(c.To), Class: verdictClass(c.To)})
	}
	render(w, targetTemplate, page)
}

// render executes a page template into a buffer first, so that a failure
// is an error page rather than half a page, and sets the pages' headers.
func render(w http.ResponseWriter, t *template.Template, data any) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		http.Error(w, "rendering page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(b.Bytes())
}

func connFacts(o detector.Observation) []fact {
	fs := []fact{{"Path", o.Path.String()}}
	if o.ConnectedAddr.IsValid() {
		fs = append(fs, fact{"Connected to", o.ConnectedAddr.String()})
	}
	if o.ConnectTime > 0 {
		fs = append(fs, fact{"TCP connect", o.ConnectTime.Round(time.Microsecond).String()})
	}
	if o.HandshakeTime > 0 {
		fs = append(fs, fact{"TLS handshake", o.HandshakeTime.Round(time.Microsecond).String()})
	}
	if st := o.TLS; st != nil {
		fs = append(fs, fact{"TLS", detector.VersionName(st.Version)}, fact{"Cipher", tls.CipherSuiteName(st.CipherSuite)})
		if st.ALPN != "" {
			fs = append(fs, fact{"ALPN", st.ALPN})
		}
		fs = append(fs, fact{"Public roots", verification(st.Public)}, fact{"System store", verification(st.System)})
	}
	if o.Failure != detector.FailureNone {
		fs = append(fs, fact{"Failure", strings.TrimSpace(string(o.Failure) + " " + o.FailureDetail)})
	}
	return fs
}

func verification(v detector.Verification) string {
	if v.Failure == detector.FailureNone {
		return "verifies"
	}
	return strings.TrimSpace(string(v.Failure) + ": " + v.Detail)
}

func chainRows(st *detector.TLSState) []certRow {
	if st == nil {
		return nil
	}
	var rows []certRow
	for i, c := range st.Chain {
		row := certRow{N: i, Subject: c.Subject.String(), Issuer: c.Issuer.String(), SPKI: detector.SPKIOf(c).String(),
			NotBefore: c.NotBefore.UTC().Format(time.RFC3339), NotAfter: c.NotAfter.UTC().Format(time.RFC3339), SCTs: "-"}
		if i == 0 {
			row.SCTs = "none embedded"
			if detector.HasSCT(c) {
				row.SCTs = "embedded"
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func traceFacts(tr *detector.PathTrace) []fact {
	if tr == nil {
		return nil
	}
	durs := func(ds []time.Duration) string {
		var s []string
		for _, d := range ds {
			s = append(s, d.Round(10*time.Microsecond).String())
		}
		return strings.Join(s, ", ")
	}
	var fs []fact
	if len(tr.ConnectRTTs) > 0 {
		fs = append(fs, fact{"TCP connect RTTs", durs(tr.ConnectRTTs)})
	}
	if len(tr.HelloRTTs) > 0 {
		fs = append(fs, fact{"ClientHello RTTs", durs(tr.HelloRTTs)})
	}
	if tr.MaxHops > 0 {
		hops := fmt.Sprintf("no TLS answer within %d hops", tr.MaxHops)
		if tr.HelloHops > 0 {
			hops = fmt.Sprintf("TLS answered at TTL %d (tried 1 to %d)", tr.HelloHops, tr.MaxHops)
		}
		fs = append(fs, fact{"ClientHello by TTL", hops})
	}
	if o := tr.Origin; o != nil {
		s := fmt.Sprintf("datagram with TTL %d: no answer", o.TTL)
		switch {
		case o.Expired:
			s = fmt.Sprintf("datagram with TTL %d expired at %s", o.TTL, o.From)
		case o.Reached:
			s = fmt.Sprintf("datagram with TTL %d reached the address", o.TTL)
		}
		fs = append(fs, fact{"The address itself", s})
	}
	if tr.Detail != "" {
		fs = append(fs, fact{"Note", tr.Detail})
	}
	return fs
}

func dnsRows(o detector.Observation) []dnsRow {
	var rows []dnsRow
	add := func(as []detector.DNSAnswer, canary bool) {
		for _, a := range as {
			var addrs []string
			for _, ad := range a.Addrs {
				addrs = append(addrs, ad.String())
			}
			row := dnsRow{Resolver: a.Resolver, Rcode: a.Rcode, Addrs: strings.Join(addrs, ", "), System: a.System, Canary: canary,
				Failure: strings.TrimSpace(string(a.Failure) + " " + a.Detail)}
			if a.Rcode != "" {
				row.TTL = fmt.Sprint(a.MinTTL)
			}
			if a.Source != detector.SourceDNS {
				row.Resolver += " (" + string(a.Source) + ")"
			}
			rows = append(rows, row)
		}
	}
	add(o.DNS, false)
	add(o.Canary, true)
	return rows
}
