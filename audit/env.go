package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/toolchain"
)

// environment is the audited environment: Getenv, and the full list when
// the caller has one.
type environment struct {
	getenv func(string) string
	all    map[string]string // nil when only getenv is known
	names  []string          // the names of all, in their order
}

func newEnvironment(getenv func(string) string, environ []string) environment {
	e := environment{getenv: getenv}
	if environ != nil {
		e.all = make(map[string]string, len(environ))
		for _, kv := range environ {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				continue
			}
			if _, dup := e.all[k]; !dup {
				e.names = append(e.names, k)
			}
			e.all[k] = v
		}
	}
	return e
}

// get returns a variable's value, "" when unset.
func (e environment) get(name string) string {
	if e.all != nil {
		return e.all[name]
	}
	return e.getenv(name)
}

// lookup is get that also says whether the variable is set. Without the
// full list, a variable set to "" cannot be told from an unset one.
func (e environment) lookup(name string) (string, bool) {
	if e.all != nil {
		v, ok := e.all[name]
		return v, ok
	}
	v := e.getenv(name)
	return v, v != ""
}

// envVar is one variable found by anyCase or withPrefix.
type envVar struct{ name, value string }

// anyCase returns the variables named name in any case: every spelling in
// the full list, else NAME and name.
func (e environment) anyCase(name string) []envVar {
	var out []envVar
	if e.all != nil {
		for _, n := range e.names {
			if strings.EqualFold(n, name) {
				out = append(out, envVar{n, e.all[n]})
			}
		}
		return out
	}
	for _, n := range []string{strings.ToUpper(name), strings.ToLower(name)} {
		if v, ok := e.lookup(n); ok {
			out = append(out, envVar{n, v})
		}
	}
	return out
}

// withPrefix returns the variables whose name starts with prefix in any
// case. Without the full list only prefix+suffix for the given suffixes,
// upper and lower case, can be asked for.
func (e environment) withPrefix(prefix string, suffixes ...string) []envVar {
	if e.all != nil {
		var out []envVar
		for _, n := range e.names {
			if len(n) > len(prefix) && strings.EqualFold(n[:len(prefix)], prefix) {
				out = append(out, envVar{n, e.all[n]})
			}
		}
		return out
	}
	var out []envVar
	for _, s := range suffixes {
		out = append(out, e.anyCase(prefix+s)...)
	}
	return out
}

// commandTimeout bounds `go env` and `git config`: a wedged tool must not
// hold up the audit.
const commandTimeout = 5 * time.Second

// runnerVars are the variables that decide what `go env` and `git config`
// report. The default runner takes them from the audited environment, so
// auditing another HOME (or a test's) does not inherit this process's.
var runnerVars = []string{
	"HOME", "XDG_CONFIG_HOME",
	"GOENV", "GOROOT", "GOPROXY", "GOSUMDB", "GOINSECURE", "GONOSUMDB", "GONOSUMCHECK",
	"GOPRIVATE", "GONOPROXY", "GOFLAGS",
	"GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_COUNT",
	"GIT_CONFIG_PARAMETERS", "GIT_DIR", "GIT_CEILING_DIRECTORIES",
}

// commandEnv is the audited environment as the default Runner hands it to
// go and git, KEY=value, a later value of a variable overriding an earlier
// one. The go settings are read from it too, so that they are what `go
// env` would print.
func (a *auditor) commandEnv() []string {
	var env []string
	if a.env.all != nil {
		for _, n := range a.env.names {
			env = append(env, n+"="+a.env.all[n])
		}
		if _, ok := a.env.all["PATH"]; !ok {
			env = append(env, "PATH="+os.Getenv("PATH"))
		}
	} else {
		override := map[string]bool{}
		for _, n := range runnerVars {
			override[n] = true
		}
		for _, kv := range os.Environ() {
			if k, _, _ := strings.Cut(kv, "="); !override[k] && !strings.HasPrefix(k, "GIT_CONFIG_KEY_") && !strings.HasPrefix(k, "GIT_CONFIG_VALUE_") {
				env = append(env, kv)
			}
		}
		for _, n := range runnerVars {
			if v := a.env.get(n); v != "" {
				env = append(env, n+"="+v)
			}
		}
		// The settings GIT_CONFIG_COUNT announces.
		if n, err := strconv.Atoi(a.env.get("GIT_CONFIG_COUNT")); err == nil {
			for i := range min(n, 1000) {
				for _, k := range []string{"GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"} {
					k += strconv.Itoa(i)
					env = append(env, k+"="+a.env.get(k))
				}
			}
		}
	}
	// The home the audit reads is the one the tools must read too.
	if a.home != "" && (a.opts.Home != "" || a.env.get("HOME") == "") {
		env = append(env, "HOME="+a.home)
	}
	if a.opts.XDGConfigHome != "" {
		env = append(env, "XDG_CONFIG_HOME="+a.opts.XDGConfigHome)
	}
	// An audit never downloads a toolchain, and reads git's messages in
	// one language.
	env = append(env, "GOTOOLCHAIN=local", "LC_ALL=C")
	switch {
	case !a.opts.AllUsers:
		env = append(env, "GIT_CONFIG_NOSYSTEM=1")
	case a.opts.Root != "" && a.env.get("GIT_CONFIG_SYSTEM") == "":
		env = append(env, "GIT_CONFIG_SYSTEM="+a.sys("/etc/gitconfig"))
	}
	return env
}

// getenvIn reads a variable of a commandEnv list: its last value, as
// os/exec passes it on.
func getenvIn(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		k, v, _ := strings.Cut(env[i], "=")
		if k == name || runtime.GOOS == "windows" && strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// execRunner returns the default Runner: the real binary, in a.dir, with
// the audited environment.
func (a *auditor) execRunner() toolchain.Runner {
	env := a.commandEnv()
	dir := a.dir
	return func(ctx context.Context, name string, args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, commandTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = env
		cmd.Dir = dir
		if name == "go" {
			// go env reads go.mod and go.work where it runs; a project
			// that asks for a newer toolchain must not make it fail.
			cmd.Dir = os.TempDir()
		}
		cmd.WaitDelay = time.Second
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) && len(ee.Stderr) > 0 {
				line, _, _ := strings.Cut(strings.TrimSpace(string(ee.Stderr)), "\n")
				return nil, fmt.Errorf("%w: %s", err, line)
			}
			return nil, err
		}
		return out, nil
	}
}

// at formats a source as file:line.
func at(file string, line int) string { return fmt.Sprintf("%s:%d", file, line) }

// fromEnv is the Source of a setting read from the environment.
const fromEnv = "environment"
