//go:build !lean

package main

import (
	"context"
	"fmt"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/passive"
	"github.com/mitmwatch/mitmwatch/report"
)

func registerPcap(app *kingpin.Application, ctx context.Context, e env, set func(int)) {
	var (
		file      string
		cfgPath   string
		output    string
		ports     []uint16
		anyPort   bool
		toolchain bool
		color     bool
		verbose   bool
	)
	cmd := app.Command("pcap", "Judge the TLS handshakes in a saved capture (pcap or pcapng, e.g. from tcpdump -w) as check judges its probes: what real clients met, including the chain for TLS 1.2 and below (TLS 1.3 encrypts it). Exit codes as check's; 3 also when the capture holds no handshake.")
	cmd.Arg("file", "The capture file.").Required().StringVar(&file)
	cmd.Flag("config", "rules.yaml for the trust stores and the hosts' expectations (located as check does).").
		Short('c').PlaceHolder("FILE").StringVar(&cfgPath)
	cmd.Flag("output", "Output format.").Short('o').Default("table").EnumVar(&output, "table", "json")
	cmd.Flag("port", "Server port whose connections to follow; repeatable. Default 443.").PlaceHolder("PORT").Uint16ListVar(&ports)
	cmd.Flag("any-port", "Follow every connection whose client speaks TLS (or CONNECT) first, whatever the port.").BoolVar(&anyPort)
	cmd.Flag("toolchain", "Add the expectations of the hosts the local toolchain uses, when the config says toolchain: auto.").Default("true").BoolVar(&toolchain)
	cmd.Flag("color", "Colour the verdicts when stdout is a terminal and NO_COLOR is unset; --no-color never does.").Default("true").BoolVar(&color)
	cmd.Flag("verbose", "Print the table of every host and one block per host, not the brief report.").Short('v').BoolVar(&verbose)
	cmd.Action(func(*kingpin.ParseContext) error {
		cfg, targets, err := loadConfig(ctx, e, cfgPath, toolchainSettings(e, toolchain))
		if err != nil {
			return &exitError{check.ExitUsage, err}
		}
		a := &passive.Analysis{PublicRoots: cfg.PublicRoots, SystemRoots: cfg.SystemRoots, Policy: cfg.Policy, Expect: config.ExpectFor(targets)}
		tr := passive.NewTracker(passive.Options{Ports: ports, AnyPort: anyPort}, a.Add)
		if err := passive.ReadFile(ctx, file, tr); err != nil {
			return &exitError{check.ExitUsage, fmt.Errorf("pcap: %w", err)}
		}
		return printCapture(e, output, e.reportOptions(color, verbose), judgeCapture(a.Capture(), cfg.Policy, tr.Stats()), set)
	})
}

// judgeCapture judges a capture's cases as check judges its targets.
func judgeCapture(c passive.Capture, pol detector.Policy, stats passive.Stats) report.Capture {
	return report.Capture{Capture: c, Judged: detector.Judge(c.Cases(), pol, c.At), Stats: stats}
}

// printCapture sets the exit code from the hosts the capture judged (none
// is inconclusive) and prints the report.
func printCapture(e env, output string, o report.Options, rc report.Capture, set func(int)) error {
	hosts := rc.Hosts()
	code := check.ExitCode(hosts)
	if len(hosts) == 0 {
		code = check.ExitInconclusive
	}
	set(code)
	if output == "json" {
		if err := report.CaptureJSON(e.stdout, rc); err != nil {
			return &exitError{check.ExitUsage, fmt.Errorf("writing JSON: %w", err)}
		}
		return nil
	}
	if err := report.CaptureReport(e.stdout, rc, o); err != nil {
		return &exitError{check.ExitUsage, err}
	}
	return nil
}
