package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mitmwatch/mitmwatch/detector"
)

// Options say how the terminal report is printed for the one reading it.
type Options struct {
	// Colour paints verdicts with ANSI codes: only on a terminal, and
	// never when NO_COLOR is set (the caller decides).
	Colour bool
	// Verbose prints the table of every target and one block per target,
	// byte for byte what the report printed before the brief form (-v).
	Verbose bool
	// Width is the terminal's width in columns; the brief form wraps its
	// lines to it. 0 does not wrap (a pipe, a file, a golden).
	Width int
}

// them stands for the hosts of a collapsed block where one host's text
// named its own host: "TLS to them is terminated by Zscaler".
const them = "each of them"

// problem is one block of the brief report: the targets whose failure is
// the same but for their names, the first of them standing for all.
type problem struct {
	results []detector.Result
	key     string
}

// Brief writes the report a person reads first: the one-line tally, then
// one block per problem, most severe first, each led by its fix and
// followed by its evidence. Targets that fail the same way (a laptop
// without DNS: every host unreachable with the same error) share one block
// listing their hosts. Plainly ok targets are one line at the end. Every
// text passes through termsafe.String, as in Table.
func Brief(w io.Writer, results []detector.Result, o Options) error {
	paint := painter(o.Colour)
	bw := &errWriter{w: w}
	fmt.Fprintln(bw, Summary(results))
	var ok []string
	for _, p := range problems(results) {
		first := p.results[0]
		v := first.Verdict
		head := paint(bold+colourOf(v), string(v))
		if len(p.results) == 1 {
			line := string(v) + " " + hostPort(first.Obs)
			if d := describe(first); d != "" {
				line += " (" + d + ")"
			}
			fmt.Fprintf(bw, "\n%s\n", strings.Replace(wrap(line, o.Width, "  "), string(v), head, 1))
		} else {
			hosts := make([]string, len(p.results))
			for i, r := range p.results {
				hosts[i] = hostPort(r.Obs)
			}
			line := fmt.Sprintf("%d hosts %s: %s", len(hosts), string(v), strings.Join(hosts, ", "))
			// Paint after wrapping: escape codes have no width.
			wrapped := wrap(line, o.Width, "  ")
			fmt.Fprintf(bw, "\n%s\n", strings.Replace(wrapped, string(v), head, 1))
		}
		host := first.Obs.Host
		text := func(s string) string {
			if len(p.results) > 1 && host != "" {
				if rest, ok := strings.CutPrefix(s, host); ok {
					s = "Each of them" + rest
				}
				s = strings.ReplaceAll(s, host, them)
			}
			return safe(s)
		}
		if first.Remediation != "" {
			fmt.Fprintln(bw, wrap("  fix: "+text(first.Remediation), o.Width, "    "))
		}
		for _, f := range first.Findings {
			tag := fmt.Sprintf("[%s]", f.Severity)
			line := wrap(fmt.Sprintf("  %s %s: %s", tag, safe(string(f.Reason)), text(f.Detail)), o.Width, "    ")
			fmt.Fprintln(bw, strings.Replace(line, tag, paint(grey, tag), 1))
		}
	}
	plain := slices.DeleteFunc(slices.Clone(results), isProblem)
	slices.SortStableFunc(plain, byName)
	for _, r := range plain {
		ok = append(ok, hostPort(r.Obs))
	}
	if len(ok) > 0 {
		line := wrap(fmt.Sprintf("%d ok: %s", len(ok), strings.Join(ok, ", ")), o.Width, "  ")
		fmt.Fprintf(bw, "\n%s\n", strings.Replace(line, "ok", paint(green, "ok"), 1))
	}
	fmt.Fprintln(bw, "\n(-v: the table of every target and each one's findings)")
	if bw.err != nil {
		return fmt.Errorf("writing report: %w", bw.err)
	}
	return nil
}

