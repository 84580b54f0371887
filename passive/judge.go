package passive

import (
	"cmp"
	"slices"
	"time"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
)

// Report is a judged capture.
type Report struct {
	// Results hold one entry per host, port and path: the most severe
	// verdict among its connections, so that one intercepted connection
	// among a hundred clean ones shows. A connection the capture did not
	// see to its end counts only when nothing better is known.
	Results []check.Result
	// Groups are the kinds of connection seen, each judged on its own.
	Groups []*Group
	// Skipped counts connections with no TLS attempt in them; Overflow
	// those beyond MaxGroups.
	Skipped, Overflow uint64
}

// Report judges every group with detector.Judge and picks each host's
// verdict.
func (a *Analysis) Report() Report {
	cases := make([]detector.Case, len(a.order))
	var now time.Time
	for i, g := range a.order {
		g.Obs.ConnectTime = median(g.connect)
		g.Obs.HandshakeTime = median(g.hello)
		if len(g.connect) > 0 || len(g.hello) > 0 || g.SYNACKTTL != 0 {
			// The same path judgement as active probes: the group's
			// connections are its samples.
			g.Obs.Trace = &detector.PathTrace{ConnectRTTs: g.connect, HelloRTTs: g.hello,
				SYNACKTTL: g.SYNACKTTL, ServerTTLs: g.ServerTTLs}
		}
		exp, src := a.expect(g.Obs.Host, g.Obs.Port)
		g.Source = src
		cases[i] = detector.Case{Obs: g.Obs, Expect: exp}
		if g.Last.After(now) {
			now = g.Last
		}
	}
	if a.Now != nil {
		now = a.Now()
	}
	judged := detector.Judge(cases, a.Policy, now)
	for i, r := range judged {
		g := a.order[i]
		g.Verdict, g.Product, g.Findings = r.Verdict, r.Product, r.Findings
		judged[i] = r
	}

	type hostKey struct {
		host string
		port int
		path detector.Path
	}
	best := map[hostKey]int{}
	var keys []hostKey
	for i, g := range a.order {
		k := hostKey{g.Obs.Host, g.Obs.Port, g.Obs.Path}
		j, ok := best[k]
		if !ok {
			keys = append(keys, k)
			best[k] = i
			continue
		}
		if severity(judged[i].Verdict) < severity(judged[j].Verdict) {
			best[k] = i
		}
	}
	rep := Report{Skipped: a.skipped, Overflow: a.overflow, Groups: slices.Clone(a.order)}
	for _, k := range keys {
		i := best[k]
		rep.Results = append(rep.Results, check.Result{Result: judged[i], Source: a.order[i].Source})
	}
	slices.SortStableFunc(rep.Results, func(x, y check.Result) int {
		return cmp.Or(cmp.Compare(x.Obs.Host, y.Obs.Host), cmp.Compare(x.Obs.Port, y.Obs.Port),
			cmp.Compare(x.Obs.Path.String(), y.Obs.Path.String()))
	})
	slices.SortStableFunc(rep.Groups, func(x, y *Group) int {
		return cmp.Or(cmp.Compare(x.Obs.Host, y.Obs.Host), cmp.Compare(x.Obs.Port, y.Obs.Port),
			cmp.Compare(severity(x.Verdict), severity(y.Verdict)), cmp.Compare(y.Count, x.Count))
	})
	return rep
}

// severity ranks verdicts for picking a host's verdict: detector's order,
// except that an unfinished observation (unreachable) ranks below ok.
func severity(v detector.Verdict) int {
	if v == detector.Unreachable {
		return len(detector.Verdicts) + 1
	}
	return slices.Index(detector.Verdicts, v)
}

// expect finds the target that names host: on the same port first, else
// any port (a capture may show a host on a lab or mirror port).
func (a *Analysis) expect(host string, port int) (detector.Expectation, string) {
	var byHost *config.Target
	for i, t := range a.Targets {
		if t.Host != host {
			continue
		}
		if t.Port == port {
			return t.Expect, t.Source
		}
		if byHost == nil {
			byHost = &a.Targets[i]
		}
	}
	if byHost != nil {
		return byHost.Expect, byHost.Source
	}
	return detector.Expectation{}, SourcePcap
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
