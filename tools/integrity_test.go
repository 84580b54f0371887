package tools_test

import (
	"slices"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/tools"
)

// TestPredictAllOnlyTLS: an SSH target or the checksum database check on a
// host a tool fetches from says nothing of the tool's TLS.
func TestPredictAllOnlyTLS(t *testing.T) {
	t.Parallel()
	goTool := tools.Tool{Name: tools.Go, Hosts: []tools.Host{{Host: "sum.lab.example", Port: 443, Scheme: "https"}}}
	sumdb := detector.Result{Verdict: detector.Blocked, Obs: detector.Observation{Host: "sum.lab.example", Port: 443,
		Protocol: detector.ProtocolSumDB, SumDB: &detector.SumDBState{Name: "sum.lab.example"}}}
	tls := detector.Result{Verdict: detector.Unreachable, Obs: detector.Observation{Host: "sum.lab.example", Port: 443,
		Failure: detector.FailureRefused}}
	fs := tools.PredictAll([]tools.Tool{goTool}, []detector.Result{sumdb, tls}, tools.Context{Now: time.Now()})
	if len(fs) != 1 || len(fs[0].Predictions) != 1 {
		t.Fatalf("forecasts %+v, want one prediction, for the TLS target", fs)
	}
}

// TestPredictAllKeepsOrder: the tools are predicted at once, and the
// forecasts still come in the tools' order, the irrelevant ones left out,
// each with its own hosts' predictions in the results' order.
func TestPredictAllKeepsOrder(t *testing.T) {
	t.Parallel()
	hosts := []string{"a.lab.example", "b.lab.example", "c.lab.example"}
	var results []detector.Result
	for _, h := range hosts {
		results = append(results, detector.Result{Verdict: detector.Unreachable,
			Obs: detector.Observation{Host: h, Port: 443, Failure: detector.FailureRefused}})
	}
	var ts []tools.Tool
	var want []tools.Name
	for i, name := range []tools.Name{tools.Go, tools.Git, tools.NPM, tools.Pip, tools.Cargo, tools.Docker} {
		tool := tools.Tool{Name: name}
		if i != 2 { // npm names no host and is not installed: not relevant
			for _, h := range hosts[i%2:] {
				tool.Hosts = append(tool.Hosts, tools.Host{Host: h, Port: 443, Scheme: "https"})
			}
			want = append(want, name)
		}
		ts = append(ts, tool)
	}
	fs := tools.PredictAll(ts, results, tools.Context{Now: time.Now()})
	if len(fs) != len(want) {
		t.Fatalf("%d forecasts, want %d (%v)", len(fs), len(want), want)
	}
	for i, f := range fs {
		if f.Tool.Name != want[i] {
			t.Errorf("forecast %d is %s's, want %s's", i, f.Tool.Name, want[i])
		}
		var got []string
		for _, p := range f.Predictions {
			got = append(got, p.Host.Host)
		}
		if exp := hosts[len(hosts)-len(f.Tool.Hosts):]; !slices.Equal(got, exp) {
			t.Errorf("%s predicts for %v, want %v", f.Tool.Name, got, exp)
		}
	}
}
