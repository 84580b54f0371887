// Package report renders judged targets for people (a table) and for
// programs (JSON with a stable, versioned shape). It formats; it never
// judges.
package report

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/netip"
	"time"

	"github.com/mitmwatch/mitmwatch/audit"
	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/termsafe"
)

// SchemaVersion is bumped only when a field changes meaning or goes away;
// new fields may appear at any time.
const SchemaVersion = 1

// Document is the JSON report.
type Document struct {
	SchemaVersion int      `json:"schema_version"`
	Targets       []Target `json:"targets"`
	// Audit lists the settings that weaken the toolchain's TLS, when the
	// audit ran.
	Audit *audit.Report `json:"audit,omitempty"`
	// Interceptors are the interceptors graded on these paths
	// (interceptors.go); absent when nothing was graded.
	Interceptors []Interceptor `json:"interceptors,omitempty"`
	// Tools says what each build tool will do with the targets it uses,
	// when the toolchain was read.
	Tools []Tool `json:"tools,omitempty"`
}

// Target is one host's entry in the JSON report.
type Target struct {
	Host              string               `json:"host"`
	Port              int                  `json:"port"`
	Source            string               `json:"source,omitempty"`
	Verdict           detector.Verdict     `json:"verdict"`
	Product           string               `json:"product,omitempty"`
	Path              detector.PathKind    `json:"path"`
	Proxy             string               `json:"proxy,omitempty"`
	Findings          []detector.Finding   `json:"findings"`
	Remediation       string               `json:"remediation,omitempty"`
	DNS               []detector.DNSAnswer `json:"dns,omitempty"`        // each resolver's answer for the host
	DNSCanary         []detector.DNSAnswer `json:"dns_canary,omitempty"` // their answers for a name that cannot exist
	ResolvedAddresses []netip.Addr         `json:"resolved_addresses,omitempty"`
	ConnectedAddress  string               `json:"connected_address,omitempty"`
	ConnectMS         float64              `json:"connect_ms"`
	HandshakeMS       float64              `json:"handshake_ms"`
	Failure           detector.Failure     `json:"failure,omitempty"`
	FailureDetail     string               `json:"failure_detail,omitempty"`
	TLS               *TLS                 `json:"tls,omitempty"`
	HTTP              *detector.HTTPAnswer `json:"http,omitempty"`
	PathTrace         *PathTrace           `json:"path_trace,omitempty"`
	Control           *Control             `json:"control,omitempty"`
	// Protocol is absent for TLS; SSH and SumDB hold what an SSH probe
	// or a checksum database check saw (integrity.go).
	Protocol detector.Protocol    `json:"protocol,omitempty"`
	SSH      *detector.SSHState   `json:"ssh,omitempty"`
	SumDB    *detector.SumDBState `json:"sumdb,omitempty"`
}

// Control is the handshake naming another server sent to the same address
// when the one naming the host got no answer (see detector.ControlAttempt).
type Control struct {
	SNI      string           `json:"sni"`
	Answered bool             `json:"answered"`
	RTTMS    float64          `json:"rtt_ms,omitempty"`
	Failure  detector.Failure `json:"failure,omitempty"`
	Detail   string           `json:"detail,omitempty"`
}

func control(c *detector.ControlAttempt) *Control {
	if c == nil {
		return nil
	}
	return &Control{SNI: c.SNI, Answered: c.Answered, RTTMS: ms(c.RTT), Failure: c.Failure, Detail: c.Detail}
}

// PathTrace is what was measured of the path beside the handshake, in
// milliseconds (see detector.PathTrace).
type PathTrace struct {
	ConnectMS  []float64          `json:"connect_ms,omitempty"`
	HelloMS    []float64          `json:"hello_ms,omitempty"`
	HelloHops  int                `json:"hello_hops,omitempty"`
	MaxHops    int                `json:"max_hops,omitempty"`
	Origin     *detector.HopProbe `json:"origin,omitempty"`
	SYNACKTTL  uint8              `json:"synack_ttl,omitempty"`
	ServerTTLs []uint8            `json:"server_ttls,omitempty"`
	Detail     string             `json:"detail,omitempty"`
}

func pathTrace(tr *detector.PathTrace) *PathTrace {
	if tr == nil {
		return nil
	}
	out := &PathTrace{HelloHops: tr.HelloHops, MaxHops: tr.MaxHops, Origin: tr.Origin,
		SYNACKTTL: tr.SYNACKTTL, ServerTTLs: tr.ServerTTLs, Detail: tr.Detail}
	for _, d := range tr.ConnectRTTs {
		out.ConnectMS = append(out.ConnectMS, ms(d))
	}
	for _, d := range tr.HelloRTTs {
		out.HelloMS = append(out.HelloMS, ms(d))
	}
	return out
}

