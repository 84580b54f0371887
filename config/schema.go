package config

import (
	"net/netip"

	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/mitmwatch/mitmwatch/detector"
)

// document decodes the top level of rules.yaml into cfg and the trust specs.
func (d *decoder) document(root *yaml.Node, cfg *Config, public, system *spec) {
	root = d.resolve(root)
	if isNull(root) {
		return
	}
	d.fields(root, "", map[string]field{
		"toolchain": func(v *yaml.Node, p string) {
			if on, ok := one(d, v, p, parseToolchain); ok {
				cfg.Toolchain = on
			}
		},
		"trust": func(v *yaml.Node, p string) {
			d.fields(v, p, map[string]field{
				"public_roots": func(v *yaml.Node, p string) { d.trustSpec(v, p, public) },
				"system_roots": func(v *yaml.Node, p string) { d.trustSpec(v, p, system) },
			})
		},
		"allow": func(v *yaml.Node, p string) {
			d.fields(v, p, map[string]field{
				"inspection_ca_spki_sha256": func(v *yaml.Node, p string) {
					cfg.Policy.ApprovedInspection = each(d, v, p, parsePin)
				},
			})
		},
		"probe": func(v *yaml.Node, p string) {
			d.fields(v, p, map[string]field{
				"timeout": func(v *yaml.Node, p string) {
					if t, ok := one(d, v, p, parseTimeout); ok {
						cfg.Timeout = t
					}
				},
				"concurrency": func(v *yaml.Node, p string) {
					if c, ok := one(d, v, p, parseConcurrency); ok {
						cfg.Concurrency = c
					}
				},
				"interval": func(v *yaml.Node, p string) {
					if i, ok := one(d, v, p, parseInterval); ok {
						cfg.Interval = i
					}
				},
				"path": func(v *yaml.Node, p string) {
					d.fields(v, p, map[string]field{
						"samples": func(v *yaml.Node, p string) {
							if n, ok := one(d, v, p, parsePathSamples); ok {
								cfg.Path.Samples = n
							}
						},
						"max_hops": func(v *yaml.Node, p string) {
							if n, ok := one(d, v, p, parseMaxHops); ok {
								cfg.Path.MaxHops = n
							}
						},
						"ttl": func(v *yaml.Node, p string) {
							if always, ok := one(d, v, p, parseTTLMode); ok {
								cfg.Path.TTLAlways = always
							}
						},
					})
				},
			})
		},
		"dns": func(v *yaml.Node, p string) {
			d.fields(v, p, map[string]field{
				"resolv_conf": func(v *yaml.Node, p string) {
					if path, ok := d.scalar(v, p); ok {
						if path == "" {
							d.errorf(v.Line, p, "empty (want a path such as %q)", DefaultResolvConf)
							return
						}
						cfg.DNS.ResolvConf = path
					}
				},
				"reference_resolvers": func(v *yaml.Node, p string) {
					cfg.DNS.Reference = each(d, v, p, parseResolver)
				},
				"bogons": func(v *yaml.Node, p string) {
					// An explicit empty list means no bogons, not the defaults.
					cfg.Policy.Bogons = append([]netip.Prefix{}, each(d, v, p, parseCIDR)...)
				},
				"canary": func(v *yaml.Node, p string) {
					if on, ok := one(d, v, p, parseBool); ok {
						cfg.DNS.Canary = on
					}
				},
			})
		},
		"targets":     func(v *yaml.Node, p string) { cfg.Targets = d.targets(v, p) },
		"ranges_file": func(*yaml.Node, string) {}, // read first, by loadRanges
		"passive": func(v *yaml.Node, p string) {
			d.fields(v, p, map[string]field{
				"interface": func(v *yaml.Node, p string) {
					if name, ok := d.scalar(v, p); ok {
						if name == "" {
							d.errorf(v.Line, p, `empty (want an interface name such as "eth0")`)
							return
						}
						cfg.Passive.Interface = name
					}
				},
				"ports": func(v *yaml.Node, p string) {
					for _, port := range each(d, v, p, parsePort) {
						cfg.Passive.Ports = append(cfg.Passive.Ports, uint16(port))
					}
				},
				"window": func(v *yaml.Node, p string) {
					if w, ok := one(d, v, p, parseWindow); ok {
						cfg.Passive.Window = w
					}
				},
			})
		},
	})
}

// trustSpec records a trust store setting; the store itself is built once
// the whole file is decoded.
func (d *decoder) trustSpec(v *yaml.Node, path string, s *spec) {
	value, ok := d.scalar(v, path)
	if !ok {
		return
	}
	if value == "" {
		d.errorf(v.Line, path, "empty (want %q or a path to a PEM bundle)", s.value)
		return
	}
	s.value, s.line = value, v.Line
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
	t = Target{Port: DefaultPort, Source: fmt.Sprintf("%s:%d", d.file, line)}
	hostOK, portOK := false, true
	present := d.fields(n, path, map[string]field{
		"host": func(v *yaml.Node, p string) { t.Host, hostOK = one(d, v, p, parseHost) },
		"port": func(v *yaml.Node, p string) { t.Port, portOK = one(d, v, p, parsePort) },
		"address": func(v *yaml.Node, p string) {
			t.Address, _ = one(d, v, p, parseAddress)
		},
		"expect": func(v *yaml.Node, p string) { t.Expect = d.expect(v, p) },
		"interval": func(v *yaml.Node, p string) {
			t.Interval, _ = one(d, v, p, parseInterval)
		},
	})
	if present == nil {
		return t, false
	}
	if !present["host"] {
		d.errorf(n.Line, join(path, "host"), "required")
	}
	return t, hostOK && portOK
}

// expect decodes what a host should look like. Absent fields expect nothing.
func (d *decoder) expect(n *yaml.Node, path string) detector.Expectation {
	var e detector.Expectation
	d.fields(n, path, map[string]field{
		"ca_spki_sha256": func(v *yaml.Node, p string) { e.CASPKI = each(d, v, p, parsePin) },
		"ip_ranges": func(v *yaml.Node, p string) {
			for _, ps := range each(d, v, p, d.parseRange) {
				e.IPRanges = append(e.IPRanges, ps...)
			}
		},
		"tls_min_version": func(v *yaml.Node, p string) {
			e.MinVersion, _ = one(d, v, p, parseTLSVersion)
		},
		"alpn": func(v *yaml.Node, p string) { e.ALPN = each(d, v, p, parseALPN) },
		"sct":  func(v *yaml.Node, p string) { e.SCT, _ = one(d, v, p, parseBool) },
	})
	return e
}
