// Command mitmwatch-demo shows every verdict mitmwatch can reach without a
// middlebox at hand: it starts the in-process lab on loopback (a genuine
// origin, a real third-party intercepting proxy, forgers, a downgrading
// interceptor, plain-HTTP responders, a captive portal, a lying resolver, a
// black hole) and checks every scenario through the real probe → classify
// → output path.
//
// It is a command of its own so that the mitmwatch binary shipped to build
// agents links none of the lab: no MITM proxy library, no CA forger, no
// lying DNS server.
//
//	go run ./cmd/mitmwatch-demo [-o table|json] [--timeout 2s] [--no-color]
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/report"
	"github.com/mitmwatch/mitmwatch/scenario"
)

// env is the process environment the command reads; tests supply their own.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	stdoutTTY      bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, stdoutTTY: isTerminal(os.Stdout)})
	stop()
	os.Exit(code)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// terminate is how kingpin's --help stops run without exiting the process
// (tests call run in-process).
type terminate struct{ code int }

// run parses args, runs the lab and prints its results, returning the exit
// code: 0 when the demo ran (it shows detections on purpose), 2 otherwise.
func run(ctx context.Context, args []string, e env) (code int) {
	defer func() {
		if r := recover(); r != nil {
			t, ok := r.(terminate)
			if !ok {
				panic(r)
			}
			code = t.code
		}
	}()
	var (
		output  string
		timeout time.Duration
		color   bool
	)
	app := kingpin.New("mitmwatch-demo", "Start a lab on loopback — a genuine origin, a real intercepting proxy (goproxy), a downgrading interceptor, plain-HTTP responders, a captive portal, a black hole — and check every scenario, so you can see each verdict without a middlebox at hand. Nothing leaves this machine.")
	app.UsageWriter(e.stderr)
	app.ErrorWriter(e.stderr)
	app.Terminate(func(c int) { panic(terminate{c}) })
	app.HelpFlag.Short('h')
	app.Flag("output", "Output format.").Short('o').Default("table").EnumVar(&output, "table", "json")
	app.Flag("timeout", "Time allowed per target (the black hole takes all of it).").Default("2s").DurationVar(&timeout)
	app.Flag("color", "Colour the verdicts when stdout is a terminal and NO_COLOR is unset.").Default("true").BoolVar(&color)
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(e.stderr, "mitmwatch-demo: %v (see --help)\n", err)
		return check.ExitUsage
	}

	results, err := runLab(ctx, timeout)
	if err != nil {
		fmt.Fprintf(e.stderr, "mitmwatch-demo: %v\n", err)
		return check.ExitUsage
	}
	if output == "json" {
		if err := report.Build(results).Write(e.stdout); err != nil {
			fmt.Fprintf(e.stderr, "mitmwatch-demo: writing JSON: %v\n", err)
			return check.ExitUsage
		}
		return check.ExitClean
	}
	colour := color && e.stdoutTTY && e.getenv("NO_COLOR") == ""
	if err := report.Table(e.stdout, results, colour); err != nil {
		fmt.Fprintf(e.stderr, "mitmwatch-demo: %v\n", err)
		return check.ExitUsage
	}
	fmt.Fprintf(e.stdout, "\n%s\n", report.Summary(results))
	return check.ExitClean
}

// runLab runs every lab scenario concurrently and returns the results in
// catalogue order.
func runLab(ctx context.Context, timeout time.Duration) ([]detector.Result, error) {
	env, err := scenario.NewEnv(scenario.Options{})
	if err != nil {
		return nil, err
	}
	defer env.Close()
	all := scenario.All()
	per := make([][]detector.Result, len(all))
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, s := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			per[i], errs[i] = env.Run(ctx, s, timeout)
		}()
	}
	wg.Wait()
	var out []detector.Result
	for i := range all {
		if errs[i] != nil {
			return nil, fmt.Errorf("demo: %w", errs[i])
		}
		out = append(out, per[i]...)
	}
	return out, nil
}
