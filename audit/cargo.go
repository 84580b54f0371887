package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/mitmwatch/mitmwatch/detector"
)

// cargoChecks audits Cargo's config.toml files (CARGO_HOME's and the
// project's .cargo directories up to the root) and CARGO_* variables.
func (a *auditor) cargoChecks(context.Context) *part {
	p := &part{}
	for _, f := range a.cargoFiles() {
		data, ok := p.load(f)
		if !ok {
			continue
		}
		entries, err := flattenTOML(data)
		if err != nil {
			p.warn(fmt.Sprintf("%s: %v", f, err))
			continue // cargo refuses the file too
		}
		for _, e := range entries {
			a.judgeCargo(p, e.path, tomlName(e.path), e.str, e.isStr, at(f, e.line))
		}
	}
	envs := []struct {
		name string
		path []string
	}{
		{"CARGO_HTTP_CHECK_REVOKE", []string{"http", "check-revoke"}},
		{"CARGO_HTTP_CAINFO", []string{"http", "cainfo"}},
		{"CARGO_HTTP_PROXY", []string{"http", "proxy"}},
	}
	for _, e := range envs {
		if v := a.env.get(e.name); v != "" {
			a.judgeCargo(p, e.path, e.name, v, true, fromEnv)
		}
	}
	for _, v := range a.env.withPrefix("CARGO_REGISTRIES_") {
		name, ok := strings.CutSuffix(v.name[len("CARGO_REGISTRIES_"):], "_INDEX")
		if ok && v.value != "" {
			a.judgeCargo(p, []string{"registries", strings.ToLower(strings.ReplaceAll(name, "_", "-")), "index"}, v.name, v.value, true, fromEnv)
		}
	}
	return p
}

// cargoFiles lists the config files Cargo reads: .cargo/config.toml in the
// working directory and each parent, and CARGO_HOME's (plus the system
// CARGO_HOME of container images with AllUsers). Where both config and
// config.toml exist Cargo reads config; so does this.
func (a *auditor) cargoFiles() []string {
	var dirs []string
	for d := a.dir; d != ""; {
		dirs = append(dirs, filepath.Join(d, ".cargo"))
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	home := a.env.get("CARGO_HOME")
	if home == "" && a.home != "" {
		home = filepath.Join(a.home, ".cargo")
	}
	if home != "" {
		dirs = append(dirs, home)
	}
	if a.opts.AllUsers {
		dirs = append(dirs, a.sys("/usr/local/cargo"))
	}
	var out []string
	seen := map[string]bool{}
	for _, d := range dirs {
		d = filepath.Clean(d)
		if seen[d] {
			continue
		}
		seen[d] = true
		f := filepath.Join(d, "config")
		if !exists(f) {
			f += ".toml"
		}
		out = append(out, f)
	}
	return out
}

// tomlEntry is one leaf value of a TOML document.
type tomlEntry struct {
	path  []string
	str   string // the value as text (strings unquoted, arrays space-joined)
	isStr bool   // a string (or an array of strings)
	line  int
}

// flattenTOML validates a TOML document and returns its leaves with the
// line each was written on, dotted keys and inline tables included.
func flattenTOML(data []byte) ([]tomlEntry, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("line %d column %d: %s", row, col, de.Error())
		}
		return nil, err
	}
	var out []tomlEntry
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
		case unstable.KeyValue:
			out = flattenKV(&p, out, table, e)
		}
	}
	if err := p.Error(); err != nil {
		return nil, err
	}
	return out, nil
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

func flattenKV(p *unstable.Parser, out []tomlEntry, prefix []string, kv *unstable.Node) []tomlEntry {
	path := append(append([]string(nil), prefix...), keyParts(kv.Key())...)
	line := p.Shape(kv.Raw).Start.Line
	v := kv.Value()
	switch v.Kind {
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				out = flattenKV(p, out, path, c)
			}
		}
		return out
	case unstable.Array:
		var items []string
		for it := v.Children(); it.Next(); {
			if c := it.Node(); c.Kind == unstable.String {
				items = append(items, string(c.Data))
			}
		}
		return append(out, tomlEntry{path: path, str: strings.Join(items, " "), isStr: true, line: line})
	case unstable.String:
		return append(out, tomlEntry{path: path, str: string(v.Data), isStr: true, line: line})
	default:
		return append(out, tomlEntry{path: path, str: string(v.Data), line: line})
	}
}

// tomlName renders a key path, quoting parts that need it.
func tomlName(path []string) string {
	parts := make([]string, len(path))
	for i, s := range path {
		parts[i] = s
		if s == "" || strings.ContainsFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) {
			parts[i] = quote(s)
		}
	}
	return strings.Join(parts, ".")
}

// judgeCargo judges one Cargo setting: path is its key, name how the user
// wrote it (the TOML key or a CARGO_ variable).
func (a *auditor) judgeCargo(p *part, path []string, name, value string, isStr bool, source string) {
	p.set("cargo", strings.Join(path, "."), value, source)
	switch {
	case len(path) == 2 && path[0] == "http" && path[1] == "check-revoke" && falsy(value):
		p.add(Finding{Tool: "cargo", Setting: name, Value: value, Source: source, Severity: detector.Warning,
			Why: "Cargo stops checking whether certificates were revoked (it checks on Windows): a revoked certificate, like one whose key leaked from an appliance, is accepted. It is usually turned off because an inspecting proxy's CA has no reachable revocation list",
			Fix: "Remove it; have the proxy's CA publish revocation information, or exempt the registry hosts from inspection."})
	case len(path) == 2 && path[0] == "http" && path[1] == "cainfo" && isStr && value != "":
		a.caSetting(p, "cargo", name, value, source, false)
	case len(path) == 2 && path[0] == "http" && path[1] == "proxy" && isStr && value != "":
		p.add(proxyFinding("cargo", name, value, source,
			"Cargo sends its traffic through this proxy; if it inspects TLS, Cargo needs the proxy's CA (http.cainfo), never check-revoke=false alone"))
	case isStr && (len(path) == 3 && path[0] == "registries" && path[2] == "index" ||
		len(path) == 2 && path[0] == "registry" && path[1] == "index" ||
		len(path) == 3 && path[0] == "source" && path[2] == "registry"):
		if h, ok := urlHost(value, name, source); ok {
			p.hosts = append(p.hosts, h)
		}
		if plainHTTP(value) {
			p.add(Finding{Tool: "cargo", Setting: name, Value: redactURLs(value), Source: source, Severity: detector.Critical,
				Why: "the registry index (and the crates it points at) come over plain http: anything on the path can change which crate versions and checksums Cargo sees, and so what it builds",
				Fix: "Serve the registry over https with a certificate from your internal CA, give Cargo that CA (http.cainfo), and write the index as sparse+https://."})
		}
	}
}
