package toolchain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// xdgLayout skips a test whose cases spell the user's go env file as
// $XDG_CONFIG_HOME/go/env or $HOME/.config/go/env: os.UserConfigDir puts
// it elsewhere on macOS, Windows and Plan 9.
func xdgLayout(t *testing.T) {
	t.Helper()
	switch runtime.GOOS {
	case "windows", "darwin", "ios", "plan9":
		t.Skipf("the cases spell the XDG layout; %s keeps the go env file elsewhere", runtime.GOOS)
	}
}

// fakeGo lays out a Go installation under dir: bin/go, pkg/tool and a
// go.env holding defaults, and returns the go binary.
func fakeGo(t *testing.T, dir, goEnv string) string {
	t.Helper()
	gocmd := filepath.Join(dir, "bin", "go")
	writeFile(t, gocmd, "#!/bin/sh\nexit 1\n")
	must(t, os.MkdirAll(filepath.Join(dir, "pkg", "tool"), 0o755))
	if goEnv != "" {
		writeFile(t, filepath.Join(dir, "go.env"), goEnv)
	}
	return gocmd
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, []byte(content), 0o755))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// defaultGoEnv stands in for a toolchain's go.env: comments, the proxy and
// checksum database defaults, and GOTOOLCHAIN, which no case asks for.
const defaultGoEnv = "# defaults\n\nGOPROXY=https://proxy.example,direct\nGOSUMDB=sum.example\n\nGOTOOLCHAIN=auto\n"

// render shows a resolution as "KEY=value @source" lines with the test's
// directory as $D, for cmp.Diff.
func render(e GoEnv, dir string) []string {
	var out []string
	for _, k := range goEnvVars {
		v, ok := e.Lookup(k)
		if !ok {
			continue
		}
		out = append(out, strings.ReplaceAll(fmt.Sprintf("%s=%q @%s", k, v.Value, v.Source()), dir, "$D"))
	}
	return out
}

