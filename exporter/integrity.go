package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mitmwatch/mitmwatch/detector"
)

// Integrity is what an SSH target and a Go checksum database check showed,
// flattened for metrics and the status page.
type Integrity struct {
	// SSHKeyType and SSHHostKey are the host key an SSH server showed
	// ("ssh-ed25519", "SHA256:..."); empty when none was read.
	SSHKeyType string `json:"-"`
	SSHHostKey string `json:"-"`
	// SumDBTree is the size of the checksum database's tree head the last
	// check verified and kept (it extends the one before), and
	// SumDBGrownAt when that size was first seen; zero otherwise.
	// SumDBSignature says how the head's signature verified.
	SumDBTree      int64     `json:"-"`
	SumDBGrownAt   time.Time `json:"-"`
	SumDBSignature string    `json:"-"`
}

func integrityOf(o detector.Observation) Integrity {
	var in Integrity
	if o.SSH != nil && o.SSH.HostKey != nil {
		in.SSHKeyType, in.SSHHostKey = o.SSH.HostKey.Type, o.SSH.HostKey.SHA256.String()
	}
	if st := o.SumDB; st != nil {
		in.SumDBSignature = string(st.Signature)
		switch st.Consistency {
		case detector.ConsistencyFirst, detector.ConsistencySame, detector.ConsistencyExtends:
			if st.Tree != nil {
				in.SumDBTree, in.SumDBGrownAt = st.Tree.Size, st.GrownAt
			}
		}
	}
	return in
}

// The SSH and checksum database families. Their labels are the target's
// key and, for the host key, its type: one of the few algorithms the probe
// offers, never a fingerprint (a new interceptor key would be a new series).
var (
	sshHostKeyDesc = prometheus.NewDesc("mitmwatch_ssh_host_key_info",
		"The type of host key the SSH server of a target showed to the last probe (ssh-ed25519, ecdsa-sha2-nistp256, rsa-sha2-512, ...), value always 1. "+
			"Whether it matched the pins is mitmwatch_finding{reason=\"ssh-host-key-mismatch\"}. No series when no key was read.",
		[]string{"target", "key_type"}, nil)
	sumdbTreeSizeDesc = prometheus.NewDesc("mitmwatch_sumdb_tree_size",
		"Records in the Go checksum database's tree head the last check verified and kept (its signature verified and it extends the tree before); no series otherwise.",
		[]string{"target"}, nil)
	sumdbGrownDesc = prometheus.NewDesc("mitmwatch_sumdb_tree_grown_timestamp_seconds",
		"When this agent first saw the checksum database's tree at its current size, in seconds since the Unix epoch: a log that serves builds grows, so an old value is a stale or replayed head.",
		[]string{"target"}, nil)
)

// collectIntegrity emits one target's SSH and checksum database series.
func collectIntegrity(ch chan<- prometheus.Metric, key string, t Target) {
	if t.SSHKeyType != "" {
		emit(ch, sshHostKeyDesc, prometheus.GaugeValue, 1, key, labelValue(t.SSHKeyType))
	}
	if t.SumDBTree > 0 {
		emit(ch, sumdbTreeSizeDesc, prometheus.GaugeValue, float64(t.SumDBTree), key)
		if !t.SumDBGrownAt.IsZero() {
			emit(ch, sumdbGrownDesc, prometheus.GaugeValue, unixSeconds(t.SumDBGrownAt), key)
		}
	}
}
