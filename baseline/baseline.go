// Package baseline records what each host looks like from a network the
// user trusts — who signs its chain, where it lives, which TLS it speaks —
// so later checks can tell a change on the path from the host's normal
// state without anyone having to find and paste pins by hand.
package baseline

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/mitmwatch/mitmwatch/atomicfile"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
)

// Version is the file format's version.
const Version = 1

// Baseline is the learned state of every target, keyed by "host:port".
type Baseline struct {
	Version   int              `json:"version"`
	LearnedAt time.Time        `json:"learned_at"`
	Targets   map[string]Entry `json:"targets"`
}

// Entry is what one host looked like when learned.
type Entry struct {
	CASPKI []string `json:"ca_spki_sha256"`
	// CASubjects are the subjects (RFC 4514) of the CAs in CASPKI, in the
	// same order: a CA that later copies one with another key is caught
	// by name. Baselines learned before this field have none.
	CASubjects []string     `json:"ca_subjects,omitempty"`
	Addresses  []netip.Addr `json:"addresses,omitempty"`
	TLSVersion string       `json:"tls_version"`
	ALPN       string       `json:"alpn,omitempty"`
	SCT        bool         `json:"sct"`
	// LeafFresh says the learned leaf was minted within a day of
	// learning: a host that rotates that often makes freshness no evidence.
	LeafFresh bool `json:"leaf_fresh,omitempty"`
	// SSHHostKeys are the host keys an SSH target showed (integrity.go);
	// such an entry has no TLS fields.
	SSHHostKeys []detector.SSHFingerprint `json:"ssh_host_key_sha256,omitempty"`
}

// Learn builds a baseline from judged results. Only hosts judged ok or
// inspected are learned: anything else would teach the tool to accept the
// very middlebox it should report. The skipped keys are returned.
func Learn(results []detector.Result, now time.Time) (Baseline, []string) {
	b := Baseline{Version: Version, LearnedAt: now.UTC(), Targets: map[string]Entry{}}
	var skipped []string
	for _, r := range results {
		key := r.Obs.Key() // the form config.Target.Key gives, which Apply looks up
		if e, learn, ok := learnIntegrity(r); ok {
			if learn {
				b.Targets[key] = e
			} else if r.Obs.Protocol == detector.ProtocolSSH {
				skipped = append(skipped, fmt.Sprintf("%s (%s)", key, r.Verdict))
			}
			continue
		}
		st := r.Obs.TLS
		if st == nil || len(st.Chain) == 0 || (r.Verdict != detector.OK && r.Verdict != detector.Inspected) {
			skipped = append(skipped, fmt.Sprintf("%s (%s)", key, r.Verdict))
			continue
		}
		e := Entry{TLSVersion: versionText(st.Version), ALPN: st.ALPN, SCT: detector.HasSCT(st.Chain[0]),
			LeafFresh: now.Sub(st.Chain[0].NotBefore) < 24*time.Hour}
		for _, c := range detector.CAs(st) {
			e.CASPKI = append(e.CASPKI, detector.SPKIOf(c).String())
			e.CASubjects = append(e.CASubjects, c.Subject.String())
		}
		if a := r.Obs.ConnectedAddr; a.IsValid() && r.Obs.Path.Kind == detector.PathDirect {
			e.Addresses = append(e.Addresses, a.Addr().Unmap())
		}
		for _, a := range r.Obs.ResolvedAddrs {
			if a = a.Unmap(); !slices.Contains(e.Addresses, a) {
				e.Addresses = append(e.Addresses, a)
			}
		}
		b.Targets[key] = e
	}
	return b, skipped
}

// Apply merges the baseline into the targets' expectations. Its CAs become
// the Learned expectation, which a publicly trusted chain may contradict
// only with corroboration (the pins in rules.yaml stay the operator's
// assertion). Addresses are widened to their /24 (IPv4) or /48 (IPv6):
// hosts move within their network far more often than out of it.
func (b Baseline) Apply(targets []config.Target) ([]config.Target, error) {
	out := slices.Clone(targets)
	for i, t := range out {
		e, ok := b.Targets[t.Key()]
		if !ok {
			continue
		}
		if t.Protocol == detector.ProtocolSSH {
			out[i].Expect = applySSH(t.Expect, e)
			continue
		}
		exp := t.Expect
		learned := &detector.Learned{SCT: e.SCT, LeafFresh: e.LeafFresh}
		for i, s := range e.CASPKI {
			pin, err := ParsePin(s)
			if err != nil {
				return nil, fmt.Errorf("baseline: %s: %w", t.Key(), err)
			}
			ca := detector.LearnedCA{SPKI: pin}
			if i < len(e.CASubjects) {
				ca.Subject = e.CASubjects[i]
			}
			learned.CAs = append(learned.CAs, ca)
		}
		exp.Learned = learned
		exp.IPRanges = slices.Clone(exp.IPRanges)
		for _, a := range e.Addresses {
			bits := 24
			if a.Is6() {
				bits = 48
			}
			p, _ := a.Prefix(bits)
			if !slices.Contains(exp.IPRanges, p) {
				exp.IPRanges = append(exp.IPRanges, p)
			}
		}
		if v := versionNumber(e.TLSVersion); v > exp.MinVersion {
			exp.MinVersion = v
		}
		if len(exp.ALPN) == 0 && e.ALPN != "" {
			exp.ALPN = []string{e.ALPN}
		}
		exp.SCT = exp.SCT || e.SCT
		out[i].Expect = exp
	}
	return out, nil
}

// ParsePin decodes a base64 SHA-256 SPKI pin.
func ParsePin(s string) (detector.SPKI, error) {
	var pin detector.SPKI
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return pin, fmt.Errorf("pin %q: %w", s, err)
	}
	if len(raw) != len(pin) {
		return pin, fmt.Errorf("pin %q: %d bytes, want 32", s, len(raw))
	}
	copy(pin[:], raw)
	return pin, nil
}

// Load reads a baseline file.
func Load(path string) (Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Baseline{}, fmt.Errorf("baseline: %w", err)
	}
	var b Baseline
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return Baseline{}, fmt.Errorf("baseline %s: %w", path, err)
	}
	if b.Version != Version {
		return Baseline{}, fmt.Errorf("baseline %s: version %d, want %d", path, b.Version, Version)
	}
	return b, nil
}

// Save writes the baseline atomically: a crash leaves the old file or the
// new one, never half of one.
func (b Baseline) Save(path string) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	return atomicfile.Write(path, append(data, '\n'), 0o644)
}

func versionText(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return ""
}

func versionNumber(s string) uint16 {
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13} {
		if versionText(v) == s {
			return v
		}
	}
	return 0
}
