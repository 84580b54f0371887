package detector

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// PathTrace is what was measured about the path to the connected address,
// beside the TLS handshake: where TCP and TLS are answered. A box that
// terminates TCP without decrypting (an SNI-routing proxy, peek-and-splice)
// shows a genuine chain and can only be seen here.
type PathTrace struct {
	// ConnectRTTs are TCP connect times (SYN to SYN-ACK) and HelloRTTs the
	// times from a ClientHello to the first byte of a TLS answer, one per
	// sample. Queues only ever add delay, so the minimum of each is its
	// estimate.
	ConnectRTTs []time.Duration `json:"connect_rtts,omitempty"`
	HelloRTTs   []time.Duration `json:"hello_rtts,omitempty"`

	// HelloHops is the lowest IP TTL (IPv6 hop limit) at which a
	// ClientHello, sent on a connection opened normally, got a TLS answer:
	// how many hops away whatever answers TLS is. Zero when none of TTL 1
	// to MaxHops got one; MaxHops is zero when this was not tried (or the
	// TTL could not be set).
	HelloHops int `json:"hello_hops,omitempty"`
	MaxHops   int `json:"max_hops,omitempty"`
	// Origin is a datagram sent to the connected address with TTL
	// HelloHops, to learn whether the address itself is that near.
	Origin *HopProbe `json:"origin,omitempty"`

	// SYNACKTTL and ServerTTLs are the TTLs the server's packets arrived
	// with, when a capture saw them (passive observations only).
	SYNACKTTL  uint8   `json:"synack_ttl,omitempty"`
	ServerTTLs []uint8 `json:"server_ttls,omitempty"`

	// Captured says the samples are separate connections of real traffic
	// a capture saw, not one probe's: a split they all show is the path's.
	Captured bool `json:"captured,omitempty"`

	// Detail says why a part was not measured, for the report.
	Detail string `json:"detail,omitempty"`
}

// HopProbe is the fate of a datagram sent with a given TTL: it expired at
// a router on the way (the address is farther), or reached the address
// (which answered port unreachable), or nothing came back.
type HopProbe struct {
	TTL     int        `json:"ttl"`
	Expired bool       `json:"expired,omitempty"` // an ICMP time-exceeded came back
	Reached bool       `json:"reached,omitempty"` // the address itself answered
	From    netip.Addr `json:"from,omitzero"`     // who sent the ICMP message
}

// The RTT split judges a path only with enough samples and a gap no server
// explains. A server sends its ServerHello with the rest of its first flight,
// after signing it: a few milliseconds at most for RSA-4096, so an extra
// 15 ms, three times the TCP round trip, is a second leg behind whatever
// answered the SYN.
//
// Timing alone — no hop or TTL to say where the answers came from — needs
// minTimingSamples on each side and stays a warning (rtt-split) that sets
// no verdict: a busy machine or server delays a hello too. It becomes
// tcp-terminated-nearby, a transparent proxy, when the TTL-limited hellos
// found what answers TLS within max_hops, when a capture's TTLs changed,
// or when the samples are several connections of a capture.
const (
	minSplitSamples  = 2
	minTimingSamples = 3
	splitMinGap      = 15 * time.Millisecond
	splitMinRatio    = 3
)

// pathFindings judges the path trace. Both signals imply a transparent
// proxy: on their own they say nothing about TLS integrity, and a forged
// chain found beside them makes the verdict intercepted anyway.
func pathFindings(obs Observation) []Finding {
	tr := obs.Trace
	if tr == nil || obs.Path.Proxied() {
		// An explicit proxy terminates TCP by design: timings through it
		// say nothing about the path beyond.
		return nil
	}
	var out []Finding
	// When the hello was answered at the hop where the address itself
	// answers the datagram, the gap is the server's own time (a loaded
	// server looks like a relay by timing alone).
	byAddress := tr.Origin != nil && tr.Origin.Reached && tr.Origin.TTL == tr.HelloHops && tr.HelloHops > 0
	// When the TTL-limited hellos found nothing answering within MaxHops,
	// whatever relays sits beyond the hops where this network's middleboxes
	// are: a server's own front end (an L4 load balancer), or a server too
	// busy to answer them in time. Neither is on this side of the path.
	farAway := tr.MaxHops > 0 && tr.HelloHops == 0
	if c, h, ok := tr.Split(); ok && !byAddress && !farAway {
		timing := fmt.Sprintf("TCP was answered in %s but TLS in %s (minimum of %d and %d samples)", ms(c), ms(h), len(tr.ConnectRTTs), len(tr.HelloRTTs))
		enough := len(tr.ConnectRTTs) >= minTimingSamples && len(tr.HelloRTTs) >= minTimingSamples
		switch {
		case tr.MaxHops > 0, tr.TTLChanged(), tr.Captured && enough:
			out = append(out, Finding{ReasonTCPTerminatedNearby, Warning, fmt.Sprintf(
				"%s: something close answers the connection and relays the TLS to a server %s farther away%s",
				timing, ms(h-c), corroboration(tr))})
		case enough:
			out = append(out, Finding{ReasonRTTSplit, Warning, timing +
				": by timing alone something close may answer the connection; with no hop or TTL evidence (TTL-limited hellos off or impossible here) a busy machine or server can look the same, so this sets no verdict"})
		}
	}
	if o := tr.Origin; tr.HelloHops > 0 && o != nil && o.Expired && o.TTL >= tr.HelloHops {
		from := ""
		if o.From.IsValid() {
			from = " at " + o.From.String()
		}
		out = append(out, Finding{ReasonTLSAnsweredEarly, Warning, fmt.Sprintf(
			"a ClientHello sent with TTL %d got a TLS answer, but a datagram to the same address with TTL %d expired%s: the TLS answer comes from within %d hops, before the address it was sent to",
			tr.HelloHops, o.TTL, from, tr.HelloHops)})
	}
	if tr.TTLChanged() {
		out = append(out, Finding{ReasonServerTTLChanged, Info, fmt.Sprintf(
			"the SYN-ACK arrived with TTL %d and later packets of the server with %v: two boxes at different distances spoke for it (a SYN proxy in front of the server does this too)",
			tr.SYNACKTTL, tr.ServerTTLs)})
	}
	return out
}

// corroboration says what beside timing places the relay, where the
// trace's hop count (hello_hops) does not already say it.
func corroboration(tr *PathTrace) string {
	switch {
	case tr.MaxHops > 0:
		return ""
	case tr.TTLChanged():
		return " (the server's packets arrived with changing TTLs)"
	}
	return fmt.Sprintf(" (seen on %d connections of a capture)", min(len(tr.ConnectRTTs), len(tr.HelloRTTs)))
}

// TTLChanged reports whether a capture saw the server's later packets
// arrive with another TTL than its SYN-ACK.
func (tr *PathTrace) TTLChanged() bool {
	return tr.SYNACKTTL != 0 && slices.ContainsFunc(tr.ServerTTLs, func(t uint8) bool { return t != tr.SYNACKTTL })
}

// Split returns the estimated connect and hello round trips, and whether
// the second is so much longer than the first that something nearer than
// the TLS server answers TCP. Probes use it to decide whether to look
// closer.
func (tr *PathTrace) Split() (connect, hello time.Duration, split bool) {
	if len(tr.ConnectRTTs) < minSplitSamples || len(tr.HelloRTTs) < minSplitSamples {
		return 0, 0, false
	}
	connect, hello = slices.Min(tr.ConnectRTTs), slices.Min(tr.HelloRTTs)
	split = hello-connect >= splitMinGap && hello >= splitMinRatio*connect
	return connect, hello, split
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
