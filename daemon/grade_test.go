package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/grade"
	"github.com/mitmwatch/mitmwatch/lab"
)

// names resolves the test hosts to virtual addresses the router maps.
type names map[string]netip.Addr

func (n names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := n[host]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, fmt.Errorf("test resolver: no %s", host)
}

// gradeSetup is a lab with two targets and the test hosts, all routed by
// route, and grading every 300ms with the enterprise root approved.
type gradeSetup struct {
	l        *testLab
	targets  []config.Target
	testAddr []string // the test hosts' and the control's virtual addresses
	cfg      *config.Config
	resolve  names
}

func newGradeSetup(t *testing.T) *gradeSetup {
	t.Helper()
	l := newLab(t)
	s := &gradeSetup{l: l, resolve: names{}}
	for i, h := range []string{"pkg.lab.example", "mirror.lab.example"} {
		tg := config.Target{Host: h, Port: 443, Address: fmt.Sprintf("192.0.2.%d:443", i+1), Source: "test:" + h}
		s.targets = append(s.targets, tg)
	}
	gs := config.Grade{Mode: config.GradeAuto, Interval: 300 * time.Millisecond,
		Control: &grade.TestHost{Key: "control", Host: "control.grade.example", Port: 443}}
	for i, d := range lab.Defects {
		gs.TestHosts = append(gs.TestHosts, grade.TestHost{Key: string(d), Host: string(d) + ".grade.example", Port: 443})
		s.resolve[string(d)+".grade.example"] = netip.AddrFrom4([4]byte{192, 0, 2, byte(11 + i)})
	}
	s.resolve["control.grade.example"] = netip.MustParseAddr("192.0.2.20")
	for _, a := range s.resolve {
		s.testAddr = append(s.testAddr, netip.AddrPortFrom(a, 443).String())
	}
	s.cfg = l.config(200*time.Millisecond, 2*time.Second, s.targets...)
	s.cfg.Policy.ApprovedInspection = []detector.SPKI{detector.SPKIOf(l.env.PKI.EnterpriseRoot.Cert)}
	s.cfg.Grade = gs
	return s
}

// route sends the targets and the test hosts to one server.
func (s *gradeSetup) route(to string) {
	for _, tg := range s.targets {
		s.l.router.route(tg.Address, to)
	}
	for _, a := range s.testAddr {
		s.l.router.route(a, to)
	}
}

