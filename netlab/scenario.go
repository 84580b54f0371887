//go:build linux

package netlab

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Scenario is one situation of the lab, as data: what to set up on a fresh
// Lab, and what `mitmwatch check -o json` must then report for every target.
type Scenario struct {
	Name  string
	Doc   string
	Delay time.Duration // one way, between router and internet (Options.Delay)
	Setup func(*Lab) error
	Want  Want
}

// Want is the expected outcome; every target of the lab shares it, except
// where Hosts says otherwise.
type Want struct {
	ExitCode int
	Verdict  string
	// Product is the product mitmwatch names ("" when it names none).
	Product string
	// Path is "direct" or "proxy".
	Path string
	// Behaviour is the product fingerprints.IdentifyByBehaviour names from
	// the chains the client is presented ("" when none).
	Behaviour string
	// LocalConnect, with a Delay, says that TCP is answered on the near
	// side of the delayed link (a transparent proxy on the router): the
	// connection is set up in less than the delay while the TLS handshake
	// still takes a full round trip across it. Without it, both take one.
	LocalConnect bool
	// Reasons are finding reasons (the "reason" of the report's findings)
	// every target must have, among any others.
	Reasons []string
	// Hosts overrides Verdict and Reasons for the hosts it names (the one
	// a filter blocks, say); the other hosts share the ones above.
	Hosts map[string]HostWant
	// Within bounds how long the whole check may take; zero is no bound.
	Within time.Duration
	// Grade is what grading must report of the scenario's interceptor;
	// nil when nothing intercepts, and then nothing may be graded and no
	// test host may see a handshake.
	Grade *WantGrade
}

// HostWant is what one host must show where it differs from the rest.
type HostWant struct {
	Verdict string
	Reasons []string
}

// For is the expectation for host: w with Hosts' override applied.
func (w Want) For(host string) Want {
	if h, ok := w.Hosts[host]; ok {
		w.Verdict, w.Reasons = h.Verdict, h.Reasons
	}
	return w
}

// MissingReasons lists the reasons the target's findings lack of those
// wanted for its host.
func (w Want) MissingReasons(t TargetReport) []string {
	var out []string
	for _, r := range w.For(t.Host).Reasons {
		if !slices.Contains(t.Reasons(), r) {
			out = append(out, r)
		}
	}
	return out
}

// Scenarios are the lab's situations, in the order the tests start them.
var Scenarios = slices.Concat(
	[]Scenario{clean, originsDown},
	mitmproxyTransparent,
	intercepting("mitmproxy-explicit", "mitmdump --mode regular as the client's HTTPS_PROXY",
		func(l *Lab) (*Interceptor, error) { return l.StartMitmproxy(false) },
		Want{Product: "mitmproxy", Path: "proxy", Behaviour: "mitmproxy", Grade: &mitmproxyGrade}),
	intercepting("sslsplit-transparent", "sslsplit behind an nftables redirect, CA named by the administrator",
		func(l *Lab) (*Interceptor, error) { return l.StartSSLsplit() },
		Want{Product: "sslsplit", Path: "direct", Behaviour: "sslsplit", Grade: &sslsplitGrade}),
	intercepting("squid-transparent", "squid ssl-bump (intercept port, dynamic certificates) behind an nftables redirect",
		func(l *Lab) (*Interceptor, error) { return l.StartSquid(true) },
		Want{Product: "squid", Path: "direct", Behaviour: "squid", Grade: &squidGrade}),
	intercepting("squid-explicit", "squid ssl-bump (dynamic certificates) as the client's HTTPS_PROXY",
		func(l *Lab) (*Interceptor, error) { return l.StartSquid(false) },
		Want{Product: "squid", Path: "proxy", Behaviour: "squid", Grade: &squidGrade}),
	gradeScenarios,
	[]Scenario{
		delayed(clean, 50*time.Millisecond, false),
		delayed(mitmproxyTransparent[0], 50*time.Millisecond, true),
		delayed(haproxyTransparent, 50*time.Millisecond, true),
	},
	[]Scenario{sniReset, sniDrop, sniDropOriginsDown},
)

