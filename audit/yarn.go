package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mitmwatch/mitmwatch/detector"
)

// yarnChecks audits Yarn's own files: .yarnrc (Yarn 1, which also reads
// .npmrc) and .yarnrc.yml (Yarn 2 and later), in the project and the home
// directory, and the YARN_* variables of the latter.
func (a *auditor) yarnChecks(context.Context) *part {
	p := &part{}
	var dirs []string
	if proj := a.npmProject(); proj != "" {
		dirs = append(dirs, proj)
	}
	if a.home != "" && filepath.Clean(a.home) != filepath.Clean(a.npmProject()) {
		dirs = append(dirs, a.home)
	}
	for _, d := range dirs {
		f := filepath.Join(d, ".yarnrc")
		if data, ok := p.load(f); ok {
			for _, e := range parseYarnrc(data) {
				a.judgeNpm(p, "yarn", e.Key, e.Key, e.Value, at(f, e.Line))
			}
		}
		f = filepath.Join(d, ".yarnrc.yml")
		if data, ok := p.load(f); ok {
			var doc yaml.Node
			if err := yaml.Unmarshal(data, &doc); err != nil {
				p.warn(fmt.Sprintf("%s: %v", f, err))
				continue
			}
			if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
				a.judgeYarnMap(p, f, nil, doc.Content[0])
			}
		}
	}
	for _, name := range []string{"YARN_ENABLE_STRICT_SSL", "YARN_NPM_REGISTRY_SERVER", "YARN_UNSAFE_HTTP_WHITELIST", "YARN_HTTPS_CA_FILE_PATH", "YARN_HTTP_PROXY", "YARN_HTTPS_PROXY"} {
		if v := a.env.get(name); v != "" {
			a.judgeYarn(p, yarnKey(name), name, strings.Split(v, ","), fromEnv)
		}
	}
	return p
}

// yarnKey turns YARN_ENABLE_STRICT_SSL into enableStrictSsl.
func yarnKey(env string) string {
	words := strings.Split(strings.ToLower(strings.TrimPrefix(env, "YARN_")), "_")
	for i := 1; i < len(words); i++ {
		if words[i] != "" {
			words[i] = strings.ToUpper(words[i][:1]) + words[i][1:]
		}
	}
	return strings.Join(words, "")
}

// judgeYarnMap walks the top level of .yarnrc.yml and npmScopes.
func (a *auditor) judgeYarnMap(p *part, file string, prefix []string, m *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		path := append(append([]string(nil), prefix...), k.Value)
		if len(path) == 1 && k.Value == "npmScopes" && v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				if scope := v.Content[j+1]; scope.Kind == yaml.MappingNode {
					a.judgeYarnMap(p, file, []string{"npmScopes", v.Content[j].Value}, scope)
				}
			}
			continue
		}
		var values []string
		switch v.Kind {
		case yaml.ScalarNode:
			values = []string{v.Value}
		case yaml.SequenceNode:
			for _, item := range v.Content {
				values = append(values, item.Value)
			}
		default:
			continue
		}
		a.judgeYarn(p, k.Value, strings.Join(path, "."), values, at(file, k.Line))
	}
}

// judgeYarn judges one Yarn 2+ setting; key is its bare name.
func (a *auditor) judgeYarn(p *part, key, setting string, values []string, source string) {
	value := strings.Join(values, " ")
	switch key {
	case "enableStrictSsl":
		if falsy(value) {
			p.add(Finding{Tool: "yarn", Setting: setting, Value: value, Source: source, Severity: detector.Critical,
				Why: "yarn accepts any certificate from the registry: anything on the path can replace packages (and the scripts they run) and read auth tokens",
				Fix: "Remove it and give yarn the corporate CA: httpsCaFilePath: /path/to/corp-ca.pem, or NODE_EXTRA_CA_CERTS."})
		}
	case "npmRegistryServer":
		a.judgeNpm(p, "yarn", "registry", setting, value, source)
	case "unsafeHttpWhitelist":
		if value == "" {
			return
		}
		for _, h := range values {
			if host, ok := hostPort(h, setting, source); ok {
				host.Scheme, host.Port = "http", 80
				p.hosts = append(p.hosts, host)
			}
		}
		p.add(Finding{Tool: "yarn", Setting: setting, Value: value, Source: source, Severity: detector.Critical,
			Why: "yarn fetches from these hosts over plain http: anything on the path can replace packages and read the tokens sent",
			Fix: "Serve them over https with a certificate from your internal CA (httpsCaFilePath) and empty the list."})
	case "httpsCaFilePath", "caFilePath":
		if value != "" {
			a.caSetting(p, "yarn", setting, value, source, false)
		}
	case "httpProxy", "httpsProxy":
		if value != "" {
			p.add(proxyFinding("yarn", setting, value, source,
				"yarn sends its registry traffic through this proxy; if it inspects TLS, yarn needs the proxy's CA (httpsCaFilePath), never enableStrictSsl: false"))
		}
	}
}

// parseYarnrc reads a Yarn 1 .yarnrc: `key value` lines, # comments, keys
// and values optionally in double quotes.
func parseYarnrc(data []byte) []iniEntry {
	var out []iniEntry
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, rest := yarnToken(line)
		if key == "" {
			continue
		}
		value, _ := yarnToken(strings.TrimSpace(rest))
		out = append(out, iniEntry{Key: key, Value: value, Line: n + 1})
	}
	return out
}

// yarnToken splits off the first (possibly quoted) token of s.
func yarnToken(s string) (tok, rest string) {
	if strings.HasPrefix(s, `"`) {
		for i := 1; i < len(s); i++ {
			if s[i] == '\\' {
				i++
				continue
			}
			if s[i] == '"' {
				var v string
				if json.Unmarshal([]byte(s[:i+1]), &v) == nil {
					return v, s[i+1:]
				}
				return s[1:i], s[i+1:]
			}
		}
		return s[1:], ""
	}
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}
