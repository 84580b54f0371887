package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/toolchain"
)

// goVars are the variables the audit reads, as `go env -json` prints
// them.
var goVars = []string{
	"GOPROXY", "GOSUMDB", "GOINSECURE", "GONOSUMDB", "GONOSUMCHECK",
	"GOPRIVATE", "GONOPROXY", "GOFLAGS", "GOENV", "GOROOT",
}

// goSetting is one Go variable's effective value and where it came from.
type goSetting struct {
	value    string
	source   string // environment, file:line or "go env"
	explicit bool   // set by the user (environment or go env -w), not a toolchain default
}

// envLine is a value of a go env file and its line.
type envLine struct {
	value string
	line  int
}

// goChecks audits the Go module settings: the values `go env` prints when
// go is installed (read from the files as go reads them, or from `go env
// -json` where they cannot answer), else the environment's and the go env
// files'. Either way the files name the line each value came from.
func (a *auditor) goChecks(ctx context.Context) *part {
	p := &part{}
	files := goFiles{}
	vals, fromGo := a.goValues(ctx, p, files)

	userPath := vals["GOENV"]
	if !fromGo {
		userPath = a.goEnvPath()
	}
	var user, goroot map[string]envLine
	if userPath != "" && userPath != "off" {
		if data, ok := files.load(p, userPath); ok {
			user = parseGoEnvFile(data)
		}
	}
	rootDir := vals["GOROOT"]
	if !fromGo {
		rootDir = a.env.get("GOROOT")
	}
	rootPath := ""
	if rootDir != "" {
		rootPath = filepath.Join(rootDir, "go.env")
		if data, ok := files.load(p, rootPath); ok {
			goroot = parseGoEnvFile(data)
		}
	}

	settings := map[string]goSetting{}
	for _, k := range goVars {
		s := goSetting{source: "go env"}
		envVal := a.env.get(k)
		switch u, inUser := user[k]; {
		case envVal != "":
			s = goSetting{value: envVal, source: fromEnv, explicit: true}
		case inUser:
			s = goSetting{value: u.value, source: at(userPath, u.line), explicit: true}
		default:
			if r, ok := goroot[k]; ok {
				s = goSetting{value: r.value, source: at(rootPath, r.line)}
			}
		}
		if fromGo && k != "GONOSUMCHECK" { // go env does not know it, and prints ""
			if s.value != vals[k] {
				// go saw something the files do not explain (a
				// toolchain default, GOFLAGS from elsewhere).
				s = goSetting{source: "go env", explicit: s.explicit}
			}
			s.value = vals[k]
		}
		settings[k] = s
	}
	if !fromGo {
		// The go command's defaults for the two lists GOPRIVATE feeds.
		for _, k := range []string{"GONOSUMDB", "GONOPROXY"} {
			if settings[k].value == "" {
				s := settings["GOPRIVATE"]
				s.explicit = false
				settings[k] = s
			}
		}
	}
	for _, k := range goVars {
		if s := settings[k]; s.value != "" {
			p.set("go", k, s.value, s.source)
		}
	}
	judgeGo(p, settings)
	return p
}

// goValues returns what `go env -json` prints for goVars. When go is
// found, the environment it would run with and its go env files answer
// (toolchain.ResolveGoEnv) unless only go can say, and then go is asked.
// ok is false when go is not installed or failed, which is then a warning.
func (a *auditor) goValues(ctx context.Context, p *part, files goFiles) (map[string]string, bool) {
	if a.lookPath != nil {
		env := a.commandEnv()
		r := toolchain.ResolveGoEnv(toolchain.GoEnvOptions{
			Getenv:   func(k string) string { return getenvIn(env, k) },
			LookPath: a.lookPath,
			ReadFile: files.read,
		})
		switch {
		case r.Missing:
			return map[string]string{}, false
		case r.Answered:
			vals := map[string]string{}
			for _, k := range goVars {
				if v, ok := r.Lookup(k); ok {
					vals[k] = v.Value
				}
			}
			return vals, true
		}
	}
	return a.goEnvJSON(ctx, p)
}

// goFiles reads each go env file once, for the resolver and then for the
// lines that name a value's source.
type goFiles map[string]goFile

