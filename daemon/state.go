package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/mitmwatch/mitmwatch/atomicfile"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
)

// The state file: the last result of every target, so that after a restart
// the status page and the metrics show what was known until fresh probes
// replace it. Its schema is its own, not the metrics snapshot's, and it
// keeps the evidence but never the verdict: restore derives the verdict from
// the findings by today's rules, so no file can bring back a verdict those
// rules would not give.
const (
	stateFile    = "state.json"
	stateVersion = 2
)

// stateDocument is the state file.
type stateDocument struct {
	Version int           `json:"version"`
	SavedAt time.Time     `json:"saved_at"`
	Targets []stateRecord `json:"targets"`
}

// stateRecord is what of one target must survive a restart.
type stateRecord struct {
	Key        string           `json:"key"` // "host:port"
	Host       string           `json:"host"`
	Port       int              `json:"port"`
	Source     string           `json:"source,omitempty"`
	Product    string           `json:"product,omitempty"`
	Findings   []stateFinding   `json:"findings,omitempty"`
	Failure    detector.Failure `json:"failure,omitempty"`
	TLSVersion string           `json:"tls_version,omitempty"`
	IssuerName string           `json:"issuer_name,omitempty"`
	RootSPKI   string           `json:"root_spki_sha256,omitempty"`
	LastProbe  time.Time        `json:"last_probe,omitzero"`
	Duration   time.Duration    `json:"duration_ns"`
	Interval   time.Duration    `json:"interval_ns,omitempty"`
	Probes     uint64           `json:"probes"`
	Failures   uint64           `json:"failures"`
	// What an SSH target and the checksum database showed; absent for
	// TLS targets, so files written before read the same.
	SSHKeyType     string    `json:"ssh_key_type,omitempty"`
	SSHHostKey     string    `json:"ssh_host_key,omitempty"`
	SumDBTree      int64     `json:"sumdb_tree_size,omitempty"`
	SumDBGrownAt   time.Time `json:"sumdb_grown_at,omitzero"`
	SumDBSignature string    `json:"sumdb_signature,omitempty"`
}

// stateFinding is a saved finding; the severity is saved as its name.
type stateFinding struct {
	Reason   detector.Reason   `json:"reason"`
	Severity detector.Severity `json:"severity"`
	Detail   string            `json:"detail,omitempty"`
}

// recordOf keeps what of t must survive a restart, dropping its verdict.
func recordOf(t exporter.Target) stateRecord {
	r := stateRecord{
		Key: t.Key, Host: t.Host, Port: t.Port, Source: t.Source, Product: t.Product, Failure: t.Failure,
		TLSVersion: t.TLSVersion, IssuerName: t.IssuerCN, RootSPKI: t.RootSPKI,
		LastProbe: t.LastProbe, Duration: t.Duration, Interval: t.Interval,
		Probes: t.Probes, Failures: t.Failures,
		SSHKeyType: t.SSHKeyType, SSHHostKey: t.SSHHostKey,
		SumDBTree: t.SumDBTree, SumDBGrownAt: t.SumDBGrownAt, SumDBSignature: t.SumDBSignature,
	}
	for _, f := range t.Findings {
		// A conversion, so that a field added to detector.Finding does not
		// compile until someone decides whether it is saved.
		r.Findings = append(r.Findings, stateFinding(f))
	}
	return r
}

// target restores r, deriving the verdict from its findings. A target never
// probed has no verdict yet.
func (r stateRecord) target() exporter.Target {
	t := exporter.Target{
		Key: r.Key, Host: r.Host, Port: r.Port, Source: r.Source, Product: r.Product, Failure: r.Failure,
		TLSVersion: r.TLSVersion, IssuerCN: r.IssuerName, RootSPKI: r.RootSPKI,
		LastProbe: r.LastProbe, Duration: r.Duration, Interval: r.Interval,
		Probes: r.Probes, Failures: r.Failures,
		Integrity: exporter.Integrity{SSHKeyType: r.SSHKeyType, SSHHostKey: r.SSHHostKey,
			SumDBTree: r.SumDBTree, SumDBGrownAt: r.SumDBGrownAt, SumDBSignature: r.SumDBSignature},
	}
	for _, f := range r.Findings {
		t.Findings = append(t.Findings, detector.Finding(f))
	}
	if r.Probes > 0 {
		t.Verdict = detector.VerdictOf(t.Findings)
	}
	return t
}

// versionError is a state file that another version of mitmwatch wrote.
type versionError struct{ version int }

