// Package check runs one round of mitmwatch: it probes every target
// concurrently, each within its timeout, and judges the observations
// together (some signals only show across hosts). `mitmwatch check` prints
// one round; the daemon runs rounds on a schedule.
package check

import (
	"context"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/probe"
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
}

// Result is a judged target together with where the target came from.
type Result struct {
	detector.Result
	Source string
}

// Run probes targets and returns one result per target, in target order.
func (r *Runner) Run(ctx context.Context, targets []config.Target) []Result {
	obs := make([]detector.Observation, len(targets))
	sem := make(chan struct{}, max(r.Concurrency, 1))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				obs[i] = canceled(t, ctx.Err())
				return
			}
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, r.Timeout)
			defer cancel()
			obs[i] = r.Prober.Probe(pctx, probe.Target{Host: t.Host, Port: t.Port, Address: t.Address})
			if r.Progress != nil {
				mu.Lock()
				done++
				r.Progress(done, len(targets), t.Host)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	cases := make([]detector.Case, len(targets))
	for i, t := range targets {
		cases[i] = detector.Case{Obs: obs[i], Expect: t.Expect}
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	judged := detector.Judge(cases, r.Policy, now())
	out := make([]Result, len(targets))
	for i, j := range judged {
		out[i] = Result{Result: j, Source: targets[i].Source}
	}
	return out
}

func canceled(t config.Target, err error) detector.Observation {
	return detector.Observation{Host: t.Host, Port: t.Port, Path: detector.Path{Kind: "direct"},
		Failure: probe.Classify(err), FailureDetail: "not probed: " + err.Error()}
}

// Exit codes of `mitmwatch check`, a contract for CI gates.
const (
	ExitClean        = 0 // every target ok or inspected
	ExitDetected     = 1 // something is in the way
	ExitUsage        = 2 // bad flags or configuration
	ExitInconclusive = 3 // some targets unreachable, nothing detected
)

// ExitCode summarises a round for a CI gate.
func ExitCode(results []Result) int {
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
