package tools_test

import (
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
