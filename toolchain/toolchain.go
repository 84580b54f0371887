// Package toolchain finds the hosts the local build tools are configured to
// fetch from: the Go module proxy and checksum database, the npm registry,
// pip's indexes. Those are often company mirrors that no default list can
// name, and where an intercepting middlebox does the most harm. The names
// are read at run time from the tools' configuration, never assumed.
//
// The configuration itself — the go settings, the .npmrc and pip.conf
// layers and the variables that override them — is read by package audit,
// which judges the same settings; it hands this package Settings. Starting
// npm or pip costs more wall time than a whole probe round, so a tool is
// only asked where its files cannot answer: go, when no $GOROOT/go.env
// holds its defaults (ResolveGoEnv reads its settings as go itself does);
// npm, for its built-in default registry when nothing configures one, and
// then once per npm binary (the answer is cached). pip is never started:
// `pip config list` reports only what its files and variables already say.
package toolchain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Host is a host a tool fetches from, and which setting named it.
type Host struct {
	Host   string // lower case name or IP address, without brackets
	Port   int
	Source string // the setting and where it was read, e.g. "registry (/home/u/.npmrc:3)", "npm config get registry"
}

// Key identifies a host the way config.Target.Key does.
func (h Host) Key() string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

// Settings is where the tools' own configuration says they fetch from.
type Settings struct {
	// Hosts the settings name, in the order Go, npm, pip.
	Hosts []Host
	// NPMRegistry says whether some .npmrc layer or npm_config_registry
	// names npm's registry. When none does, npm uses its built-in default,
	// which only npm itself can tell.
	NPMRegistry bool
}

// Runner runs a command and returns its standard output. A binary that is
// not installed must yield an error matching exec.ErrNotFound, which
// Discover treats as "tool not used here".
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// CommandEnv is the environment to run the command name with, given env
// (nil: this process's). The go command is always run with
// GOTOOLCHAIN=local: reading its settings must never make it fetch another
// toolchain over the very path being checked, as it would inside a module
// whose go.mod asks for a newer Go. Any other command gets env unchanged.
func CommandEnv(name string, env []string) []string {
	if filepath.Base(name) != "go" {
		return env
	}
	if env == nil {
		env = os.Environ()
	}
	// The last value of a variable wins in os/exec.
	return append(slices.Clip(env), "GOTOOLCHAIN=local")
}

// commandTimeout bounds each tool: a wedged npm must not hold up probing.
const commandTimeout = 5 * time.Second

// Exec is the default Runner: it runs the command with this process's
// environment (for go, with GOTOOLCHAIN=local: see CommandEnv).
func Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = CommandEnv(name, nil)
	// A tool that leaves a child holding its output open must not outlive
	// the deadline either.
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

// Options are Discover's seams; the zero value runs the real npm and
// caches in the user's cache directory.
type Options struct {
	// Run runs npm; nil means Exec.
	Run Runner
	// LookPath finds the npm binary; nil means exec.LookPath.
	LookPath func(file string) (string, error)
	// CacheDir holds npm's answer between runs; empty means
	// os.UserCacheDir()/mitmwatch. Without a usable directory npm is asked
	// every time.
	CacheDir string
}

// NPMDefault returns the registry npm uses when no setting names one, from
// the cache while that npm installation is unchanged (npm itself takes a
// quarter of a second to say it); none when npm is not installed.
func NPMDefault(ctx context.Context, o Options) ([]Host, error) { return o.npmDefault(ctx) }

// Discover returns the hosts of s, then npm's built-in default registry
// when no setting names npm's registry and npm is installed. Hosts are
// deduplicated by host:port, keeping the first source. A failing npm is
// reported in the errors; the hosts of s still count.
func Discover(ctx context.Context, s Settings, o Options) ([]Host, []error) {
	hosts := append([]Host(nil), s.Hosts...)
	var errs []error
	if !s.NPMRegistry {
		h, err := o.npmDefault(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		hosts = append(hosts, h...)
	}
	var out []Host
	seen := map[string]bool{}
	for _, h := range hosts {
		if !seen[h.Key()] {
			seen[h.Key()] = true
			out = append(out, h)
		}
	}
	return out, errs
}
