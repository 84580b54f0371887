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

// writeReport prints the measures beside the targets of the check issue.
func writeReport(w io.Writer, got map[string][]sample, blackholed []roundDoc, against string) {
	bare, check, black, off := got["bare"], got["check"], got["blackholed"], got["no-discovery"]
	bw, cw, kw, ow := spreadOf(figures(bare, wallMS)), spreadOf(figures(check, wallMS)), spreadOf(figures(black, wallMS)), spreadOf(figures(off, wallMS))
	bc, cc, oc := spreadOf(figures(bare, cpuPerHost)), spreadOf(figures(check, cpuPerHost)), spreadOf(figures(off, cpuPerHost))
	cr, br := spreadOf(figures(check, rssMB)), spreadOf(figures(bare, rssMB))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tmedian [min-max]\tratio\tissue's target")
	fmt.Fprintf(tw, "wall: bare, %d verified handshakes at once (ms)\t%v\t\t\n", len(hosts), bw)
	fmt.Fprintf(tw, "wall: check, default configuration (ms)\t%v\t%.2f x bare\t<= 1.3 (aim 1.1)\n", cw, cw.med/bw.med)
	fmt.Fprintf(tw, "wall: check, reference resolvers blackholed (ms)\t%v\t%.2f x check\t<= 1.3\n", kw, kw.med/cw.med)
	fmt.Fprintf(tw, "wall: check --no-toolchain --no-audit (ms)\t%v\t+%.0f%% with both on\t<= +10%%\n", ow, 100*(cw.med-ow.med)/ow.med)
	fmt.Fprintf(tw, "CPU per target: bare (ms)\t%v\t\t\n", bc)
	fmt.Fprintf(tw, "CPU per target: check (ms)\t%v\t%.2f x bare\t<= 1.5\n", cc, cc.med/bc.med)
	fmt.Fprintf(tw, "CPU per target: check --no-toolchain --no-audit (ms)\t%v\t%.2f x bare\t\n", oc, oc.med/bc.med)
	// wait4 reports the largest of the process and the children it
	// waited for (go env, git, npm): without discovery and audit it is
	// mitmwatch's own.
	fmt.Fprintf(tw, "peak RSS: check, or a tool it ran (MB)\t%v\t\t<= 40\n", cr)
	fmt.Fprintf(tw, "peak RSS: check --no-toolchain --no-audit (MB)\t%v\t\t\n", spreadOf(figures(off, rssMB)))
	fmt.Fprintf(tw, "peak RSS: bare (MB)\t%v\t\t\n", br)
	if a := got["against"]; len(a) > 0 {
		aw := spreadOf(figures(a, wallMS))
		fmt.Fprintf(tw, "against %s:\t\t\t\n", against)
		fmt.Fprintf(tw, "  wall: check, default configuration (ms)\t%v\t%.2f x bare\t\n", aw, aw.med/bw.med)
		fmt.Fprintf(tw, "  CPU per target: check (ms)\t%v\t%.2f x bare\t\n", spreadOf(figures(a, cpuPerHost)), median(figures(a, cpuPerHost))/bc.med)
		fmt.Fprintf(tw, "  peak RSS: check (MB)\t%v\t\t\n", spreadOf(figures(a, rssMB)))
	}
	tw.Flush()

	// What the blackholed rounds reported: the issue wants every target
	// judged after a bounded grace, carrying dns-unverified.
	verdicts := map[string]int{}
	var unverified []float64
	for _, d := range blackholed {
		for _, t := range d.Targets {
			verdicts[t.Verdict]++
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