func (s *gradeSetup) daemon(t *testing.T) (*Daemon, *logSink) {
	t.Helper()
	logs := &logSink{}
	d, err := New(Options{
		Logger: slog.New(logs),
		Load:   (&loader{cfg: s.cfg}).load,
		NewRunner: func(cfg *config.Config) *check.Runner {
			r := s.l.newRunner(cfg)
			r.Prober.Resolver = s.resolve
			return r
		},
		Jitter: func(d time.Duration) time.Duration { return d / 2 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, logs
}

func gradeOf(d *Daemon) grade.Grade {
	ics := d.Snapshot().Interceptors
	if len(ics) != 1 {
		return ""
	}
	return ics[0].Grade
}

// TestGradeInRun: behind an approved interceptor that re-signs anything
// (a forger), the daemon grades it F, marks both targets and logs the
// grade once; once the interceptor passes the broken test hosts through,
// the grade changes, the mark goes and that is logged once too.
func TestGradeInRun(t *testing.T) {
	t.Parallel()
	s := newGradeSetup(t)
	forger, err := lab.NewForger(lab.ForgerOptions{CA: s.l.env.PKI.EnterpriseRoot})
	if err != nil {
		t.Fatal(err)
	}
	s.l.env.Track(forger)
	s.route(forger.Addr())
	d, logs := s.daemon(t)
	run(t, d)

	marked := func(want bool) func() bool {
		return func() bool {
			for _, tg := range s.targets {
				r, ok := rec(d, tg.Key())
				if !ok || r.Verdict != detector.Inspected || hasReason(r.Findings, detector.ReasonInterceptorAcceptsInvalidUpstream) != want {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, d, wait, "grade F, both targets marked", func() bool { return gradeOf(d) == grade.F && marked(true)() })
	ic := d.Snapshot().Interceptors[0]
	if !ic.Approved || ic.Path != detector.PathDirect || ic.SPKI != detector.SPKIOf(s.l.env.PKI.EnterpriseRoot.Cert).String() || len(ic.Targets) != 2 {
		t.Errorf("interceptor %+v", ic)
	}
	toF := logs.find("interceptor grade changed", map[string]string{"to": "F", "from": ""})
	if len(toF) != 1 || toF[0].Level != slog.LevelWarn || toF[0].str("evidence") == "" || toF[0].str("approved") != "true" {
		t.Fatalf("grade F logged %d times: %+v", len(toF), toF)
	}
	graded := ic.LastGraded
	waitFor(t, d, wait, "graded again", func() bool {
		ics := d.Snapshot().Interceptors
		return len(ics) == 1 && ics[0].LastGraded.After(graded)
	})
	if n := len(logs.find("interceptor grade changed", nil)); n != 1 {
		t.Errorf("%d grade changes logged for one unchanged grade", n)
	}
	_, page, _ := get(t, d.Handler(nil), "GET", "/")
	// html/template writes a base64 "+" as "&#43;".
	for _, want := range []string{`<h2 id="interceptors">`, strings.ReplaceAll(ic.SPKI, "+", "&#43;"), `<td class="verdict detected">F</td>`, "<b>upstream-expired</b> re-signed"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	metrics := gatherGrade(t, d)
	if metrics["F"] != 1 || metrics["B"] != 0 || len(metrics) != len(grade.Grades) {
		t.Errorf("mitmwatch_interceptor_grade %v", metrics)
	}

	// The test hosts now reach origins whose broken chains come through
	// untouched; the control is still intercepted: passed through.
	for i, d := range lab.Defects {
		o, err := lab.NewOrigin(s.l.env.PKI, lab.OriginOptions{Leaf: func(name string) (*tls.Certificate, error) { return s.l.env.PKI.Broken(d, name) }})
		if err != nil {
			t.Fatal(err)
		}
		s.l.env.Track(o)
		s.l.router.route(fmt.Sprintf("192.0.2.%d:443", 11+i), o.Addr())
	}
	waitFor(t, d, wait, "graded B, marks gone", func() bool { return gradeOf(d) == grade.B && marked(false)() })
	if got := logs.find("interceptor grade changed", map[string]string{"from": "F", "to": "B"}); len(got) != 1 || got[0].Level != slog.LevelInfo {
		t.Errorf("change to B logged %+v", got)
	}
}

// gatherGrade returns the mitmwatch_interceptor_grade series by grade.
func gatherGrade(t *testing.T, d *Daemon) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(exporter.NewCollector(d))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "mitmwatch_interceptor_grade" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "grade" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// TestNoGradingWithoutInterception: on a path nothing intercepts the
// daemon grades nothing and no test host is ever dialled.
func TestNoGradingWithoutInterception(t *testing.T) {
	t.Parallel()
	s := newGradeSetup(t)
	s.route(s.l.env.Origin.Addr())
	d, logs := s.daemon(t)
	run(t, d)
	for _, tg := range s.targets {
		waitFor(t, d, wait, "three probes of "+tg.Key(), probedAtLeast(d, tg.Key(), 3))
	}
	if ics := d.Snapshot().Interceptors; len(ics) != 0 {
		t.Errorf("interceptors %+v", ics)
	}
	for _, a := range s.testAddr {
		if dials, _ := s.l.router.stats(a); dials != 0 {
			t.Errorf("%s dialled %d times", a, dials)
		}
	}
	if got := logs.find("interceptor grade changed", nil); len(got) != 0 {
		t.Errorf("grade changes logged: %+v", got)
	}
}
