package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/mitmwatch/mitmwatch/detector"
)

// pipChecks audits pip's configuration files and PIP_* variables, and the
// CA variables of Python's requests.
func (a *auditor) pipChecks(context.Context) *part {
	p := &part{}
	judged := a.pipFiles(a.opts.AllUsers)
	for _, f := range judged {
		data, ok := p.load(f)
		if !ok {
			continue
		}
		entries, problems := parsePipConf(data)
		for _, pr := range problems {
			p.warn(fmt.Sprintf("%s: %s", f, pr))
		}
		for _, e := range entries {
			a.judgePip(p, e.Section+"."+e.Key, e.Key, e.Value, at(f, e.Line))
		}
	}
	for _, name := range []string{"PIP_TRUSTED_HOST", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CERT", "PIP_PROXY"} {
		if v := a.env.get(name); v != "" {
			a.judgePip(p, name, normalizePipKey(strings.TrimPrefix(name, "PIP_")), v, fromEnv)
		}
	}
	for _, name := range []string{"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"} {
		if v := a.env.get(name); v != "" {
			a.caSetting(p, "pip", name, v, fromEnv, false)
		}
	}
	// pip reads the system-wide files for every user: discovery needs
	// their indexes even where the audit does not judge them.
	for _, f := range a.pipFiles(true) {
		if !slices.Contains(judged, f) {
			a.pipRegistriesOnly(p, f)
		}
	}
	return p
}

// pipFiles lists the files pip reads, lowest precedence first: the
// system-wide ones (with allUsers), the user's, the virtualenv's and
// PIP_CONFIG_FILE.
func (a *auditor) pipFiles(allUsers bool) []string {
	var out []string
	name := "pip.conf"
	if runtime.GOOS == "windows" {
		name = "pip.ini"
	}
	if allUsers {
		dirs := a.env.get("XDG_CONFIG_DIRS")
		if dirs == "" {
			dirs = "/etc/xdg"
		}
		for _, d := range filepath.SplitList(dirs) {
			out = append(out, a.sys(filepath.Join(d, "pip", name)))
		}
		out = append(out, a.sys("/etc/"+name))
	}
	if a.home != "" {
		out = append(out, filepath.Join(a.home, ".pip", name))
		if runtime.GOOS == "darwin" {
			out = append(out, filepath.Join(a.home, "Library", "Application Support", "pip", name))
		}
	}
	if appdata := a.env.get("APPDATA"); appdata != "" && runtime.GOOS == "windows" {
		out = append(out, filepath.Join(appdata, "pip", name))
	} else if a.xdg != "" {
		out = append(out, filepath.Join(a.xdg, "pip", name))
	}
	if venv := a.env.get("VIRTUAL_ENV"); venv != "" {
		out = append(out, filepath.Join(venv, name))
	}
	if f := a.env.get("PIP_CONFIG_FILE"); f != "" && f != os.DevNull {
		out = append(out, f)
	}
	return out
}

// judgePip judges one pip setting; setting is how the user wrote it
// (global.trusted-host or PIP_TRUSTED_HOST), key its normalised name.
func (a *auditor) judgePip(p *part, setting, key, value, source string) {
	p.set("pip", setting, value, source)
	switch key {
	case "trusted-host":
		hosts := strings.Fields(value)
		if len(hosts) == 0 {
			return
		}
		for _, h := range hosts {
			if host, ok := hostPort(h, setting, source); ok {
				p.hosts = append(p.hosts, host)
			}
		}
		p.add(Finding{Tool: "pip", Setting: setting, Value: redactURLs(strings.Join(hosts, " ")), Source: source, Severity: detector.Critical,
			Why: "pip accepts any certificate from these hosts, and plain http to them: anything on the path can replace the packages and the build code they run",
			Fix: "Remove it and give pip the CA instead: pip config set global.cert /path/to/bundle.pem, a bundle of the public roots plus your corporate CA (cert replaces pip's roots); serve internal indexes over https."})
	case "index-url", "extra-index-url", "find-links":
		for _, u := range strings.Fields(value) {
			if h, ok := urlHost(u, setting, source); ok {
				p.hosts = append(p.hosts, h)
				p.registries = append(p.registries, h)
			}
			if plainHTTP(u) {
				p.add(Finding{Tool: "pip", Setting: setting, Value: redactURLs(u), Source: source, Severity: detector.Critical,
					Why: "packages come over plain http: anything on the path can replace them and the build code they run, and read the index credentials",
					Fix: "Serve the index over https with a certificate from your internal CA, give pip that CA (global.cert), and drop any trusted-host for it."})
			}
		}
	case "cert":
		a.caSetting(p, "pip", setting, value, source, false)
	case "proxy":
		if value != "" {
			p.add(proxyFinding("pip", setting, value, source,
				"pip sends its traffic through this proxy; if it inspects TLS, pip needs the proxy's CA (global.cert), never trusted-host"))
		}
	}
}
