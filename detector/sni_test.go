package detector_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// controlName stands for the neutral name a probe sends in its control.
const controlName = "c0ffee12.invalid"

// answered is a control the server answered in rtt.
func answered(rtt time.Duration) *detector.ControlAttempt {
	return &detector.ControlAttempt{SNI: controlName, Answered: true, RTT: rtt}
}

// controlFailed is a control that got no answer either.
func controlFailed(f detector.Failure, detail string) *detector.ControlAttempt {
	return &detector.ControlAttempt{SNI: controlName, Failure: f, Detail: detail}
}

// connectedAndFailed is an attempt whose TCP connection opened and whose
// handshake failed with f after took, with control beside it.
func connectedAndFailed(f detector.Failure, detail string, took time.Duration, c *detector.ControlAttempt) detector.Observation {
	o := failed(labHost, f, detail)
	o.ConnectedAddr, o.ConnectTime, o.HandshakeTime, o.Control = labAddr, 12*time.Millisecond, took, c
	return o
}

// sniTable: a filter keyed on the server name blocks only when a control
// to the same address, naming another server, was answered; every other
// failure stays unreachable.
func sniTable(p *labPKI) []classifyCase {
	genuine := p.leaf(p.publicCA, leafSpec{names: []string{labHost}, sct: true})
	clean := p.observe(labHost, p.system, genuine, p.publicCA.cert)
	const (
		reset, eof, timeout = detector.FailureReset, detector.FailureEOF, detector.FailureTimeout
		resetText, eofText  = "read tcp 10.0.0.2:40000->142.250.74.17:443: read: connection reset by peer", "EOF"
		timeoutText         = "read tcp 10.0.0.2:40000->142.250.74.17:443: i/o timeout"
	)
	sniReset, sniDropped, unreachable := detector.ReasonSNIReset, detector.ReasonSNIDropped, detector.ReasonUnreachable
	return []classifyCase{
		{name: "hello reset, control answered",
			obs:     connectedAndFailed(reset, resetText, 13*time.Millisecond, answered(14*time.Millisecond)),
			reasons: rs(sniReset), verdict: detector.Blocked},
		{name: "hello closed unanswered, control answered",
			obs:     connectedAndFailed(eof, eofText, 13*time.Millisecond, answered(14*time.Millisecond)),
			reasons: rs(sniReset), verdict: detector.Blocked},
		{name: "hello unanswered, control answered",
			obs:     connectedAndFailed(timeout, timeoutText, time.Second, answered(14*time.Millisecond)),
			reasons: rs(sniDropped), verdict: detector.Blocked},
		{name: "hello closed in a proxy's tunnel, control through it answered",
			obs: tweak(connectedAndFailed(eof, eofText, 40*time.Millisecond, answered(30*time.Millisecond)), func(o *detector.Observation) {
				o.Path = detector.Path{Kind: detector.PathProxy, Proxy: "proxy.corp.example:3128"}
			}),
			reasons: rs(sniReset), verdict: detector.Blocked},

		// The host or path is down: the control fails as well, or none was made.
		{name: "hello reset, control reset too",
			obs:     connectedAndFailed(reset, resetText, 13*time.Millisecond, controlFailed(reset, resetText)),
			reasons: rs(unreachable), verdict: detector.Unreachable},
		{name: "hello closed, control closed too",
			obs:     connectedAndFailed(eof, eofText, 13*time.Millisecond, controlFailed(eof, eofText)),
			reasons: rs(unreachable), verdict: detector.Unreachable},
		{name: "hello unanswered, control unanswered too",
			obs:     connectedAndFailed(timeout, timeoutText, 10*time.Second, controlFailed(timeout, timeoutText)),
			reasons: rs(unreachable), verdict: detector.Unreachable},
		{name: "hello unanswered, control refused",
			obs:     connectedAndFailed(timeout, timeoutText, 10*time.Second, controlFailed(detector.FailureRefused, "connect: connection refused")),
			reasons: rs(unreachable), verdict: detector.Unreachable},
		{name: "reset on connect: no hello, no control",
			obs:     failed(labHost, reset, "connecting to 142.250.74.17:443: read: connection reset by peer"),
			reasons: rs(unreachable), verdict: detector.Unreachable},
		{name: "connection refused: no control",
			obs:     failed(labHost, detector.FailureRefused, "connecting to 142.250.74.17:443: connect: connection refused"),
			reasons: rs(unreachable), verdict: detector.Unreachable},

		// An answer to the hello itself is judged for what it is, whatever a control says.
		{name: "hello refused with a TLS alert, control answered",
			obs:     connectedAndFailed(detector.FailureTLSAlert, "remote error: tls: handshake failure", 13*time.Millisecond, answered(14*time.Millisecond)),
			reasons: rs(unreachable), verdict: detector.Unreachable},
		{name: "hello answered in plain HTTP, control answered",
			obs: tweak(connectedAndFailed(detector.FailureNotTLS, "tls: first record does not look like a TLS handshake", 13*time.Millisecond, answered(14*time.Millisecond)), func(o *detector.Observation) {
				o.Plain = &detector.HTTPAnswer{Status: 200, Title: "It works!"}
			}),
			reasons: rs(detector.ReasonPlaintext), verdict: detector.Plaintext},
		{name: "a control that named the host itself proves nothing",
			obs: tweak(connectedAndFailed(reset, resetText, 13*time.Millisecond, answered(14*time.Millisecond)), func(o *detector.Observation) {
				o.Control.SNI = labHost
			}),
			reasons: rs(unreachable), verdict: detector.Unreachable},
		{name: "clean", obs: clean, verdict: detector.OK},
		{name: "handshake completed, a control made on the way is moot",
			obs:     tweak(clean, func(o *detector.Observation) { o.Control = answered(14 * time.Millisecond) }),
			verdict: detector.OK},
	}
}

