package audit

import (
	"context"
	"strings"
	"sync"

	"github.com/mitmwatch/mitmwatch/toolchain"
)

// ToolchainSettings reads where Go, npm (and pnpm, yarn) and pip fetch
// packages from — go env's values, every .npmrc and pip.conf layer, the
// variables that override them — for toolchain.Discover. It is the part of
// Run that discovery needs, for callers that do not audit: it reads the go
// settings as Run does (running `go env` only where the go env files
// cannot answer; never git) and reads no trust store. System-wide files are read for
// their registries even without AllUsers, as the tools read them for
// every user.
func ToolchainSettings(ctx context.Context, opts Options) toolchain.Settings {
	a := newAuditor(opts)
	checks := []func(context.Context) *part{a.goChecks, a.npmChecks, a.yarnChecks, a.pipChecks}
	parts := make([]*part, len(checks))
	var wg sync.WaitGroup
	for i, check := range checks {
		wg.Go(func() { parts[i] = check(ctx) })
	}
	wg.Wait()
	return toolchainSettings(parts)
}

// toolchainSettings gathers the parts' registries, in the parts' order.
func toolchainSettings(parts []*part) toolchain.Settings {
	var s toolchain.Settings
	seen := map[string]bool{}
	for _, p := range parts {
		s.NPMRegistry = s.NPMRegistry || p.npmRegistry
		for _, h := range p.registries {
			t := h.Toolchain()
			if !seen[t.Key()] {
				seen[t.Key()] = true
				s.Hosts = append(s.Hosts, t)
			}
		}
	}
	return s
}

// npmRegistriesOnly reads the registries of an .npmrc the audit does not
// judge; a file that cannot be read is skipped without a warning.
func (a *auditor) npmRegistriesOnly(p *part, f npmrcFile) {
	data, ok, err := readFile(f.path, maxConfigSize)
	if err != nil || !ok {
		return
	}
	entries, _ := parseNpmrc(data, a.env.get)
	for _, e := range entries {
		if e.Section != "" || !(e.Key == "registry" || strings.HasSuffix(e.Key, ":registry")) {
			continue
		}
		if h, ok := urlHost(e.Value, e.Key, at(f.path, e.Line)); ok {
			p.registries = append(p.registries, h)
		}
		p.npmRegistry = p.npmRegistry || (f.tool == "npm" && e.Key == "registry" && e.Value != "")
	}
}

// pipRegistriesOnly reads the indexes of a pip.conf the audit does not
// judge; a file that cannot be read is skipped without a warning.
func (a *auditor) pipRegistriesOnly(p *part, path string) {
	data, ok, err := readFile(path, maxConfigSize)
	if err != nil || !ok {
		return
	}
	entries, _ := parsePipConf(data)
	for _, e := range entries {
		switch e.Key {
		case "index-url", "extra-index-url", "find-links":
			for _, u := range strings.Fields(e.Value) {
				if h, ok := urlHost(u, e.Section+"."+e.Key, at(path, e.Line)); ok {
					p.registries = append(p.registries, h)
				}
			}
		}
	}
}
