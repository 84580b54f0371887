// Package toolchain finds the hosts the local build tools are configured to
// fetch from: the Go module proxy and checksum database, the npm registry,
// pip's indexes. Those are often company mirrors that no default list can
// name, and where an intercepting middlebox does the most harm. The names
// are read at run time from the tools themselves, never assumed.
package toolchain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Host is a host a tool fetches from, and which setting named it.
type Host struct {
	Host   string // lower case name or IP address, without brackets
	Port   int
	Source string // e.g. "go env GOPROXY", "npm config get registry", "PIP_INDEX_URL"
}

// Key identifies a host the way config.Target.Key does.
func (h Host) Key() string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

// Runner runs a command and returns its standard output. A binary that is
// not installed must yield an error matching exec.ErrNotFound, which
// Discover treats as "tool not used here".
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// commandTimeout bounds each tool: a wedged npm must not hold up probing.
const commandTimeout = 5 * time.Second

// Exec is the default Runner: it runs the command with this process's
// environment.
func Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	return run(ctx, nil, name, args)
}

// ExecEnv returns a Runner like Exec whose commands also see env
// ("KEY=value", overriding this process's values). It inspects another
// configuration, a CI profile or a test lab, without changing this process.
func ExecEnv(env ...string) Runner {
	env = append([]string(nil), env...)
	return func(ctx context.Context, name string, args ...string) ([]byte, error) {
		return run(ctx, env, name, args)
	}
}

func run(ctx context.Context, env []string, name string, args []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
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

// step is one tool to ask: its candidate binaries, arguments and the parser
// of its output.
type step struct {
	names []string
	args  []string
	parse func(out []byte) []Host
}

// Discover asks the installed tools where they fetch from. Tools that are
// not installed are skipped; tools that fail are reported in the errors and
// the rest still count. Hosts are deduplicated by host:port, keeping the
// first source, in the order Go, npm, pip environment, pip config. A nil run
// or getenv means Exec and os.Getenv.
func Discover(ctx context.Context, run Runner, getenv func(string) string) ([]Host, []error) {
	if run == nil {
		run = Exec
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	steps := []step{
		{[]string{"go"}, []string{"env", "GOPROXY", "GOSUMDB"}, parseGoEnv},
		{[]string{"npm"}, []string{"config", "get", "registry"}, parseNPM},
		{[]string{"pip", "pip3"}, []string{"config", "list"}, parsePipConfig},
	}
	found := make([][]Host, len(steps))
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, s := range steps {
		wg.Go(func() { found[i], errs[i] = ask(ctx, run, s) })
	}
	wg.Wait()

	// pip reads the environment before its config files; so do we.
	pipEnv := ParseRegistry(getenv("PIP_INDEX_URL"), "PIP_INDEX_URL")
	for _, u := range strings.Fields(getenv("PIP_EXTRA_INDEX_URL")) {
		pipEnv = append(pipEnv, ParseRegistry(u, "PIP_EXTRA_INDEX_URL")...)
	}

	var hosts []Host
	seen := map[string]bool{}
	for _, hs := range [][]Host{found[0], found[1], pipEnv, found[2]} {
		for _, h := range hs {
			if !seen[h.Key()] {
				seen[h.Key()] = true
				hosts = append(hosts, h)
			}
		}
	}
	var failures []error
	for _, err := range errs {
		if err != nil {
			failures = append(failures, err)
		}
	}
	return hosts, failures
}

// ask runs the first installed binary of a step within commandTimeout.
func ask(ctx context.Context, run Runner, s step) ([]Host, error) {
	for _, name := range s.names {
		cctx, cancel := context.WithTimeout(ctx, commandTimeout)
		out, err := run(cctx, name, s.args...)
		cancel()
		if errors.Is(err, exec.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("toolchain: %s %s: %w", name, strings.Join(s.args, " "), err)
		}
		return s.parse(out), nil
	}
	return nil, nil
}
