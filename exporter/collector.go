package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mitmwatch/mitmwatch/detector"
)

// The descriptions are fixed: every metric has the same label names at every
// scrape, so the collector is a checked one and the registry catches
// collisions at registration.
var (
	verdictDesc = prometheus.NewDesc("mitmwatch_target_verdict",
		"Verdict of the last probe of a target: one series per possible verdict, 1 for the current one and 0 for the others. "+
			"Alert on == 1; a target never probed yet has no series.",
		[]string{"target", "verdict"}, nil)
	interceptionDesc = prometheus.NewDesc("mitmwatch_interception_detected",
		"1 when the last probe found the target's TLS intercepted (verdict intercepted), with the interception product "+
			`("unknown" when it could not be named); otherwise 0 with product="". Exactly one series per probed target. `+
			`For an SSH target (ssh://) it means a host key matching no pin, for the checksum database (gosumdb://) a forged or forked tree.`,
		[]string{"target", "product"}, nil)
	findingDesc = prometheus.NewDesc("mitmwatch_finding",
		"1 for each signal the last probe of a target raised, by reason and severity (info, warning, critical). "+
			"The verdict follows from these; a finding absent from the last probe has no series.",
		[]string{"target", "reason", "severity"}, nil)
	tlsVersionDesc = prometheus.NewDesc("mitmwatch_tls_version_info",
		`TLS version negotiated by the last probe of a target ("1.3", "1.2", ...), value always 1. No series without a handshake.`,
		[]string{"target", "version"}, nil)
	chainDesc = prometheus.NewDesc("mitmwatch_chain_info",
		"Chain presented to the last probe of a target, kept when verification failed because it is the evidence: the leaf's issuer "+
			"(common name, else organisation; truncated to 64 bytes) and the base64 SHA-256 of the root's (or last presented certificate's) "+
			"public key, as pinned in rules.yaml. Value always 1. Both are \"(changing)\" while the target showed more than 4 distinct chains "+
			"within 24 hours (an interceptor minting a CA per connection), so a target adds at most 5 series a day.",
		[]string{"target", "issuer_cn", "root_spki_sha256"}, nil)
	durationDesc = prometheus.NewDesc("mitmwatch_probe_duration_seconds",
		"How long the last probe of a target took, resolution and handshake included.",
		[]string{"target"}, nil)
	lastProbeDesc = prometheus.NewDesc("mitmwatch_last_probe_timestamp_seconds",
		"When the last probe of a target finished, in seconds since the Unix epoch.",
		[]string{"target"}, nil)
	intervalDesc = prometheus.NewDesc("mitmwatch_probe_interval_seconds",
		"How often the daemon probes a target; a last probe older than three intervals means probing is stuck.",
		[]string{"target"}, nil)
	probesDesc = prometheus.NewDesc("mitmwatch_probes_total",
		"Probes of a target completed since the daemon's state was created (kept across restarts).",
		[]string{"target"}, nil)
	failuresDesc = prometheus.NewDesc("mitmwatch_probe_failures_total",
		"Probes of a target that completed no TLS handshake (unreachable, refused, plain text, ...), out of mitmwatch_probes_total; "+
			"for an SSH target, probes that read no host key, and for the checksum database, checks that read no tree head.",
		[]string{"target"}, nil)
	toolDesc = prometheus.NewDesc("mitmwatch_tool_verifies",
		"1 when the build tool would verify the chain the last probe of the target saw, with its own trust store and settings; "+
			"else 0, and outcome says what it would do instead (fails, verification-off, plain-http, unreachable). "+
			"One series per tool that fetches from the target, so a fleet sees whose npm or pip will break before a build does.",
		[]string{"target", "tool", "outcome"}, nil)
	reloadOKDesc = prometheus.NewDesc("mitmwatch_config_last_reload_successful",
		"1 when the last load of rules.yaml succeeded; 0 when it failed and the last good configuration keeps running.",
		nil, nil)
	reloadsDesc = prometheus.NewDesc("mitmwatch_config_reloads_total",
		`Loads of rules.yaml since the daemon started (the first included), by result ("success", "failure"): `+
			"with mitmwatch_config_last_reload_successful it says whether a reload ran and what became of it.",
		[]string{"result"}, nil)
	reloadTimeDesc = prometheus.NewDesc("mitmwatch_config_last_reload_success_timestamp_seconds",
		"When the running configuration was loaded, in seconds since the Unix epoch.",
		nil, nil)
)

