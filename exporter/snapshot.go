// Package exporter turns mitmwatch's latest judgements into Prometheus
// metrics. It keeps no state of its own: at every scrape it reads a
// Snapshot from its Source and emits const metrics, so a scrape always
// shows the last completed probe of every target and never blocks a probe.
package exporter

import (
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// Snapshot is what the daemon knows at one moment.
type Snapshot struct {
	Targets []Target
	// ConfigLoaded is false after a reload failed (the last good config
	// keeps running); ConfigLoadedAt is when the running config was loaded.
	ConfigLoaded   bool
	ConfigLoadedAt time.Time
	// Reloads and ReloadFailures count the loads of the config since the
	// daemon started, the first included, by outcome.
	Reloads, ReloadFailures uint64
	// Passive is what capturing real build traffic found; nil when
	// rules.yaml asks for no capture.
	Passive *Passive
	// Interceptors are the interceptors graded on this agent's paths
	// (interceptors.go).
	Interceptors []Interceptor
}

// Passive is the state of passive capture: whether it runs, and each host
// seen in real traffic with the judgement of the last window it was seen
// in (LastProbe is when that window ended, Probes how many windows saw it).
type Passive struct {
	Interface   string
	Capturing   bool
	Error       string // why capture is not running
	Connections uint64 // connections judged since the daemon started
	Dropped     uint64 // packets the kernel dropped
	Targets     []Target
}

// Target is one target's latest judgement, flattened to what metrics and
// the status page need. It lives in memory only: the daemon's state file has
// its own record.
type Target struct {
	Key      string // "host:port", the target label
	Host     string
	Port     int
	Source   string
	Verdict  detector.Verdict // empty until the first probe
	Product  string
	Findings []detector.Finding
	Failure  detector.Failure

	TLSVersion string // "TLS 1.3"; empty without a handshake
	IssuerCN   string // the leaf's issuer, kept when verification fails
	RootSPKI   string
	// ChainUnsettled is set by the daemon when the target showed more
	// distinct chains lately than a real host does (an interceptor minting
	// a CA per connection): the chain is then exported as ChainChanging,
	// so the series stay bounded.
	ChainUnsettled bool

	// What an SSH target and a checksum database showed (integrity.go);
	// empty for TLS targets.
	Integrity

	// LastProbe is when the last probe finished; Duration how long it took.
	LastProbe time.Time
	Duration  time.Duration
	// Interval is how often the daemon probes this target (probe.interval
	// or the target's own), so alerts can tell when a probe is overdue.
	Interval time.Duration
	// Probes and Failures count probes; a failure is a probe that completed
	// no TLS handshake (for SSH, read no host key; for the checksum
	// database, no tree head).
	Probes   uint64
	Failures uint64

	// Tools is what each build tool that fetches from the target would do
	// with the chain the last probe saw; empty when no tool uses it.
	Tools []ToolOutcome
}

// ToolOutcome is one build tool's predicted outcome for a target (package
// tools' vocabulary: tool go, git, npm, pip, cargo or docker; outcome
// verifies, fails, verification-off, plain-http or unreachable).
type ToolOutcome struct {
	Tool    string
	Outcome string
}

// Record flattens a judged result into a Target, leaving the counters and
// times to the caller.
func Record(key string, r detector.Result) Target {
	t := Target{
		Key: key, Host: r.Obs.Host, Port: r.Obs.Port, Source: r.Source,
		Verdict: r.Verdict, Product: r.Product, Findings: r.Findings, Failure: r.Obs.Failure,
	}
	t.Integrity = integrityOf(r.Obs)
	if st := r.Obs.TLS; st != nil {
		t.TLSVersion = detector.VersionName(st.Version)
		t.IssuerCN = detector.IssuerName(st)
		if root := detector.Root(st); root != nil {
			t.RootSPKI = detector.SPKIOf(root).String()
		}
	}
	return t
}

// Source gives the collector the snapshot to expose; the daemon is one.
type Source interface {
	Snapshot() Snapshot
}
