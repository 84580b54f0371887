//go:build linux

package netlab

import (
	"fmt"
	"time"
)

// sniBlocked is the host the SNI scenarios block. No other host of Hosts
// contains its name, so the string match of the rule catches it alone.
const sniBlocked = "pypi.org"

// sniDecideWithin bounds a whole check run in which the router drops the
// blocked host's ClientHello: well under the 10 s probe timeout of the
// lab's rules.yaml, which a probe that waited for the dropped hello would
// run into.
const sniDecideWithin = 5 * time.Second

// BlockSNI makes the router reset (action "reset") or silently drop
// ("drop") every packet forwarded from the client to port 443 that carries
// name: the ClientHello naming it, since a name is in no other packet of a
// TLS connection. It is the kernel's string match (xt_string, through
// iptables), as filters that block by server name do it; TCP itself
// connects, since SYNs carry no name.
func (l *Lab) BlockSNI(name, action string) error {
	var target []string
	switch action {
	case "reset":
		target = []string{"REJECT", "--reject-with", "tcp-reset"}
	case "drop":
		target = []string{"DROP"}
	default:
		return fmt.Errorf("netlab: SNI block: unknown action %q", action)
	}
	args := append([]string{"-A", "FORWARD", "-i", "r0", "-p", "tcp", "--dport", "443",
		"-m", "string", "--string", name, "--algo", "bm", "-j"}, target...)
	if err := inNS(l.Router, "iptables", args...); err != nil {
		return fmt.Errorf("netlab: SNI block: %w", err)
	}
	return nil
}

// sniScenario blocks sniBlocked by its server name on the router: that
// host is blocked with reason, every other host ok. With originsDown, the
// origins' server is stopped as well: their addresses refuse connections,
// which is a host that is down, not a filter, whatever the rule.
func sniScenario(name, action, reason string, originsDown bool) Scenario {
	s := Scenario{
		Name: name,
		Doc:  fmt.Sprintf("iptables string match on the router: %s every ClientHello naming %s", action, sniBlocked),
		Setup: func(l *Lab) error {
			if originsDown {
				if err := l.StopOrigins(); err != nil {
					return err
				}
			}
			if err := l.BlockSNI(sniBlocked, action); err != nil {
				return err
			}
			_, err := l.WriteRules(RulesOptions{})
			return err
		},
		Want: Want{ExitCode: 1, Verdict: "ok", Path: "direct", Within: sniDecideWithin,
			Hosts: map[string]HostWant{sniBlocked: {Verdict: "blocked", Reasons: []string{reason}}}},
	}
	if originsDown {
		s.Doc += "; the origins' server is down"
		s.Want = Want{ExitCode: 3, Verdict: "unreachable", Path: "direct"}
	}
	return s
}

var (
	sniReset           = sniScenario("sni-reset", "reset", "sni-reset", false)
	sniDrop            = sniScenario("sni-drop", "drop", "sni-dropped", false)
	sniDropOriginsDown = sniScenario("sni-drop-origins-down", "drop", "", true)
)
