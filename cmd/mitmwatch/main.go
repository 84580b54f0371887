// Command mitmwatch finds and names the middleboxes between a build machine
// and the registries and Git hosts its builds depend on: TLS interception,
// downgrades, plain HTTP on the TLS port, captive portals and blocks.
//
// `mitmwatch check` probes every target once and prints a verdict per host;
// its exit code makes it a CI gate. See `mitmwatch --help`.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/config"
	"github.com/mitmwatch/mitmwatch/report"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// env is the process environment the commands read; tests supply their own.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	stdoutTTY      bool
	stderrTTY      bool
	// stdoutWidth is the terminal's width in columns; 0 does not wrap.
	stdoutWidth int
	// onListen, when set, is told the service's bound listeners (tests
	// listen on port 0 and need the port).
	onListen func([]net.Listener)
	// rangesFile is the provider ranges snapshot a config without
	// ranges_file reads, if it exists: config.DefaultRangesFile, where
	// `mitmwatch ranges update` writes it. Tests leave it empty.
	rangesFile string
	// setProcs sets the process's GOMAXPROCS (check's checkProcs); nil
	// leaves it alone, as tests running commands side by side in one
	// process must.
	setProcs func(int)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{
		stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv,
		stdoutTTY: isTerminal(os.Stdout), stderrTTY: isTerminal(os.Stderr),
		stdoutWidth: termWidth(os.Stdout, os.Getenv),
		rangesFile:  config.DefaultRangesFile,
		setProcs:    func(n int) { runtime.GOMAXPROCS(n) },
	})
	stop()
	os.Exit(code)
}

// reportOptions is how a terminal report is printed: coloured only on a
// terminal with NO_COLOR unset and --color left on, wrapped to the
// terminal's width, brief unless verbose.
func (e env) reportOptions(color, verbose bool) report.Options {
	return report.Options{Colour: color && e.stdoutTTY && e.getenv("NO_COLOR") == "", Verbose: verbose, Width: e.stdoutWidth}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// exitError carries an exit code through kingpin's actions.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// terminate is how kingpin's --help and --version stop run without
// exiting the process (tests call run in-process).
type terminate struct{ code int }

// run parses args and runs one command, returning the process exit code.
func run(ctx context.Context, args []string, e env) (code int) {
	if code, ok := handOver(args, e); ok {
		return code
	}
	defer func() {
		if r := recover(); r != nil {
			t, ok := r.(terminate)
			if !ok {
				panic(r)
			}
			code = t.code
		}
	}()
	app := kingpin.New("mitmwatch", "Find and name the middleboxes (TLS interception, downgrades, plain HTTP, captive portals, blocks) between this machine and the hosts its builds depend on.")
	app.UsageWriter(e.stderr)
	app.ErrorWriter(e.stderr)
	app.Terminate(func(c int) { panic(terminate{c}) })
	app.HelpFlag.Short('h')

	code = check.ExitClean
	set := func(c int) { code = c }
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	registerCheck(app, ctx, e, set)
	registerBaseline(app, ctx, e, set)
	registerValidate(app, e, set)
	registerRanges(app, ctx, e, set)
	registerAudit(app, ctx, e, set)
	registerAgent(app, ctx, e, set)
	app.Command("version", "Print the version, and the commit and date it was built from.").Action(func(*kingpin.ParseContext) error {
		fmt.Fprint(e.stdout, currentBuild())
		return nil
	})

	if len(args) == 0 {
		app.Usage(nil)
		return check.ExitUsage
	}
	if _, err := app.Parse(args); err != nil {
		if ee, ok := err.(*exitError); ok {
			logger.Error(ee.err.Error())
			return ee.code
		}
		fmt.Fprintf(e.stderr, "mitmwatch: %v (see --help)\n", err)
		return check.ExitUsage
	}
	return code
}
