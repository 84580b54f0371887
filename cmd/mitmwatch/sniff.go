//go:build !lean

package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/passive"
)

func registerSniff(app *kingpin.Application, ctx context.Context, e env, set func(int)) {
	var (
		iface     string
		cfgPath   string
		output    string
		ports     []uint16
		duration  time.Duration
		toolchain bool
		color     bool
		verbose   bool
	)
	cmd := app.Command("sniff", "Watch the TLS handshakes real clients make on an interface (filtered in the kernel: SYN, FIN, RST and the segments that start TLS handshake records) and, on Ctrl-C or after --duration, judge them as pcap does. Needs CAP_NET_RAW.")
	cmd.Flag("interface", "Interface to capture on.").Short('i').Required().StringVar(&iface)
	cmd.Flag("config", "rules.yaml for the trust stores and the hosts' expectations (located as check does).").
		Short('c').PlaceHolder("FILE").StringVar(&cfgPath)
	cmd.Flag("output", "Output format.").Short('o').Default("table").EnumVar(&output, "table", "json")
	cmd.Flag("port", "Server port whose connections to follow; repeatable. Default 443.").PlaceHolder("PORT").Uint16ListVar(&ports)
	cmd.Flag("duration", "Stop after this long (0: at Ctrl-C).").DurationVar(&duration)
	cmd.Flag("toolchain", "Add the expectations of the hosts the local toolchain uses, when the config says toolchain: auto.").Default("true").BoolVar(&toolchain)
	cmd.Flag("color", "Colour the verdicts when stdout is a terminal and NO_COLOR is unset; --no-color never does.").Default("true").BoolVar(&color)
	cmd.Flag("verbose", "Print the table of every host and one block per host, not the brief report.").Short('v').BoolVar(&verbose)
	cmd.Action(func(*kingpin.ParseContext) error {
		cfg, targets, err := loadConfig(ctx, e, cfgPath, toolchainSettings(e, toolchain))
		if err != nil {
			return &exitError{check.ExitUsage, err}
		}
		live, err := passive.OpenLive(iface, passive.LiveOptions{Ports: ports, HandshakeOnly: true})
		if err != nil {
			if errors.Is(err, passive.ErrNoCapability) {
				return &exitError{check.ExitUsage, err}
			}
			return &exitError{check.ExitUsage, fmt.Errorf("sniff: %w", err)}
		}
		defer live.Close()
		sctx := ctx
		if duration > 0 {
			var cancel context.CancelFunc
			sctx, cancel = context.WithTimeout(ctx, duration)
			defer cancel()
		}
		a := &passive.Analysis{PublicRoots: cfg.PublicRoots, SystemRoots: cfg.SystemRoots, Policy: cfg.Policy, Expect: config.ExpectFor(targets)}
		tr := passive.NewTracker(passive.Options{Ports: ports}, a.Add)
		if err := passive.Sniff(sctx, live, tr); err != nil {
			return &exitError{check.ExitUsage, fmt.Errorf("sniff: %w", err)}
		}
		if drops, err := live.Drops(); err == nil && drops > 0 {
			fmt.Fprintf(e.stderr, "mitmwatch: the kernel dropped %d packets: handshakes may be missing\n", drops)
		}
		return printCapture(e, output, e.reportOptions(color, verbose), judgeCapture(a.Capture(), cfg.Policy, tr.Stats()), set)
	})
}
