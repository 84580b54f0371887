package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/scenario"
)

func registerDemo(app *kingpin.Application, ctx context.Context, e env, set func(int)) {
	var (
		output  string
		timeout time.Duration
		color   bool
	)
	cmd := app.Command("demo", "Start a lab on loopback — a genuine origin, a real intercepting proxy (goproxy), a downgrading interceptor, plain-HTTP responders, a captive portal, a black hole — and check every scenario, so you can see each verdict without a middlebox at hand. Nothing leaves this machine.")
	cmd.Flag("output", "Output format.").Short('o').Default("table").EnumVar(&output, "table", "json")
	cmd.Flag("timeout", "Time allowed per target (the black hole takes all of it).").Default("2s").DurationVar(&timeout)
	cmd.Flag("color", "Colour the verdicts when stdout is a terminal and NO_COLOR is unset.").Default("true").BoolVar(&color)
	cmd.Action(func(*kingpin.ParseContext) error {
		results, err := runDemo(ctx, timeout)
		if err != nil {
			return &exitError{check.ExitUsage, err}
		}
		colour := color && e.stdoutTTY && e.getenv("NO_COLOR") == ""
		// The demo shows detections on purpose; it succeeds when it ran.
		set(check.ExitClean)
		return printResults(e, output, results, colour)
	})
}

// runDemo runs every lab scenario concurrently and returns the results in
// catalogue order.
func runDemo(ctx context.Context, timeout time.Duration) ([]detector.Result, error) {
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
