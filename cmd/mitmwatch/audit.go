package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mitmwatch/mitmwatch/audit"
	"github.com/mitmwatch/mitmwatch/check"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/report"
	"github.com/mitmwatch/mitmwatch/termsafe"
	"github.com/mitmwatch/mitmwatch/toolchain"
)

// registerAudit adds `mitmwatch audit`: the settings that turned the
// toolchain's protection off, and the hosts it fetches from.
func registerAudit(app *kingpin.Application, ctx context.Context, e env, set func(int)) {
	var (
		allUsers bool
		output   string
		color    bool
	)
	cmd := app.Command("audit", "Find the settings that turned the toolchain's protection off (GOINSECURE, GOSUMDB=off, git http.sslVerify=false, npm strict-ssl=false, NODE_TLS_REJECT_UNAUTHORIZED=0, pip trusted-host, Docker insecure-registries, ...), the roots trusted beyond the public set, and the hosts the tools fetch from. Exit 0: nothing critical; 1: a critical setting.")
	cmd.Flag("all-users", "Also read the system-wide files: /etc/gitconfig, the global npmrc, /etc/pip.conf, /etc/docker/daemon.json, the system CARGO_HOME. On by default when run as root.").
		Default(strconv.FormatBool(os.Geteuid() == 0)).BoolVar(&allUsers)
	cmd.Flag("output", "Output format.").Short('o').Default("table").EnumVar(&output, "table", "json")
	cmd.Flag("color", "Colour the severities when stdout is a terminal and NO_COLOR is unset; --no-color never does.").Default("true").BoolVar(&color)
	cmd.Action(func(*kingpin.ParseContext) error {
		r := audit.Run(ctx, auditOptions(e, allUsers))
		if r.Critical() {
			set(check.ExitDetected)
		}
		if output == "json" {
			if err := writeAuditJSON(e.stdout, r); err != nil {
				return &exitError{check.ExitUsage, fmt.Errorf("writing JSON: %w", err)}
			}
			return nil
		}
		for _, w := range r.Warnings {
			fmt.Fprintf(e.stderr, "mitmwatch: audit: %s\n", termsafe.String(w))
		}
		colour := color && e.stdoutTTY && e.getenv("NO_COLOR") == ""
		if err := writeAuditTable(e.stdout, r, colour); err != nil {
			return &exitError{check.ExitUsage, err}
		}
		return nil
	})
}

// auditSection starts the audit `check` reports in its audit section, and
// returns what it finds in two steps: the hosts and toolchain settings
// (whose hosts become probe targets) as soon as the audit has them, and
// the report once the trust stores are read too. Run as root, it reads the
// system-wide files too, as `audit` does.
func auditSection(ctx context.Context, e env) (hosts func() auditHosts, report func() audit.Report) {
	found := make(chan auditHosts, 1)
	done := make(chan audit.Report, 1)
	opts := auditOptions(e, os.Geteuid() == 0)
	opts.Hosts = func(r audit.Report) { found <- auditHosts{r.Hosts, r.Toolchain, r.Settings} }
	go func() { done <- audit.Run(ctx, opts) }()
	return sync.OnceValue(func() auditHosts { return <-found }), sync.OnceValue(func() audit.Report { return <-done })
}

// auditHosts is what the audit hands the probes before it is done.
type auditHosts struct {
	hosts    []audit.Host
	settings toolchain.Settings
	tools    []audit.Setting // what bears on each tool's TLS, for the tool inventory
}

// auditOptions audits the environment e describes, as the user running
// mitmwatch.
func auditOptions(e env, allUsers bool) audit.Options {
	return audit.Options{Getenv: e.getenv, AllUsers: allUsers}
}

// auditDocument is the JSON of `mitmwatch audit -o json`.
type auditDocument struct {
	SchemaVersion int          `json:"schema_version"`
	Audit         audit.Report `json:"audit"`
}

func writeAuditJSON(w io.Writer, r audit.Report) error {
	enc := json.NewEncoder(termsafe.JSONWriter(w))
	enc.SetIndent("", "  ")
	return enc.Encode(auditDocument{SchemaVersion: report.SchemaVersion, Audit: r})
}

// maxValueWidth keeps the table readable; the full value is in the JSON.
const maxValueWidth = 48

// writeAuditTable writes one row per finding, then why and fix for each,
// then the hosts. Every field passes through termsafe.String: values come
// from files and tools, a root's subject from a certificate.
func writeAuditTable(w io.Writer, r audit.Report, colour bool) error {
	safe := termsafe.String
	paint := func(s detector.Severity, text string) string {
		if !colour {
			return text
		}
		c := "\x1b[90m"
		switch s {
		case detector.Critical:
			c = "\x1b[31m"
		case detector.Warning:
			c = "\x1b[33m"
		}
		return c + text + "\x1b[0m"
	}
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "No setting weakens the toolchain's protection.")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tTOOL\tSETTING\tVALUE\tSOURCE")
		for _, f := range r.Findings {
			// Pad before colouring so escape codes do not upset the columns.
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", paint(f.Severity, fmt.Sprintf("%-8s", f.Severity)), safe(f.Tool), safe(f.Setting),
				safe(shorten(f.Value, maxValueWidth)), safe(f.Source))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("writing table: %w", err)
		}
		for _, f := range r.Findings {
			fmt.Fprintf(w, "\n%s %s %s (%s)\n", paint(f.Severity, f.Severity.String()), safe(f.Tool), safe(f.Setting), safe(f.Source))
			if f.Root != nil {
				fmt.Fprintf(w, "  root: %s, SPKI %s", safe(f.Root.Subject), f.Root.SPKI)
				if f.Root.Product != "" {
					fmt.Fprintf(w, ", %s", safe(f.Root.Product))
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "  why: %s\n  fix: %s\n", safe(f.Why), safe(f.Fix))
		}
	}
	if len(r.Hosts) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tSCHEME\tSOURCE")
		for _, h := range r.Hosts {
			fmt.Fprintf(tw, "%s:%d\t%s\t%s\n", safe(h.Host), h.Port, safe(h.Scheme), safe(h.Source))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("writing table: %w", err)
		}
	}
	return nil
}

// shorten cuts s to n runes, marking the cut, and keeps it on one line.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
