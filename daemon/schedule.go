package daemon

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
)

// launchDue starts the probes that are due, as many as the concurrency
// limit allows, and returns how long the loop may sleep. Due targets that
// find no free slot stay due: the next probe to end wakes the loop.
func (d *Daemon) launchDue(ctx context.Context, wg *sync.WaitGroup) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	wait := maxTick
	var due []*target
	for _, k := range d.keys {
		t := d.targets[k]
		switch {
		case d.busy[k]: // never overlap a target's own probe
		case !t.next.After(now):
			due = append(due, t)
		default:
			wait = min(wait, t.next.Sub(now))
		}
	}
	// Longest overdue first, so a saturated limit delays every target alike.
	slices.SortFunc(due, func(a, b *target) int { return a.next.Compare(b.next) })
	limit := max(d.cfg.Concurrency, 1)
	for _, t := range due {
		if d.inflight >= limit {
			break
		}
		d.busy[t.cfg.Key()] = true
		d.inflight++
		tc, r := t.cfg, d.runner
		d.acquire(r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.probe(ctx, t, tc, r)
		}()
	}
	return wait
}

// probe observes one target with the runner of the config it was started
// under, judges and stores the result, and schedules the next probe. A
// probe cut short by shutdown is dropped: it says nothing about the path.
func (d *Daemon) probe(ctx context.Context, t *target, tc config.Target, r *check.Runner) {
	start := time.Now()
	obs := r.Observe(ctx, []config.Target{tc})[0]
	end := time.Now()
	if ctx.Err() == nil {
		if prev, res, ok := d.store(t, tc.Key(), obs, end.Sub(start)); ok {
			d.log.Debug("probed", "target", tc.Key(), "verdict", string(res.Verdict),
				"failure", string(obs.Failure), "took", end.Sub(start))
			if prev != res.Verdict {
				d.logChange(tc.Key(), prev, res)
			}
		}
	}
	d.release(t, tc.Key(), r, start, end)
	d.signal()
}

// store judges obs together with the latest observations of the other
// targets, since some signals (one leaf key forged for many hosts) only show
// across targets, and records the result. It reports the previous verdict,
// and false when the target was removed meanwhile.
func (d *Daemon) store(t *target, key string, obs detector.Observation, took time.Duration) (detector.Verdict, detector.Result, bool) {
	d.mu.Lock()
	if d.targets[key] != t {
		d.mu.Unlock()
		return "", detector.Result{}, false
	}
	c := check.Case(t.cfg, obs)
	t.kase = &c
	// Stored cases are never modified, only replaced, so the pointers can
	// be read unlocked.
	others := make([]*detector.Case, 0, len(d.keys))
	for _, k := range d.keys {
		if o := d.targets[k]; o != t && o.kase != nil {
			others = append(others, o.kase)
		}
	}
	r := d.runner
	d.mu.Unlock()

	// Judged unlocked: scrapes must not wait for classification.
	res := r.JudgeAmong(c, others)
	var tools []exporter.ToolOutcome
	if d.tools != nil {
		tools = d.tools(res)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.targets[key] != t {
		return "", detector.Result{}, false
	}
	rec := exporter.Record(key, res)
	d.noteInterceptor(key, res, &rec)
	rec.Tools = tools
	if rec.IssuerCN != "" || rec.RootSPKI != "" {
		t.chains, rec.ChainUnsettled = noteChain(t.chains, rec.IssuerCN+"\x00"+rec.RootSPKI, d.now())
	}
	rec.Interval = t.interval
	rec.Probes, rec.Failures = t.rec.Probes+1, t.rec.Failures
	if !obs.Completed() {
		rec.Failures++
	}
	rec.LastProbe, rec.Duration = d.now(), took
	prev := t.rec.Verdict
	t.rec, t.fresh, t.last = rec, true, &res
	d.noteChange(key, prev, rec.Verdict, rec.LastProbe)
	d.dirty = true
	d.checkReady()
	return prev, res, true
}

// release frees the target's slot and schedules its next probe at interval
// ± 10% from this one's start. A probe that outlasted its interval skips the
// slots it missed instead of probing back to back.
func (d *Daemon) release(t *target, key string, r *check.Runner, start, end time.Time) {
	d.mu.Lock()
	unused := d.letGo(r)
	defer func() {
		d.mu.Unlock()
		if unused {
			closeRunner(r)
		}
	}()
	delete(d.busy, key)
	d.inflight--
	iv := t.interval
	next := start.Add(iv - iv/10 + d.jitter(iv/5))
	if late := end.Sub(next); late > 0 {
		next = next.Add((late/iv + 1) * iv)
	}
	if t.reprobe {
		next, t.reprobe = end, false
	}
	t.next = next
	d.broadcast()
}

// logChange reports a verdict change with its evidence: the event an
// operator reads first when an alert fires.
func (d *Daemon) logChange(key string, from detector.Verdict, res detector.Result) {
	level := slog.LevelInfo
	switch {
	case res.Verdict.Detected():
		level = slog.LevelWarn
	case from == "":
		level = slog.LevelDebug // a first result that finds nothing is not news
	}
	reasons := make([]string, len(res.Findings))
	for i, f := range res.Findings {
		reasons[i] = string(f.Reason)
	}
	var evidence string
	if f, ok := keyFinding(res.Findings); ok {
		evidence = clip(f.Detail)
	}
	d.log.Log(context.Background(), level, "verdict changed",
		"target", key, "from", string(from), "to", string(res.Verdict), "product", clip(res.Product),
		"reasons", reasons, "evidence", evidence, "remediation", clip(res.Remediation))
}

// keyFinding is the first of the most severe findings: the one that best
// explains the verdict.
func keyFinding(fs []detector.Finding) (detector.Finding, bool) {
	best := -1
	for i, f := range fs {
		if best < 0 || f.Severity > fs[best].Severity {
			best = i
		}
	}
	if best < 0 {
		return detector.Finding{}, false
	}
	return fs[best], true
}
