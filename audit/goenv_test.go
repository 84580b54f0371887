package audit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/toolchain"
)

// fakeGoroot lays out a Go installation in the tree: bin/go, pkg/tool and,
// unless goEnv is empty, a go.env. It returns the go binary.
func (tr *tree) fakeGoroot(goEnv string) string {
	tr.t.Helper()
	dir := filepath.Join(tr.base, "goroot")
	gocmd := tr.write(filepath.Join(dir, "bin", "go"), "#!/bin/sh\nexit 1\n")
	must(tr.t, os.MkdirAll(filepath.Join(dir, "pkg", "tool"), 0o755))
	if goEnv != "" {
		tr.write(filepath.Join(dir, "go.env"), goEnv)
	}
	return gocmd
}

// goCounter wraps a Runner and counts the times go is started.
type goCounter struct {
	run toolchain.Runner
	mu  sync.Mutex
	gos []string
}

func (c *goCounter) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if filepath.Base(name) == "go" {
		c.mu.Lock()
		c.gos = append(c.gos, strings.Join(args, " "))
		c.mu.Unlock()
	}
	return c.run(ctx, name, args...)
}

func (c *goCounter) started() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.gos)
}

// TestGoSettingsFromFiles: with go installed and its go.env present, the
// audit reads the settings without starting go, and names the line of
// go.env, of the user's file or the variable each came from.
func TestGoSettingsFromFiles(t *testing.T) {
	t.Parallel()
	tr := newTree(t)
	gocmd := tr.fakeGoroot("# defaults\nGOPROXY=https://proxy.lab.example,direct\nGOSUMDB=sum.lab.example\n")
	tr.write(filepath.Join(tr.home, ".config", "go", "env"), "GOPRIVATE=git.corp.example\nGOINSECURE=git.corp.example\n")
	tr.env["GOFLAGS"] = "-insecure"
	// go answers nonsense: it must not be asked.
	rec := &recorder{goEnv: `{"GOPROXY": "https://wrong.lab.example"}`}
	opts := tr.options(false)
	opts.Run = rec.run
	opts.LookPath = func(string) (string, error) { return gocmd, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := Run(ctx, opts)
	if slices.Contains(rec.commands(), "go") {
		t.Errorf("go was started: %q", rec.calls)
	}
	checkFindings(t, tr, only(r.Findings, "go"), []string{
		"critical go GOINSECURE git.corp.example @$T/home/.config/go/env:2",
		"warning go GOFLAGS -insecure @environment",
	})
	checkHosts(t, tr, r.Hosts, []string{
		"https://proxy.lab.example:443 GOPROXY ($T/goroot/go.env:2)",
		"https://sum.lab.example:443 GOSUMDB ($T/goroot/go.env:3)",
		"https://git.corp.example:443 GOINSECURE ($T/home/.config/go/env:2)",
	})
	var settings []string
	for _, s := range r.Settings {
		if s.Tool == "go" {
			settings = append(settings, tr.rel(s.Key+"="+s.Value+" @"+s.Source))
		}
	}
	if diff := cmp.Diff([]string{
		"GOPROXY=https://proxy.lab.example,direct @$T/goroot/go.env:2",
		"GOSUMDB=sum.lab.example @$T/goroot/go.env:3",
		"GOINSECURE=git.corp.example @$T/home/.config/go/env:2",
		"GONOSUMDB=git.corp.example @go env", // GOPRIVATE's, as go derives it
		"GOPRIVATE=git.corp.example @$T/home/.config/go/env:1",
		"GONOPROXY=git.corp.example @go env",
		"GOFLAGS=-insecure @environment",
		"GOENV=$T/home/.config/go/env @go env",
		"GOROOT=$T/goroot @go env",
	}, settings); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings: %q", r.Warnings)
	}
}

// TestGoSettingsFallBack: without go.env (a Go before 1.21, whose defaults
// are compiled in) the audit asks go env once, as before; without go it
// reads the files and asks nothing.
func TestGoSettingsFallBack(t *testing.T) {
	t.Parallel()
	tr := newTree(t)
	gocmd := tr.fakeGoroot("")
	rec := &recorder{goEnv: `{"GOPROXY": "https://proxy.lab.example,direct", "GOSUMDB": "sum.lab.example", "GOROOT": ""}`}
	opts := tr.options(false)
	opts.Run = rec.run
	opts.LookPath = func(string) (string, error) { return gocmd, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := Run(ctx, opts)
	var goCalls []string
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "go ") {
			goCalls = append(goCalls, c)
		}
	}
	if len(goCalls) != 1 || !strings.HasPrefix(goCalls[0], "go env -json GOPROXY GOSUMDB") {
		t.Errorf("go ran as %q; want go env -json once", goCalls)
	}
	checkHosts(t, tr, r.Hosts, []string{
		"https://proxy.lab.example:443 GOPROXY (go env)",
		"https://sum.lab.example:443 GOSUMDB (go env)",
	})

	// go not installed: the files alone, as before.
	tr.env["GOENV"] = tr.write(filepath.Join(tr.base, "goenv"), "GOSUMDB=off\n")
	rec.calls = nil
	opts.LookPath = func(file string) (string, error) { return "", &exec.Error{Name: file, Err: exec.ErrNotFound} }
	r = Run(ctx, opts)
	if slices.Contains(rec.commands(), "go") {
		t.Errorf("go was asked though not installed: %q", rec.calls)
	}
	checkFindings(t, tr, only(r.Findings, "go"), []string{"critical go GOSUMDB off @$T/goenv:1"})
}

