package audit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/toolchain"
)

// recorder stands in for the installed tools: go answers `go env -json`
// with goEnv, npm answers `config get registry`, and every command run is
// recorded.
type recorder struct {
	goEnv string
	mu    sync.Mutex
	calls []string
}

func (r *recorder) run(_ context.Context, name string, args ...string) ([]byte, error) {
	r.mu.Lock()
	r.calls = append(r.calls, filepath.Base(name)+" "+strings.Join(args, " "))
	r.mu.Unlock()
	switch filepath.Base(name) {
	case "go":
		return []byte(r.goEnv), nil
	case "npm":
		return []byte("https://default.lab.example/\n"), nil
	}
	return nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
}

func (r *recorder) commands() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		name, _, _ := strings.Cut(c, " ")
		out = append(out, name)
	}
	return out
}

// discoveryOptions has npm installed (a file in the tree) and run by rec.
func discoveryOptions(tr *tree, rec *recorder) toolchain.Options {
	npm := tr.write(filepath.Join(tr.base, "bin", "npm"), "#!/bin/sh\n")
	return toolchain.Options{Run: rec.run, LookPath: func(string) (string, error) { return npm, nil }, CacheDir: filepath.Join(tr.base, "cache")}
}

func (tr *tree) toolchainHosts(hs []toolchain.Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, tr.rel(fmt.Sprintf("%s:%d %s", h.Host, h.Port, h.Source)))
	}
	return out
}

// TestToolchainFromFiles: the registries come from go env's answer, the
// .npmrc and pip.conf layers and the variables, system-wide files
// included; only go is started, never npm or pip, and Run hands discovery
// the same settings.
func TestToolchainFromFiles(t *testing.T) {
	t.Parallel()
	tr := newTree(t)
	rec := &recorder{goEnv: `{"GOPROXY": "https://proxy.lab.example,direct", "GOSUMDB": "sum.lab.example", "GOROOT": ""}`}
	tr.run = rec.run
	tr.write(filepath.Join(tr.home, ".npmrc"), "; the company mirror\nregistry=https://npm.lab.example/\n@corp:registry=https://npm.corp.example/\n")
	tr.write(filepath.Join(tr.home, ".config", "pnpm", "rc"), "registry=https://pnpm.lab.example/\n")
	tr.write(filepath.Join(tr.home, ".config", "pip", "pip.conf"), "[global]\nindex-url = https://pypi.lab.example/simple\nextra-index-url =\n    https://extra1.lab.example/simple\n    https://extra2.lab.example:8443/simple\n")
	tr.write(filepath.Join(tr.root, "etc", "pip.conf"), "[global]\nindex-url = https://system.lab.example/simple\n")
	tr.env["PIP_INDEX_URL"] = "https://pip-env.lab.example/simple"

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := ToolchainSettings(ctx, tr.options(false))
	want := []string{
		"proxy.lab.example:443 GOPROXY (go env)",
		"sum.lab.example:443 GOSUMDB (go env)",
		"npm.lab.example:443 registry ($T/home/.npmrc:2)",
		"npm.corp.example:443 @corp:registry ($T/home/.npmrc:3)",
		"pnpm.lab.example:443 registry ($T/home/.config/pnpm/rc:1)",
		"pypi.lab.example:443 global.index-url ($T/home/.config/pip/pip.conf:2)",
		"extra1.lab.example:443 global.extra-index-url ($T/home/.config/pip/pip.conf:3)",
		"extra2.lab.example:8443 global.extra-index-url ($T/home/.config/pip/pip.conf:3)",
		"pip-env.lab.example:443 PIP_INDEX_URL (environment)",
		// Not judged without AllUsers, but pip reads it for every user.
		"system.lab.example:443 global.index-url ($T/root/etc/pip.conf:2)",
	}
	if diff := cmp.Diff(want, tr.toolchainHosts(s.Hosts)); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	if !s.NPMRegistry {
		t.Error("NPMRegistry false; ~/.npmrc names it")
	}
	if diff := cmp.Diff([]string{"go"}, rec.commands()); diff != "" {
		t.Errorf("commands started (-want +got):\n%s", diff)
	}
	if c := rec.calls[0]; !strings.HasPrefix(c, "go env -json GOPROXY GOSUMDB") {
		t.Errorf("go ran as %q", c)
	}

	hosts, errs := toolchain.Discover(ctx, s, discoveryOptions(tr, rec))
	if len(errs) > 0 || len(hosts) != len(want) {
		t.Errorf("Discover: %v, %v; want the settings' hosts", tr.toolchainHosts(hosts), errs)
	}
	if diff := cmp.Diff([]string{"go"}, rec.commands()); diff != "" {
		t.Errorf("Discover started a tool (-want +got):\n%s", diff)
	}

	full := tr.audit(false)
	if diff := cmp.Diff(s, full.Toolchain); diff != "" {
		t.Errorf("Run's settings differ from ToolchainSettings' (-want +got):\n%s", diff)
	}
	for _, h := range full.Hosts {
		if h.Host == "system.lab.example" {
			t.Errorf("the audit reports %+v from a file it does not judge", h)
		}
	}
}