// ChainChanging is the issuer_cn and root_spki_sha256 of a target whose
// chain is unsettled (Target.ChainUnsettled): one value instead of a new
// series per forged CA.
const ChainChanging = "(changing)"

// Passive capture's metrics, present only when rules.yaml asks for it.
// The hosts are those real build traffic reached, so they are separate
// families: a target label here is not a configured target.
var (
	passiveCapturingDesc = prometheus.NewDesc("mitmwatch_passive_capturing",
		"1 while passive capture runs on the interface; 0 when it could not be opened (CAP_NET_RAW missing, no such interface) and only probes run.",
		[]string{"interface"}, nil)
	passiveVerdictDesc = prometheus.NewDesc("mitmwatch_passive_verdict",
		"Verdict of the last capture window in which real build traffic reached a host: one series per possible verdict, 1 for the current one.",
		[]string{"target", "verdict"}, nil)
	passiveInterceptionDesc = prometheus.NewDesc("mitmwatch_passive_interception_detected",
		`1 when real build traffic to the host was intercepted in the last window it was seen, with the product ("unknown" when unnamed); otherwise 0 with product="".`,
		[]string{"target", "product"}, nil)
	passiveLastSeenDesc = prometheus.NewDesc("mitmwatch_passive_last_seen_timestamp_seconds",
		"End of the last capture window in which real build traffic reached the host, in seconds since the Unix epoch.",
		[]string{"target"}, nil)
	passiveConnsDesc = prometheus.NewDesc("mitmwatch_passive_connections_total",
		"Connections passive capture judged since the daemon started.", nil, nil)
	passiveDropsDesc = prometheus.NewDesc("mitmwatch_passive_dropped_packets_total",
		"Packets the kernel dropped before passive capture read them: handshakes may be missing.", nil, nil)
)

var allDescs = []*prometheus.Desc{
	verdictDesc, interceptionDesc, findingDesc, tlsVersionDesc, chainDesc,
	durationDesc, lastProbeDesc, intervalDesc, probesDesc, failuresDesc, toolDesc,
	reloadOKDesc, reloadTimeDesc, reloadsDesc,
	passiveCapturingDesc, passiveVerdictDesc, passiveInterceptionDesc, passiveLastSeenDesc,
	passiveConnsDesc, passiveDropsDesc,
	interceptorGradeDesc, interceptorCheckDesc, interceptorGradedDesc,
	sshHostKeyDesc, sumdbTreeSizeDesc, sumdbGrownDesc,
}

// collector emits the metrics of one Snapshot per scrape.
type collector struct {
	src Source
}

// NewCollector returns a collector that reads src at every scrape and emits
// const metrics from it, node_exporter style: it holds no metric state, so a
// target removed from the config disappears from the next scrape.
func NewCollector(src Source) prometheus.Collector {
	return collector{src: src}
}

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Snapshot()
	emit(ch, reloadOKDesc, prometheus.GaugeValue, boolValue(s.ConfigLoaded))
	if !s.ConfigLoadedAt.IsZero() {
		emit(ch, reloadTimeDesc, prometheus.GaugeValue, unixSeconds(s.ConfigLoadedAt))
	}
	emit(ch, reloadsDesc, prometheus.CounterValue, float64(s.Reloads), "success")
	emit(ch, reloadsDesc, prometheus.CounterValue, float64(s.ReloadFailures), "failure")
	// Two targets with one key would make duplicate series, and the
	// registry would then fail the whole scrape: the first one wins.
	seen := make(map[string]bool, len(s.Targets))
	for _, t := range s.Targets {
		key := targetLabel(t.Key)
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		collectTarget(ch, key, t)
	}
	if p := s.Passive; p != nil {
		collectPassive(ch, p)
	}
	collectInterceptors(ch, s.Interceptors)
}