// describe is what the brief header says of one target beside its name:
// the product, a proxy path and where the target came from.
func describe(r detector.Result) string {
	var parts []string
	if r.Product != "" {
		parts = append(parts, safe(r.Product))
	}
	if r.Obs.Path.Kind == detector.PathProxy {
		parts = append(parts, safe(r.Obs.Path.String()))
	}
	if r.Source != "" {
		parts = append(parts, safe(r.Source))
	}
	return strings.Join(parts, ", ")
}

// isProblem says whether a target gets a block: a verdict other than ok,
// or an ok with a warning or worse (a changed CA, timing alone).
func isProblem(r detector.Result) bool {
	return r.Verdict != detector.OK || slices.ContainsFunc(r.Findings, func(f detector.Finding) bool { return f.Severity >= detector.Warning })
}

// severityClass orders blocks: what is in the way first, then a critical
// finding beside a clean verdict (an approved interceptor that re-signs
// broken certificates), then unreachable (inconclusive), inspected, and
// ok with warnings.
func severityClass(r detector.Result) int {
	switch {
	case r.Verdict.Detected():
		return 0
	case slices.ContainsFunc(r.Findings, func(f detector.Finding) bool { return f.Severity == detector.Critical }):
		return 1
	case r.Verdict == detector.Unreachable:
		return 2
	case r.Verdict == detector.Inspected:
		return 3
	}
	return 4
}

// problems groups the targets needing a block by their failure with the
// host's own name taken out, and orders the blocks by severity, then by
// the first host's name.
func problems(results []detector.Result) []problem {
	var out []problem
	index := map[string]int{}
	for _, r := range results {
		if !isProblem(r) {
			continue
		}
		k := sameness(r)
		if i, ok := index[k]; ok {
			out[i].results = append(out[i].results, r)
			continue
		}
		index[k] = len(out)
		out = append(out, problem{results: []detector.Result{r}, key: k})
	}
	for i := range out {
		slices.SortStableFunc(out[i].results, byName)
	}
	slices.SortStableFunc(out, func(a, b problem) int {
		x, y := a.results[0], b.results[0]
		return cmp.Or(cmp.Compare(severityClass(x), severityClass(y)),
			cmp.Compare(slices.Index(detector.Verdicts, x.Verdict), slices.Index(detector.Verdicts, y.Verdict)),
			byName(x, y))
	})
	return out
}

func byName(x, y detector.Result) int {
	return cmp.Or(cmp.Compare(x.Obs.Host, y.Obs.Host), cmp.Compare(x.Obs.Port, y.Obs.Port))
}

// sameness is what two targets must share to be told in one block: the
// verdict, product, path, findings and fix, with each one's host name
// replaced. Details that differ in anything else (an address, a timing)
// keep their blocks apart.
func sameness(r detector.Result) string {
	host := r.Obs.Host
	strip := func(s string) string {
		if host == "" {
			return s
		}
		return strings.ReplaceAll(s, host, "\x00")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x01%s\x01%s\x01%s\x01", r.Verdict, r.Product, r.Obs.Path.String(), strip(r.Remediation))
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s\x02%d\x02%s\x01", f.Reason, f.Severity, strip(f.Detail))
	}
	return b.String()
}

// wrap breaks s at spaces so that no line is wider than width columns,
// continuing with indent; a word longer than a line is left whole, never
// broken. width 0 (or too narrow to hold the indent) leaves s as it is.
func wrap(s string, width int, indent string) string {
	if width <= len(indent)+10 || utf8.RuneCountInString(s) <= width {
		return s
	}
	var b strings.Builder
	col := 0
	for i, word := range strings.Split(s, " ") {
		n := utf8.RuneCountInString(word)
		switch {
		case i == 0:
		case col+1+n > width && col > len(indent):
			b.WriteString("\n" + indent)
			col = len(indent)
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += n
	}
	return b.String()
}

func painter(colour bool) func(c, s string) string {
	return func(c, s string) string {
		if !colour {
			return s
		}
		return c + s + reset
	}
}

// errWriter keeps the first write error, so a report is written with
// plain Fprintf calls and checked once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
