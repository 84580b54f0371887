package check

import (
	"context"
	"sync"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
)

// Round is a round of probes in progress. Targets may be added while the
// earlier ones are probed, so those found later — the toolchain's, the
// audit's — are probed as soon as they are known, and the round costs one
// round of the network rather than discovery plus probing.
type Round struct {
	r   *Runner
	ctx context.Context
	sem chan struct{}
	wg  sync.WaitGroup

	mu      sync.Mutex
	targets []config.Target
	obs     []*detector.Observation
	seen    map[string]bool
	done    int

	canaryOnce sync.Once
	probesDone chan struct{}
	canaryDone chan struct{}
	canary     []detector.DNSAnswer
}

// Start begins a round. Add targets to it, then Wait.
func (r *Runner) Start(ctx context.Context) *Round {
	return &Round{r: r, ctx: ctx, sem: make(chan struct{}, max(r.Concurrency, 1)), seen: map[string]bool{},
		probesDone: make(chan struct{})}
}

// Add probes the targets not yet in the round, each at once (within the
// concurrency bound). A target whose key the round already has is the same
// probe and is skipped.
func (rd *Round) Add(targets ...config.Target) {
	for _, t := range targets {
		rd.mu.Lock()
		if rd.seen[t.Key()] {
			rd.mu.Unlock()
			continue
		}
		rd.seen[t.Key()] = true
		o := new(detector.Observation)
		rd.targets = append(rd.targets, t)
		rd.obs = append(rd.obs, o)
		rd.mu.Unlock()
		if rd.r.resolves(t) {
			rd.canaryOnce.Do(rd.startCanary)
		}
		rd.wg.Add(1)
		go rd.probe(t, o)
	}
}

func (rd *Round) probe(t config.Target, o *detector.Observation) {
	defer rd.wg.Done()
	select {
	case rd.sem <- struct{}{}:
	case <-rd.ctx.Done():
		*o = canceled(t, rd.ctx.Err())
		return
	}
	defer func() { <-rd.sem }()
	*o = rd.r.observe(rd.ctx, t)
	if rd.r.Progress != nil {
		rd.mu.Lock()
		rd.done++
		rd.r.Progress(rd.done, len(rd.targets), t.Host)
		rd.mu.Unlock()
	}
}

// startCanary asks about a name that cannot exist, alongside the probes,
// once something in the round is resolved at all.
func (rd *Round) startCanary() {
	rd.canaryDone = make(chan struct{})
	go func() {
		defer close(rd.canaryDone)
		ctx, cancel := context.WithTimeout(rd.ctx, rd.r.Timeout)
		defer cancel()
		rd.canary = rd.r.DNS.canary(ctx, rd.probesDone)
	}()
}

// Wait waits for every probe, then for the canary at most its grace, and
// returns the targets in the order they were added with one observation
// each. No target may be added once Wait is called.
func (rd *Round) Wait() ([]config.Target, []detector.Observation) {
	rd.wg.Wait()
	close(rd.probesDone)
	if rd.canaryDone != nil {
		<-rd.canaryDone
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	obs := make([]detector.Observation, len(rd.obs))
	for i, o := range rd.obs {
		obs[i] = *o
		if len(obs[i].DNS) > 0 {
			obs[i].Canary = rd.canary
		}
	}
	return rd.targets, obs
}
