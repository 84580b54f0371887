package tools

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/audit"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/toolchain"
	"github.com/mitmwatch/mitmwatch/trust"
)

// Options say whose tools to discover. The zero value discovers this
// process's user's tools, with no audit settings.
type Options struct {
	// Settings are the audit's reading of the tools' configuration files
	// (audit.Report.Settings).
	Settings []audit.Setting
	// Getenv reads the tools' environment; nil: os.Getenv.
	Getenv func(string) string
	// Env is the environment the tools are run in to ask them for their
	// version, bundled roots and defaults; nil: this process's.
	Env []string
	// Dir is where they are run (npm reads the project's .npmrc there);
	// empty: the current directory.
	Dir string
	// Run runs a tool and returns its standard output; nil runs it with
	// Env in Dir, bounded by a timeout. A tool that is not installed must
	// yield an error matching exec.ErrNotFound.
	Run toolchain.Runner
	// Root prefixes every system path (/etc/..., the system store); for
	// tests.
	Root string
	// SystemBundle is the system store's bundle file; empty: the first of
	// the distributions' usual paths that exists under Root.
	SystemBundle string
	// Only limits discovery to these tools; empty: all.
	Only []Name
}

// Inventory is what Discover found: the tools, and how the machine's
// system store is laid out, which fixes refer to.
type Inventory struct {
	Tools []Tool
	// SystemBundle is the system store's bundle file; SystemInstall the
	// command (with %s for a CA file) that adds a CA to the system store.
	SystemBundle  string
	SystemInstall string
}

// Context is the context predictions of a round take, with the machine's
// part filled in.
func (inv Inventory) Context(now time.Time, approved []detector.SPKI, caFile string) Context {
	return Context{Now: now, Approved: approved, CAFile: caFile, SystemBundle: inv.SystemBundle, SystemInstall: inv.SystemInstall}
}

// Tool returns the named tool, false when it was not discovered.
func (inv Inventory) Tool(n Name) (Tool, bool) {
	for _, t := range inv.Tools {
		if t.Name == n {
			return t, true
		}
	}
	return Tool{}, false
}

// commandTimeout bounds each question to a tool: npm takes a few hundred
// milliseconds to start; a wedged one must not hold up the check.
const commandTimeout = 10 * time.Second

// discoverer holds what every tool's discovery reads.
type discoverer struct {
	opts   Options
	getenv func(string) string
	run    toolchain.Runner
	// installed runs the commands whose answer depends on a tool's
	// installation alone (version, bundled roots), through a cache, and
	// leaves out an output the caller knows by its digest (known: Node's
	// roots, kept decoded in trust's snapshot).
	installed func(ctx context.Context, known func(sum [32]byte, size int) bool, name string, args ...string) (toolchain.Output, error)
	settings  map[string][]audit.Setting // by tool
	system    func() Store
	envOnce   func() Store         // the store OpenSSL's variables make, for the tools that read them
	dirCerts  func() []trust.Block // the system store's directories, read once
}

// Discover reads each tool's configuration and asks the tools themselves
// what the configuration cannot say (their version, Node's bundled roots,
// the certifi bundle pip uses, the TLS library git's libcurl is built
// with). It never fails: what it cannot learn is in each Tool's Notes.
func Discover(ctx context.Context, opts Options) Inventory {
	d := &discoverer{opts: opts, getenv: opts.Getenv, run: opts.Run, settings: map[string][]audit.Setting{}}
	if d.getenv == nil {
		d.getenv = os.Getenv
	}
	if d.run == nil {
		d.run = d.execRunner()
	}
	d.installed = func(ctx context.Context, _ func([32]byte, int) bool, name string, args ...string) (toolchain.Output, error) {
		out, err := d.run(ctx, name, args...)
		return toolchain.OutputOf(out), err
	}
	// What depends on a tool's installation alone is asked once a day or
	// when the tool changes, not at every check.
	if f := toolchain.AnswersDir(); opts.Run == nil && f != "" {
		a := toolchain.NewAnswers(d.run, f, toolchain.DefaultAnswersTTL,
			"PATH", "HOME", "NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
			"GOTOOLCHAIN", "GOROOT", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "CARGO_HOME")
		d.installed = a.Output
	}
	for _, s := range opts.Settings {
		d.settings[s.Tool] = append(d.settings[s.Tool], s)
	}
	bundle := opts.SystemBundle
	if bundle == "" {
		for _, f := range trust.CertFiles {
			if isFile(d.sys(f)) {
				bundle = d.sys(f)
				break
			}
		}
	}
	d.system = sync.OnceValue(func() Store { return d.systemStore(bundle) })
	d.envOnce = sync.OnceValue(d.readEnvStore)
	d.dirCerts = sync.OnceValue(func() []trust.Block {
		var all []trust.Block
		for _, dir := range trust.CertDirs {
			all = append(all, readDir(d.sys(dir), all)...)
		}
		return all
	})

	steps := map[Name]func(context.Context) Tool{
		Go: d.goTool, Git: d.gitTool, NPM: d.npmTool, Pip: d.pipTool, Cargo: d.cargoTool, Docker: d.dockerTool,
	}
	var names []Name
	for _, n := range Names {
		if len(opts.Only) == 0 || slices.Contains(opts.Only, n) {
			names = append(names, n)
		}
	}
	found := make([]Tool, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() { found[i] = steps[n](ctx) })
	}
	wg.Wait()
	return Inventory{Tools: found, SystemBundle: bundle, SystemInstall: d.systemInstall()}
}