// collectPassive emits what capture found.
func collectPassive(ch chan<- prometheus.Metric, p *Passive) {
	if p.Interface != "" {
		emit(ch, passiveCapturingDesc, prometheus.GaugeValue, boolValue(p.Capturing), labelValue(p.Interface))
	}
	emit(ch, passiveConnsDesc, prometheus.CounterValue, float64(p.Connections))
	emit(ch, passiveDropsDesc, prometheus.CounterValue, float64(p.Dropped))
	seen := make(map[string]bool, len(p.Targets))
	for _, t := range p.Targets {
		key := targetLabel(t.Key)
		if key == "" || seen[key] || t.Verdict == "" {
			continue
		}
		seen[key] = true
		for _, v := range detector.Verdicts {
			emit(ch, passiveVerdictDesc, prometheus.GaugeValue, boolValue(v == t.Verdict), key, string(v))
		}
		if t.Verdict == detector.Intercepted {
			emit(ch, passiveInterceptionDesc, prometheus.GaugeValue, 1, key, productLabel(t.Product))
		} else {
			emit(ch, passiveInterceptionDesc, prometheus.GaugeValue, 0, key, "")
		}
		emit(ch, passiveLastSeenDesc, prometheus.GaugeValue, unixSeconds(t.LastProbe), key)
	}
}

// collectTarget emits one target's series. A target never probed (no
// verdict yet) has only its counters, so dashboards and alerts see no
// made-up state for it.
func collectTarget(ch chan<- prometheus.Metric, key string, t Target) {
	emit(ch, probesDesc, prometheus.CounterValue, float64(t.Probes), key)
	emit(ch, failuresDesc, prometheus.CounterValue, float64(t.Failures), key)
	if t.Verdict == "" {
		return
	}
	for _, v := range detector.Verdicts {
		emit(ch, verdictDesc, prometheus.GaugeValue, boolValue(v == t.Verdict), key, string(v))
	}
	if t.Verdict == detector.Intercepted {
		emit(ch, interceptionDesc, prometheus.GaugeValue, 1, key, productLabel(t.Product))
	} else {
		emit(ch, interceptionDesc, prometheus.GaugeValue, 0, key, "")
	}
	type reasonSeverity struct{ reason, severity string }
	findings := make(map[reasonSeverity]bool, len(t.Findings))
	for _, f := range t.Findings {
		rs := reasonSeverity{labelValue(string(f.Reason)), f.Severity.String()}
		if rs.reason == "" || findings[rs] {
			continue // the same reason twice (two resolvers, say) is one series
		}
		findings[rs] = true
		emit(ch, findingDesc, prometheus.GaugeValue, 1, key, rs.reason, rs.severity)
	}
	if v := versionLabel(t.TLSVersion); v != "" {
		emit(ch, tlsVersionDesc, prometheus.GaugeValue, 1, key, v)
	}
	switch {
	case t.ChainUnsettled:
		emit(ch, chainDesc, prometheus.GaugeValue, 1, key, ChainChanging, ChainChanging)
	case t.IssuerCN != "" || t.RootSPKI != "":
		emit(ch, chainDesc, prometheus.GaugeValue, 1, key, issuerLabel(t.IssuerCN), labelValue(t.RootSPKI))
	}
	tools := make(map[string]bool, len(t.Tools))
	for _, to := range t.Tools {
		tool := labelValue(to.Tool)
		if tool == "" || tools[tool] {
			continue // one series per tool and target
		}
		tools[tool] = true
		emit(ch, toolDesc, prometheus.GaugeValue, boolValue(to.Outcome == "verifies"), key, tool, labelValue(to.Outcome))
	}
	emit(ch, durationDesc, prometheus.GaugeValue, t.Duration.Seconds(), key)
	if !t.LastProbe.IsZero() {
		emit(ch, lastProbeDesc, prometheus.GaugeValue, unixSeconds(t.LastProbe), key)
	}
	if t.Interval > 0 {
		emit(ch, intervalDesc, prometheus.GaugeValue, t.Interval.Seconds(), key)
	}
	collectIntegrity(ch, key, t)
}

// emit sends a const metric. Labels are sanitised before they get here, so
// an error is a bug; it is reported to the registry (which fails the scrape
// with the reason) rather than panicking in the daemon.
func emit(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
