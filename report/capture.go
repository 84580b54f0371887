//go:build !lean

package report

import (
	"cmp"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/passive"
	"github.com/mitmwatch/mitmwatch/termsafe"
)

// Capture is a judged capture: passive's groups, the detector's result for
// each (Judged[i] judges Capture.Groups[i]) and the capture's statistics.
type Capture struct {
	Capture passive.Capture
	Judged  []detector.Result
	Stats   passive.Stats
}

// capturedGroup is one kind of connection beside its judgement.
type capturedGroup struct {
	*passive.Group
	res detector.Result
}

// Hosts is one result per host, port and path (detector.PerHost), sorted
// by host, port and path: what the capture says of each host.
func (c Capture) Hosts() []detector.Result {
	hosts := detector.PerHost(c.Judged)
	slices.SortStableFunc(hosts, func(x, y detector.Result) int {
		return cmp.Or(cmp.Compare(x.Obs.Host, y.Obs.Host), cmp.Compare(x.Obs.Port, y.Obs.Port),
			cmp.Compare(x.Obs.Path.String(), y.Obs.Path.String()))
	})
	return hosts
}

// groups pairs each group with its judgement, sorted by host and port,
// then the most severe first (an unfinished connection last), then the
// most frequent.
func (c Capture) groups() []capturedGroup {
	out := make([]capturedGroup, len(c.Capture.Groups))
	for i, g := range c.Capture.Groups {
		out[i] = capturedGroup{g, c.Judged[i]}
	}
	slices.SortStableFunc(out, func(x, y capturedGroup) int {
		return cmp.Or(cmp.Compare(x.Obs.Host, y.Obs.Host), cmp.Compare(x.Obs.Port, y.Obs.Port),
			cmp.Compare(detector.RankAmong(x.res.Verdict), detector.RankAmong(y.res.Verdict)), cmp.Compare(y.Count, x.Count))
	})
	return out
}

// CaptureTable is CaptureReport in its verbose form: the verdict table
// of every host and one block per host.
func CaptureTable(w io.Writer, c Capture, colour bool) error {
	return CaptureReport(w, c, Options{Colour: colour, Verbose: true})
}

// CaptureReport prints the hosts' report as `mitmwatch check` prints it
// (Brief, or with o.Verbose the table and the tally), then one line per
// kind of connection with what only a capture shows: fingerprints,
// timings, TTLs and whether the chain was visible. Like Table, it passes
// every field of text through termsafe.String: the capture holds what the
// client and the server sent.
func CaptureReport(w io.Writer, c Capture, o Options) error {
	hosts, stats := c.Hosts(), c.Stats
	if o.Verbose {
		if err := Table(w, hosts, o.Colour); err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%s\n", Summary(hosts))
	} else if err := Brief(w, hosts, o); err != nil {
		return err
	}
	groups := c.groups()
	if len(groups) == 0 {
		fmt.Fprintf(w, "\nno TLS handshake in %d packets\n", stats.Packets)
		return nil
	}
	fmt.Fprintln(w, "\nconnections in the capture:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tN\tVERDICT\tSERVER\tCLIENT JA4\tSERVER JA4S\tCHAIN\tCONNECT\tHELLO\tTTL")
	for _, g := range groups {
		chain := "visible"
		switch {
		case g.Obs.TLS == nil:
			chain = "-"
		case !g.ChainVisible && g.Obs.TLS.Version >= tls.VersionTLS13:
			chain = "encrypted (TLS 1.3)"
		case !g.ChainVisible:
			chain = "not seen"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", hostPort(g.Obs), g.Count, g.res.Verdict,
			g.Obs.ConnectedAddr, safe(dash(g.Fingerprints.JA4)), safe(dash(g.Fingerprints.JA4S)), chain,
			duration(g.Obs.ConnectTime), duration(g.Obs.HandshakeTime), ttlText(g))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	for _, g := range groups {
		var notes []string
		if g.ChainNote != "" && g.Obs.TLS != nil {
			notes = append(notes, g.ChainNote)
		}
		if g.TTLChanged() {
			notes = append(notes, fmt.Sprintf("the SYN-ACK came with TTL %d, later server packets with %v: another box may answer for the server", g.SYNACKTTL, g.ServerTTLs))
		}
		if g.ClientAlert != "" {
			notes = append(notes, "the client refused the handshake: "+g.ClientAlert)
		}
		if g.Note != "" {
			notes = append(notes, g.Note)
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, "  %s (%d): %s\n", hostPort(g.Obs), g.Count, safe(strings.Join(notes, "; ")))
		}
	}
	if c.Capture.Overflow > 0 {
		fmt.Fprintf(w, "  %d connections were not grouped: more than %d kinds\n", c.Capture.Overflow, len(groups))
	}
	fmt.Fprintf(w, "\n%d packets, %d handshake packets, %d connections reported\n", stats.Packets, stats.Handshake, stats.Conns)
	return nil
}

