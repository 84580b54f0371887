package daemon

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/passive"
)

// Bounds on what passive capture keeps: the host names come from the
// network (every SNI a build sends), so their number and age are capped
// to keep the metrics' labels bounded.
const (
	maxPassiveTargets = 256
	passiveForget     = 24 * time.Hour
	// passiveIdle is how often the watcher looks for a config that turns
	// capture on, or retries a capture that could not be opened.
	passiveIdle = time.Second
)

// passiveState is what the watcher knows; d.mu guards it.
type passiveState struct {
	iface     string
	capturing bool
	err       string // why capture is not running, when it is not
	conns     uint64 // connections judged since the daemon started
	dropped   uint64 // packets the kernel dropped, over every capture opened
	targets   map[string]exporter.Target
}

// runPassive watches real build traffic, as rules.yaml's passive section
// says, until ctx ends: the handshakes of each window are judged together
// by the same classification as the probes, and each host keeps its last
// judgement. A capture that cannot be opened (no CAP_NET_RAW) is reported
// once, in the log and the metrics, and retried; probing goes on either way.
func (d *Daemon) runPassive(ctx context.Context) {
	for ctx.Err() == nil {
		cfg := d.config()
		if cfg == nil || cfg.Passive.Interface == "" {
			d.setCapture("", false, "")
			sleepCtx(ctx, passiveIdle)
			continue
		}
		p := cfg.Passive
		live, err := passive.OpenLive(p.Interface, passive.LiveOptions{Ports: p.Ports, HandshakeOnly: true})
		if err != nil {
			d.setCapture(p.Interface, false, err.Error())
			sleepCtx(ctx, max(passiveIdle, min(p.Window, time.Minute)))
			continue
		}
		d.setCapture(p.Interface, true, "")
		d.capture(ctx, live, p)
		live.Close()
	}
	d.setCapture("", false, "")
}

// capture judges one window after another on live until ctx ends, the
// capture fails, or the config's passive section changes.
func (d *Daemon) capture(ctx context.Context, live *passive.Live, p config.Passive) {
	var seenDrops uint // the capture's own count, cumulative
	for ctx.Err() == nil {
		cfg := d.config()
		if cfg == nil || !samePassive(cfg.Passive, p) {
			return
		}
		a := &passive.Analysis{PublicRoots: cfg.PublicRoots, SystemRoots: cfg.SystemRoots, Policy: cfg.Policy, Expect: config.ExpectFor(d.targetConfigs())}
		tr := passive.NewTracker(passive.Options{Ports: p.Ports}, a.Add)
		wctx, cancel := context.WithTimeout(ctx, p.Window)
		err := passive.Sniff(wctx, live, tr)
		cancel()
		drops, _ := live.Drops()
		d.storePassive(judgePassive(a.Capture(), cfg.Policy), tr.Stats().Conns, uint64(drops-min(drops, seenDrops)))
		seenDrops = max(drops, seenDrops)
		if err != nil {
			d.setCapture(p.Interface, false, err.Error())
			return
		}
	}
}

// judgePassive judges a window's connections as the probes are judged and
// keeps one result per host.
func judgePassive(c passive.Capture, pol detector.Policy) []detector.Result {
	return detector.PerHost(detector.Judge(c.Cases(), pol, c.At))
}

func samePassive(a, b config.Passive) bool {
	return a.Interface == b.Interface && a.Window == b.Window && slices.Equal(a.Ports, b.Ports)
}

// storePassive keeps each host's judgement of the window just ended and
// logs a verdict change as the probes do.
func (d *Daemon) storePassive(hosts []detector.Result, conns, drops uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ps := d.passiveLocked()
	ps.conns += conns
	ps.dropped += drops
	now := d.now()
	for _, r := range hosts {
		key := config.Target{Host: r.Obs.Host, Port: r.Obs.Port}.Key()
		prev := ps.targets[key]
		rec := exporter.Record(key, r)
		rec.LastProbe, rec.Probes = now, prev.Probes+1
		ps.targets[key] = rec
		if prev.Verdict != rec.Verdict {
			d.logChange("passive "+key, prev.Verdict, r)
		}
	}
	for k, t := range ps.targets {
		if now.Sub(t.LastProbe) > passiveForget {
			delete(ps.targets, k)
		}
	}
	if extra := len(ps.targets) - maxPassiveTargets; extra > 0 {
		recs := make([]exporter.Target, 0, len(ps.targets))
		for _, t := range ps.targets {
			recs = append(recs, t)
		}
		slices.SortFunc(recs, func(a, b exporter.Target) int { return a.LastProbe.Compare(b.LastProbe) })
		for _, t := range recs[:extra] {
			delete(ps.targets, t.Key)
		}
	}
	d.broadcast()
}

func (d *Daemon) setCapture(iface string, capturing bool, why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ps := d.passiveLocked()
	if iface == ps.iface && capturing == ps.capturing && why == ps.err {
		return
	}
	switch {
	case why != "":
		d.log.Error("passive capture is not running; probes go on", "interface", iface, "err", why)
	case capturing:
		d.log.Info("passive capture started", "interface", iface)
	case ps.capturing:
		d.log.Info("passive capture stopped", "interface", ps.iface)
	}
	ps.iface, ps.capturing, ps.err = iface, capturing, why
	d.broadcast()
}

// passiveLocked returns the passive state, made on first use; d.mu held.
func (d *Daemon) passiveLocked() *passiveState {
	if d.passive == nil {
		d.passive = &passiveState{targets: map[string]exporter.Target{}}
	}
	return d.passive
}

// passiveSnapshot copies the passive state for the exporter; d.mu held.
func (d *Daemon) passiveSnapshot() *exporter.Passive {
	ps := d.passive
	if ps == nil || (ps.iface == "" && len(ps.targets) == 0) {
		return nil
	}
	out := &exporter.Passive{Interface: ps.iface, Capturing: ps.capturing, Error: ps.err,
		Connections: ps.conns, Dropped: ps.dropped}
	for _, t := range ps.targets {
		t.Findings = slices.Clone(t.Findings)
		out.Targets = append(out.Targets, t)
	}
	slices.SortFunc(out.Targets, func(a, b exporter.Target) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// config returns the running config, nil before the first load.
func (d *Daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// targetConfigs lists the configured targets, for their expectations.
func (d *Daemon) targetConfigs() []config.Target {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]config.Target, 0, len(d.keys))
	for _, k := range d.keys {
		out = append(out, d.targets[k].cfg)
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
