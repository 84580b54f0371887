// Package check runs one round of mitmwatch: it probes every target
// concurrently, each within its timeout, and judges the observations
// together (some signals only show across hosts). `mitmwatch check` prints
// one round; the daemon runs rounds on a schedule.
package check

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/probe"
	"github.com/mitmwatch/mitmwatch/sshprobe"
	"github.com/mitmwatch/mitmwatch/sumdb"
	"golang.org/x/net/publicsuffix"
)

// Runner holds what a round needs. Progress, when set, is told of each
// finished probe (calls are serialised).
type Runner struct {
	Prober      *probe.Prober
	Policy      detector.Policy
	Concurrency int           // at least 1
	Timeout     time.Duration // per target
	Now         func() time.Time
	Progress    func(done, total int, host string)
	// DNS, when set, resolves targets through the system's and reference
	// resolvers; nil leaves resolution to the prober.
	DNS *DNS
	// SSH probes the targets that speak SSH, and SumDB checks the Go
	// checksum database targets; nil observes them as not probed.
	SSH   *sshprobe.Prober
	SumDB *sumdb.Checker
}

// Run probes targets and returns one result per target, in target order.
func (r *Runner) Run(ctx context.Context, targets []config.Target) []detector.Result {
	return r.Judge(targets, r.Observe(ctx, targets))
}

// Observe probes targets concurrently, at most Concurrency at a time, each
// within Timeout, and returns one observation per target. Cancelling ctx
// ends the round early; targets not reached are observed as not probed.
// Targets with the same key are one probe, observed once for each.
func (r *Runner) Observe(ctx context.Context, targets []config.Target) []detector.Observation {
	rd := r.Start(ctx)
	rd.Add(targets...)
	probed, obs := rd.Wait()
	byKey := make(map[string]detector.Observation, len(probed))
	for i, t := range probed {
		byKey[t.Key()] = obs[i]
	}
	out := make([]detector.Observation, len(targets))
	for i, t := range targets {
		out[i] = byKey[t.Key()]
	}
	return out
}

// observe probes one target within the timeout: through the resolvers when
// DNS is set and the target is resolved locally, else through the prober.
// An IP literal is dialled as it is, as build tools do: no resolver is
// asked about it, so it carries no DNS answers and no canary.
func (r *Runner) observe(ctx context.Context, t config.Target) detector.Observation {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	if t.Protocol != detector.ProtocolTLS {
		return r.observeIntegrity(ctx, t)
	}
	pt := probe.Target{Host: t.Host, Port: t.Port, Address: t.Address}
	if ip, ok := ipLiteral(t); ok {
		pt.Addrs = []netip.Addr{ip}
	}
	if r.resolves(t) {
		return r.DNS.observe(ctx, r.Prober, pt, t.Expect, r.Policy)
	}
	return r.Prober.Probe(ctx, pt)
}

// resolves reports whether t is resolved through the configured resolvers:
// not when its address is fixed or its host an address, nor when a proxy
// resolves it.
func (r *Runner) resolves(t config.Target) bool {
	if _, ok := ipLiteral(t); ok || t.Protocol != detector.ProtocolTLS {
		return false
	}
	return r.DNS != nil && t.Address == "" && !r.Prober.Proxied(probe.Target{Host: t.Host, Port: t.Port})
}

// ipLiteral returns the address a target's host is, when it is one.
func ipLiteral(t config.Target) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(t.Host)
	return ip, err == nil
}

// JudgeAmong judges one target's observation with the other targets'
// latest observations as context for the signals that show across hosts.
func (r *Runner) JudgeAmong(c detector.Case, others []*detector.Case) detector.Result {
	return detector.JudgeAmong(c, others, r.Policy, r.now())
}

// Case is what is judged of target t: obs beside t's expectations and
// source.
func Case(t config.Target, obs detector.Observation) detector.Case {
	return detector.Case{Obs: obs, Expect: t.Expect, Source: t.Source, Domain: Registrable(t.Host)}
}

// Registrable is a host's registrable domain by the public suffix list
// (eTLD+1), empty when it has none (an IP literal, a public suffix).
func Registrable(host string) string {
	d, err := publicsuffix.EffectiveTLDPlusOne(strings.TrimSuffix(strings.ToLower(host), "."))
	if err != nil {
		return ""
	}
	return d
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Judge classifies observations of targets (in the same order) together,
// since some signals only show across hosts.
func (r *Runner) Judge(targets []config.Target, obs []detector.Observation) []detector.Result {
	cases := make([]detector.Case, len(targets))
	for i, t := range targets {
		cases[i] = Case(t, obs[i])
	}
	return detector.Judge(cases, r.Policy, r.now())
}

func canceled(t config.Target, err error) detector.Observation {
	return detector.Observation{Host: t.Host, Port: t.Port, Protocol: t.Protocol, Path: detector.Path{Kind: detector.PathDirect},
		Failure: detector.FailureOf(err), FailureDetail: "not probed: " + err.Error()}
}

// Exit codes of `mitmwatch check`, a contract for CI gates.
const (
	ExitClean        = 0 // every target ok or inspected
	ExitDetected     = 1 // something is in the way
	ExitUsage        = 2 // bad flags or configuration
	ExitInconclusive = 3 // some targets unreachable, nothing detected
)

// ExitCode summarises a round for a CI gate.
func ExitCode(results []detector.Result) int {
	code := ExitClean
	for _, r := range results {
		switch {
		case r.Verdict.Detected():
			return ExitDetected
		case r.Verdict == detector.Unreachable:
			code = ExitInconclusive
		}
	}
	return code
}
