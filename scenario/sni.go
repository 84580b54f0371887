package scenario

import (
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/lab"
)

// sniScenarios are filters keyed on the server name: TCP connects, and
// only the ClientHello naming the host is reset or dropped. Each is told
// from a host that is down by a control handshake to the same address
// under another name.
func sniScenarios() []Scenario {
	return []Scenario{
		{
			Name:        "sni-reset",
			Description: "a firewall resets the connection when the ClientHello names the host; other names pass",
			Build:       sniFiltered("pypi.org", lab.SNIReset, false),
			Want:        Want{Verdict: detector.Blocked, Reasons: []detector.Reason{detector.ReasonSNIReset}},
		},
		{
			Name:        "sni-drop",
			Description: "a firewall silently drops the ClientHello that names the host; other names pass",
			Build:       sniFiltered("files.pythonhosted.org", lab.SNIDrop, false),
			Want:        Want{Verdict: detector.Blocked, Reasons: []detector.Reason{detector.ReasonSNIDropped}},
		},
		{
			Name:        "sni-reset-origin-down",
			Description: "the same firewall in front of a host that is down: the handshake under another name fails too",
			Build:       sniFiltered("ghcr.io", lab.SNIReset, true),
			Want:        Want{Verdict: detector.Unreachable, Reasons: []detector.Reason{detector.ReasonUnreachable}},
		},
		{
			Name:        "every-handshake-reset",
			Description: "a broken server accepts TCP and resets every handshake, whatever the name",
			Build: func(e *Env) (Setup, error) {
				f, err := lab.NewSNIFilter(e.Origin.Addr(), lab.SNIReset)
				if err != nil {
					return Setup{}, err
				}
				e.Track(f)
				return Setup{Targets: []config.Target{e.target("registry-1.docker.io", f.Addr())}}, nil
			},
			Want: Want{Verdict: detector.Unreachable, Reasons: []detector.Reason{detector.ReasonUnreachable}},
		},
	}
}

// sniFiltered puts a filter that applies action to the hellos naming host
// in front of the genuine origin, or of a closed port when down.
func sniFiltered(host string, action lab.SNIAction, down bool) func(e *Env) (Setup, error) {
	return func(e *Env) (Setup, error) {
		origin := e.Origin.Addr()
		if down {
			var err error
			if origin, err = lab.ClosedAddr(); err != nil {
				return Setup{}, err
			}
		}
		f, err := lab.NewSNIFilter(origin, action, host)
		if err != nil {
			return Setup{}, err
		}
		e.Track(f)
		return Setup{Targets: []config.Target{e.target(host, f.Addr())}}, nil
	}
}