func TestClassifySNI(t *testing.T) {
	t.Parallel()
	runClassifyTable(t, sniTable(newLabPKI(t)))
}

// The finding and the fix name the trigger (the server name) and the
// action, and call it policy rather than an outage.
func TestSNIDetailAndRemediation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		obs            detector.Observation
		detail, remedy []string
		reason         detector.Reason
	}{
		{obs: connectedAndFailed(detector.FailureReset, "connection reset by peer", 13*time.Millisecond, answered(14*time.Millisecond)),
			reason: detector.ReasonSNIReset,
			detail: []string{labHost, "was reset", controlName, labAddr.String(), "14.0 ms", "resets"},
			remedy: []string{labHost, "resets every TLS handshake", "network policy, not an outage"}},
		{obs: connectedAndFailed(detector.FailureEOF, "EOF", 13*time.Millisecond, answered(14*time.Millisecond)),
			reason: detector.ReasonSNIReset,
			detail: []string{labHost, "closed unanswered", controlName, "closes"},
			remedy: []string{labHost, "closes every TLS handshake", "network policy, not an outage"}},
		{obs: connectedAndFailed(detector.FailureTimeout, "i/o timeout", 1013*time.Millisecond, answered(14*time.Millisecond)),
			reason: detector.ReasonSNIDropped,
			detail: []string{labHost, "no answer in 1.013s", controlName, "silently drops"},
			remedy: []string{labHost, "silently drops every TLS handshake", "network policy, not an outage"}},
	} {
		r := detector.Judge([]detector.Case{{Obs: c.obs}}, detector.Policy{}, labNow)[0]
		if r.Verdict != detector.Blocked || len(r.Findings) != 1 || r.Findings[0].Reason != c.reason {
			t.Fatalf("%s: verdict %s, findings %+v; want blocked by %s", c.obs.Failure, r.Verdict, r.Findings, c.reason)
		}
		for _, s := range c.detail {
			if !strings.Contains(r.Findings[0].Detail, s) {
				t.Errorf("%s detail %q does not mention %q", c.reason, r.Findings[0].Detail, s)
			}
		}
		for _, s := range c.remedy {
			if !strings.Contains(r.Remediation, s) {
				t.Errorf("%s remediation %q does not mention %q", c.reason, r.Remediation, s)
			}
		}
		for _, s := range []string{"InsecureSkipVerify", "sslVerify", "strict-ssl", "GOINSECURE", "disable"} {
			if strings.Contains(r.Remediation, s) {
				t.Errorf("%s remediation %q mentions %q", c.reason, r.Remediation, s)
			}
		}
	}
}