func ttlText(g capturedGroup) string {
	if g.SYNACKTTL == 0 {
		return "-"
	}
	s := fmt.Sprint(g.SYNACKTTL)
	if g.TTLChanged() {
		s += fmt.Sprintf("→%v", g.ServerTTLs)
	}
	return s
}

func duration(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(time.Microsecond).String()
}

// CaptureDocument is the JSON of a judged capture: the check report's
// document (schema_version, targets) plus what only a capture shows.
type CaptureDocument struct {
	Document
	Passive Passive `json:"passive"`
}

// Passive is the capture-only part of the JSON report.
type Passive struct {
	Packets     uint64            `json:"packets"`
	Handshake   uint64            `json:"handshake_packets"`
	Connections uint64            `json:"connections"`
	Skipped     uint64            `json:"skipped_connections"`
	Overflow    uint64            `json:"ungrouped_connections,omitempty"`
	Groups      []GroupJSON       `json:"groups"`
	Stats       map[string]uint64 `json:"stats"`
}

// GroupJSON is one kind of connection in the JSON report.
type GroupJSON struct {
	Host         string               `json:"host"`
	Port         int                  `json:"port"`
	Path         string               `json:"path"`
	Server       string               `json:"server"`
	Client       string               `json:"client"`
	Count        int                  `json:"count"`
	First        time.Time            `json:"first"`
	Last         time.Time            `json:"last"`
	Verdict      detector.Verdict     `json:"verdict"`
	Product      string               `json:"product,omitempty"`
	Findings     []detector.Finding   `json:"findings"`
	Version      string               `json:"tls_version,omitempty"`
	Failure      detector.Failure     `json:"failure,omitempty"`
	ChainVisible bool                 `json:"chain_visible"`
	ChainNote    string               `json:"chain_note,omitempty"`
	Fingerprints passive.Fingerprints `json:"fingerprints"`
	HelloRetry   bool                 `json:"hello_retry,omitempty"`
	ConnectMS    float64              `json:"connect_ms"`
	HelloMS      float64              `json:"hello_ms"`
	SYNACKTTL    uint8                `json:"synack_ttl,omitempty"`
	ServerTTLs   []int                `json:"server_ttls,omitempty"` // []uint8 would encode as base64
	TTLChanged   bool                 `json:"ttl_changed"`
	ClientAlert  string               `json:"client_alert,omitempty"`
	End          string               `json:"end"`
	Note         string               `json:"note,omitempty"`
}

// BuildCapture turns a judged capture into its JSON document.
func BuildCapture(c Capture) CaptureDocument {
	doc := CaptureDocument{Document: Build(c.Hosts())}
	stats, groups := c.Stats, c.groups()
	p := &doc.Passive
	p.Packets, p.Handshake, p.Connections = stats.Packets, stats.Handshake, stats.Conns
	p.Skipped, p.Overflow = c.Capture.Skipped, c.Capture.Overflow
	p.Stats = map[string]uint64{"tcp": stats.TCP, "watched": stats.Watched, "undecodable": stats.Undecodable,
		"snapped": stats.Snapped, "evicted": stats.Evicted, "bytes": stats.Bytes}
	p.Groups = make([]GroupJSON, 0, len(groups))
	for _, g := range groups {
		j := GroupJSON{
			Host: g.Obs.Host, Port: g.Obs.Port, Path: g.Obs.Path.String(), Server: g.Obs.ConnectedAddr.String(),
			Client: g.Client.String(), Count: g.Count, First: g.First.UTC(), Last: g.Last.UTC(),
			Verdict: g.res.Verdict, Product: g.res.Product, Findings: g.res.Findings, Failure: g.Obs.Failure,
			ChainVisible: g.ChainVisible && g.Obs.TLS != nil, ChainNote: g.ChainNote, Fingerprints: g.Fingerprints,
			HelloRetry: g.HelloRetry, ConnectMS: ms(g.Obs.ConnectTime), HelloMS: ms(g.Obs.HandshakeTime),
			SYNACKTTL: g.SYNACKTTL, ServerTTLs: ints(g.ServerTTLs), TTLChanged: g.TTLChanged(),
			ClientAlert: g.ClientAlert, End: g.End.String(), Note: g.Note,
		}
		if j.Findings == nil {
			j.Findings = []detector.Finding{}
		}
		if g.Obs.TLS != nil {
			j.Version = detector.VersionName(g.Obs.TLS.Version)
		}
		p.Groups = append(p.Groups, j)
	}
	return doc
}

// CaptureJSON writes the JSON document, indented, with a trailing newline,
// through termsafe.JSONWriter as Document.Write does.
func CaptureJSON(w io.Writer, c Capture) error {
	enc := json.NewEncoder(termsafe.JSONWriter(w))
	enc.SetIndent("", "  ")
	return enc.Encode(BuildCapture(c))
}

func ints(b []uint8) []int {
	var out []int
	for _, v := range b {
		out = append(out, int(v))
	}
	return out
}
