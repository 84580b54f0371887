package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/grade"
)

// Interceptor is an interceptor the daemon graded: who it is, its grade
// and its checks, and when it was graded last.
type Interceptor struct {
	SPKI       string // base64 SHA-256 of its CA's key
	Path       detector.PathKind
	Product    string
	Approved   bool
	Targets    []string // "host:port" behind it now
	Grade      grade.Grade
	Checks     []grade.Check
	LastGraded time.Time
}

// The grading metrics. Labels are bounded: the CA's key hash (as
// mitmwatch_chain_info has it), the path's kind, the product from the
// fingerprints' closed set, the check names from rules.yaml's keys and
// package grade, the results and grades from closed sets.
var (
	interceptorGradeDesc = prometheus.NewDesc("mitmwatch_interceptor_grade",
		"Grade of an interceptor found on this agent's paths (its CA's key and the path's kind), from handshakes through it: "+
			"one series per possible grade (A best, F re-signs invalid upstream certificates, incomplete when the test hosts could not show), "+
			`1 for the current one. approved is "true" when its CA is allow-listed as approved inspection.`,
		[]string{"ca_spki_sha256", "path", "product", "approved", "grade"}, nil)
	interceptorCheckDesc = prometheus.NewDesc("mitmwatch_interceptor_check",
		"Result of one check of an interceptor's grading, value always 1: upstream-* checks say what reached the client from a test host "+
			"whose certificate is broken (blocked, passed-through, mimicked, re-signed, not-intercepted); client-* whether it accepts what "+
			"only old clients offer; forged-* how it forges leaves.",
		[]string{"ca_spki_sha256", "path", "check", "result"}, nil)
	interceptorGradedDesc = prometheus.NewDesc("mitmwatch_interceptor_last_graded_timestamp_seconds",
		"When an interceptor was last graded, in seconds since the Unix epoch; grade.interval in rules.yaml says how often.",
		[]string{"ca_spki_sha256", "path"}, nil)
)

// collectInterceptors emits the grading metrics. Two interceptors with one
// CA key on two proxies would make the same series: the first wins.
func collectInterceptors(ch chan<- prometheus.Metric, ics []Interceptor) {
	type key struct{ spki, path string }
	seen := map[key]bool{}
	for _, ic := range ics {
		k := key{labelValue(ic.SPKI), labelValue(string(ic.Path))}
		if k.spki == "" || seen[k] {
			continue
		}
		seen[k] = true
		approved := "false"
		if ic.Approved {
			approved = "true"
		}
		for _, g := range grade.Grades {
			emit(ch, interceptorGradeDesc, prometheus.GaugeValue, boolValue(g == ic.Grade), k.spki, k.path, labelValue(ic.Product), approved, string(g))
		}
		checks := map[string]bool{}
		for _, c := range ic.Checks {
			name := labelValue(c.Name)
			if name == "" || checks[name] {
				continue
			}
			checks[name] = true
			emit(ch, interceptorCheckDesc, prometheus.GaugeValue, 1, k.spki, k.path, name, labelValue(string(c.Result)))
		}
		if !ic.LastGraded.IsZero() {
			emit(ch, interceptorGradedDesc, prometheus.GaugeValue, unixSeconds(ic.LastGraded), k.spki, k.path)
		}
	}
}
