package audit

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mitmwatch/mitmwatch/detector"
)

// npmChecks audits npm's configuration (pnpm and yarn v1 read the same
// .npmrc files): the project, user and global .npmrc, pnpm's rc, the
// npm_config_* variables and Node's own TLS variables.
func (a *auditor) npmChecks(context.Context) *part {
	p := &part{}
	judged := a.npmrcFiles(a.opts.AllUsers)
	for _, f := range judged {
		data, ok := p.load(f.path)
		if !ok {
			continue
		}
		entries, problems := parseNpmrc(data, a.env.get)
		for _, pr := range problems {
			p.warn(fmt.Sprintf("%s: %s", f.path, pr))
		}
		for _, e := range entries {
			if e.Section == "" { // npm ignores keys inside a [section]
				a.judgeNpm(p, f.tool, e.Key, e.Key, e.Value, at(f.path, e.Line))
			}
		}
	}
	for _, v := range a.env.withPrefix("npm_config_", "strict_ssl", "registry", "cafile", "ca", "proxy", "https_proxy", "http_proxy") {
		if v.value == "" {
			continue // npm skips empty variables
		}
		key := v.name[len("npm_config_"):]
		if !strings.HasPrefix(key, "//") {
			key = strings.ToLower(strings.ReplaceAll(key, "_", "-"))
		}
		a.judgeNpm(p, "npm", key, v.name, v.value, fromEnv)
	}
	// npm reads the global npmrc for every user: discovery needs its
	// registry even where the audit does not judge the file.
	for _, f := range a.npmrcFiles(true) {
		if !containsPath(judged, f.path) {
			a.npmRegistriesOnly(p, f)
		}
	}
	if v := a.env.get("NODE_TLS_REJECT_UNAUTHORIZED"); v == "0" {
		p.add(Finding{Tool: "npm", Setting: "NODE_TLS_REJECT_UNAUTHORIZED", Value: v, Source: fromEnv, Severity: detector.Critical,
			Why: "Node.js accepts any certificate, for npm, yarn, pnpm and every script and postinstall they run: anything on the path can read and replace packages and tokens",
			Fix: "Unset it and give Node the corporate CA: NODE_EXTRA_CA_CERTS=/path/to/corp-ca.pem (added to Node's built-in roots), or npm config set cafile for npm alone."})
	}
	if v := a.env.get("NODE_EXTRA_CA_CERTS"); v != "" {
		a.caSetting(p, "npm", "NODE_EXTRA_CA_CERTS", v, fromEnv, false)
	}
	return p
}

// npmrcFile is an .npmrc-format file and the tool it configures.
type npmrcFile struct{ path, tool string }

// npmrcFiles lists the .npmrc files npm (and pnpm) read for this user:
// the project's, the user's, pnpm's rc and, with allUsers or when named
// by npm_config_globalconfig, the global one.
func (a *auditor) npmrcFiles(allUsers bool) []npmrcFile {
	var out []npmrcFile
	if g := a.npmEnv("globalconfig"); g != "" {
		out = append(out, npmrcFile{g, "npm"})
	} else if allUsers {
		prefixes := []string{a.sys("/etc"), a.sys("/usr/local/etc"), a.sys("/usr/etc")}
		if p := cmp.Or(a.npmEnv("prefix"), a.env.get("PREFIX")); p != "" {
			prefixes = append([]string{filepath.Join(p, "etc")}, prefixes...)
		}
		for _, d := range prefixes {
			out = append(out, npmrcFile{filepath.Join(d, "npmrc"), "npm"})
		}
	}
	if u := a.npmEnv("userconfig"); u != "" {
		out = append(out, npmrcFile{u, "npm"})
	} else if a.home != "" {
		out = append(out, npmrcFile{filepath.Join(a.home, ".npmrc"), "npm"})
	}
	if a.xdg != "" {
		out = append(out, npmrcFile{filepath.Join(a.xdg, "pnpm", "rc"), "pnpm"})
	}
	if proj := filepath.Join(a.npmProject(), ".npmrc"); !containsPath(out, proj) {
		out = append(out, npmrcFile{proj, "npm"})
	}
	return out
}

func containsPath(files []npmrcFile, path string) bool {
	for _, f := range files {
		if filepath.Clean(f.path) == filepath.Clean(path) {
			return true
		}
	}
	return false
}

// npmEnv reads an npm_config_ variable in either case.
func (a *auditor) npmEnv(key string) string {
	for _, v := range a.env.anyCase("npm_config_" + key) {
		if v.value != "" {
			return v.value
		}
	}
	return ""
}

// npmProject is the directory whose .npmrc is the project's: the nearest
// one above the working directory holding package.json or node_modules,
// else the working directory, as npm finds its local prefix.
func (a *auditor) npmProject() string {
	for d := a.dir; d != ""; {
		for _, marker := range []string{"package.json", "node_modules"} {
			if exists(filepath.Join(d, marker)) {
				return d
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	return a.dir
}

// npmFalse reads an npm boolean as nopt does: false, null, "" and numbers
// equal to zero are false.
func npmFalse(v string) bool {
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return f == 0
	}
	return v == "" || v == "false" || v == "null"
}

// judgeNpm judges one npm setting: key is its npm name, setting how the
// user wrote it (a variable's name, Yarn's npmRegistryServer).
func (a *auditor) judgeNpm(p *part, tool, key, setting, value, source string) {
	p.set(tool, key, value, source)
	switch {
	case key == "strict-ssl" && npmFalse(value):
		p.add(Finding{Tool: tool, Setting: setting, Value: value, Source: source, Severity: detector.Critical,
			Why: tool + " accepts any certificate from the registry: anything on the path can replace packages (and the install scripts they run) and read auth tokens",
			Fix: "Remove it and give npm the corporate CA: npm config set cafile /path/to/corp-ca.pem, or NODE_EXTRA_CA_CERTS for Node as a whole."})
	case key == "registry" || strings.HasSuffix(key, ":registry"):
		if h, ok := urlHost(value, setting, source); ok {
			p.hosts = append(p.hosts, h)
			p.registries = append(p.registries, h)
		}
		p.npmRegistry = p.npmRegistry || (tool == "npm" && key == "registry" && value != "")
		if plainHTTP(value) {
			p.add(Finding{Tool: tool, Setting: setting, Value: redactURLs(value), Source: source, Severity: detector.Critical,
				Why: "packages come over plain http: anything on the path can replace them and the install scripts they run, and read the auth token sent to the registry",
				Fix: "Serve the registry over https (a certificate from your internal CA, given to npm with cafile or NODE_EXTRA_CA_CERTS) and write it as https://."})
		}
	case key == "cafile" && value != "":
		a.caSetting(p, tool, setting, value, source, false)
	case key == "ca" && value != "" && value != "null":
		p.add(Finding{Tool: tool, Setting: setting, Value: "(inline certificate)", Source: source, Severity: detector.Info,
			Why: tool + " trusts only the CA given inline here, in place of the public roots: whoever holds its key can impersonate every registry",
			Fix: "Prefer cafile (or NODE_EXTRA_CA_CERTS) naming a bundle you maintain, and make sure this CA is the one you mean to trust."})
	case key == "proxy" || key == "https-proxy" || key == "http-proxy":
		if value != "" && value != "null" && value != "false" {
			p.add(proxyFinding(tool, setting, value, source,
				tool+" sends its registry traffic through this proxy; if it inspects TLS, npm needs the proxy's CA (cafile or NODE_EXTRA_CA_CERTS), never strict-ssl=false"))
		}
	}
}
