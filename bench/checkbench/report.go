//go:build linux

package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// spread is a median with the extremes it came from.
type spread struct{ med, min, max float64 }

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	return spread{median(xs), slices.Min(xs), slices.Max(xs)}
}

func (s spread) String() string {
	return fmt.Sprintf("%.1f [%.1f-%.1f]", s.med, s.min, s.max)
}

// median of xs, the upper middle one of an even count; xs is left as is.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// figures turns samples into one measure per run.
func figures(ss []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

func wallMS(s sample) float64     { return msOf(s.wall) }
func cpuPerHost(s sample) float64 { return msOf(s.cpu) / float64(len(hosts)) }
func rssMB(s sample) float64      { return float64(s.maxRSS) / (1 << 20) }

// ratio is the median over rounds of f(a)/f(b) within each round: under
// a load that changes between rounds, the programs of one round met the
// same load.
func ratio(a, b []sample, f func(sample) float64) float64 {
	n := min(len(a), len(b))
	if n == 0 {
		return 0
	}
	rs := make([]float64, n)
	for i := range n {
		rs[i] = f(a[i]) / f(b[i])
	}
	return median(rs)
}

// writeReport prints the measures beside the targets of the check issue.
func writeReport(w io.Writer, got map[string][]sample, blackholed []roundDoc, against string) {
	bare, check, black, off, offAll := got["bare"], got["check"], got["blackholed"], got["no-discovery"], got["no-discovery-no-sumdb"]
	row := func(tw io.Writer, name string, ss []sample, f func(sample) float64, rel, target string) {
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\n", name, spreadOf(figures(ss, f)), rel, target)
	}
	times := func(a, b []sample, f func(sample) float64, of string) string {
		return fmt.Sprintf("%.2f x %s", ratio(a, b, f), of)
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tmedian [min-max]\tratio (median of the rounds')\tissue's target")
	row(tw, fmt.Sprintf("wall: bare, %d verified handshakes at once (ms)", len(hosts)), bare, wallMS, "", "")
	row(tw, "wall: check, default configuration (ms)", check, wallMS, times(check, bare, wallMS, "bare"), "<= 1.3 (aim 1.1)")
	row(tw, "wall: check, reference resolvers blackholed (ms)", black, wallMS, times(black, check, wallMS, "check"), "<= 1.3")
	row(tw, "wall: check --no-toolchain --no-audit, same targets (ms)", off, wallMS,
		fmt.Sprintf("%+.0f%% with both on", 100*(ratio(check, off, wallMS)-1)), "<= +10%")
	row(tw, "wall: the same, without the database discovery adds (ms)", offAll, wallMS,
		fmt.Sprintf("%+.0f%% with both on", 100*(ratio(check, offAll, wallMS)-1)), "")
	row(tw, "CPU per target: bare (ms)", bare, cpuPerHost, "", "")
	row(tw, "CPU per target: check (ms)", check, cpuPerHost, times(check, bare, cpuPerHost, "bare"), "<= 1.5")
	row(tw, "CPU per target: check --no-toolchain --no-audit, same targets (ms)", off, cpuPerHost, times(off, bare, cpuPerHost, "bare"), "")
	// wait4 reports the largest of the process and the children it
	// waited for (go env, git, npm): without discovery and audit it is
	// mitmwatch's own.
	row(tw, "peak RSS: check, or a tool it ran (MB)", check, rssMB, "", "<= 40")
	row(tw, "peak RSS: check --no-toolchain --no-audit, same targets (MB)", off, rssMB, "", "")
	row(tw, "peak RSS: bare (MB)", bare, rssMB, "", "")
	if a := got["against"]; len(a) > 0 {
		fmt.Fprintf(tw, "against %s:\t\t\t\n", against)
		row(tw, "  wall: check, default configuration (ms)", a, wallMS, times(a, bare, wallMS, "bare"), "")
		row(tw, "  CPU per target: check (ms)", a, cpuPerHost, times(a, bare, cpuPerHost, "bare"), "")
		row(tw, "  peak RSS: check, or a tool it ran (MB)", a, rssMB, "", "")
	}
	tw.Flush()

	// What the blackholed rounds reported: the issue wants every target
	// judged after a bounded grace, carrying dns-unverified.
	verdicts := map[string]int{}
	var unverified []float64
	for _, d := range blackholed {
		for _, t := range d.Targets {
			if t.Protocol == "" { // the hosts; the checksum database is judged without DNS
				verdicts[t.Verdict]++
			}
		}
		unverified = append(unverified, float64(d.withReason("dns-unverified")))
	}
	var vs []string
	for v, n := range verdicts {
		vs = append(vs, fmt.Sprintf("%s %d", v, n))
	}
	slices.Sort(vs)
	fmt.Fprintf(w, "\nreferences blackholed: verdicts over %d rounds: %s; targets with dns-unverified per round: %v of %d\n",
		len(blackholed), strings.Join(vs, ", "), spreadOf(unverified), len(hosts))
}
