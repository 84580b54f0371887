package grade

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

// judged runs detector over attempts, as a round does.
func judged(pol detector.Policy, attempts ...*Attempt) []detector.Result {
	var cases []detector.Case
	for _, a := range attempts {
		cases = append(cases, detector.Case{Obs: a.Obs})
	}
	return detector.Judge(cases, pol, time.Now())
}

// TestFindJudgeAnnotate follows one round: two targets behind an approved
// interceptor on the direct path and one behind the same CA on a proxy,
// a clean target; the direct one re-signs an expired test host.
func TestFindJudgeAnnotate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	approve := detector.Policy{ApprovedInspection: []detector.SPKI{detector.SPKIOf(e.ca.Cert)}}
	gh := e.done("github.com", direct, e.issue(e.ca, lab.LeafOptions{}, "github.com"), nil)
	static := e.done("static.crates.io", direct, e.issue(e.ca, lab.LeafOptions{}, "static.crates.io"), nil)
	index := e.done("index.crates.io", proxy, e.issue(e.ca, lab.LeafOptions{}, "index.crates.io"), nil)
	clean := e.done("ghcr.io", direct, e.issue(e.pki.PublicIntermediate, lab.LeafOptions{}, "ghcr.io"), nil)
	results := judged(approve, gh, static, index, clean)
	for i, r := range results[:3] {
		if r.Verdict != detector.Inspected {
			t.Fatalf("target %d: verdict %s, want inspected (%v)", i, r.Verdict, r.Findings)
		}
	}

	found := Find(results)
	type summary struct {
		Path     detector.Path
		Approved bool
		Targets  []string
		Leaves   []string
	}
	var got []summary
	for _, f := range found {
		s := summary{Path: f.Path, Approved: f.Approved, Targets: f.Targets}
		for _, l := range f.Leaves {
			s.Leaves = append(s.Leaves, l.Host)
		}
		if f.SPKI != detector.SPKIOf(e.ca.Cert) || f.CA.Subject.CommonName != e.ca.Cert.Subject.CommonName {
			t.Errorf("found CA %s, want the enterprise root", f.CA.Subject)
		}
		got = append(got, s)
	}
	want := []summary{
		{Path: direct, Approved: true, Targets: []string{"github.com:443", "static.crates.io:443"}, Leaves: []string{"github.com", "static.crates.io"}},
		{Path: proxy, Approved: true, Targets: []string{"index.crates.io:443"}, Leaves: []string{"index.crates.io"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Find (-want +got):\n%s", diff)
	}

	expired := e.done("expired.grade.example", direct, e.issue(e.ca, lab.LeafOptions{}, "expired.grade.example"), ok200)
	control := e.done("control.grade.example", direct, e.issue(e.ca, lab.LeafOptions{}, "control.grade.example"), ok200)
	refused := failed("github.com", direct, detector.FailureTLSAlert, nil)
	var client []Probe
	for _, cc := range ClientChecks {
		client = append(client, Probe{Check: cc.Name, Attempt: refused})
	}
	obs := Observed{Control: control, Upstream: []Probe{{Check: "upstream-expired", Attempt: expired}}, Client: client}
	ics := []Interceptor{Judge(found[0], obs), Judge(found[1], obs)}
	if ics[0].Grade != F || !ics[0].ReSigns() {
		t.Errorf("direct interceptor: grade %s, checks %v; want F", ics[0].Grade, ics[0].Checks)
	}
	// The proxy's interceptor never saw the test hosts: they went direct.
	if ics[1].Grade != Incomplete || ics[1].ReSigns() {
		t.Errorf("proxy interceptor: grade %s, checks %v; want incomplete", ics[1].Grade, ics[1].Checks)
	}
	var names []string
	for _, c := range ics[0].Checks {
		names = append(names, c.Name)
	}
	wantNames := []string{"upstream-expired", CheckTLS10, CheckTLS11, CheckWeakCiphers, CheckNoForwardSecrecy,
		CheckSignature, CheckKey, CheckValidity, CheckKeyReuse}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}

	annotated := Annotate(results, ics)
	for i, r := range annotated {
		has := slices.ContainsFunc(r.Findings, func(f detector.Finding) bool {
			return f.Reason == detector.ReasonInterceptorAcceptsInvalidUpstream && f.Severity == detector.Critical
		})
		if has != (i < 2) {
			t.Errorf("%s: finding present %v, want %v", r.Obs.Host, has, i < 2)
		}
		if r.Verdict != results[i].Verdict {
			t.Errorf("%s: verdict changed to %s", r.Obs.Host, r.Verdict)
		}
		if detector.VerdictOf(r.Findings) != r.Verdict {
			t.Errorf("%s: verdict %s no longer follows from the findings", r.Obs.Host, r.Verdict)
		}
	}
	if len(results[0].Findings) == len(annotated[0].Findings) {
		t.Error("Annotate changed its input")
	}
	d := annotated[0].Findings[len(annotated[0].Findings)-1].Detail
	for _, s := range []string{"approved interceptor", "direct", "Example Corp Inspection Root", detector.SPKIOf(e.ca.Cert).String(), "test hosts: expired"} {
		if !strings.Contains(d, s) {
			t.Errorf("finding detail lacks %q: %s", s, d)
		}
	}
	again := Annotate(annotated, ics)
	if len(again[0].Findings) != len(annotated[0].Findings) {
		t.Error("Annotate added the finding twice")
	}
}

// TestFindSkips: nothing intercepted, nothing to grade; and a leaf
// presented alone that no store verifies names no CA.
func TestFindSkips(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clean := e.done("ghcr.io", direct, e.issue(e.pki.PublicIntermediate, lab.LeafOptions{}, "ghcr.io"), nil)
	unknown, err := lab.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	alone := e.done("github.com", direct, e.issue(unknown.ProductRoot, lab.LeafOptions{}, "github.com"), nil)
	res := judged(detector.Policy{}, clean, alone)
	if res[1].Verdict != detector.Intercepted {
		t.Fatalf("a leaf named after a product: verdict %s, want intercepted", res[1].Verdict)
	}
	if f := Find(res); len(f) != 0 {
		t.Errorf("Find = %+v, want nothing", f)
	}
}

func TestFromControl(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	control := e.done("control.grade.example", direct, e.issue(e.ca, lab.LeafOptions{}, "control.grade.example"), ok200)
	found := FromControl(control, detector.Policy{}, time.Now())
	if len(found) != 1 || found[0].SPKI != detector.SPKIOf(e.ca.Cert) || len(found[0].Targets) != 0 || len(found[0].Leaves) != 1 {
		t.Fatalf("FromControl = %+v, want the enterprise root behind no target", found)
	}
	clean := e.done("control.grade.example", direct, e.issue(e.pki.PublicIntermediate, lab.LeafOptions{}, "control.grade.example"), ok200)
	if found := FromControl(clean, detector.Policy{}, time.Now()); len(found) != 0 {
		t.Errorf("a clean control reveals %+v", found)
	}
	if FromControl(nil, detector.Policy{}, time.Now()) != nil {
		t.Error("no control, yet an interceptor")
	}
}
