package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/grade"
)

// Interceptor is one graded interceptor in the JSON report's top-level
// "interceptors" list: who it is (its CA's key and the path), the targets
// behind it, its grade and every check with its evidence.
type Interceptor struct {
	CASPKI   string            `json:"ca_spki_sha256"`
	CA       string            `json:"ca"` // the CA's subject, as the certificate says
	Path     detector.PathKind `json:"path"`
	Proxy    string            `json:"proxy,omitempty"`
	Product  string            `json:"product,omitempty"`
	Approved bool              `json:"approved"`
	Targets  []string          `json:"targets"`
	Grade    grade.Grade       `json:"grade"`
	Checks   []grade.Check     `json:"checks"`
}

// Interceptors turns graded interceptors into the report's list; nil when
// nothing was graded, so the key stays out of a report of a path nothing
// intercepts.
func Interceptors(ics []grade.Interceptor) []Interceptor {
	if len(ics) == 0 {
		return nil
	}
	out := make([]Interceptor, len(ics))
	for i, ic := range ics {
		out[i] = Interceptor{
			CASPKI: ic.SPKI.String(), CA: ic.CA.Subject.String(),
			Path: ic.Path.Kind, Proxy: ic.Path.Proxy, Product: ic.Product, Approved: ic.Approved,
			Targets: append([]string{}, ic.Targets...), Grade: ic.Grade, Checks: append([]grade.Check{}, ic.Checks...),
		}
	}
	return out
}

func colourOfGrade(g grade.Grade) string {
	switch g {
	case grade.A:
		return green
	case grade.F:
		return red
	}
	return yellow
}

// InterceptorTable writes the graded interceptors under the targets' table:
// one heading per interceptor, then its checks. Names and details come
// from certificates and error pages and go through termsafe.
func InterceptorTable(w io.Writer, ics []grade.Interceptor, colour bool) error {
	if len(ics) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nInterceptors on these paths, graded with handshakes through them (A best, F re-signs invalid certificates):")
	for _, ic := range ics {
		g := string(ic.Grade)
		if colour {
			g = bold + colourOfGrade(ic.Grade) + g + reset
		}
		var about []string
		if ic.Product != "" {
			about = append(about, safe(ic.Product))
		}
		if ic.Approved {
			about = append(about, "approved")
		}
		behind := "no target"
		if len(ic.Targets) > 0 {
			behind = safe(strings.Join(ic.Targets, ", "))
		}
		fmt.Fprintf(w, "\n%s CA \"%s\" (SPKI %s) on %s", g, safe(ic.CA.Subject.CommonName), ic.SPKI, safe(ic.Path.String()))
		if len(about) > 0 {
			fmt.Fprintf(w, " [%s]", strings.Join(about, ", "))
		}
		fmt.Fprintf(w, ", behind %s\n", behind)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, c := range ic.Checks {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", safe(c.Name), c.Result, safe(c.Detail))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("writing interceptors: %w", err)
		}
	}
	return nil
}