// sys returns a system path under Options.Root.
func (d *discoverer) sys(path string) string {
	if d.opts.Root == "" {
		return path
	}
	return filepath.Join(d.opts.Root, path)
}

// systemStore reads the system store: the bundle and the usual
// directories.
func (d *discoverer) systemStore(bundle string) Store {
	s := Store{Description: "system store", System: true}
	if bundle != "" {
		s.Description += " (" + bundle + ")"
		s.Files = []string{bundle}
		if certs, err := trust.LoadBlocks(bundle); err == nil {
			s.Certs = certs
		} else {
			s.Err = err.Error()
		}
	}
	s.Certs = append(s.Certs, d.systemDirCerts(s.Certs)...)
	if bundle == "" && len(s.Certs) == 0 {
		s.Err = "no system store found"
	}
	return s
}

// bundleStore is the store a setting names. A setting that names the
// system store's bundle gets the system store as Discover knows it.
func (d *discoverer) bundleStore(what string, by Setting, path string) Store {
	if d.isSystemBundle(path) {
		s := d.system()
		s.Description = fmt.Sprintf("%s %s (%s), the system store", what, path, by.Source)
		s.Files, s.By = []string{path}, &by
		return s
	}
	return fileStore(what, by, path)
}

// isSystemBundle reports whether path is where the system store's bundle
// lives.
func (d *discoverer) isSystemBundle(path string) bool {
	clean := filepath.Clean(path)
	if d.opts.SystemBundle != "" && clean == filepath.Clean(d.opts.SystemBundle) {
		return true
	}
	for _, f := range trust.CertFiles {
		if clean == d.sys(f) {
			return true
		}
	}
	return false
}

// envStore is the system store as programs that honour SSL_CERT_FILE and
// SSL_CERT_DIR (Go, OpenSSL) see it: SSL_CERT_FILE replaces the bundle,
// SSL_CERT_DIR the directories.
func (d *discoverer) envStore() Store {
	s := d.envOnce()
	s.Certs = slices.Clip(s.Certs) // a tool that adds to it gets its own
	return s
}

// readEnvStore builds envStore's store, once per discovery.
func (d *discoverer) readEnvStore() Store {
	file, dir := d.getenv("SSL_CERT_FILE"), d.getenv("SSL_CERT_DIR")
	if file == "" && dir == "" {
		return d.system()
	}
	s := Store{Description: "system store", System: true}
	if file != "" {
		s = d.bundleStore("SSL_CERT_FILE", Setting{Name: "SSL_CERT_FILE", Value: file, Source: fromEnv}, file)
	} else if sys := d.system(); len(sys.Files) > 0 {
		s.Description += " (" + sys.Files[0] + ")"
		s.Files = sys.Files
		s.Certs, _ = trust.LoadBlocks(sys.Files[0])
	}
	var dirs []string
	if dir != "" {
		dirs = filepath.SplitList(dir)
		s.Description += " + SSL_CERT_DIR " + dir
	} else {
		for _, one := range trust.CertDirs {
			dirs = append(dirs, d.sys(one))
		}
	}
	if dir == "" {
		s.Certs = append(s.Certs, d.systemDirCerts(s.Certs)...)
		return s
	}
	for _, one := range dirs {
		s.Certs = append(s.Certs, readDir(one, s.Certs)...)
	}
	return s
}