// TestResolveGoEnv: the layers in the go command's order, each file read
// as the go command reads it, and the cases where only go can say.
func TestResolveGoEnv(t *testing.T) {
	xdgLayout(t)
	t.Parallel()
	for _, tc := range []struct {
		name string
		// files are written under the test's directory $D; the toolchain
		// is $D/go with defaultGoEnv unless files replace go/go.env.
		files map[string]string
		env   map[string]string // $D expands; HOME is $D/home unless set
		// gocmd is what LookPath answers, under $D; empty means go/bin/go.
		gocmd   string
		lookErr error
		setup   func(t *testing.T, dir string)
		want    []string // render's lines; nil with answered false
		missing bool
		why     string // a part of Why, when the files cannot answer
	}{{
		name: "toolchain defaults only",
		want: []string{
			`GOPROXY="https://proxy.example,direct" @$D/go/go.env:3`,
			`GOSUMDB="sum.example" @$D/go/go.env:4`,
			`GOPRIVATE="" @default`,
			`GONOPROXY="" @default`,
			`GONOSUMDB="" @default`,
			`GOINSECURE="" @default`,
			`GOFLAGS="" @default`,
			`GOENV="$D/home/.config/go/env" @default`,
			`GOROOT="$D/go" @default`,
		},
	}, {
		name:  "the user's file over go.env, the environment over both",
		files: map[string]string{"home/.config/go/env": "GOPROXY=https://user.example\nGOSUMDB=sum.user.example\nGOINSECURE=insecure.example\n"},
		env:   map[string]string{"GOSUMDB": "sum.env.example", "GOINSECURE": "", "GOFLAGS": "-mod=mod"},
		want: []string{
			`GOPROXY="https://user.example" @$D/home/.config/go/env:1`,
			`GOSUMDB="sum.env.example" @environment`,
			`GOPRIVATE="" @default`,
			`GONOPROXY="" @default`,
			`GONOSUMDB="" @default`,
			// Set but empty in the environment: the file decides.
			`GOINSECURE="insecure.example" @$D/home/.config/go/env:3`,
			`GOFLAGS="-mod=mod" @environment`,
			`GOENV="$D/home/.config/go/env" @default`,
			`GOROOT="$D/go" @default`,
		},
	}, {
		name:  "an empty value in the user's file hides go.env's",
		files: map[string]string{"home/.config/go/env": "GOPROXY=\n"},
		want: []string{
			`GOPROXY="" @$D/home/.config/go/env:1`,
			`GOSUMDB="sum.example" @$D/go/go.env:4`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="$D/home/.config/go/env" @default`, `GOROOT="$D/go" @default`,
		},
	}, {
		name:  "GOENV=off reads no user file",
		files: map[string]string{"home/.config/go/env": "GOPROXY=https://user.example\n"},
		env:   map[string]string{"GOENV": "off"},
		want: []string{
			`GOPROXY="https://proxy.example,direct" @$D/go/go.env:3`,
			`GOSUMDB="sum.example" @$D/go/go.env:4`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="" @environment`, `GOROOT="$D/go" @default`,
		},
	}, {
		name: "GOENV names another file",
		files: map[string]string{
			"home/.config/go/env": "GOPROXY=https://user.example\n",
			"elsewhere/goenv":     "GOSUMDB=off\n",
		},
		env: map[string]string{"GOENV": "$D/elsewhere/goenv"},
		want: []string{
			`GOPROXY="https://proxy.example,direct" @$D/go/go.env:3`,
			`GOSUMDB="off" @$D/elsewhere/goenv:1`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="$D/elsewhere/goenv" @environment`, `GOROOT="$D/go" @default`,
		},
	}, {
		name: "GOENV names a file that does not exist",
		env:  map[string]string{"GOENV": "$D/nowhere/env"},
		want: []string{
			`GOPROXY="https://proxy.example,direct" @$D/go/go.env:3`,
			`GOSUMDB="sum.example" @$D/go/go.env:4`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="$D/nowhere/env" @environment`, `GOROOT="$D/go" @default`,
		},
	}, {
		name: "XDG_CONFIG_HOME over HOME",
		files: map[string]string{
			"home/.config/go/env": "GOPROXY=https://home.example\n",
			"xdg/go/env":          "GOPROXY=https://xdg.example\n",
		},
		env: map[string]string{"XDG_CONFIG_HOME": "$D/xdg"},
		want: []string{
			`GOPROXY="https://xdg.example" @$D/xdg/go/env:1`,
			`GOSUMDB="sum.example" @$D/go/go.env:4`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="$D/xdg/go/env" @default`, `GOROOT="$D/go" @default`,
		},
	}, {
		name:  "a relative XDG_CONFIG_HOME means no user file",
		files: map[string]string{"home/.config/go/env": "GOPROXY=https://home.example\n"},
		env:   map[string]string{"XDG_CONFIG_HOME": "relative/xdg"},
		want: []string{
			`GOPROXY="https://proxy.example,direct" @$D/go/go.env:3`,
			`GOSUMDB="sum.example" @$D/go/go.env:4`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="" @default`, `GOROOT="$D/go" @default`,
		},
	}, {
		name: "no HOME means no user file",
		env:  map[string]string{"HOME": ""},
		want: []string{
			`GOPROXY="https://proxy.example,direct" @$D/go/go.env:3`,
			`GOSUMDB="sum.example" @$D/go/go.env:4`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="" @default`, `GOROOT="$D/go" @default`,
		},
	}, {
		// The go command splits at \n only: the \r stays in the value
		// and `go env` prints it.
		name:  "CRLF lines keep their carriage return",
		files: map[string]string{"home/.config/go/env": "GOPROXY=https://user.example\r\nGOPRIVATE=corp.example\r\n"},
		want: []string{
			`GOPROXY="https://user.example\r" @$D/home/.config/go/env:1`,
			`GOSUMDB="sum.example" @$D/go/go.env:4`,
			`GOPRIVATE="corp.example\r" @$D/home/.config/go/env:2`,
			`GONOPROXY="corp.example\r" @default`,
			`GONOSUMDB="corp.example\r" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="$D/home/.config/go/env" @default`, `GOROOT="$D/go" @default`,
		},
	}, {
		// The user's file keeps the last value of a key, go.env the
		// first (it never overwrites a key already read).
		name: "last value wins in the user's file, first in go.env",
		files: map[string]string{
			"home/.config/go/env": "GOPROXY=https://first.example\nGOPROXY=https://last.example\n",
			"go/go.env":           "GOSUMDB=sum.first.example\nGOSUMDB=sum.last.example\n",
		},
		want: []string{
			`GOPROXY="https://last.example" @$D/home/.config/go/env:2`,
			`GOSUMDB="sum.first.example" @$D/go/go.env:1`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="$D/home/.config/go/env" @default`, `GOROOT="$D/go" @default`,
		},
	}, {
		name: "lines not starting with an upper-case letter are ignored",
		files: map[string]string{"home/.config/go/env": strings.Join([]string{
			"# GOPROXY=https://comment.example",
			"goproxy=https://lower.example",
			" GOPROXY=https://indented.example",
			"_GOPROXY=https://underscore.example",
			"GOPROXY",
			"",
			"GOINSECURE=insecure.example",
		}, "\n")},
		want: []string{
			`GOPROXY="https://proxy.example,direct" @$D/go/go.env:3`,
			`GOSUMDB="sum.example" @$D/go/go.env:4`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="insecure.example" @$D/home/.config/go/env:7`,
			`GOFLAGS="" @default`,
			`GOENV="$D/home/.config/go/env" @default`, `GOROOT="$D/go" @default`,
		},
	}, {
		// GONOPROXY and GONOSUMDB default to GOPRIVATE, also when a
		// layer sets them empty; a non-empty one is its own.
		name:  "GOPRIVATE defaults",
		files: map[string]string{"home/.config/go/env": "GOPRIVATE=*.corp.example\nGONOSUMDB=\n"},
		env:   map[string]string{"GONOPROXY": "git.corp.example"},
		want: []string{
			`GOPROXY="https://proxy.example,direct" @$D/go/go.env:3`,
			`GOSUMDB="sum.example" @$D/go/go.env:4`,
			`GOPRIVATE="*.corp.example" @$D/home/.config/go/env:1`,
			`GONOPROXY="git.corp.example" @environment`,
			`GONOSUMDB="*.corp.example" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="$D/home/.config/go/env" @default`, `GOROOT="$D/go" @default`,
		},
	}, {
		name:  "GOROOT from the environment, printed as given",
		files: map[string]string{"other/go.env": "GOPROXY=https://other.example\n"},
		env:   map[string]string{"GOROOT": "$D/other/"},
		want: []string{
			`GOPROXY="https://other.example" @$D/other/go.env:1`,
			`GOSUMDB="" @default`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="$D/home/.config/go/env" @default`, `GOROOT="$D/other/" @environment`,
		},
	}, {
		// findGOROOT is handed the user's file's GOROOT before it looks
		// at the environment's, which go env still prints.
		name: "GOROOT from the user's file chooses go.env",
		files: map[string]string{
			"home/.config/go/env": "GOROOT=$D/other/\n",
			"other/go.env":        "GOPROXY=https://other.example\n",
			"third/go.env":        "GOPROXY=https://third.example\n",
		},
		env: map[string]string{"GOROOT": "$D/third"},
		want: []string{
			`GOPROXY="https://other.example" @$D/other/go.env:1`,
			`GOSUMDB="" @default`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="$D/home/.config/go/env" @default`, `GOROOT="$D/third" @environment`,
		},
	}, {
		name: "GOROOT from the user's file alone",
		files: map[string]string{
			"home/.config/go/env": "GOROOT=$D/other/\n",
			"other/go.env":        "GOPROXY=https://other.example\n",
		},
		want: []string{
			`GOPROXY="https://other.example" @$D/other/go.env:1`,
			`GOSUMDB="" @default`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="$D/home/.config/go/env" @default`, `GOROOT="$D/other" @$D/home/.config/go/env:1`,
		},
	}, {
		// /usr/local/bin/go -> /usr/lib/go/bin/go: GOROOT is where the
		// link leads, not /usr/local.
		name:  "a symlinked go binary",
		gocmd: "links/bin/go",
		setup: func(t *testing.T, dir string) {
			must(t, os.MkdirAll(filepath.Join(dir, "links", "bin"), 0o755))
			must(t, os.Symlink(filepath.Join(dir, "go", "bin", "go"), filepath.Join(dir, "links", "bin", "go")))
		},
		want: []string{
			`GOPROXY="https://proxy.example,direct" @$D/go/go.env:3`,
			`GOSUMDB="sum.example" @$D/go/go.env:4`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="$D/home/.config/go/env" @default`, `GOROOT="$D/go" @default`,
		},
	}, {
		name:  "a cross-compiled go in bin/GOOS_GOARCH",
		gocmd: "go/bin/plan9_arm/go",
		setup: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "go", "bin", "plan9_arm", "go"), "")
		},
		want: []string{
			`GOPROXY="https://proxy.example,direct" @$D/go/go.env:3`,
			`GOSUMDB="sum.example" @$D/go/go.env:4`,
			`GOPRIVATE="" @default`, `GONOPROXY="" @default`, `GONOSUMDB="" @default`,
			`GOINSECURE="" @default`, `GOFLAGS="" @default`,
			`GOENV="$D/home/.config/go/env" @default`, `GOROOT="$D/go" @default`,
		},
	}, {
		name:  "no go.env: an older Go's defaults are compiled in",
		setup: func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "go", "go.env"))) },
		why:   "go.env",
	}, {
		name:  "GOROOT in the environment without go.env",
		files: map[string]string{"other/VERSION": "go1.20\n"},
		env:   map[string]string{"GOROOT": "$D/other"},
		why:   "other/go.env",
	}, {
		name:  "an unusual layout: no pkg/tool above the binary",
		gocmd: "plain/go",
		setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "plain", "go"), "") },
		why:   "no GOROOT",
	}, {
		name: "a user file that cannot be read",
		setup: func(t *testing.T, dir string) {
			must(t, os.MkdirAll(filepath.Join(dir, "home", ".config", "go", "env"), 0o755))
		},
		why: "not a regular file",
	}, {
		name: "a relative GOENV depends on where go runs",
		env:  map[string]string{"GOENV": "goenv"},
		why:  "relative",
	}, {
		name: "a relative GOROOT depends on where go runs",
		env:  map[string]string{"GOROOT": "go"},
		why:  "relative",
	}, {
		name:    "go found relative to the current directory",
		lookErr: &exec.Error{Name: "go", Err: exec.ErrDot},
		why:     "finding go",
	}, {
		name:    "go not installed",
		lookErr: &exec.Error{Name: "go", Err: exec.ErrNotFound},
		missing: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			expand := func(s string) string { return strings.ReplaceAll(s, "$D", dir) }
			fakeGo(t, filepath.Join(dir, "go"), defaultGoEnv)
			for name, content := range tc.files {
				writeFile(t, filepath.Join(dir, name), expand(content))
			}
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			env := map[string]string{"HOME": filepath.Join(dir, "home")}
			for k, v := range tc.env {
				env[k] = expand(v)
			}
			gocmd := filepath.Join(dir, cmpOr(tc.gocmd, "go/bin/go"))
			var read []string
			got := ResolveGoEnv(GoEnvOptions{
				Getenv: func(k string) string { return env[k] },
				LookPath: func(file string) (string, error) {
					if file != "go" {
						t.Errorf("LookPath(%q)", file)
					}
					return gocmd, tc.lookErr
				},
				ReadFile: func(path string) ([]byte, error) {
					read = append(read, path)
					return ReadGoEnvFile(path)
				},
			})
			if got.Missing != tc.missing {
				t.Errorf("Missing = %v, want %v", got.Missing, tc.missing)
			}
			if want := tc.want != nil; got.Answered != want {
				t.Fatalf("Answered = %v, want %v (Why %q)", got.Answered, want, got.Why)
			}
			if tc.want == nil {
				if _, ok := got.Lookup("GOPROXY"); ok {
					t.Error("Lookup answers though the files cannot")
				}
				if !strings.Contains(got.Why, tc.why) {
					t.Errorf("Why = %q, want it to mention %q", got.Why, tc.why)
				}
				return
			}
			if diff := cmp.Diff(tc.want, render(got, dir)); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
			if got.Why != "" {
				t.Errorf("Why = %q though answered", got.Why)
			}
			if len(read) > 2 {
				t.Errorf("read %q; want at most the user's file and go.env", read)
			}
			if _, ok := got.Lookup("GOTOOLCHAIN"); ok {
				t.Error("Lookup answers GOTOOLCHAIN, whose built-in default it does not know")
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// TestResolveGoEnvReadFile: the resolver reads through ReadFile only; a
// file it reports missing is no layer, any other failure sends the
// caller to go env.
func TestResolveGoEnvReadFile(t *testing.T) {
	xdgLayout(t)
	t.Parallel()
	files := map[string]string{
		"/home/u/.config/go/env": "GOPROXY=https://user.example\n",
		"/opt/go/go.env":         defaultGoEnv,
	}
	opts := func(broken string) GoEnvOptions {
		return GoEnvOptions{
			Getenv: func(k string) string {
				return map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "/home/u/.config", "GOROOT": "/opt/go"}[k]
			},
			LookPath: func(string) (string, error) { return "/opt/go/bin/go", nil },
			ReadFile: func(path string) ([]byte, error) {
				if path == broken {
					return nil, errors.New("permission denied")
				}
				if c, ok := files[filepath.ToSlash(path)]; ok {
					return []byte(c), nil
				}
				return nil, fs.ErrNotExist
			},
		}
	}
	r := ResolveGoEnv(opts(""))
	if v, _ := r.Lookup("GOPROXY"); !r.Answered || v.Value != "https://user.example" || r.UserFile != "/home/u/.config/go/env" || r.GOROOTFile != "/opt/go/go.env" {
		t.Errorf("got %+v, GOPROXY %+v", r, v)
	}
	for _, broken := range []string{"/home/u/.config/go/env", "/opt/go/go.env"} {
		if r := ResolveGoEnv(opts(broken)); r.Answered || !strings.Contains(r.Why, "permission denied") {
			t.Errorf("%s unreadable: Answered %v, Why %q", broken, r.Answered, r.Why)
		}
	}
}

// TestReadGoEnvFile: the default reader refuses what it cannot read
// quickly and says a missing file is missing.
func TestReadGoEnvFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := ReadGoEnvFile(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := ReadGoEnvFile(dir); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a directory: %v, want an error that is not ErrNotExist", err)
	}
	big := filepath.Join(dir, "big")
	must(t, os.WriteFile(big, make([]byte, maxGoEnvFile+1), 0o644))
	if _, err := ReadGoEnvFile(big); err == nil {
		t.Error("a file over the limit was read")
	}
	ok := filepath.Join(dir, "env")
	must(t, os.WriteFile(ok, []byte("GOPROXY=off\n"), 0o644))
	if data, err := ReadGoEnvFile(ok); err != nil || string(data) != "GOPROXY=off\n" {
		t.Errorf("ReadGoEnvFile = %q, %v", data, err)
	}
}

// TestResolveGoEnvMatchesGo sets up homes, go env files, a toolchain
// directory and variables, and compares the resolver with what the real
// go command prints for each.
func TestResolveGoEnvMatchesGo(t *testing.T) {
	xdgLayout(t)
	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not installed")
	}
	if realGo, err = filepath.Abs(realGo); err != nil {
		t.Fatal(err)
	}
	// The real toolchain's own go.env decides the defaults: whatever it
	// says, resolver and go must agree.
	own := ResolveGoEnv(GoEnvOptions{Getenv: func(string) string { return "" }, LookPath: func(string) (string, error) { return realGo, nil }})
	if !own.Answered {
		t.Skipf("the installed go keeps its defaults where the files cannot say: %s", own.Why)
	}
	realRoot, _ := own.Lookup("GOROOT")

	vars := []string{"GOPROXY", "GOSUMDB", "GOPRIVATE", "GONOSUMDB", "GONOPROXY", "GOINSECURE", "GOFLAGS", "GOENV", "GOROOT"}
	for _, tc := range []struct {
		name  string
		files map[string]string // under $D
		env   map[string]string // $D expands; HOME is $D/home unless set
		// link puts go on PATH through a symbolic link in $D/links.
		link bool
	}{
		{name: "a clean home"},
		{name: "no HOME", env: map[string]string{"HOME": ""}},
		{
			name: "the user's file: CRLF, repeats, comments, lower case",
			files: map[string]string{"home/.config/go/env": "# written by hand\r\n" +
				"GOPROXY=https://first.example\nGOPROXY=https://proxy.corp.example,direct\r\n" +
				"GOPRIVATE=*.corp.example,git.lab.example/team\n" +
				"goinsecure=lower.example\nGOINSECURE=git.lab.example\n" +
				"GOFLAGS=-mod=mod\n GOSUMDB=indented.example\nGOSUMDB\n"},
		},
		{
			name:  "empty values in the user's file",
			files: map[string]string{"home/.config/go/env": "GOPROXY=\nGOSUMDB=\nGONOSUMDB=\nGOPRIVATE=corp.example\n"},
		},
		{
			name: "the environment over the user's file",
			files: map[string]string{"home/.config/go/env": "GOPROXY=https://proxy.corp.example\nGOSUMDB=off\nGONOPROXY=np.corp.example\n" +
				"GOPRIVATE=user.corp.example\n"},
			env: map[string]string{"GOPROXY": "direct", "GOSUMDB": "", "GOPRIVATE": "env.corp.example", "GOFLAGS": "-mod=readonly"},
		},
		{
			name: "XDG_CONFIG_HOME",
			files: map[string]string{
				"home/.config/go/env":   "GOPROXY=https://home.example\n",
				"xdg/go/env":            "GOPROXY=https://xdg.example\nGONOSUMDB=sum-skip.example\n",
				"xdg/go/telemetry/mode": "off\n", // as tempTree does for HOME
			},
			env: map[string]string{"XDG_CONFIG_HOME": "$D/xdg"},
		},
		{
			name:  "a relative XDG_CONFIG_HOME",
			files: map[string]string{"home/.config/go/env": "GOPROXY=https://home.example\n"},
			env:   map[string]string{"XDG_CONFIG_HOME": "xdg"},
		},
		{
			name: "GOENV names another file",
			files: map[string]string{
				"home/.config/go/env": "GOPROXY=https://home.example\n",
				"goenv":               "GOSUMDB=sum.corp.example+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8 https://sum.corp.example\n",
			},
			env: map[string]string{"GOENV": "$D/goenv"},
		},
		{
			name:  "GOENV=off",
			files: map[string]string{"home/.config/go/env": "GOPROXY=https://home.example\n"},
			env:   map[string]string{"GOENV": "off"},
		},
		{
			name:  "GOROOT in the environment, with its own go.env",
			files: map[string]string{"root/go.env": "# other defaults\nGOPROXY=https://root.example\nGOPRIVATE=root.corp.example\nGOPROXY=https://second.example\n"},
			env:   map[string]string{"GOROOT": "$D/root/"},
		},
		{
			name: "GOROOT in the user's file",
			files: map[string]string{
				"home/.config/go/env": "GOROOT=$D/root\n",
				"root/go.env":         "GOSUMDB=sum.root.example\n",
			},
		},
		{
			name: "GOROOT in the user's file and in the environment",
			files: map[string]string{
				"home/.config/go/env": "GOROOT=$D/root\n",
				"root/go.env":         "GOSUMDB=sum.root.example\n",
				"other/go.env":        "GOSUMDB=sum.other.example\n",
			},
			env: map[string]string{"GOROOT": "$D/other"},
		},
		{name: "go through a symbolic link", link: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := tempTree(t)
			expand := func(s string) string { return strings.ReplaceAll(s, "$D", dir) }
			for name, content := range tc.files {
				writeFile(t, filepath.Join(dir, name), expand(content))
			}
			gocmd := realGo
			if tc.link {
				gocmd = filepath.Join(dir, "links", "go")
				must(t, os.MkdirAll(filepath.Dir(gocmd), 0o755))
				must(t, os.Symlink(realGo, gocmd))
			}
			env := map[string]string{"HOME": filepath.Join(dir, "home")}
			for k, v := range tc.env {
				env[k] = expand(v)
			}
			// Exactly this environment: nothing of the test's own.
			cmdEnv := []string{"PATH=" + filepath.Dir(gocmd), "GOTOOLCHAIN=local"}
			for k, v := range env {
				cmdEnv = append(cmdEnv, k+"="+v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, gocmd, append([]string{"env", "-json"}, vars...)...)
			cmd.Env, cmd.Dir, cmd.WaitDelay = cmdEnv, dir, time.Second
			out, err := cmd.Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("go env: %v: %s", err, ee.Stderr)
				}
				t.Fatalf("go env: %v", err)
			}
			want := map[string]string{}
			must(t, json.Unmarshal(out, &want))

			r := ResolveGoEnv(GoEnvOptions{
				Getenv:   func(k string) string { return env[k] },
				LookPath: func(string) (string, error) { return gocmd, nil },
			})
			if !r.Answered {
				t.Fatalf("the files cannot answer: %s", r.Why)
			}
			got := map[string]string{}
			for _, k := range vars {
				v, ok := r.Lookup(k)
				if !ok {
					t.Fatalf("no %s", k)
				}
				got[k] = v.Value
			}
			// go may spell its own GOROOT as built into it; the
			// directory is what matters.
			if got["GOROOT"] != want["GOROOT"] && sameDir(got["GOROOT"], want["GOROOT"]) {
				got["GOROOT"] = want["GOROOT"]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("resolver against go env (-go +resolver):\n%s", diff)
			}
			if tc.link && got["GOROOT"] != realRoot.Value {
				t.Errorf("through a link GOROOT = %q, want %q", got["GOROOT"], realRoot.Value)
			}
		})
	}
}

func sameDir(a, b string) bool {
	ia, err1 := os.Stat(a)
	ib, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(ia, ib)
}

// tempTree is a temporary directory for a go command's HOME (its home
// subdirectory), with the go command's telemetry off: only the mode file
// turns it off, and otherwise a child go leaves behind writes counters into
// the tree after it was removed.
func tempTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "home", ".config", "go", "telemetry", "mode"), "off\n")
	// The resolver compares paths as go prints them, with links resolved.
	dir, err := filepath.EvalSymlinks(dir)
	must(t, err)
	return dir
}