// TestGoSettingsAsGoEnv audits set-ups with the real go command twice: the
// way the audit used to, asking `go env -json`, and reading the files.
// The reports must be the same, findings, hosts, settings and warnings.
func TestGoSettingsAsGoEnv(t *testing.T) {
	t.Parallel()
	needBinary(t, "go")
	for _, tc := range []struct {
		name  string
		files map[string]string // under the tree's base; $T expands
		env   map[string]string // $T expands
	}{
		{name: "a clean home"},
		{
			name: "workarounds in GOENV and the environment",
			files: map[string]string{"goenv": "GOINSECURE=git.lab.example\nGOSUMDB=off\n# a comment go ignores\n" +
				"GOPRIVATE=*.corp.example,*\n"},
			env: map[string]string{"GOENV": "$T/goenv", "GOPROXY": "http://goproxy.lab.example,direct", "GOFLAGS": "-mod=mod -insecure", "GONOSUMCHECK": "1"},
		},
		{
			name: "the user's file: CRLF, repeats, empty values",
			files: map[string]string{"home/.config/go/env": "GOPROXY=https://first.lab.example\r\nGOPROXY=https://goproxy.lab.example|direct\r\n" +
				"GONOSUMDB=\nGOPRIVATE=git.corp.example/team\ngoinsecure=lower.lab.example\nGOSUMDB=\n"},
		},
		{
			name: "XDG_CONFIG_HOME, and GONOSUMDB in the environment",
			files: map[string]string{"xdg/go/env": "GOPRIVATE=git.corp.example/myorg/*\nGOPROXY=direct\n", "home/.config/go/env": "GOSUMDB=off\n",
				"xdg/go/telemetry/mode": "off\n"}, // as newTree does for HOME
			env: map[string]string{"XDG_CONFIG_HOME": "$T/xdg", "GONOSUMDB": "*"},
		},
		{
			name:  "GOENV=off",
			files: map[string]string{"home/.config/go/env": "GOSUMDB=off\n"},
			env:   map[string]string{"GOENV": "off", "GOINSECURE": "*.lab.example"},
		},
		{
			name:  "GOROOT elsewhere, with its own go.env",
			files: map[string]string{"goroot/go.env": "GOPROXY=http://proxy.lab.example\nGOSUMDB=sum.lab.example\nGOPROXY=https://second.lab.example\n"},
			env:   map[string]string{"GOROOT": "$T/goroot/"},
		},
		{
			name: "GOROOT in the user's file",
			files: map[string]string{
				"home/.config/go/env": "GOROOT=$T/goroot\nGOPRIVATE=git.lab.example\n",
				"goroot/go.env":       "GOSUMDB=sum.lab.example https://sum.lab.example:8443\n",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := newTree(t)
			expand := func(s string) string { return strings.ReplaceAll(s, "$T", tr.base) }
			for name, content := range tc.files {
				tr.write(filepath.Join(tr.base, name), expand(content))
			}
			for k, v := range tc.env {
				tr.env[k] = expand(v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			// Before: Run set and no LookPath asks go env -json.
			real := newAuditor(tr.options(true)).run
			asked := &goCounter{run: real}
			opts := tr.options(true)
			opts.Run = asked.Run
			before := Run(ctx, opts)
			if n := len(asked.started()); n != 1 {
				t.Fatalf("go started %d times the old way, want once", n)
			}

			// Now: the files, with the go found on PATH.
			read := &goCounter{run: real}
			opts.Run, opts.LookPath = read.Run, exec.LookPath
			now := Run(ctx, opts)
			if gos := read.started(); len(gos) != 0 {
				t.Errorf("go started: %q", gos)
			}
			if diff := cmp.Diff(before, now); diff != "" {
				t.Errorf("report (-go env +files):\n%s", tr.rel(diff))
			}
		})
	}
}