func (e *versionError) Error() string {
	return fmt.Sprintf("state version %d, this mitmwatch reads version %d", e.version, stateVersion)
}

// restore reads the state file. One that cannot be used is set aside and
// the daemon starts empty.
func (d *Daemon) restore() map[string]exporter.Target {
	data, err := os.ReadFile(d.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		d.setAside("unreadable", "corrupt", err)
		return nil
	}
	recs, err := decodeState(data)
	var ve *versionError
	switch {
	case errors.As(err, &ve):
		d.setAside("other version", fmt.Sprintf("v%d", ve.version), err)
		return nil
	case err != nil:
		d.setAside("corrupt", "corrupt", err)
		return nil
	}
	// saved_at says which write survived: after a crash, the one before
	// the write that was cut off, or that write itself.
	var head struct {
		SavedAt time.Time `json:"saved_at"`
	}
	_ = json.Unmarshal(data, &head) // decodeState parsed it already
	d.log.Info("state restored", "path", d.statePath, "version", stateVersion, "targets", len(recs),
		"saved_at", head.SavedAt)
	return recs
}

// setAside renames the unusable state file to <name>.<suffix>-<unix> for a
// human to look at, and logs why it was unusable: <name>.v1-<unix> is a
// file an older mitmwatch wrote, <name>.corrupt-<unix> one that is damaged.
func (d *Daemon) setAside(why, suffix string, err error) {
	aside := fmt.Sprintf("%s.%s-%d", d.statePath, suffix, d.now().Unix())
	if rerr := os.Rename(d.statePath, aside); rerr != nil {
		d.log.Warn("state file unusable and not set aside; starting empty", "path", d.statePath, "why", why, "err", err, "rename_err", rerr)
		return
	}
	d.log.Warn("state file unusable, set aside; starting empty", "path", d.statePath, "moved_to", aside, "why", why, "err", err)
}

// decodeState parses a state file strictly: a file this version did not
// write is not guessed at. A file of another version is a *versionError.
func decodeState(data []byte) (map[string]exporter.Target, error) {
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("decoding state: %w", err)
	}
	switch head.Version {
	case stateVersion:
	case 0:
		return nil, errors.New("decoding state: no version")
	default:
		return nil, &versionError{head.Version}
	}
	var s stateDocument
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding state: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decoding state: data after the document")
	}
	out := make(map[string]exporter.Target, len(s.Targets))
	for i, r := range s.Targets {
		if err := checkRecord(r, out); err != nil {
			return nil, fmt.Errorf("state: targets[%d]: %w", i, err)
		}
		out[r.Key] = r.target()
	}
	return out, nil
}

// checkRecord refuses a record that this version would not have written.
func checkRecord(r stateRecord, seen map[string]exporter.Target) error {
	if r.Key == "" {
		return errors.New("no key")
	}
	if _, dup := seen[r.Key]; dup {
		return fmt.Errorf("duplicate key %q", r.Key)
	}
	if r.Probes == 0 && len(r.Findings) > 0 {
		return errors.New("findings without a probe")
	}
	for j, f := range r.Findings {
		if !slices.Contains(detector.Reasons, f.Reason) {
			return fmt.Errorf("findings[%d]: unknown reason %q", j, f.Reason)
		}
	}
	return nil
}

func encodeState(recs []exporter.Target, now time.Time) ([]byte, error) {
	s := stateDocument{Version: stateVersion, SavedAt: now.UTC(), Targets: make([]stateRecord, 0, len(recs))}
	for _, t := range recs {
		s.Targets = append(s.Targets, recordOf(t))
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	return append(data, '\n'), nil
}

// save writes the state file atomically if results changed since the last
// write. A failing write is logged once per distinct error and retried on a
// later tick; it never stops the probes.
func (d *Daemon) save() {
	d.saveHistory()
	if d.statePath == "" {
		return
	}
	d.mu.Lock()
	if !d.dirty {
		d.mu.Unlock()
		return
	}
	recs := make([]exporter.Target, 0, len(d.keys))
	for _, k := range d.keys {
		recs = append(recs, d.targets[k].rec)
	}
	d.dirty = false
	now := d.now()
	d.mu.Unlock()

	data, err := encodeState(recs, now)
	if err == nil {
		err = atomicfile.Write(d.statePath, data, 0o644)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.dirty = true
		if msg := err.Error(); msg != d.saveErr {
			d.saveErr = msg
			d.log.Warn("saving state failed; will retry", "err", err)
		}
		return
	}
	if d.saveErr != "" {
		d.saveErr = ""
		d.log.Info("saving state works again", "path", d.statePath)
	}
}