type goFile struct {
	data []byte
	ok   bool
	err  error
}

func (f goFiles) get(path string) goFile {
	r, done := f[path]
	if !done {
		r.data, r.ok, r.err = readFile(path, maxConfigSize)
		f[path] = r
	}
	return r
}

// read is toolchain.GoEnvOptions.ReadFile: a file that does not exist is
// fs.ErrNotExist.
func (f goFiles) read(path string) ([]byte, error) {
	r := f.get(path)
	if !r.ok && r.err == nil {
		return nil, fs.ErrNotExist
	}
	return r.data, r.err
}

// load is part.load through the cache: a file that cannot be read is a
// warning.
func (f goFiles) load(p *part, path string) ([]byte, bool) {
	r := f.get(path)
	if r.err != nil {
		p.warn(r.err.Error())
	}
	return r.data, r.ok
}

// goEnvJSON runs `go env -json`. ok is false when go is not installed or
// failed, which is then a warning.
func (a *auditor) goEnvJSON(ctx context.Context, p *part) (map[string]string, bool) {
	out, err := a.run(ctx, "go", append([]string{"env", "-json"}, goVars...)...)
	if errors.Is(err, exec.ErrNotFound) {
		return map[string]string{}, false
	}
	if err != nil {
		p.warn(fmt.Sprintf("go env: %v; reading the environment and go env files instead", err))
		return map[string]string{}, false
	}
	vals := map[string]string{}
	if err := json.Unmarshal(out, &vals); err != nil {
		p.warn(fmt.Sprintf("go env -json: %v; reading the environment and go env files instead", err))
		return map[string]string{}, false
	}
	return vals, true
}

// goEnvPath is where the go command keeps `go env -w` settings.
func (a *auditor) goEnvPath() string {
	if v := a.env.get("GOENV"); v != "" {
		return v
	}
	if a.xdg == "" {
		return ""
	}
	return filepath.Join(a.xdg, "go", "env")
}

// parseGoEnvFile reads a go env file the way cmd/go does
// (toolchain.ParseGoEnvFile: KEY=value lines, anything not starting with an
// upper-case letter ignored, the last value of a key kept), but without
// the "\r" of a CRLF line, which go keeps. When go's value has it, the
// file's then differs and the source is reported as "go env", as it
// always was.
func parseGoEnvFile(data []byte) map[string]envLine {
	out := map[string]envLine{}
	for k, l := range toolchain.ParseGoEnvFile(data) {
		out[k] = envLine{strings.TrimSuffix(l.Value, "\r"), l.Line}
	}
	return out
}

