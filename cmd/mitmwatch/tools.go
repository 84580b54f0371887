package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mitmwatch/mitmwatch/audit"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/toolchain"
	"github.com/mitmwatch/mitmwatch/tools"
)

// toolFlags are check's flags for the build tools' section.
type toolFlags struct {
	names   []string
	writeCA string
	only    []tools.Name // names, parsed
}

func (f *toolFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("tool", "Say what this build tool (go, git, npm, pip, cargo, docker) will do on this path, and probe only the hosts it uses; repeatable.").
		PlaceHolder("NAME").HintOptions(toolNames()...).StringsVar(&f.names)
	cmd.Flag("write-ca", "Write the CAs the tools' fixes install (approved or already in the system store) to FILE as PEM, and name FILE in the fixes.").
		PlaceHolder("FILE").StringVar(&f.writeCA)
}

func toolNames() []string {
	var out []string
	for _, n := range tools.Names {
		out = append(out, string(n))
	}
	return out
}

// parse checks the tool names; an unknown one is a usage error.
func (f *toolFlags) parse() error {
	for _, s := range f.names {
		n, err := tools.ParseName(s)
		if err != nil {
			return &exitError{2, fmt.Errorf("--tool: %w", err)}
		}
		f.only = append(f.only, n)
	}
	return nil
}

// discoverTools reads what each tool verifies with, from the audit's
// reading of their settings and from the tools themselves, run in this
// environment.
func discoverTools(ctx context.Context, e env, a audit.Report, only []tools.Name) tools.Inventory {
	return tools.Discover(ctx, tools.Options{Settings: a.Settings, Getenv: e.getenv, Env: toolEnv(e), Only: only})
}

// toolEnv is this process's environment with the variables that locate a
// user's configuration taken from e, so that the tools asked read the same
// files the audit read.
func toolEnv(e env) []string {
	over := map[string]bool{}
	var out []string
	for _, k := range []string{"HOME", "XDG_CONFIG_HOME"} {
		if v := e.getenv(k); v != "" {
			over[k] = true
			out = append(out, k+"="+v)
		}
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !over[k] {
			out = append(out, kv)
		}
	}
	return out
}

// withToolHosts adds the hosts the tools' configurations name to the
// targets; with --tool, it keeps only the targets those tools use.
func withToolHosts(targets []config.Target, inv tools.Inventory, only []tools.Name) ([]config.Target, []error) {
	var hosts []toolchain.Host
	for _, t := range inv.Tools {
		for _, h := range t.Hosts {
			hosts = append(hosts, toolchain.Host{Host: h.Host, Port: h.Port, Source: string(t.Name) + ": " + h.Source})
		}
	}
	out, errs := config.WithToolchain(targets, hosts)
	if len(only) == 0 {
		return out, errs
	}
	var kept []config.Target
	for _, tg := range out {
		for _, t := range inv.Tools {
			if _, ok := t.Uses(tg.Host, tg.Port); ok {
				kept = append(kept, tg)
				break
			}
		}
	}
	return kept, errs
}

// forecastTools predicts each tool's outcome for the judged targets it
// uses, and writes the CAs the fixes install when --write-ca asks.
func forecastTools(e env, f toolFlags, inv tools.Inventory, results []detector.Result, pol detector.Policy) []tools.Forecast {
	fs := tools.PredictAll(inv.Tools, results, inv.Context(time.Now(), pol.ApprovedInspection, f.writeCA))
	if f.writeCA != "" {
		cas := tools.CAs(tools.Predictions(fs))
		if err := tools.WriteCAs(f.writeCA, cas); err != nil {
			fmt.Fprintf(e.stderr, "mitmwatch: --write-ca %s: %v\n", f.writeCA, err)
		} else {
			fmt.Fprintf(e.stderr, "mitmwatch: wrote %d CA certificate(s) to %s\n", len(cas), f.writeCA)
		}
	}
	return fs
}

// inventoryOf asks the build tools what they verify with, in the
// background as soon as the audit has read their settings (while it still
// reads the trust stores), and returns the answer when asked.
func inventoryOf(ctx context.Context, e env, found func() auditHosts, only []tools.Name) func() tools.Inventory {
	done := make(chan tools.Inventory, 1)
	go func() { done <- discoverTools(ctx, e, audit.Report{Settings: found().tools}, only) }()
	return sync.OnceValue(func() tools.Inventory { return <-done })
}
