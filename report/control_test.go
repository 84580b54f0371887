package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
)

// The control handshake appears as an optional "control" object, only on
// targets that needed one.
func TestJSONControl(t *testing.T) {
	dropped := detector.Observation{
		Host: "pypi.org", Port: 443, Path: detector.Path{Kind: detector.PathDirect},
		ConnectedAddr: netip.MustParseAddrPort("192.0.2.10:443"), ConnectTime: 2 * time.Millisecond,
		HandshakeTime: 1003 * time.Millisecond, Failure: detector.FailureTimeout, FailureDetail: "i/o timeout",
		Control: &detector.ControlAttempt{SNI: "c0ffee12.invalid", Answered: true, RTT: 2500 * time.Microsecond,
			Detail: "answered with a TLS handshake record"},
	}
	down := detector.Observation{
		Host: "ghcr.io", Port: 443, Path: detector.Path{Kind: detector.PathDirect},
		Failure: detector.FailureReset, FailureDetail: "connection reset by peer",
		Control: &detector.ControlAttempt{SNI: "c0ffee13.invalid", Failure: detector.FailureReset, Detail: "connection reset by peer"},
	}
	refused := detector.Observation{Host: "github.com", Port: 443, Failure: detector.FailureRefused}
	rs := detector.Judge([]detector.Case{{Obs: dropped}, {Obs: down}, {Obs: refused}}, detector.Policy{}, time.Now())
	var buf bytes.Buffer
	if err := JSON(&buf, rs); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Targets []struct {
			Verdict string                     `json:"verdict"`
			Control map[string]json.RawMessage `json:"control"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	raw := func(m map[string]json.RawMessage) map[string]string {
		if m == nil {
			return nil
		}
		out := map[string]string{}
		for k, v := range m {
			out[k] = string(v)
		}
		return out
	}
	want := []map[string]string{
		{"sni": `"c0ffee12.invalid"`, "answered": "true", "rtt_ms": "2.5", "detail": `"answered with a TLS handshake record"`},
		{"sni": `"c0ffee13.invalid"`, "answered": "false", "failure": `"connection_reset"`, "detail": `"connection reset by peer"`},
		nil,
	}
	for i, tg := range doc.Targets {
		if diff := cmp.Diff(want[i], raw(tg.Control)); diff != "" {
			t.Errorf("target %d control (-want +got):\n%s", i, diff)
		}
	}
	if doc.Targets[0].Verdict != "blocked" || doc.Targets[1].Verdict != "unreachable" {
		t.Errorf("verdicts %s, %s; want blocked, unreachable", doc.Targets[0].Verdict, doc.Targets[1].Verdict)
	}
}
