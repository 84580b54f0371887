package config

import (
	"fmt"
	"net/netip"

	"go.yaml.in/yaml/v3"

	"github.com/mitmwatch/mitmwatch/detector"
)

// The schema of rules.yaml: one method per section, each a strict mapping
// of its keys to the decoders of their values (value and values, in
// decode.go, for one converted value or a list of them). The keys are a
// contract with every rules.yaml in use.

// document decodes the top level of rules.yaml.
func (d *decoder) document(root *yaml.Node) {
	root = d.resolve(root)
	if isNull(root) {
		return
	}
	d.fields(root, "", map[string]field{
		"toolchain":   value(d, parseToolchain, &d.cfg.Toolchain),
		"trust":       d.trust,
		"allow":       d.allow,
		"probe":       d.probe,
		"dns":         d.dns,
		"ranges_file": func(*yaml.Node, string) {}, // read first, by loadRanges
		"targets":     func(v *yaml.Node, p string) { d.cfg.Targets = d.targets(v, p) },
		"passive":     d.passive,
		"grade":       d.grade,

		"checksum_database": d.checksumDatabase,
	})
}

// trust decodes trust: which roots stand for the public web PKI and which this machine
// trusts.
func (d *decoder) trust(n *yaml.Node, path string) {
	d.fields(n, path, map[string]field{
		"public_roots": func(v *yaml.Node, p string) { d.trustSpec(v, p, &d.public) },
		"system_roots": func(v *yaml.Node, p string) { d.trustSpec(v, p, &d.system) },
	})
}

// allow decodes allow: the approved inspection CAs.
func (d *decoder) allow(n *yaml.Node, path string) {
	d.fields(n, path, map[string]field{
		"inspection_ca_spki_sha256": values(d, parsePin, &d.cfg.Policy.ApprovedInspection),
	})
}

// probe decodes probe: how long, how many at once and how often targets are probed.
func (d *decoder) probe(n *yaml.Node, path string) {
	d.fields(n, path, map[string]field{
		"timeout":     value(d, parseTimeout, &d.cfg.Timeout),
		"concurrency": value(d, parseConcurrency, &d.cfg.Concurrency),
		"interval":    value(d, parseInterval, &d.cfg.Interval),
		"path":        d.probePath,
	})
}

// probePath decodes probe.path: how much of each direct path a probe measures.
func (d *decoder) probePath(n *yaml.Node, path string) {
	d.fields(n, path, map[string]field{
		"samples":  value(d, parsePathSamples, &d.cfg.Path.Samples),
		"max_hops": value(d, parseMaxHops, &d.cfg.Path.MaxHops),
		"ttl":      value(d, parseTTLMode, &d.cfg.Path.TTLAlways),
	})
}

// dns decodes dns: the resolvers to compare and what counts as a bogon answer.
func (d *decoder) dns(n *yaml.Node, path string) {
	d.fields(n, path, map[string]field{
		"resolv_conf":         value(d, parseResolvConf, &d.cfg.DNS.ResolvConf),
		"reference_resolvers": func(v *yaml.Node, p string) { d.cfg.DNS.Reference = d.referenceResolvers(v, p) },
		"bogons": func(v *yaml.Node, p string) {
			// An explicit empty list means no bogons, not the defaults.
			d.cfg.Policy.Bogons = append([]netip.Prefix{}, each(d, v, p, parseCIDR)...)
		},
		"canary": value(d, parseBool, &d.cfg.DNS.Canary),
	})
}

// passive decodes passive: where `run` watches real build traffic.
func (d *decoder) passive(n *yaml.Node, path string) {
	d.fields(n, path, map[string]field{
		"interface": value(d, parseInterface, &d.cfg.Passive.Interface),
		"ports":     values(d, parsePassivePort, &d.cfg.Passive.Ports),
		"window":    value(d, parseWindow, &d.cfg.Passive.Window),
	})
}

// grade decodes grade: when interceptors are graded, how often, and with
// which test hosts (config/grade.go).
func (d *decoder) grade(n *yaml.Node, path string) {
	d.fields(n, path, map[string]field{
		"enabled":    value(d, parseGradeMode, &d.cfg.Grade.Mode),
		"interval":   value(d, parseInterval, &d.cfg.Grade.Interval),
		"test_hosts": func(v *yaml.Node, p string) { d.cfg.Grade.TestHosts = d.testHosts(v, p) },
		"control":    d.control,
	})
}

