package exporter

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/grade"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current output")

// fixed is a Source that always returns the same snapshot.
type fixed Snapshot

func (f fixed) Snapshot() Snapshot { return Snapshot(f) }

var (
	loadedAt = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	probedAt = time.Date(2026, 3, 2, 10, 15, 30, 0, time.UTC)
)

// hostileCN is an issuer common name a hostile box could present: far too
// long, with newlines, a tab, invalid UTF-8, a bidi override and a NUL.
var hostileCN = "Totally Legit Root CA\n\tsecond line\xff\xfe" + "\u202e" + "gpj.exe\x00" + strings.Repeat("A", 300)

func fleet() Snapshot {
	return Snapshot{
		ConfigLoaded:   true,
		ConfigLoadedAt: loadedAt,
		Reloads:        3,
		Targets: []Target{
			{
				Key: "pypi.org:443", Host: "pypi.org", Port: 443, Verdict: detector.OK,
				TLSVersion: "TLS 1.3", IssuerCN: "GlobalSign Atlas R3 DV TLS CA 2025 Q1",
				RootSPKI:  "cGdveWJZSm1MX1JGM3BSRFNnQmZhTTNFVkpRSmJ1eXM=",
				LastProbe: probedAt, Duration: 180 * time.Millisecond, Interval: 5 * time.Minute,
				Probes: 12,
			},
			{
				Key: "github.com:443", Host: "github.com", Port: 443,
				Verdict: detector.Intercepted, Product: "Zscaler",
				Findings: []detector.Finding{
					{Reason: detector.ReasonKnownProduct, Severity: detector.Critical, Detail: "issuer names Zscaler"},
					{Reason: detector.ReasonCAPinMismatch, Severity: detector.Critical},
					{Reason: detector.ReasonLeafWithoutSCT, Severity: detector.Info},
				},
				TLSVersion: "TLS 1.2", IssuerCN: "Zscaler Intermediate Root CA (zscaler.net) (t)",
				RootSPKI:  "WnNjYWxlclJvb3RDQVNQS0lTSEEyNTZiYXNlNjQxMjM=",
				LastProbe: probedAt, Duration: 1500 * time.Millisecond, Interval: 5 * time.Minute,
				Probes: 12, Failures: 1,
				Tools: []ToolOutcome{{Tool: "git", Outcome: "fails"}, {Tool: "go", Outcome: "verifies"}, {Tool: "git", Outcome: "fails"}},
			},
			{
				// No product named, a hostile issuer, and the same finding
				// twice: one series each.
				Key: "registry.example:443", Host: "registry.example", Port: 443,
				Verdict: detector.Intercepted,
				Findings: []detector.Finding{
					{Reason: detector.ReasonSystemRootOnly, Severity: detector.Critical},
					{Reason: detector.ReasonLeafSignedByRoot, Severity: detector.Warning},
					{Reason: detector.ReasonLeafSignedByRoot, Severity: detector.Warning},
				},
				TLSVersion: "TLS 1.3", IssuerCN: hostileCN,
				RootSPKI:  "SG9zdGlsZVJvb3RTUEtJU0hBMjU2YmFzZTY0MTIzNDU=",
				LastProbe: probedAt, Duration: 90 * time.Millisecond, Interval: time.Minute,
				Probes: 3,
			},
			{
				Key: "proxy.golang.example:443", Host: "proxy.golang.example", Port: 443,
				Verdict: detector.Downgraded,
				Findings: []detector.Finding{
					{Reason: detector.ReasonVersionBelow, Severity: detector.Critical},
					{Reason: detector.ReasonALPNBelow, Severity: detector.Warning},
				},
				TLSVersion: "TLS 1.2", IssuerCN: "WE1",
				RootSPKI:  "R1RTUm9vdFI0U1BLSVNIQTI1NmJhc2U2NDEyMzQ1Njc=",
				LastProbe: probedAt, Duration: 250 * time.Millisecond, Interval: 5 * time.Minute,
				Probes: 12,
			},
			{
				Key: "sum.golang.example:443", Host: "sum.golang.example", Port: 443,
				Verdict: detector.DNSTampered,
				Findings: []detector.Finding{
					{Reason: detector.ReasonDNSBogon, Severity: detector.Critical, Detail: "10.0.0.1"},
				},
				Failure:   "connection_refused",
				LastProbe: probedAt, Duration: 30 * time.Millisecond, Interval: 5 * time.Minute,
				Probes: 12, Failures: 12,
			},
			{
				// The network is down: unreachable, no chain, no TLS.
				Key: "files.pythonhosted.org:443", Host: "files.pythonhosted.org", Port: 443,
				Verdict:   detector.Unreachable,
				Findings:  []detector.Finding{{Reason: detector.ReasonUnreachable, Severity: detector.Info}},
				Failure:   "generic_timeout_error",
				LastProbe: probedAt, Duration: 10 * time.Second, Interval: 5 * time.Minute,
				Probes: 12, Failures: 5,
			},
			{
				// A box that names its CA after its own address.
				Key: "npm.registry.example:443", Host: "npm.registry.example", Port: 443,
				Verdict:    detector.InvalidCert,
				Findings:   []detector.Finding{{Reason: detector.ReasonUntrustedChain, Severity: detector.Warning}},
				TLSVersion: "TLS 1.3", IssuerCN: "192.0.2.1",
				RootSPKI:  "SVBJc3N1ZXJTUEtJU0hBMjU2YmFzZTY0MTIzNDU2Nzg=",
				LastProbe: probedAt, Duration: 40 * time.Millisecond, Interval: 5 * time.Minute,
				Probes: 1,
			},
			{
				// Configured, never probed yet: counters only.
				Key: "new.example:443", Host: "new.example", Port: 443, Interval: 5 * time.Minute,
			},
			{
				// An SSH server answering with a key the pins do not know.
				Key: "ssh://git.lab.example:22", Host: "git.lab.example", Port: 22,
				Verdict:   detector.Intercepted,
				Findings:  []detector.Finding{{Reason: detector.ReasonSSHHostKeyMismatch, Severity: detector.Critical}},
				Integrity: Integrity{SSHKeyType: "ssh-ed25519", SSHHostKey: "SHA256:U4CKNS/TGaqoD3AdR/ogPrxJ3sTXFQ9/lQRw+a06Mow"},
				LastProbe: probedAt, Duration: 20 * time.Millisecond, Interval: 5 * time.Minute,
				Probes: 4,
			},
			{
				// The checksum database, verified and grown lately.
				Key: "gosumdb://sum.lab.example", Host: "sum.lab.example", Port: 443,
				Verdict:   detector.OK,
				Integrity: Integrity{SumDBTree: 41234567, SumDBGrownAt: probedAt.Add(-time.Hour), SumDBSignature: "verified"},
				LastProbe: probedAt, Duration: 300 * time.Millisecond, Interval: 5 * time.Minute,
				Probes: 4,
			},
			{
				// A second entry with a key already seen is dropped.
				Key: "pypi.org:443", Host: "pypi.org", Port: 443, Verdict: detector.Blocked,
				LastProbe: probedAt, Probes: 99,
			},
		},
		Interceptors: []Interceptor{
			{
				// An approved interceptor that re-signs.
				SPKI: "WnNjYWxlclJvb3RDQVNQS0lTSEEyNTZiYXNlNjQxMjM=", Path: detector.PathDirect, Product: "Zscaler", Approved: true,
				Targets: []string{"github.com:443"}, Grade: grade.F, LastGraded: probedAt,
				Checks: []grade.Check{
					{Name: "upstream-expired", Result: grade.ReSigned, Detail: "forged a leaf this machine trusts"},
					{Name: "upstream-wrong-host", Result: grade.Blocked},
					{Name: grade.CheckTLS10, Result: grade.Refused},
					{Name: grade.CheckKeyReuse, Result: grade.Weak},
				},
			},
			{
				// One that mimics, on a proxy, unnamed; a check reported
				// twice is one series.
				SPKI: "SG9zdGlsZVJvb3RTUEtJU0hBMjU2YmFzZTY0MTIzNDU=", Path: detector.PathProxy,
				Targets: []string{"registry.example:443"}, Grade: grade.B, LastGraded: probedAt,
				Checks: []grade.Check{
					{Name: "upstream-expired", Result: grade.Mimicked},
					{Name: "upstream-expired", Result: grade.Mimicked},
					{Name: grade.CheckNoForwardSecrecy, Result: grade.Accepted},
				},
			},
			{
				// The same CA and path again: dropped.
				SPKI: "SG9zdGlsZVJvb3RTUEtJU0hBMjU2YmFzZTY0MTIzNDU=", Path: detector.PathProxy, Grade: grade.F,
			},
		},
		Passive: &Passive{
			Interface: "eth0", Capturing: true, Connections: 42, Dropped: 3,
			Targets: []Target{
				{Key: "objects.githubusercontent.com:443", Host: "objects.githubusercontent.com", Port: 443,
					Verdict: detector.Intercepted, Product: "Zscaler", LastProbe: probedAt, Probes: 2},
				{Key: "pypi.org:443", Host: "pypi.org", Port: 443, Verdict: detector.OK, LastProbe: loadedAt, Probes: 1},
			},
		},
	}
}

func TestCollectorGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		snap Snapshot
	}{
		{"fleet", fleet()},
		// A reload failed before any target was probed.
		{"reload_failed", Snapshot{
			ConfigLoaded: false, ConfigLoadedAt: loadedAt, Reloads: 1, ReloadFailures: 1,
			Targets: []Target{{Key: "github.com:443", Host: "github.com", Port: 443}},
		}},
		{"empty", Snapshot{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCollector(fixed(tc.snap))
			path := filepath.Join("testdata", tc.name+".prom")
			if *update {
				reg := prometheus.NewPedanticRegistry()
				reg.MustRegister(c)
				if err := os.WriteFile(path, exposition(t, reg), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if err := testutil.CollectAndCompare(c, bytes.NewReader(want)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestCollectorLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(fixed(fleet())), NewBuildInfo("v1.2.3", "0123abc"))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestVerdictSeries checks the property alerts rely on: every probed target
// has one series per verdict and exactly one of them is 1.
func TestVerdictSeries(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(fixed(fleet())))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	perTarget := map[string][2]int{} // series, ones
	for _, mf := range mfs {
		if mf.GetName() != "mitmwatch_target_verdict" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var target string
			for _, l := range m.GetLabel() {
				if l.GetName() == "target" {
					target = l.GetValue()
				}
			}
			n := perTarget[target]
			n[0]++
			if m.GetGauge().GetValue() == 1 {
				n[1]++
			}
			perTarget[target] = n
		}
	}
	if len(perTarget) != 9 {
		t.Errorf("verdict series for %d targets, want 9 (the probed ones): %v", len(perTarget), perTarget)
	}
	for target, n := range perTarget {
		if n[0] != len(detector.Verdicts) || n[1] != 1 {
			t.Errorf("%s: %d series with %d at 1, want %d with one at 1", target, n[0], n[1], len(detector.Verdicts))
		}
	}
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewBuildInfo("v1.2.3\n", "0123abc"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "mitmwatch_build_info" || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want one mitmwatch_build_info series", mfs)
	}
	m := mfs[0].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] != "v1.2.3" || labels["revision"] == "" || !strings.HasPrefix(labels["goversion"], "go") {
		t.Errorf("labels %v", labels)
	}
	if m.GetGauge().GetValue() != 1 {
		t.Errorf("value %v, want 1", m.GetGauge().GetValue())
	}
}

// exposition is what a scrape of reg returns, in the text format.
// (testutil.GatherAndFormat returns nothing unless given metric names.)
func exposition(t *testing.T, reg prometheus.Gatherer) []byte {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// exportedNames lists the metric names the collector and the build info
// gauge can export, from their descriptions.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	ch := make(chan *prometheus.Desc, 100)
	NewCollector(nil).Describe(ch)
	NewBuildInfo("test", "0123abc").Describe(ch)
	close(ch)
	names := map[string]bool{}
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names[m[1]] = true
	}
	return names
}

// TestDescribedIsCollected keeps Describe and Collect in step: the fleet
// snapshot exercises every metric, and each one it emits is described.
func TestDescribedIsCollected(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(fixed(fleet())), NewBuildInfo("test", "0123abc"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		got = append(got, mf.GetName())
	}
	var want []string
	for n := range exportedNames(t) {
		want = append(want, n)
	}
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("collected %v\ndescribed %v", got, want)
	}
}
