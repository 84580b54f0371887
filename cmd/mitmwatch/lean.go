//go:build lean

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mitmwatch/mitmwatch/check"
)

// The release's mitmwatch is built with -tags lean. A Go program runs the
// init of every package it links before main: the Prometheus client, the
// exporter toolkit and packet capture cost a check milliseconds of
// start-up and CPU it never uses, on every CI job. So this build links
// only the commands that finish (check, audit, baseline, validate,
// ranges, version) and hands everything else, including help, to
// mitmwatch-agent, the full build installed beside it, by exec: same
// process, same PID, so systemd's notify socket, watchdog and socket
// activation reach the service unchanged.

// registerAgent registers nothing: those commands are the agent's.
func registerAgent(*kingpin.Application, context.Context, env, func(int)) {}

// ownCommands are the commands this build runs itself.
var ownCommands = map[string]bool{"check": true, "audit": true, "baseline": true, "validate": true, "ranges": true, "version": true}

// handOver runs args in mitmwatch-agent unless this build runs them
// itself; ok reports that it did (and, where exec returns, its code).
func handOver(args []string, e env) (code int, ok bool) {
	if runsItself(args) {
		return 0, false
	}
	agent, err := agentPath()
	if err == nil {
		code, err = execAgent(agent, args)
	}
	if err != nil {
		what := "this"
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			what = "mitmwatch " + args[0]
		}
		fmt.Fprintf(e.stderr, "mitmwatch: %s needs mitmwatch-agent, installed beside mitmwatch: %v\n", what, err)
		return check.ExitUsage, true
	}
	return code, true
}

// runsItself reports whether args name one of ownCommands, and ask
// neither for help nor for completion: the agent's help lists every
// command and flag, so help is the agent's, whole.
func runsItself(args []string) bool {
	if len(args) == 0 || !ownCommands[args[0]] {
		return false // usage, global flags, help, or the agent's commands
	}
	for _, a := range args[1:] {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || strings.HasPrefix(a, "--help-") || strings.HasPrefix(a, "--completion-") {
			return false
		}
	}
	return true
}

// agentPath is mitmwatch-agent beside this executable, named as this one
// is: mitmwatch-linux-amd64 beside mitmwatch-agent-linux-amd64,
// mitmwatch.exe beside mitmwatch-agent.exe.
func agentPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		// No /proc (a chroot): where the shell found it.
		if self, err = exec.LookPath(os.Args[0]); err != nil {
			return "", fmt.Errorf("finding this executable: %w", err)
		}
	}
	if real, err := filepath.EvalSymlinks(self); err == nil {
		self = real
	}
	dir, base := filepath.Split(self)
	name := "mitmwatch-agent" + filepath.Ext(base)
	if rest, ok := strings.CutPrefix(base, "mitmwatch"); ok {
		name = "mitmwatch-agent" + rest
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	return path, nil
}