// checksumDatabase decodes checksum_database: which Go checksum database to
// check, the route to it, and how long its tree may stay the same size.
func (d *decoder) checksumDatabase(n *yaml.Node, path string) {
	present := d.fields(n, path, map[string]field{
		"gosumdb": value(d, parseGOSUMDBSetting, &d.cfg.SumDB.GOSUMDB),
		"goproxy": value(d, parseGOPROXYSetting, &d.cfg.SumDB.GOPROXY),
		"max_age": value(d, parseMaxAge, &d.cfg.SumDB.MaxAge),
	})
	if present["gosumdb"] && d.cfg.SumDB.GOSUMDB != "" {
		d.cfg.SumDB.Source = fmt.Sprintf("%s:%d", d.file, n.Line)
	}
}

// trustSpec records a trust store setting; the store itself is built once
// the whole file is decoded.
func (d *decoder) trustSpec(v *yaml.Node, path string, s *spec) {
	setting, ok := d.scalar(v, path)
	if !ok {
		return
	}
	if setting == "" {
		d.errorf(v.Line, path, "empty (want %q or a path to a PEM bundle)", s.value)
		return
	}
	s.value, s.line = setting, v.Line
}

// targets decodes the target list. Two targets with the same host and port
// are an error naming both lines: they would be probed twice, and the second
// expectation would silently lose.
func (d *decoder) targets(n *yaml.Node, path string) []Target {
	var out []Target
	first := map[string]int{}
	for i, item := range d.list(n, path) {
		p := index(path, i)
		t, keyOK := d.target(d.resolve(item), p, item.Line)
		if !keyOK {
			continue
		}
		if line, dup := first[t.Key()]; dup {
			d.errorf(item.Line, p, "duplicate target %s (first at %s:%d)", t.Key(), d.file, line)
			continue
		}
		first[t.Key()] = item.Line
		out = append(out, t)
	}
	return out
}

// target decodes one target written at line. keyOK reports whether its host
// and port are valid, so that duplicates can be checked.
func (d *decoder) target(n *yaml.Node, path string, line int) (t Target, keyOK bool) {
	t = Target{Source: fmt.Sprintf("%s:%d", d.file, line)}
	hostOK, portOK := false, true
	var lines protocolLines
	present := d.fields(n, path, map[string]field{
		"host":     func(v *yaml.Node, p string) { t.Host, hostOK = one(d, v, p, parseHost) },
		"port":     func(v *yaml.Node, p string) { t.Port, portOK = one(d, v, p, parsePort) },
		"address":  value(d, parseAddress, &t.Address),
		"expect":   func(v *yaml.Node, p string) { t.Expect, lines.expect = d.expect(v, p), v.Line },
		"interval": value(d, parseInterval, &t.Interval),
		"protocol": value(d, parseProtocol, &t.Protocol),
		"fallback": func(v *yaml.Node, p string) { lines.fallback = v.Line; value(d, parseFallback, &t.Fallback)(v, p) },
	})
	if present == nil {
		return t, false
	}
	if t.Port == 0 {
		t.Port = defaultPort(t.Protocol)
	}
	d.checkProtocolFields(t, path, lines)
	if !present["host"] {
		d.errorf(n.Line, join(path, "host"), "required")
	}
	return t, hostOK && portOK
}

// expect decodes what a host should look like. Absent fields expect nothing.
func (d *decoder) expect(n *yaml.Node, path string) detector.Expectation {
	var e detector.Expectation
	d.fields(n, path, map[string]field{
		"ca_spki_sha256": values(d, parsePin, &e.CASPKI),
		"ip_ranges": func(v *yaml.Node, p string) {
			for _, ps := range each(d, v, p, d.parseRange) {
				e.IPRanges = append(e.IPRanges, ps...)
			}
		},
		"tls_min_version": value(d, parseTLSVersion, &e.MinVersion),
		"alpn":            values(d, parseALPN, &e.ALPN),
		"sct":             value(d, parseBool, &e.SCT),

		"ssh_host_key_sha256": values(d, parseSSHFingerprint, &e.SSHHostKeys),
	})
	return e
}
