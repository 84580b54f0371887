package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/audit"
	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/sshprobe"
	"github.com/mitmwatch/mitmwatch/sumdb"
	"github.com/mitmwatch/mitmwatch/termsafe"
	"github.com/mitmwatch/mitmwatch/toolchain"
)

// This file wires the SSH probe and the checksum database check into the
// commands: the probers a runner gets, the targets the toolchain names, and
// where the checksum database's verified tree (and where its hosts were
// reached) is kept.

// withIntegrity gives runner the SSH prober and the checksum database
// checker. The checker reaches the proxy and the database as the go
// command would (the system roots, HTTPS_PROXY, Go's resolution of their
// names) and keeps in stateDir the verified trees and where it reached
// each host; an empty stateDir keeps none.
func withIntegrity(runner *check.Runner, cfg *config.Config, e env, stateDir string) *check.Runner {
	runner.SSH = &sshprobe.Prober{}
	runner.SumDB = &sumdb.Checker{Roots: cfg.SystemRoots, SystemStore: cfg.SystemStore, Proxy: proxyFromEnv(e.getenv)}
	if runner.DNS != nil {
		// A name the round also probes is looked up once for both; what
		// that lookup cannot decide alone still goes to Go's resolver,
		// and a host is dialed early where it was reached before
		// (check.DNS.DialFrom, sumdb.Reached).
		runner.SumDB.Dialer = runner.DNS
	}
	if stateDir != "" {
		runner.SumDB.Store = &sumdb.Store{Path: filepath.Join(stateDir, sumdb.StateFile)}
		runner.SumDB.Reached = &sumdb.Reached{Path: filepath.Join(stateDir, sumdb.ReachedFile)}
	}
	return runner
}

// goEnvTimeout bounds `go env`, where it still runs: a wedged toolchain
// must not hold up probing.
const goEnvTimeout = 5 * time.Second

// sumdbTargets is the checksum database target of cfg: the one
// checksum_database names, or with "auto" (and toolchain: auto) the one
// `go env GOSUMDB` names, reached through `go env GOPROXY` (both read as
// goEnv does, from the environment e describes). Problems are
// written to stderr; the check is then left out, never the round.
func sumdbTargets(ctx context.Context, e env, cfg *config.Config, withToolchain bool) []config.Target {
	gosumdb, goproxy := cfg.SumDB.GOSUMDB, cfg.SumDB.GOPROXY
	source := cfg.SumDB.Source
	auto := cfg.Toolchain && withToolchain
	if gosumdb == "off" || (gosumdb == "" && !auto) {
		return nil
	}
	if (gosumdb == "" || goproxy == "") && auto {
		envSumDB, envProxy, err := goEnv(ctx, toolchain.GoEnvOptions{Getenv: e.getenv}, toolchain.Exec)
		if err != nil {
			fmt.Fprintf(e.stderr, "mitmwatch: checksum database: %s\n", termsafe.String(err.Error()))
		}
		if gosumdb == "" {
			gosumdb, source = envSumDB, "go env GOSUMDB"
		}
		if goproxy == "" {
			goproxy = envProxy
		}
	}
	if gosumdb == "" {
		return nil // go is not installed: nothing here uses a checksum database
	}
	t, ok, err := config.SumDBTarget(cfg.SumDB, gosumdb, goproxy, source)
	if err != nil {
		fmt.Fprintf(e.stderr, "mitmwatch: checksum database: %s\n", termsafe.String(err.Error()))
	}
	if !ok {
		return nil
	}
	return []config.Target{t}
}

// goEnv returns GOSUMDB and GOPROXY as `go env` prints them: read from the
// environment and the go env files as the go command reads them, since
// starting go costs 10-20 ms of CPU, and from `go env GOSUMDB GOPROXY`
// (through run) only where those files cannot answer. o finds go and reads
// the environment and files. Without go installed both are empty and
// there is no error.
func goEnv(ctx context.Context, o toolchain.GoEnvOptions, run toolchain.Runner) (gosumdb, goproxy string, err error) {
	switch r := toolchain.ResolveGoEnv(o); {
	case r.Missing:
		return "", "", nil
	case r.Answered:
		sum, _ := r.Lookup("GOSUMDB")
		proxy, _ := r.Lookup("GOPROXY")
		// As the lines of go env's output were.
		return strings.TrimSpace(sum.Value), strings.TrimSpace(proxy.Value), nil
	}
	ctx, cancel := context.WithTimeout(ctx, goEnvTimeout)
	defer cancel()
	out, err := run(ctx, "go", "env", "GOSUMDB", "GOPROXY")
	if err != nil {
		if isNotFound(err) {
			return "", "", nil
		}
		return "", "", fmt.Errorf("go env GOSUMDB GOPROXY: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != 2 {
		return "", "", fmt.Errorf("go env GOSUMDB GOPROXY: %d lines of output, want 2", len(lines))
	}
	return strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1]), nil
}

// withAuditSSH adds the hosts the audit found the toolchain reaching over
// SSH (git remotes, insteadOf rewrites) as SSH targets.
func withAuditSSH(e env, targets []config.Target, a audit.Report) []config.Target {
	targets, bad := config.WithSSH(targets, a.SSHHosts())
	for _, err := range bad {
		fmt.Fprintf(e.stderr, "mitmwatch: audit: %s\n", termsafe.String(err.Error()))
	}
	return targets
}

// auditWithSumDB gives the audit's checksum database findings the result
// of the check, as the reason to turn it back on.
func auditWithSumDB(a *audit.Report, results []detector.Result) {
	if a == nil {
		return
	}
	for _, r := range results {
		if r.Obs.Protocol == detector.ProtocolSumDB {
			a.WithSumDB(r)
			return
		}
	}
}

// checkStateDir is where `check` keeps the checksum database's verified
// tree: mitmwatch's directory in the user's cache directory, read from the
// environment e describes. Empty when there is none.
func checkStateDir(getenv func(string) string) string {
	var dir string
	switch runtime.GOOS {
	case "windows":
		dir = getenv("LocalAppData")
	case "darwin", "ios":
		if h := getenv("HOME"); h != "" {
			dir = filepath.Join(h, "Library", "Caches")
		}
	default:
		dir = getenv("XDG_CACHE_HOME")
		if !filepath.IsAbs(dir) {
			dir = ""
			if h := getenv("HOME"); h != "" {
				dir = filepath.Join(h, ".cache")
			}
		}
	}
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "mitmwatch")
}

// isNotFound reports whether err says the binary is not installed.
func isNotFound(err error) bool { return errors.Is(err, exec.ErrNotFound) }

// selectProtocol reads the scheme of a --target: "ssh://" selects SSH
// targets only; without one, any target on the host.
func selectProtocol(name string) (string, detector.Protocol) {
	if rest, ok := strings.CutPrefix(strings.ToLower(name), "ssh://"); ok {
		return rest, detector.ProtocolSSH
	}
	return name, ""
}

// adHocTarget is a --target the configuration does not list: TLS on 443,
// or SSH on 22 when named with ssh://.
func adHocTarget(host string, port int, proto detector.Protocol) config.Target {
	if port == 0 {
		port = config.DefaultPort
		if proto == detector.ProtocolSSH {
			port = config.DefaultSSHPort
		}
	}
	return config.Target{Host: host, Port: port, Protocol: proto, Source: "--target"}
}
