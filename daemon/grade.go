package daemon

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/grade"
)

// gradeState is what the daemon knows of the interceptors on its paths:
// each one's latest grade, and which targets are behind which. Grading runs
// once per grade.interval per interceptor, one round at a time, and only
// while a target is intercepted or inspected (or, with "always", once per
// interval for what the control reveals). Guarded by Daemon.mu.
type gradeState struct {
	byKey      map[grade.Key]*graded
	behind     map[string]grade.Key // target key → the interceptor it is behind
	running    bool
	lastAlways time.Time // real clock
}

// graded is one interceptor's latest grade.
type graded struct {
	ic    grade.Interceptor
	at    time.Time // real clock: when, for scheduling
	stamp time.Time // Options.Now: when, for the metrics
}

// gradeDue starts a round of grading for the interceptors whose grade is
// missing or older than grade.interval, if none is running; d.mu not held.
func (d *Daemon) gradeDue(ctx context.Context, wg *sync.WaitGroup) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := &d.grades
	// After the first round, so that every target behind an interceptor
	// is known when it is first graded.
	if d.cfg == nil || !d.ready || g.running {
		return
	}
	s := d.cfg.Grade
	if s.Mode != config.GradeAuto && s.Mode != config.GradeAlways {
		if len(g.byKey) > 0 {
			g.byKey = nil
			d.reannotate()
		}
		return
	}
	now := time.Now()
	iv := positiveOr(s.Interval, config.DefaultGradeInterval)
	keys := d.interceptorKeys()
	for k, gr := range g.byKey {
		// Gone from every target: no longer on the path. What the control
		// revealed stays until the next round of "always".
		if !slices.Contains(keys, k) && (len(gr.ic.Targets) > 0 || s.Mode != config.GradeAlways) {
			delete(g.byKey, k)
		}
	}
	due := map[grade.Key]bool{}
	for _, k := range keys {
		if gr := g.byKey[k]; gr == nil || now.Sub(gr.at) >= iv {
			due[k] = true
		}
	}
	always := len(keys) == 0 && s.Mode == config.GradeAlways && now.Sub(g.lastAlways) >= iv
	if len(due) == 0 && !always {
		return
	}
	var found []grade.Found
	if len(due) > 0 {
		for _, f := range grade.Find(d.latestResults()) {
			if due[f.Key] {
				found = append(found, f)
			}
		}
	}
	targets := make([]config.Target, 0, len(d.keys))
	for _, k := range d.keys {
		targets = append(targets, d.targets[k].cfg)
	}
	r := d.runner
	d.acquire(r)
	g.running = true
	wg.Add(1)
	go func() {
		defer wg.Done()
		ics := r.GradeFound(ctx, found, targets, s)
		d.storeGrades(ctx, ics, always)
		d.mu.Lock()
		done := d.letGo(r)
		d.mu.Unlock()
		if done {
			closeRunner(r)
		}
	}()
}

// interceptorKeys are the interceptors behind the targets, in the targets'
// order; d.mu held.
func (d *Daemon) interceptorKeys() []grade.Key {
	var out []grade.Key
	for _, k := range d.keys {
		if ik, ok := d.grades.behind[k]; ok && !slices.Contains(out, ik) {
			out = append(out, ik)
		}
	}
	return out
}

// latestResults are the targets' latest judgements, for grade.Find; d.mu
// held.
func (d *Daemon) latestResults() []detector.Result {
	var out []detector.Result
	for _, k := range d.keys {
		t := d.targets[k]
		if t.kase == nil || t.rec.Verdict == "" {
			continue
		}
		out = append(out, detector.Result{Obs: t.kase.Obs, Source: t.rec.Source, Verdict: t.rec.Verdict,
			Product: t.rec.Product, Findings: t.rec.Findings})
	}
	return out
}

