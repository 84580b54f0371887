package report

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mitmwatch/mitmwatch/termsafe"
	"github.com/mitmwatch/mitmwatch/tools"
)

// Tool is one build tool's entry in the JSON report: what its
// configuration says about TLS, and what it will do with each host it
// fetches from.
type Tool struct {
	Tool      tools.Name `json:"tool"`
	Version   string     `json:"version,omitempty"` // empty: not installed, predicted from its configuration
	Installed bool       `json:"installed"`
	Store     string     `json:"store"`           // the roots it verifies with
	Proxy     string     `json:"proxy,omitempty"` // credentials redacted
	// Verification is "on", or "off" with the setting that turns it off
	// for every host (per-host switches show in the targets).
	Verification string       `json:"verification"`
	Notes        []string     `json:"notes,omitempty"`
	Targets      []ToolTarget `json:"targets"`
}

// ToolTarget is one tool's predicted outcome for one host.
type ToolTarget struct {
	Host    string        `json:"host"`
	Port    int           `json:"port"`
	Source  string        `json:"source,omitempty"` // what makes the tool use the host
	Outcome tools.Outcome `json:"outcome"`
	Store   string        `json:"store,omitempty"` // the store that decided, when not the tool's own
	Error   string        `json:"error,omitempty"` // what the tool prints
	Fix     string        `json:"fix,omitempty"`   // the change that works with verification on
	Note    string        `json:"note,omitempty"`
}

// BuildTools turns forecasts into the JSON report's "tools" list.
func BuildTools(fs []tools.Forecast) []Tool {
	out := make([]Tool, 0, len(fs))
	for _, f := range fs {
		t := f.Tool
		e := Tool{Tool: t.Name, Version: t.Version, Installed: t.Installed(), Store: t.Store.Description,
			Verification: verification(t), Notes: t.Notes, Targets: []ToolTarget{}}
		if t.Proxy != nil {
			e.Proxy = t.Proxy.Value + " (" + t.Proxy.Source + ")"
		}
		for _, p := range f.Predictions {
			tt := ToolTarget{Host: p.Host.Host, Port: p.Host.Port, Source: p.Host.Source, Outcome: p.Outcome,
				Error: p.Error, Fix: p.Fix, Note: p.Note}
			if p.Store != t.Store.Description {
				tt.Store = p.Store
			}
			e.Targets = append(e.Targets, tt)
		}
		out = append(out, e)
	}
	return out
}

func verification(t tools.Tool) string {
	if t.Verify != nil {
		return "off: " + t.Verify.String()
	}
	return "on"
}

func outcomeColour(o tools.Outcome) string {
	switch o {
	case tools.Verifies:
		return green
	case tools.Unreachable:
		return yellow
	}
	return red
}

// ToolsTable writes what each build tool will do on this path: the tools
// and their stores, one row per tool and host, then the error and the fix
// of every host a tool will not verify. Text that came from the network
// (names in certificates, which errors and fixes quote) is escaped.
func ToolsTable(w io.Writer, fs []tools.Forecast, colour bool) error {
	paint := func(c, s string) string {
		if !colour {
			return s
		}
		return c + s + reset
	}
	if len(fs) == 0 {
		_, err := fmt.Fprintln(w, "No build tool found on this machine.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tVERSION\tSTORE\tPROXY\tVERIFICATION")
	for _, f := range fs {
		t := f.Tool
		version := t.Version
		if version == "" {
			version = "not installed"
		}
		proxy := "-"
		if t.Proxy != nil {
			proxy = t.Proxy.Value
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, termsafe.String(version), termsafe.String(t.Store.Description), termsafe.String(proxy), termsafe.String(verification(t)))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tTARGET\tOUTCOME\tERROR")
	rows := 0
	for _, f := range fs {
		for _, p := range f.Predictions {
			outcome := fmt.Sprintf("%-16s", p.Outcome)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Tool, p.Host.Key(), paint(outcomeColour(p.Outcome), outcome), dash(shortened(termsafe.String(p.Error), 90)))
			rows++
		}
	}
	if rows == 0 {
		fmt.Fprintln(tw, "-\t-\t-\tnone of the probed targets is a host these tools use")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	for _, f := range fs {
		for _, p := range f.Predictions {
			if p.Outcome == tools.Verifies || p.Outcome == tools.Unreachable {
				continue // the target's verdict says why it was not reached
			}
			fmt.Fprintf(w, "\n%s %s %s (%s)\n", paint(bold+outcomeColour(p.Outcome), string(p.Outcome)), p.Tool, p.Host.Key(), termsafe.String(p.Host.Source))
			fmt.Fprintf(w, "  store: %s\n", termsafe.String(p.Store))
			if p.Error != "" {
				fmt.Fprintf(w, "  error: %s\n", termsafe.String(p.Error))
			}
			if p.Fix != "" {
				fmt.Fprintf(w, "  fix: %s\n", termsafe.String(p.Fix))
			}
			if p.Note != "" {
				fmt.Fprintf(w, "  note: %s\n", termsafe.String(p.Note))
			}
		}
	}
	return nil
}

// shortened cuts s to n runes, marking the cut; the JSON has it whole.
func shortened(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
