package detector

import (
	"fmt"
	"time"
)

// This file holds the rule for a filter that blocks by server name: TCP
// connects, then the ClientHello naming the host is reset or swallowed. A
// host that is down can look the same, so the failure alone never decides;
// a control handshake to the same address, naming another server, does:
//
//	hello reset or closed unanswered, control answered   → sni-reset (critical): blocked
//	hello unanswered until given up, control answered    → sni-dropped (critical): blocked
//	control failed as well, or none made (connect failed) → unreachable (info)
//	hello answered in any way (alert, plain HTTP, TLS)    → judged for what the answer says

// ControlAttempt is a second handshake to the address the host was reached
// at (or through the same proxy), alike in all but the server name it
// sends. A probe makes one when the ClientHello naming the host got no
// answer at all — reset, closed, or left silent — because only a control
// tells a filter keyed on the name (the control is answered) from a host
// or path that is down (it fails too).
type ControlAttempt struct {
	SNI string // the neutral name sent instead of the host's
	// Answered says the server sent a TLS record back: a ServerHello, or
	// an alert refusing the name, which proves as well that the address
	// answers handshakes.
	Answered bool
	Failure  Failure // why no answer came, when none did
	Detail   string
	RTT      time.Duration // ClientHello to the first byte of the answer
}

// sniAction names what a filter keyed on the server name did to the
// ClientHello naming the host, and reports whether the observation shows
// one: the control to the same address was answered while the hello for
// the host was reset, closed or left unanswered. Without an answered
// control the same failure is only a host or path that is down.
func sniAction(obs Observation) (reason Reason, action string, ok bool) {
	c := obs.Control
	if obs.TLS != nil || obs.Plain != nil || c == nil || !c.Answered || c.SNI == obs.Host {
		return "", "", false
	}
	switch obs.Failure {
	case FailureReset:
		return ReasonSNIReset, "resets", true
	case FailureEOF:
		return ReasonSNIReset, "closes", true
	case FailureTimeout:
		return ReasonSNIDropped, "silently drops", true
	}
	return "", "", false
}

// sniFindings raises sni-reset or sni-dropped when a filter blocks the
// handshakes that name the host (see sniAction).
func sniFindings(obs Observation) []Finding {
	reason, action, ok := sniAction(obs)
	if !ok {
		return nil
	}
	where := "the same address"
	if obs.ConnectedAddr.IsValid() {
		where = obs.ConnectedAddr.String()
	}
	if obs.Path.Proxied() {
		where = "the same tunnel through proxy " + obs.Path.Proxy
	}
	got := "was reset"
	switch {
	case reason == ReasonSNIDropped:
		got = "got no answer in " + obs.HandshakeTime.Round(time.Millisecond).String()
	case obs.Failure == FailureEOF:
		got = "was closed unanswered"
	}
	return []Finding{{reason, Critical, fmt.Sprintf(
		"the ClientHello naming %s %s, while one naming %s sent to %s was answered in %s: a filter on the path %s TLS handshakes by server name",
		obs.Host, got, obs.Control.SNI, where, ms(obs.Control.RTT), action)}}
}
