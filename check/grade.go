package check

import (
	"context"
	"net"
	"strconv"
	"sync"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/grade"
	"github.com/mitmwatch/mitmwatch/probe"
)

// Grade grades the interceptors a round's results show (grade.Find) with
// one more round of handshakes through the same paths: see GradeFound.
// targets are the round's, in the order of results.
func (r *Runner) Grade(ctx context.Context, targets []config.Target, results []detector.Result, s config.Grade) []grade.Interceptor {
	return r.GradeFound(ctx, grade.Find(results), targets, s)
}

// GradeFound grades found with one round of handshakes, all at once (at
// most Concurrency, each within Timeout): the control and every test host
// once, with a request each (the prober picks their path as it does for
// targets, and an interceptor on another path learns nothing from them),
// and each ClientChecks offer to the first target behind each interceptor
// (targets gives its address, when it has one). Nothing is sent when
// grading is off (never, or the zero Mode of a Config not made by
// config.Parse), or when nothing was found and grading is not "always";
// with "always" and nothing found, the control is judged like a target, and
// an interceptor it reveals is graded with offers sent to it.
func (r *Runner) GradeFound(ctx context.Context, found []grade.Found, targets []config.Target, s config.Grade) []grade.Interceptor {
	if s.Mode != config.GradeAuto && s.Mode != config.GradeAlways || len(found) == 0 && s.Mode != config.GradeAlways {
		return nil
	}
	var (
		control  *grade.Attempt
		upstream = make([]grade.Probe, len(s.TestHosts))
		client   = make([][]grade.Probe, len(found))
		jobs     []func()
	)
	exchange := func(t probe.Target, o probe.Offer, dst **grade.Attempt) {
		jobs = append(jobs, func() {
			ctx, cancel := context.WithTimeout(ctx, r.Timeout)
			defer cancel()
			x := r.Prober.Exchange(ctx, t, o)
			*dst = &grade.Attempt{Obs: x.Obs, Answer: x.Answer, AnswerFailure: x.AnswerFailure}
		})
	}
	if c := s.Control; c != nil {
		exchange(probe.Target{Host: c.Host, Port: c.Port}, probe.Offer{Request: true}, &control)
	}
	for i, th := range s.TestHosts {
		upstream[i].Check = grade.UpstreamPrefix + th.Key
		exchange(probe.Target{Host: th.Host, Port: th.Port}, probe.Offer{Request: true}, &upstream[i].Attempt)
	}
	offers := func(t probe.Target) []grade.Probe {
		out := make([]grade.Probe, len(grade.ClientChecks))
		for i, cc := range grade.ClientChecks {
			out[i].Check = cc.Name
			exchange(t, probe.Offer{MinVersion: cc.MinVersion, MaxVersion: cc.MaxVersion, CipherSuites: cc.CipherSuites}, &out[i].Attempt)
		}
		return out
	}
	for i, f := range found {
		if len(f.Targets) > 0 {
			client[i] = offers(targetFor(f.Targets[0], targets))
		}
	}
	var controlOffers []grade.Probe
	if len(found) == 0 && s.Control != nil {
		controlOffers = offers(probe.Target{Host: s.Control.Host, Port: s.Control.Port})
	}
	r.runAll(ctx, jobs)

	if len(found) == 0 {
		found = grade.FromControl(control, r.Policy, r.now())
		client = make([][]grade.Probe, len(found))
		for i := range client {
			client[i] = controlOffers
		}
	}
	out := make([]grade.Interceptor, len(found))
	for i, f := range found {
		out[i] = grade.Judge(f, grade.Observed{Control: control, Upstream: upstream, Client: client[i]})
	}
	return out
}

// runAll runs jobs at most Concurrency at a time and waits for them all.
func (r *Runner) runAll(ctx context.Context, jobs []func()) {
	sem := make(chan struct{}, max(r.Concurrency, 1))
	var wg sync.WaitGroup
	for _, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				// Not made: the attempt stays nil and says "not probed".
				return
			}
			defer func() { <-sem }()
			job()
		}()
	}
	wg.Wait()
}

// targetFor is the probe target of "host:port": the configured target's,
// with its fixed address when it has one.
func targetFor(key string, targets []config.Target) probe.Target {
	for _, t := range targets {
		if t.Key() == key {
			return probe.Target{Host: t.Host, Port: t.Port, Address: t.Address}
		}
	}
	host, p, _ := net.SplitHostPort(key)
	port, _ := strconv.Atoi(p)
	return probe.Target{Host: host, Port: port}
}
