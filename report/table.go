package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/termsafe"
)

// ANSI colours for verdicts; used only when the caller says the output is
// a terminal and NO_COLOR is unset.
const (
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	green  = "\x1b[32m"
	grey   = "\x1b[90m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

func colourOf(v detector.Verdict) string {
	switch v {
	case detector.OK:
		return green
	case detector.Inspected, detector.Unreachable:
		return yellow
	}
	return red
}

// Table writes one row per target, then the findings and the fix for every
// target that is not plainly ok. Every field of text passes through
// termsafe.String: names, ALPN, error texts and findings' details carry
// what a server or a certificate said.
func Table(w io.Writer, results []detector.Result, colour bool) error {
	paint := func(c, s string) string {
		if !colour {
			return s
		}
		return c + s + reset
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tVERDICT\tPRODUCT\tPATH\tTLS\tISSUER")
	for _, r := range results {
		o := r.Obs
		tlsCol, issuer := "-", "-"
		if st := o.TLS; st != nil {
			tlsCol = detector.VersionName(st.Version)
			if st.ALPN != "" {
				tlsCol += " " + st.ALPN
			}
			if len(st.Chain) > 0 {
				issuer = issuerName(st)
			}
		} else if o.Failure != detector.FailureNone {
			tlsCol = string(o.Failure)
		}
		if o.Protocol != detector.ProtocolTLS {
			tlsCol, issuer = integrityColumns(o)
		}
		// Pad before colouring so escape codes do not upset the columns.
		verdict := fmt.Sprintf("%-17s", r.Verdict)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", hostPort(o), paint(colourOf(r.Verdict), verdict),
			safe(dash(r.Product)), safe(o.Path.String()), safe(tlsCol), safe(issuer))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	for _, r := range results {
		if r.Verdict == detector.OK && len(r.Findings) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s %s (%s)\n", paint(bold+colourOf(r.Verdict), string(r.Verdict)), hostPort(r.Obs), safe(r.Source))
		for _, f := range r.Findings {
			fmt.Fprintf(w, "  %s %s: %s\n", paint(grey, fmt.Sprintf("[%s]", f.Severity)), safe(string(f.Reason)), safe(f.Detail))
		}
		if r.Remediation != "" {
			fmt.Fprintf(w, "  fix: %s\n", safe(r.Remediation))
		}
	}
	return nil
}

// Summary is the tally printed under the table. When some target's DNS
// answer could not be cross-checked (no reference resolver answered), a
// second line says so: no DNS finding must not read as a clean bill.
func Summary(results []detector.Result) string {
	counts := map[detector.Verdict]int{}
	unverified := 0
	for _, r := range results {
		counts[r.Verdict]++
		if slices.ContainsFunc(r.Findings, func(f detector.Finding) bool { return f.Reason == detector.ReasonDNSUnverified }) {
			unverified++
		}
	}
	var parts []string
	for _, v := range detector.Verdicts {
		if n := counts[v]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, v))
		}
	}
	noun := "targets"
	if len(results) == 1 {
		noun = "target"
	}
	s := fmt.Sprintf("%d %s: %s", len(results), noun, strings.Join(parts, ", "))
	if unverified > 0 {
		s += fmt.Sprintf("\nDNS was not cross-checked for %d of them: no reference resolver answered (%s)", unverified, detector.ReasonDNSUnverified)
	}
	return s
}

// safe is termsafe.String: every field of a table goes through it.
func safe(s string) string { return termsafe.String(s) }

// hostPort is a target's host (a captured SNI name among them) and port,
// an IPv6 literal in brackets ([::1]:443).
func hostPort(o detector.Observation) string { return safe(o.Key()) }

// issuerName is the issuer's display name cut to 40 characters (cut
// between characters: a cut inside one would print half of it).
func issuerName(st *detector.TLSState) string {
	name := detector.IssuerName(st)
	if r := []rune(name); len(r) > 40 {
		name = string(r[:40]) + "…"
	}
	return dash(name)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
