package passive

import (
	"slices"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"golang.org/x/net/publicsuffix"
)

// Capture is the evidence a capture holds: its kinds of connection, each
// with the Case the detector judges, in the order they were first seen.
// The caller judges the cases (detector.Judge) and a renderer shows them;
// passive itself only observes.
type Capture struct {
	Groups []*Group
	// Skipped counts connections with no TLS attempt in them; Overflow
	// those beyond MaxGroups.
	Skipped, Overflow uint64
	// At is the time the capture is judged at: Analysis.Now when set,
	// else the capture's last connection, so a capture judges the same way
	// years later.
	At time.Time
}

// Cases returns one case per group, in the order of Groups.
func (c Capture) Cases() []detector.Case {
	out := make([]detector.Case, len(c.Groups))
	for i, g := range c.Groups {
		out[i] = detector.Case{Obs: g.Obs, Expect: g.Expect, Source: g.Source, Domain: registrable(g.Obs.Host)}
	}
	return out
}

// Capture finishes the groups gathered so far — each group's timings become
// its observation's medians and path trace, and its expectation is looked
// up — and returns them.
func (a *Analysis) Capture() Capture {
	c := Capture{Groups: append([]*Group(nil), a.order...), Skipped: a.skipped, Overflow: a.overflow}
	for _, g := range a.order {
		g.Obs.ConnectTime = median(g.connect)
		g.Obs.HandshakeTime = median(g.hello)
		if len(g.connect) > 0 || len(g.hello) > 0 || g.SYNACKTTL != 0 {
			// The same path judgement as active probes: the group's
			// connections are its samples.
			g.Obs.Trace = &detector.PathTrace{ConnectRTTs: g.connect, HelloRTTs: g.hello,
				SYNACKTTL: g.SYNACKTTL, ServerTTLs: g.ServerTTLs, Captured: true}
		}
		g.Expect, g.Source = detector.Expectation{}, SourcePcap
		if a.Expect != nil {
			if exp, src, ok := a.Expect(g.Obs.Host, g.Obs.Port); ok {
				g.Expect, g.Source = exp, src
			}
		}
		if g.Last.After(c.At) {
			c.At = g.Last
		}
	}
	if a.Now != nil {
		c.At = a.Now()
	}
	return c
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[len(s)/2]
}

// registrable is a host's registrable domain by the public suffix list,
// empty when it has none.
func registrable(host string) string {
	d, err := publicsuffix.EffectiveTLDPlusOne(strings.TrimSuffix(strings.ToLower(host), "."))
	if err != nil {
		return ""
	}
	return d
}