// systemDirCerts are the certificates of the system store's directories
// that have lacks (by the SHA-256 of their DER). The directories are read
// once a discovery: the system store and the one SSL_CERT_FILE makes both
// hold them, and each read is a stat of hundreds of links.
func (d *discoverer) systemDirCerts(have []trust.Block) []trust.Block {
	all := d.dirCerts()
	known := make(map[[32]byte]bool, len(have))
	for _, c := range have {
		known[c.Sum] = true
	}
	var out []trust.Block
	for _, c := range all {
		if !known[c.Sum] {
			out = append(out, c)
		}
	}
	return out
}

// systemInstall is how this machine's distribution adds a CA to the
// system store.
func (d *discoverer) systemInstall() string {
	switch {
	case isDir(d.sys("/usr/local/share/ca-certificates")):
		return "cp %s /usr/local/share/ca-certificates/mitmwatch-ca.crt && update-ca-certificates"
	case isDir(d.sys("/etc/pki/ca-trust/source/anchors")):
		return "cp %s /etc/pki/ca-trust/source/anchors/mitmwatch-ca.pem && update-ca-trust"
	}
	return "add %s to the operating system's trust store"
}

// fromEnv is the Source of a setting read from the environment.
const fromEnv = "environment"

// last returns the last value of a tool's setting (the one that wins, as
// the audit reads files from lowest precedence up), by key.
func (d *discoverer) last(tool string, keys ...string) (Setting, bool) {
	ss := d.settings[tool]
	for i := len(ss) - 1; i >= 0; i-- {
		if slices.Contains(keys, ss[i].Key) {
			return Setting{Name: ss[i].Key, Value: ss[i].Value, Source: ss[i].Source}, true
		}
	}
	return Setting{}, false
}

// env returns the first variable of names that is set, as a Setting.
func (d *discoverer) env(names ...string) (Setting, bool) {
	for _, n := range names {
		if v := d.getenv(n); v != "" {
			return Setting{Name: n, Value: v, Source: fromEnv}, true
		}
	}
	return Setting{}, false
}

// proxyEnv is the proxy of the usual variables, for a tool that honours
// them.
func (d *discoverer) proxyEnv(names ...string) *Setting {
	if s, ok := d.env(names...); ok {
		s.Value = audit.Redact(s.Value)
		return &s
	}
	return nil
}

// ask runs a tool within commandTimeout; ok is false when it is not
// installed, err when it failed.
func (d *discoverer) ask(ctx context.Context, name string, args ...string) ([]byte, bool, error) {
	return d.askWith(ctx, d.run, name, args...)
}

// askInstalled is ask for a command whose answer depends on the tool's
// installation alone, which may come from the cache.
func (d *discoverer) askInstalled(ctx context.Context, name string, args ...string) ([]byte, bool, error) {
	o, installed, err := d.askInstalledOutput(ctx, nil, name, args...)
	return o.Whole, installed, err
}

// askInstalledOutput is askInstalled for an answer the caller may know by
// its digest (known); see toolchain.Answers.Output.
func (d *discoverer) askInstalledOutput(ctx context.Context, known func(sum [32]byte, size int) bool, name string, args ...string) (toolchain.Output, bool, error) {
	var o toolchain.Output
	_, installed, err := d.askWith(ctx, func(ctx context.Context, name string, args ...string) ([]byte, error) {
		var err error
		o, err = d.installed(ctx, known, name, args...)
		return o.Whole, err
	}, name, args...)
	return o, installed, err
}

func (d *discoverer) askWith(ctx context.Context, run toolchain.Runner, name string, args ...string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	out, err := run(ctx, name, args...)
	if errors.Is(err, exec.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out, true, nil
}

// execRunner runs tools with Options.Env in Options.Dir.
func (d *discoverer) execRunner() toolchain.Runner {
	return func(ctx context.Context, name string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = toolchain.CommandEnv(name, d.opts.Env)
		cmd.Dir = d.opts.Dir
		cmd.WaitDelay = time.Second
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			if line, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n"); line != "" {
				return nil, fmt.Errorf("%w: %s", err, line)
			}
			return nil, err
		}
		return out, nil
	}
}

// libraries lists the shared libraries an executable links, empty when it
// cannot be read (not ELF, not there).
func libraries(path string) []string {
	f, err := elf.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	libs, _ := f.ImportedLibraries()
	return libs
}

// decodeJSON reads a tool's JSON answer.
func decodeJSON(out []byte, v any) error {
	if err := json.Unmarshal(bytes.TrimSpace(out), v); err != nil {
		return fmt.Errorf("reading its answer: %w", err)
	}
	return nil
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}