// TLS is what the handshake negotiated and presented.
type TLS struct {
	Version      string `json:"version"`
	BestVersion  string `json:"best_version,omitempty"`
	CipherSuite  string `json:"cipher_suite"`
	ALPN         string `json:"alpn,omitempty"`
	PublicVerify string `json:"public_roots"` // "ok" or a failure
	SystemVerify string `json:"system_roots"`
	NameMatch    bool   `json:"name_match"`
	Chain        []Cert `json:"chain"`
	RootSPKI     string `json:"root_spki_sha256,omitempty"`
}

// Cert identifies one certificate of the presented chain.
type Cert struct {
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	SPKISHA256 string    `json:"spki_sha256"`
	SHA256     string    `json:"sha256"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	DNSNames   []string  `json:"dns_names,omitempty"`
}

// Build turns results into the JSON document.
func Build(results []detector.Result) Document {
	doc := Document{SchemaVersion: SchemaVersion, Targets: make([]Target, 0, len(results))}
	for _, r := range results {
		doc.Targets = append(doc.Targets, target(r))
	}
	return doc
}

// JSON writes the document, indented, with a trailing newline.
func JSON(w io.Writer, results []detector.Result) error {
	return Build(results).Write(w)
}

// Write encodes the document, indented, with a trailing newline. The
// encoding goes through termsafe.JSONWriter: encoding/json leaves C1
// controls and bidi overrides from certificates raw, and the document is
// often read on a terminal.
func (d Document) Write(w io.Writer) error {
	compact, err := json.Marshal(d)
	if err != nil {
		return err
	}
	// As json.Encoder with SetIndent("", "  ") writes it.
	out := append(appendIndented(make([]byte, 0, 2*len(compact)), compact), '\n')
	_, err = termsafe.JSONWriter(w).Write(out)
	return err
}

func target(r detector.Result) Target {
	o := r.Obs
	t := Target{
		Host: o.Host, Port: o.Port, Source: r.Source, Verdict: r.Verdict, Product: r.Product,
		Path: o.Path.Kind, Proxy: o.Path.Proxy, Findings: r.Findings, Remediation: r.Remediation,
		DNS: o.DNS, DNSCanary: o.Canary,
		ResolvedAddresses: o.ResolvedAddrs,
		ConnectMS:         ms(o.ConnectTime), HandshakeMS: ms(o.HandshakeTime),
		Failure: o.Failure, FailureDetail: o.FailureDetail, HTTP: o.Plain,
		PathTrace: pathTrace(o.Trace), Control: control(o.Control),
		Protocol: o.Protocol, SSH: o.SSH, SumDB: o.SumDB,
	}
	if t.Findings == nil {
		t.Findings = []detector.Finding{}
	}
	if o.ConnectedAddr.IsValid() {
		t.ConnectedAddress = o.ConnectedAddr.String()
	}
	if st := o.TLS; st != nil {
		t.TLS = &TLS{
			Version:      detector.VersionName(st.Version),
			CipherSuite:  tls.CipherSuiteName(st.CipherSuite),
			ALPN:         st.ALPN,
			PublicVerify: verifyWord(st.Public),
			SystemVerify: verifyWord(st.System),
			NameMatch:    st.NameMatch,
			RootSPKI:     rootSPKI(st),
		}
		if o.BestVersion != 0 {
			t.TLS.BestVersion = detector.VersionName(o.BestVersion)
		}
		for _, c := range st.Chain {
			t.TLS.Chain = append(t.TLS.Chain, certOf(c))
		}
	}
	return t
}

// rootSPKI is the pin of the chain's anchor (detector.Root).
func rootSPKI(st *detector.TLSState) string {
	if root := detector.Root(st); root != nil {
		return detector.SPKIOf(root).String()
	}
	return ""
}

func certOf(c *x509.Certificate) Cert {
	sum := sha256.Sum256(c.Raw)
	return Cert{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		SPKISHA256: detector.SPKIOf(c).String(), SHA256: hex.EncodeToString(sum[:]),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), DNSNames: c.DNSNames,
	}
}

func verifyWord(v detector.Verification) string {
	if v.OK() {
		return "ok"
	}
	return string(v.Failure)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
