// Package audit finds the settings with which a build machine's tools were
// told to stop protecting themselves — GOINSECURE, GOSUMDB=off, git's
// http.sslVerify=false, npm's strict-ssl=false, NODE_TLS_REJECT_UNAUTHORIZED=0,
// pip's trusted-host, Docker's insecure-registries, ssh's
// StrictHostKeyChecking no (ssh.go) — and the hosts those tools really
// fetch from, over HTTPS and over SSH.
//
// Such settings are what people paste when an intercepting middlebox breaks
// a build ("x509: certificate signed by unknown authority", "no secure
// protocol found"), and they are then forgotten. Left in place, they are
// exactly what lets a real attacker in later. Every finding therefore names
// the file and line (or variable) it came from, why it is dangerous and the
// safer fix, which is never to switch verification off.
//
// The audit only reads: configuration files, the environment, the trust
// stores, and the output of `git config --list` (run once). The go
// command's settings are read from the environment and the go env files
// the way go reads them (toolchain.ResolveGoEnv), because starting go
// costs more CPU than the rest of the audit's reading; `go env -json`
// runs, once, only where those files cannot answer (a Go before 1.21,
// whose defaults are built into the binary). It never dials. A file it
// cannot read or parse becomes a warning; nothing aborts the audit.
package audit

import (
	"cmp"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/toolchain"
)

// Severity ranks a finding: info (worth knowing), warning (weakens
// protection or will break builds), critical (protection is off).
type Severity = detector.Severity

// Finding is one setting that weakens or replaces a tool's protection.
type Finding struct {
	Tool     string   `json:"tool"`    // go, git, npm, yarn, pip, cargo, docker, env, trust
	Setting  string   `json:"setting"` // e.g. GOINSECURE, http.sslVerify, strict-ssl
	Value    string   `json:"value"`   // with passwords and tokens redacted
	Source   string   `json:"source"`  // "file:line", "environment" or "go env"
	Severity Severity `json:"severity"`
	Why      string   `json:"why"` // why it is dangerous
	Fix      string   `json:"fix"` // the safer way to get the same build working
	// Root describes a trusted root certificate, for findings of tool "trust".
	Root *Root `json:"root,omitempty"`
}

// Root identifies a root certificate some tool trusts that the public
// (Mozilla) set does not hold.
type Root struct {
	Subject string `json:"subject"`
	SPKI    string `json:"spki"`              // SHA-256 of the SubjectPublicKeyInfo, base64
	Product string `json:"product,omitempty"` // the interception product its names match
}

// Host is a host a tool is configured to fetch from, plain-http ones
// included: they are the probe targets no default list can name.
type Host struct {
	Host   string `json:"host"`
	Port   int    `json:"port"`
	Scheme string `json:"scheme"` // https or http
	Source string `json:"source"` // the setting and where it was read
}

// Toolchain converts h for config.WithToolchain.
func (h Host) Toolchain() toolchain.Host {
	return toolchain.Host{Host: h.Host, Port: h.Port, Source: h.Source}
}

func (h Host) key() string {
	return h.Scheme + "://" + net.JoinHostPort(h.Host, strconv.Itoa(h.Port))
}

// Report is the result of an audit. Findings are ordered most severe first.
type Report struct {
	Findings []Finding `json:"findings"`
	Hosts    []Host    `json:"hosts"`
	Warnings []string  `json:"warnings"` // files that could not be read or parsed, tools that failed
	// Toolchain is where the package managers fetch from, for
	// toolchain.Discover: the same settings, read once.
	Toolchain toolchain.Settings `json:"-"`
	// Settings are the values read that bear on each tool's TLS, for
	// predicting what the tool will do; the findings are the report.
	Settings []Setting `json:"-"`
}

// Critical reports whether any finding is critical: protection is off.
func (r Report) Critical() bool {
	return slices.ContainsFunc(r.Findings, func(f Finding) bool { return f.Severity == detector.Critical })
}

// ToolchainHosts returns the hosts in the form config.WithToolchain takes;
// those reached over SSH are SSHHosts.
func (r Report) ToolchainHosts() []toolchain.Host {
	out := make([]toolchain.Host, 0, len(r.Hosts))
	for _, h := range r.Hosts {
		if h.Scheme != "ssh" {
			out = append(out, h.Toolchain())
		}
	}
	return out
}

// Options says whose configuration to audit. The zero value audits the
// current user from the process environment.
type Options struct {
	// Home and XDGConfigHome locate the user's files; empty means $HOME
	// and $XDG_CONFIG_HOME (else Home/.config).
	Home, XDGConfigHome string
	// Dir is the working directory, for a project's .npmrc, .cargo and
	// git's local config; empty means the current directory.
	Dir string
	// Getenv reads the environment being audited; nil means os.Getenv.
	Getenv func(string) string
	// Environ lists that environment as KEY=value. When set, variables are
	// matched in any case (npm_config_*, Http_Proxy) and a variable set to
	// the empty string counts as set; when nil only the usual spellings
	// are asked of Getenv.
	Environ []string
	// Run runs `go env -json` (where the go env files cannot answer; see
	// LookPath) and `git config --list`. Nil runs the real binaries in the
	// audited environment (Environ whole, else this process's with HOME,
	// XDG_CONFIG_HOME and the Go and git variables taken from Getenv and
	// the options), each bounded by a timeout and never allowed to
	// download a Go toolchain.
	Run toolchain.Runner
	// LookPath finds the go command, as exec.Command would. The audit then
	// reads go's settings from the audited environment and the go env
	// files as go itself would, and asks `go env -json` through Run only
	// where those cannot answer. Nil means exec.LookPath when Run is nil;
	// with Run set and LookPath nil, go is always asked through Run, which
	// then stands in for every installed tool.
	LookPath func(file string) (string, error)
	// AllUsers adds the system-wide files: /etc/gitconfig, the global
	// npmrc, /etc/pip.conf, /etc/docker/daemon.json, the system CARGO_HOME.
	AllUsers bool
	// Root prefixes every system path (/etc/..., the default trust store
	// paths); for tests.
	Root string
	// SystemCertFiles and SystemCertDirs locate the system trust store
	// when SSL_CERT_FILE and SSL_CERT_DIR are unset. Nil means the paths Go
	// and OpenSSL use on Linux, under Root; the first file that exists is
	// read, and every directory.
	SystemCertFiles, SystemCertDirs []string
	// Hosts, when set, is called once by Run with the report so far — its
	// hosts, toolchain settings and the settings bearing on each tool's
	// TLS, all complete — as soon as the checks that read them are done:
	// the trust stores, which name none and take the longest, are still
	// being read, and a caller can start probing meanwhile.
	Hosts func(partial Report)
}