// TestToolchainNPMDefault: with no layer naming npm's registry, discovery
// asks npm once and then reads its cache; a global npmrc that names one
// spares npm altogether.
func TestToolchainNPMDefault(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	tr.write(filepath.Join(tr.home, ".npmrc"), "strict-ssl=true\n@corp:registry=https://npm.corp.example/\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := ToolchainSettings(ctx, tr.options(false))
	if s.NPMRegistry {
		t.Fatal("NPMRegistry true; a scoped registry is not npm's registry")
	}
	rec := &recorder{}
	o := discoveryOptions(tr, rec)
	for range 2 {
		hosts, errs := toolchain.Discover(ctx, s, o)
		want := []string{"npm.corp.example:443 @corp:registry ($T/home/.npmrc:2)", "default.lab.example:443 npm config get registry"}
		if diff := cmp.Diff(want, tr.toolchainHosts(hosts)); diff != "" || len(errs) > 0 {
			t.Errorf("hosts (-want +got):\n%s\nerrors: %v", diff, errs)
		}
	}
	if diff := cmp.Diff([]string{"npm"}, rec.commands()); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}

	tr.write(filepath.Join(tr.root, "etc", "npmrc"), "registry=https://global.lab.example/\n")
	s = ToolchainSettings(ctx, tr.options(false))
	if !s.NPMRegistry || len(s.Hosts) != 2 || s.Hosts[1].Host != "global.lab.example" {
		t.Errorf("with a global npmrc: %+v; want its registry, npm's question answered", s)
	}
	if _, err := os.Stat(filepath.Join(tr.base, "cache", "npm-registry.json")); err != nil {
		t.Errorf("no cache written: %v", err)
	}
}

// TestRunHostsEarly: Run hands its hosts and toolchain settings to the
// Hosts hook once, and they are the report's.
func TestRunHostsEarly(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	tr.write(filepath.Join(tr.home, ".npmrc"), "registry=https://npm.lab.example/\nstrict-ssl=false\n")
	tr.write(filepath.Join(tr.home, ".gitconfig"), "[url \"https://git.lab.example/\"]\n\tinsteadOf = git@git.lab.example:\n")
	opts := tr.options(false)
	var calls int
	var hosts []Host
	var tc toolchain.Settings
	var settings []Setting
	opts.Hosts = func(r Report) { calls, hosts, tc, settings = calls+1, r.Hosts, r.Toolchain, r.Settings }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := Run(ctx, opts)
	if calls != 1 || len(hosts) != 2 {
		t.Fatalf("hook called %d times with %v; want once with the two hosts", calls, tr.hosts(hosts))
	}
	if diff := cmp.Diff(r.Hosts, hosts); diff != "" {
		t.Errorf("early hosts differ from the report's (-report +early):\n%s", diff)
	}
	if diff := cmp.Diff(r.Toolchain, tc); diff != "" {
		t.Errorf("early settings differ from the report's (-report +early):\n%s", diff)
	}
	// The tools' inventory starts from these: they must be whole.
	if len(settings) == 0 {
		t.Error("no tool settings handed over early")
	}
	if diff := cmp.Diff(r.Settings, settings); diff != "" {
		t.Errorf("early tool settings differ from the report's (-report +early):\n%s", diff)
	}
}