// judgeGo turns the Go settings into findings and hosts.
func judgeGo(p *part, s map[string]goSetting) {
	sumOff := s["GOSUMDB"].value == "off"
	private := s["GOPRIVATE"]
	nosum := s["GONOSUMDB"]
	nosumExplicit := nosum.explicit && nosum.value != ""
	broadNoSum := len(broadPatterns(nosum.value)) > 0
	insecure := s["GOINSECURE"].value != ""

	// The hosts in the order the go command uses them: proxies, the
	// checksum database, then what it fetches directly.
	judgeGOPROXY(p, s["GOPROXY"], sumOff || broadNoSum || insecure)
	if v := s["GOSUMDB"]; !sumOff {
		for _, h := range toolchain.ParseGOSUMDB(v.value) {
			scheme := "https"
			if f := strings.Fields(v.value); len(f) == 2 && plainHTTP(f[1]) {
				scheme = "http"
			}
			sum := Host{Host: h.Host, Port: h.Port, Scheme: scheme, Source: "GOSUMDB (" + v.source + ")"}
			p.hosts = append(p.hosts, sum)
			p.registries = append(p.registries, sum)
		}
	}

	if v := s["GOINSECURE"]; v.value != "" {
		why := "modules matching these patterns are fetched over plain http when https fails, and their https certificates are not verified: anyone on the path can serve any code for them that the checksum database does not cover (private modules)"
		if b := broadPatterns(v.value); len(b) > 0 {
			why += fmt.Sprintf("; %q covers public modules too", b[0])
		}
		p.add(Finding{Tool: "go", Setting: "GOINSECURE", Value: redactURLs(v.value), Source: v.source, Severity: detector.Critical,
			Why: why,
			Fix: "Serve the module host over https with a certificate from your internal CA, install that CA in the system store (or a bundle named by SSL_CERT_FILE), keep the host in GOPRIVATE, and unset GOINSECURE (go env -u GOINSECURE)."})
		p.hosts = append(p.hosts, patternHosts(v.value, "GOINSECURE", v.source)...)
	}
	if sumOff {
		v := s["GOSUMDB"]
		p.add(Finding{Tool: "go", Setting: "GOSUMDB", Value: v.value, Source: v.source, Severity: detector.Critical,
			Why: "the go command no longer checks downloaded modules against the checksum database, so a proxy or a middlebox can substitute module contents unnoticed; go.sum protects only modules it already lists",
			Fix: "Unset GOSUMDB (go env -u GOSUMDB). If the checksum database fails behind an inspecting proxy, install the proxy's CA in the system store; list private modules in GOPRIVATE instead of switching verification off for all."})
	}
	if nosumExplicit {
		if b := broadPatterns(nosum.value); len(b) > 0 {
			p.add(Finding{Tool: "go", Setting: "GONOSUMDB", Value: redactURLs(nosum.value), Source: nosum.source, Severity: detector.Critical,
				Why: fmt.Sprintf("the pattern %q matches public modules: their contents are never checked against the checksum database", b[0]),
				Fix: "List only your private module paths (git.corp.example, github.com/yourorg/*), or use GOPRIVATE for them."})
		} else {
			p.add(Finding{Tool: "go", Setting: "GONOSUMDB", Value: redactURLs(nosum.value), Source: nosum.source, Severity: detector.Info,
				Why: "modules matching these patterns are not checked against the checksum database; right for private modules, as long as they come over https from your own host",
				Fix: "Keep the list to private module paths, fetched over https; GOPRIVATE sets this and GONOPROXY together."})
		}
	}
	if b := broadPatterns(private.value); len(b) > 0 {
		sev := detector.Critical
		if nosumExplicit {
			sev = detector.Warning // GONOSUMDB, judged above, overrides what GOPRIVATE implies for checksums
		}
		p.add(Finding{Tool: "go", Setting: "GOPRIVATE", Value: redactURLs(private.value), Source: private.source, Severity: sev,
			Why: fmt.Sprintf("the pattern %q matches public modules: they bypass the module proxy and the checksum database, so nothing verifies what is downloaded", b[0]),
			Fix: "List only your own module paths in GOPRIVATE (git.corp.example, github.com/yourorg/*)."})
	} else {
		p.hosts = append(p.hosts, patternHosts(private.value, "GOPRIVATE", private.source)...)
	}
	if v := s["GONOSUMCHECK"]; v.value != "" {
		p.add(Finding{Tool: "go", Setting: "GONOSUMCHECK", Value: v.value, Source: v.source, Severity: detector.Warning,
			Why: "the go command does not read GONOSUMCHECK, so it changes nothing; it shows an attempt to skip checksum verification, which may have succeeded by other means (GOSUMDB, GONOSUMDB, GOPRIVATE)",
			Fix: "Remove it, and check GOSUMDB, GONOSUMDB and GOPRIVATE."})
	}
	if v := s["GOFLAGS"]; insecureFlag(v.value) {
		p.add(Finding{Tool: "go", Setting: "GOFLAGS", Value: redactURLs(v.value), Source: v.source, Severity: detector.Warning,
			Why: "-insecure asks go get for plain http and unverified certificates; Go 1.17 and later refuse the flag (every go get fails), older toolchains honour it",
			Fix: "Remove -insecure from GOFLAGS; serve private modules over https with your internal CA installed in the system store."})
	}
}