// Run audits the configuration opts describes. It never fails: what it
// cannot read is reported in Report.Warnings.
func Run(ctx context.Context, opts Options) Report {
	a := newAuditor(opts)
	// Every check but the system store's may name hosts.
	checks := []func(context.Context) *part{
		a.goChecks, a.gitChecks, a.npmChecks, a.yarnChecks, a.pipChecks,
		a.cargoChecks, a.dockerChecks, a.proxyChecks,
	}
	parts := make([]*part, len(checks)+1)
	var store, named sync.WaitGroup
	store.Go(func() { parts[len(checks)] = a.systemStoreChecks(ctx) })
	for i, check := range checks {
		named.Go(func() { parts[i] = check(ctx) })
	}
	named.Wait()
	if opts.Hosts != nil {
		opts.Hosts(merge(parts[:len(checks)]))
	}
	store.Wait()

	// CA bundles that settings point tools at are trust stores too; roots
	// the system store check reported are not repeated. ssh's settings
	// are judged for the hosts git reaches over SSH.
	return merge(append(parts, a.bundleChecks(parts), a.sshChecks(parts)))
}

// part is what one check found; parts are merged in a fixed order so the
// report does not depend on which check finished first.
type part struct {
	findings []Finding
	hosts    []Host
	warnings []string
	bundles  []bundleRef     // CA bundles settings point at, for the trust check
	roots    []detector.SPKI // non-public roots reported
	scanned  []os.FileInfo   // CA bundle files read

	// registries are the hosts Go, npm (pnpm, yarn) and pip fetch
	// packages from, for toolchain discovery; npmRegistry says whether a
	// setting names npm's registry.
	registries  []Host
	npmRegistry bool
	settings    []Setting // values that bear on each tool's TLS
}

func (p *part) add(f Finding) { p.findings = append(p.findings, f) }

// warn records what could not be read; a tool's error message may quote a
// URL, so its credentials are hidden too.
func (p *part) warn(msg string) { p.warnings = append(p.warnings, redactURLs(msg)) }

func merge(parts []*part) Report {
	r := Report{Findings: []Finding{}, Hosts: []Host{}, Warnings: []string{}}
	seen := map[string]bool{}
	for _, p := range parts {
		r.Findings = append(r.Findings, p.findings...)
		r.Warnings = append(r.Warnings, p.warnings...)
		r.Settings = append(r.Settings, p.settings...)
		for _, h := range p.hosts {
			if !seen[h.key()] {
				seen[h.key()] = true
				r.Hosts = append(r.Hosts, h)
			}
		}
	}
	slices.SortStableFunc(r.Findings, func(x, y Finding) int { return cmp.Compare(y.Severity, x.Severity) })
	r.Toolchain = toolchainSettings(parts)
	return r
}

// auditor holds the normalised options every check reads.
type auditor struct {
	opts Options
	env  environment
	run  toolchain.Runner
	// lookPath finds go for toolchain.ResolveGoEnv; nil asks go itself.
	lookPath func(string) (string, error)
	home     string
	xdg      string // XDG config home
	dir      string
	// distro holds the DER hashes of the roots the distribution's CA package
	// ships, read when first needed.
	distro func() map[[32]byte]bool
}

func newAuditor(opts Options) *auditor {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	a := &auditor{opts: opts, env: newEnvironment(getenv, opts.Environ)}
	a.home = cmp.Or(opts.Home, a.env.get("HOME"))
	if a.home == "" {
		a.home, _ = os.UserHomeDir()
	}
	a.xdg = cmp.Or(opts.XDGConfigHome, a.env.get("XDG_CONFIG_HOME"))
	if a.xdg == "" && a.home != "" {
		a.xdg = filepath.Join(a.home, ".config")
	}
	a.dir = opts.Dir
	if a.dir == "" {
		a.dir, _ = os.Getwd()
	}
	a.distro = sync.OnceValue(a.distroRoots)
	a.run = opts.Run
	if a.run == nil {
		a.run = a.execRunner()
	}
	a.lookPath = opts.LookPath
	if a.lookPath == nil && opts.Run == nil {
		a.lookPath = exec.LookPath
	}
	return a
}

// sys returns a system-wide path under opts.Root.
func (a *auditor) sys(path string) string {
	if a.opts.Root == "" {
		return path
	}
	return filepath.Join(a.opts.Root, path)
}