// storeGrades keeps a round's grades, logs each change, and marks the
// targets behind an interceptor that re-signs. A round cut short by
// shutdown says nothing and is dropped.
func (d *Daemon) storeGrades(ctx context.Context, ics []grade.Interceptor, always bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := &d.grades
	g.running = false
	if ctx.Err() != nil {
		return
	}
	if g.byKey == nil {
		g.byKey = map[grade.Key]*graded{}
	}
	now := time.Now()
	if always {
		g.lastAlways = now
		for k, gr := range g.byKey {
			if len(gr.ic.Targets) == 0 {
				delete(g.byKey, k)
			}
		}
	}
	for _, ic := range ics {
		var from grade.Grade
		if prev := g.byKey[ic.Key]; prev != nil {
			from = prev.ic.Grade
		}
		g.byKey[ic.Key] = &graded{ic: ic, at: now, stamp: d.now()}
		if from != ic.Grade {
			d.logGrade(from, ic)
		}
	}
	d.reannotate()
	d.dirty = true
	d.broadcast()
}

// logGrade reports a changed grade with its evidence: one event per
// change, a warning when the interceptor re-signs.
func (d *Daemon) logGrade(from grade.Grade, ic grade.Interceptor) {
	level := slog.LevelInfo
	if ic.Grade == grade.F {
		level = slog.LevelWarn
	}
	checks := make([]string, len(ic.Checks))
	for i, c := range ic.Checks {
		checks[i] = c.Name + "=" + string(c.Result)
	}
	var evidence []string
	for _, c := range ic.ReSigned() {
		evidence = append(evidence, c.Name+": "+c.Detail)
	}
	d.log.Log(context.Background(), level, "interceptor grade changed",
		"ca_spki_sha256", ic.SPKI.String(), "ca", ic.CA.Subject.String(), "path", ic.Path.String(), "product", ic.Product,
		"approved", ic.Approved, "from", string(from), "to", string(ic.Grade), "targets", ic.Targets,
		"checks", checks, "evidence", strings.Join(evidence, "; "))
}

// noteInterceptor records which interceptor a freshly judged target is
// behind and gives its record the finding of one that re-signs; d.mu held.
func (d *Daemon) noteInterceptor(key string, res detector.Result, rec *exporter.Target) {
	if d.grades.behind == nil {
		d.grades.behind = map[string]grade.Key{}
	}
	if k, ok := grade.KeyOf(res); ok {
		d.grades.behind[key] = k
	} else {
		delete(d.grades.behind, key)
	}
	d.annotate(key, rec)
}

// annotate sets the finding interceptor-accepts-invalid-upstream on a
// target's record exactly when the interceptor it is behind re-signs;
// d.mu held.
func (d *Daemon) annotate(key string, rec *exporter.Target) {
	fs := slices.DeleteFunc(slices.Clone(rec.Findings), func(f detector.Finding) bool {
		return f.Reason == detector.ReasonInterceptorAcceptsInvalidUpstream
	})
	if k, ok := d.grades.behind[key]; ok {
		if gr := d.grades.byKey[k]; gr != nil && gr.ic.ReSigns() {
			fs = append(fs, grade.Finding(gr.ic))
		}
	}
	rec.Findings = fs
}

// reannotate brings every target's record in line with the grades; d.mu
// held.
func (d *Daemon) reannotate() {
	for k, t := range d.targets {
		d.annotate(k, &t.rec)
	}
}

// interceptorSnapshot lists the graded interceptors for the metrics, by CA
// key and path, with the targets behind each now; d.mu held.
func (d *Daemon) interceptorSnapshot() []exporter.Interceptor {
	var out []exporter.Interceptor
	for _, gr := range d.grades.byKey {
		ic := gr.ic
		var targets []string
		for _, k := range d.keys {
			if d.grades.behind[k] == ic.Key {
				targets = append(targets, k)
			}
		}
		out = append(out, exporter.Interceptor{SPKI: ic.SPKI.String(), Path: ic.Path.Kind, Product: ic.Product,
			Approved: ic.Approved, Targets: targets, Grade: ic.Grade, Checks: slices.Clone(ic.Checks), LastGraded: gr.stamp})
	}
	slices.SortFunc(out, func(a, b exporter.Interceptor) int {
		return strings.Compare(a.SPKI+string(a.Path), b.SPKI+string(b.Path))
	})
	return out
}