// judgeGOPROXY flags proxies over plain http, and a direct-only list when
// verification is weakened too. weak says whether the checksum database is
// off for some modules or GOINSECURE is set.
func judgeGOPROXY(p *part, v goSetting, weak bool) {
	entries := strings.FieldsFunc(v.value, func(r rune) bool { return r == ',' || r == '|' })
	proxies := 0
	for _, e := range entries {
		e = strings.TrimSpace(e)
		hs := toolchain.ParseGOPROXY(e)
		if len(hs) == 0 {
			continue
		}
		proxies++
		scheme := "https"
		if plainHTTP(e) {
			scheme = "http"
			sev := detector.Warning
			if weak {
				sev = detector.Critical
			}
			p.add(Finding{Tool: "go", Setting: "GOPROXY", Value: redactURLs(e), Source: v.source, Severity: sev,
				Why: "module downloads travel over plain http: anything on the path can read them and serve altered code for every module the checksum database does not cover (GOPRIVATE and GONOSUMDB modules, or all with GOSUMDB=off)",
				Fix: "Serve the proxy over https with a certificate from your internal CA (installed in the system store) and write it as https:// in GOPROXY."})
		}
		h := Host{Host: hs[0].Host, Port: hs[0].Port, Scheme: scheme, Source: "GOPROXY (" + v.source + ")"}
		p.hosts = append(p.hosts, h)
		p.registries = append(p.registries, h)
	}
	if proxies == 0 && weak && strings.Contains(v.value, "direct") {
		p.add(Finding{Tool: "go", Setting: "GOPROXY", Value: redactURLs(v.value), Source: v.source, Severity: detector.Warning,
			Why: "every module is fetched straight from its origin repository while checksum verification is weakened (GOSUMDB, GONOSUMDB, GOPRIVATE or GOINSECURE): nothing vouches for what the origin, or a middlebox before it, serves",
			Fix: "Fetch through a module proxy over https (a company one is fine) and keep the checksum database on for public modules."})
	}
}

// insecureFlag reports whether a GOFLAGS value turns on -insecure.
func insecureFlag(goflags string) bool {
	for _, f := range strings.Fields(goflags) {
		name, val, hasVal := strings.Cut(strings.TrimLeft(f, "-"), "=")
		if strings.HasPrefix(f, "-") && name == "insecure" && (!hasVal || !falsy(val)) {
			return true
		}
	}
	return false
}

// publicModules are module paths on the big public hosts: a GOPRIVATE,
// GONOSUMDB or GOINSECURE pattern matching one covers public code.
var publicModules = []string{
	"github.com/a/b", "gitlab.com/a/b", "bitbucket.org/a/b", "codeberg.org/a/b",
	"golang.org/x/net", "google.golang.org/grpc", "cloud.google.com/go", "gopkg.in/yaml.v3",
	"k8s.io/api", "sigs.k8s.io/yaml", "go.uber.org/zap", "go.opentelemetry.io/otel",
	"go.etcd.io/bbolt", "honnef.co/go/tools",
}

// broadPatterns returns the patterns of a comma-separated glob list that
// match public modules.
func broadPatterns(list string) []string {
	var out []string
	for _, g := range strings.Split(list, ",") {
		g = strings.TrimSpace(g)
		for _, m := range publicModules {
			if g != "" && matchPrefixPattern(g, m) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// matchPrefixPattern reports whether glob matches a prefix of target the
// way the go command's GOPRIVATE matching does: the glob's path elements
// against as many leading elements of target.
func matchPrefixPattern(glob, target string) bool {
	n := strings.Count(glob, "/")
	prefix := target
	for i := 0; i < len(target); i++ {
		if target[i] == '/' {
			if n == 0 {
				prefix = target[:i]
				break
			}
			n--
		}
	}
	if n > 0 {
		return false
	}
	ok, _ := path.Match(glob, prefix)
	return ok
}

// patternHosts returns the hosts named outright (no glob in the first path
// element) by a GOPRIVATE-style list: the go command fetches them directly.
func patternHosts(list, setting, source string) []Host {
	var out []Host
	for _, g := range strings.Split(list, ",") {
		first, _, _ := strings.Cut(strings.TrimSpace(g), "/")
		if first == "" || strings.ContainsAny(first, "*?[\\") || !strings.Contains(first, ".") {
			continue
		}
		if h, ok := hostPort(first, setting, source); ok {
			out = append(out, h)
		}
	}
	return out
}