var (
	clean = Scenario{
		Name:  "clean",
		Doc:   "no middlebox: the router only forwards",
		Setup: func(l *Lab) error { _, err := l.WriteRules(RulesOptions{}); return err },
		Want:  Want{ExitCode: 0, Verdict: "ok", Path: "direct"},
	}
	originsDown = Scenario{
		Name: "origins-down",
		Doc:  "the origins' server is down: their addresses answer with a reset, DNS still answers",
		Setup: func(l *Lab) error {
			if err := l.StopOrigins(); err != nil {
				return err
			}
			_, err := l.WriteRules(RulesOptions{})
			return err
		},
		Want: Want{ExitCode: 3, Verdict: "unreachable", Path: "direct"},
	}
	mitmproxyTransparent = intercepting("mitmproxy-transparent", "mitmdump --mode transparent behind an nftables redirect",
		func(l *Lab) (*Interceptor, error) { return l.StartMitmproxy(true) },
		Want{Product: "mitmproxy", Path: "direct", Behaviour: "mitmproxy", Grade: &mitmproxyGrade})
	// haproxyTransparent decrypts nothing: the chain is the origin's, so
	// no certificate check sees it and no product is named. Only the path
	// gives it away: TCP is answered on the router and the TLS handshake
	// beyond it, and a ClientHello whose TTL runs out before the origin is
	// answered all the same. Its scenario is the delayed one, where the
	// timings split.
	haproxyTransparent = Scenario{
		Name: "haproxy-transparent",
		Doc:  "haproxy in TCP mode behind an nftables redirect, routing by SNI to the genuine origin (no decryption)",
		Setup: func(l *Lab) error {
			ic, err := l.StartHAProxy()
			if err != nil {
				return err
			}
			l.Interceptor = ic
			_, err = l.WriteRules(RulesOptions{})
			return err
		},
		Want: Want{ExitCode: 1, Verdict: "transparent-proxy", Path: "direct",
			Reasons: []string{"tcp-terminated-nearby", "tls-answered-before-origin"}},
	}
)

// delayed is s with d of one-way delay between router and internet;
// localConnect says whether a middlebox on the router answers TCP.
func delayed(s Scenario, d time.Duration, localConnect bool) Scenario {
	s.Name += "-delayed"
	s.Doc += fmt.Sprintf("; %s each way between router and internet", d)
	s.Delay = d
	s.Want.LocalConnect = localConnect
	return s
}

// intercepting returns two scenarios with an interceptor on the router
// whose CA the client's system store trusts (the public store does not):
// NAME, where mitmwatch must report it intercepted (exit 1), and
// NAME-approved, with its CA allow-listed in
// allow.inspection_ca_spki_sha256, where it must report it inspected
// (exit 0, or 1 when its grade is F: it re-signs invalid certificates).
// want gives the rest.
func intercepting(name, doc string, start func(*Lab) (*Interceptor, error), want Want) []Scenario {
	setup := func(approve bool) func(*Lab) error {
		return func(l *Lab) error {
			ic, err := start(l)
			if err != nil {
				return err
			}
			l.Interceptor = ic
			opts := RulesOptions{SystemExtra: [][]byte{ic.CAPEM}}
			if approve {
				opts.Approve = append(opts.Approve, ic.CA)
			}
			if ic.Proxy != "" {
				l.ClientEnv = append(l.ClientEnv, "HTTPS_PROXY="+ic.Proxy)
			}
			_, err = l.WriteRules(opts)
			return err
		}
	}
	intercepted, inspected := want, want
	intercepted.ExitCode, intercepted.Verdict = 1, "intercepted"
	inspected.ExitCode, inspected.Verdict = 0, "inspected"
	if want.Grade != nil && want.Grade.Grade == "F" {
		inspected.ExitCode = 1
	}
	return []Scenario{
		{Name: name, Doc: doc, Setup: setup(false), Want: intercepted},
		{Name: name + "-approved", Doc: doc + "; its CA allow-listed as approved inspection",
			Setup: setup(true), Want: inspected},
	}
}

// TimingProblem says how a target's timings contradict the scenario's
// delay, "" when they agree or the scenario has none. One round trip
// across the delayed link is 2×Delay; a tenth of it is allowed for slack.
func (s Scenario) TimingProblem(t TargetReport) string {
	if s.Delay <= 0 {
		return ""
	}
	rtt := float64(2*s.Delay) / float64(time.Millisecond)
	switch {
	case s.Want.LocalConnect && t.ConnectMS >= rtt/2:
		return fmt.Sprintf("TCP connect took %.1f ms, want under %.1f ms: answered beyond the router", t.ConnectMS, rtt/2)
	case !s.Want.LocalConnect && t.ConnectMS < 0.9*rtt:
		return fmt.Sprintf("TCP connect took %.1f ms, want a round trip (%.0f ms) or more", t.ConnectMS, rtt)
	case t.HandshakeMS < 0.9*rtt:
		return fmt.Sprintf("TLS handshake took %.1f ms, want a round trip (%.0f ms) or more", t.HandshakeMS, rtt)
	}
	return ""
}

// Find returns the scenario called name.
func Find(name string) (Scenario, error) {
	for _, s := range Scenarios {
		if s.Name == name {
			return s, nil
		}
	}
	return Scenario{}, fmt.Errorf("netlab: no scenario %q", name)
}

// Up builds a Lab and sets up the scenario in it; on error nothing is left.
func Up(s Scenario) (*Lab, error) {
	l, err := New(Options{Delay: s.Delay})
	if err != nil {
		return nil, err
	}
	l.Scenario = s.Name
	if err := s.Setup(l); err != nil {
		return nil, errors.Join(fmt.Errorf("netlab: scenario %s: %w", s.Name, err), l.Close())
	}
	return l, l.record.save(l)
}
