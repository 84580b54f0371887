package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/toolchain"
)

// TestGoEnv: the checksum database's GOSUMDB and GOPROXY come from the
// environment and the go env files while $GOROOT/go.env holds the
// defaults; only without it is go asked, as before; without go nothing is.
func TestGoEnv(t *testing.T) {
	t.Parallel()
	const defaults = "GOPROXY=https://proxy.lab.example,direct\nGOSUMDB=sum.lab.example\n"
	for _, tc := range []struct {
		name     string
		goEnv    string // $GOROOT/go.env; empty: none
		userFile string // $HOME/.config/go/env
		env      map[string]string
		missing  bool   // go is not installed
		out      string // go env's output; "" fails
		want     [2]string
		asked    bool   // go env runs
		err      string // a part of the error
	}{{
		name:  "go.env's defaults",
		goEnv: defaults,
		want:  [2]string{"sum.lab.example", "https://proxy.lab.example,direct"},
	}, {
		name:     "the user's file and the environment over go.env",
		goEnv:    defaults,
		userFile: "GOPROXY=https://user.lab.example\r\n",
		env:      map[string]string{"GOSUMDB": "sum.env.lab.example"},
		want:     [2]string{"sum.env.lab.example", "https://user.lab.example"},
	}, {
		name:  "no go.env: go is asked",
		out:   "sum.old.lab.example\nhttps://old.lab.example\n",
		want:  [2]string{"sum.old.lab.example", "https://old.lab.example"},
		asked: true,
	}, {
		name:  "no go.env and go fails",
		asked: true,
		err:   "go env GOSUMDB GOPROXY: wedged",
	}, {
		name:    "go is not installed",
		missing: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			gocmd := filepath.Join(dir, "goroot", "bin", "go")
			must(t, os.MkdirAll(filepath.Dir(gocmd), 0o755))
			must(t, os.WriteFile(gocmd, nil, 0o755))
			must(t, os.MkdirAll(filepath.Join(dir, "goroot", "pkg", "tool"), 0o755))
			if tc.goEnv != "" {
				must(t, os.WriteFile(filepath.Join(dir, "goroot", "go.env"), []byte(tc.goEnv), 0o644))
			}
			home := filepath.Join(dir, "home")
			if tc.userFile != "" {
				must(t, os.MkdirAll(filepath.Join(home, ".config", "go"), 0o755))
				must(t, os.WriteFile(filepath.Join(home, ".config", "go", "env"), []byte(tc.userFile), 0o644))
			}
			env := map[string]string{"HOME": home}
			for k, v := range tc.env {
				env[k] = v
			}
			o := toolchain.GoEnvOptions{
				Getenv: func(k string) string { return env[k] },
				LookPath: func(file string) (string, error) {
					if tc.missing {
						return "", &exec.Error{Name: file, Err: exec.ErrNotFound}
					}
					return gocmd, nil
				},
			}
			var asked []string
			run := func(ctx context.Context, name string, args ...string) ([]byte, error) {
				asked = append(asked, name+" "+strings.Join(args, " "))
				if _, ok := ctx.Deadline(); !ok {
					t.Error("go env runs without a deadline")
				}
				if tc.out == "" {
					return nil, errors.New("wedged")
				}
				return []byte(tc.out), nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sum, proxy, err := goEnv(ctx, o, run)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err = %v, want %q", err, tc.err)
				}
			} else if err != nil {
				t.Errorf("err = %v", err)
			}
			if got := [2]string{sum, proxy}; got != tc.want {
				t.Errorf("GOSUMDB, GOPROXY = %q, want %q", got, tc.want)
			}
			if tc.asked != (len(asked) > 0) {
				t.Errorf("go ran %q; want it run: %v", asked, tc.asked)
			}
			if tc.asked && (len(asked) != 1 || asked[0] != "go env GOSUMDB GOPROXY") {
				t.Errorf("go ran as %q", asked)
			}
		})
	}
}

// TestGoEnvAsGo: in this process's environment, goEnv says what the
// installed go command says, without starting it.
func TestGoEnvAsGo(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not installed")
	}
	if r := toolchain.ResolveGoEnv(toolchain.GoEnvOptions{}); !r.Answered {
		t.Skipf("the installed go keeps its defaults where the files cannot say: %s", r.Why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	noGo := func(context.Context, string, ...string) ([]byte, error) {
		t.Error("go was started")
		return nil, errors.New("not here")
	}
	sum, proxy, err := goEnv(ctx, toolchain.GoEnvOptions{Getenv: os.Getenv}, noGo)
	must(t, err)
	// A resolver that cannot answer sends goEnv to go env, as before.
	cannot := toolchain.GoEnvOptions{ReadFile: func(string) ([]byte, error) { return nil, errors.New("unreadable") }}
	wantSum, wantProxy, err := goEnv(ctx, cannot, toolchain.Exec)
	must(t, err)
	if sum != wantSum || proxy != wantProxy {
		t.Errorf("files: GOSUMDB %q GOPROXY %q; go env: %q %q", sum, proxy, wantSum, wantProxy)
	}
}
