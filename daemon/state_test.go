package daemon

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/exporter"
	"github.com/mitmwatch/mitmwatch/lab"
)

// A restart keeps the last results: a new daemon on the same state
// directory shows them before it probes, and its first probes continue
// from them instead of announcing every verdict anew.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	forger, err := lab.NewForger(lab.ForgerOptions{CA: l.env.PKI.EnterpriseRoot})
	if err != nil {
		t.Fatal(err)
	}
	l.env.Track(forger)
	clean, bad := l.target("clean.lab.example", 1), l.target("bad.lab.example", 2)
	l.router.route(clean.Address, l.env.Origin.Addr())
	l.router.route(bad.Address, forger.Addr())
	ld := &loader{cfg: l.config(200*time.Millisecond, 2*time.Second, clean, bad)}
	dir := t.TempDir()

	first, _ := l.daemon(t, ld, dir)
	stop := run(t, first)
	waitFor(t, first, wait, "ready", first.Ready)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := first.Snapshot().Targets
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{historyFile, stateFile}; !slices.Equal(names, want) {
		t.Errorf("state directory holds %v, want only %v", names, want)
	}

	second, logs := l.daemon(t, ld, dir)
	if got := logs.find("state restored", map[string]string{"targets": "2", "version": "2"}); len(got) != 1 {
		t.Errorf("%d logs that 2 targets were restored from version 2, want 1", len(got))
	}
	if diff := cmp.Diff(want, second.Snapshot().Targets); diff != "" {
		t.Errorf("restored results differ (-saved +restored):\n%s", diff)
	}
	if second.Ready() {
		t.Error("ready on restored results alone")
	}
	if r, _ := rec(second, bad.Key()); r.Verdict != detector.Intercepted || r.IssuerCN == "" || len(r.Findings) == 0 {
		t.Errorf("restored record lost its evidence: %+v", r)
	}
	run(t, second)
	waitFor(t, second, wait, "ready after restart", second.Ready)
	r, _ := rec(second, bad.Key())
	if old, _ := rec(first, bad.Key()); r.Probes <= old.Probes {
		t.Errorf("probe count went from %d to %d across the restart", old.Probes, r.Probes)
	}
	if got := logs.find("verdict changed", nil); len(got) != 0 {
		t.Errorf("verdict changes logged after a restart that changed nothing: %v", got[0].Attrs)
	}
	// The first verdict of each target survives, and the restart adds none.
	for _, k := range []string{clean.Key(), bad.Key()} {
		if cs := second.changesOf(k); len(cs) != 1 || cs[0].From != "" || cs[0].To == "" {
			t.Errorf("history of %s after a restart: %+v", k, cs)
		}
	}
}

// A state file that cannot be used is set aside, never fatal, under a name
// and with a log that say why.
func TestUnusableStateIsSetAside(t *testing.T) {
	t.Parallel()
	valid, err := encodeState(nil, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	// v2 wraps targets in a version 2 state file.
	v2 := func(targets string) string {
		return `{"version": 2, "saved_at": "2026-01-01T00:00:00Z", "targets": [` + targets + `]}`
	}
	for _, tc := range []struct {
		name  string
		write func(path string) error
		aside string // the suffix before -<unix>
		why   string
	}{
		{"garbage", writeString("{not json"), "corrupt", "corrupt"},
		{"truncated", func(p string) error { return os.WriteFile(p, valid[:len(valid)/2], 0o644) }, "corrupt", "corrupt"},
		{"no version", writeString(`{"saved_at": "2026-01-01T00:00:00Z", "targets": []}`), "corrupt", "corrupt"},
		{"version 1", writeString(`{"version": 1, "saved_at": "2026-01-01T00:00:00Z", "targets": [
			{"key": "a:443", "host": "a", "port": 443, "verdict": "ok",
			 "findings": [{"reason": "system-root-only", "severity": "critical", "detail": ""}],
			 "last_probe": "2026-01-01T00:00:00Z", "duration": 0, "probes": 1, "failures": 0}]}`), "v1", "other version"},
		{"future version", writeString(`{"version": 99, "saved_at": "2026-01-01T00:00:00Z", "targets": []}`), "v99", "other version"},
		{"unknown severity", writeString(v2(`{"key": "a:443", "host": "a", "port": 443, "probes": 1, "failures": 0, "duration_ns": 0,
			"findings": [{"reason": "leaf-freshly-minted", "severity": "dire"}]}`)), "corrupt", "corrupt"},
		{"unknown reason", writeString(v2(`{"key": "a:443", "host": "a", "port": 443, "probes": 1, "failures": 0, "duration_ns": 0,
			"findings": [{"reason": "x", "severity": "info"}]}`)), "corrupt", "corrupt"},
		{"a verdict", writeString(v2(`{"key": "a:443", "host": "a", "port": 443, "probes": 1, "failures": 0, "duration_ns": 0,
			"verdict": "ok"}`)), "corrupt", "corrupt"},
		{"unreadable", func(p string) error { return os.Mkdir(p, 0o755) }, "corrupt", "unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			tgt := l.target("x.lab.example", 1)
			l.router.route(tgt.Address, l.env.Origin.Addr())
			dir := t.TempDir()
			path := filepath.Join(dir, stateFile)
			if err := tc.write(path); err != nil {
				t.Fatal(err)
			}
			logs := &logSink{}
			ld := &loader{cfg: l.config(time.Second, 2*time.Second, tgt)}
			d, err := New(Options{Logger: slog.New(logs), StateDir: dir, Load: ld.load, NewRunner: l.newRunner,
				Now: func() time.Time { return time.Unix(1700000000, 0) }})
			if err != nil {
				t.Fatal(err)
			}
			aside := path + "." + tc.aside + "-1700000000"
			if _, err := os.Stat(aside); err != nil {
				t.Errorf("not set aside: %v", err)
			}
			got := logs.find("state file unusable, set aside; starting empty", map[string]string{"why": tc.why, "moved_to": aside})
			if len(got) != 1 {
				t.Errorf("%d warnings that the state file was set aside as %s, want 1", len(got), tc.why)
			}
			if got := logs.find("state restored", nil); len(got) != 0 {
				t.Errorf("an unusable state file logged as restored: %v", got[0].Attrs)
			}
			if n := len(d.Snapshot().Targets); n != 0 {
				t.Errorf("%d targets restored from an unusable file", n)
			}
			stop := run(t, d)
			waitFor(t, d, wait, "ready", d.Ready)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := decodeState(data)
			if err != nil || len(recs) != 1 {
				t.Errorf("fresh state file: %d targets, %v", len(recs), err)
			}
		})
	}
}

func writeString(s string) func(path string) error {
	return func(p string) error { return os.WriteFile(p, []byte(s), 0o644) }
}

func TestStateRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	want := []exporter.Target{{
		Key: "pkg.lab.example:443", Host: "pkg.lab.example", Port: 443, Source: "rules.yaml:3",
		Verdict: detector.Intercepted, Product: "Fortinet", Failure: detector.FailureNone,
		Findings: []detector.Finding{
			{Reason: detector.ReasonSystemRootOnly, Severity: detector.Critical, Detail: "<b>evidence</b>"},
			{Reason: detector.ReasonLeafWithoutSCT, Severity: detector.Warning, Detail: "no SCT"},
			{Reason: detector.ReasonLeafFresh, Severity: detector.Info, Detail: "fresh"},
		},
		TLSVersion: "TLS 1.2", IssuerCN: "FortiGate CA", RootSPKI: "abc",
		LastProbe: at, Duration: 1500 * time.Millisecond, Interval: 5 * time.Minute, Probes: 7, Failures: 2,
	}}
	data, err := encodeState(want, at)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeState(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[0], got[want[0].Key]); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(data), `"version": 2`) || !strings.Contains(string(data), `"severity": "critical"`) {
		t.Errorf("state file is not self-describing:\n%s", data)
	}
	if strings.Contains(string(data), "verdict") || strings.Contains(string(data), string(detector.Intercepted)) {
		t.Errorf("state file stores the verdict:\n%s", data)
	}
}

// The verdict comes back from the findings by today's rules, whatever the
// saved target said; a target never probed comes back pending.
func TestRestoreDerivesVerdict(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	intercepted := []detector.Finding{{Reason: detector.ReasonSystemRootOnly, Severity: detector.Critical, Detail: "private root"}}
	informative := []detector.Finding{{Reason: detector.ReasonLeafFresh, Severity: detector.Info, Detail: "fresh"}}
	saved := []exporter.Target{
		{Key: "a:443", Host: "a", Port: 443, Verdict: detector.OK, Findings: intercepted, LastProbe: at, Probes: 1},
		{Key: "b:443", Host: "b", Port: 443, Verdict: detector.Intercepted, Findings: informative, LastProbe: at, Probes: 3},
		{Key: "c:443", Host: "c", Port: 443, Verdict: detector.Intercepted, LastProbe: at, Probes: 1},
		{Key: "d:443", Host: "d", Port: 443},
	}
	data, err := encodeState(saved, at)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeState(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]detector.Verdict{
		"a:443": detector.Intercepted, "b:443": detector.OK, "c:443": detector.OK, "d:443": "",
	}
	for key, v := range want {
		if got[key].Verdict != v {
			t.Errorf("%s restored as %q, want %q", key, got[key].Verdict, v)
		}
	}

	// A file written by hand: the findings alone decide.
	hand := `{"version": 2, "saved_at": "2026-03-01T12:00:00Z", "targets": [
		{"key": "pkg.lab.example:443", "host": "pkg.lab.example", "port": 443,
		 "findings": [{"reason": "known-interception-product", "severity": "critical", "detail": "FortiGate"}],
		 "last_probe": "2026-03-01T12:00:00Z", "duration_ns": 1000000, "probes": 1, "failures": 0}]}`
	recs, err := decodeState([]byte(hand))
	if err != nil {
		t.Fatal(err)
	}
	if v := recs["pkg.lab.example:443"].Verdict; v != detector.Intercepted {
		t.Errorf("hand-written file restored as %q, want %q", v, detector.Intercepted)
	}
}

// The state file holds no verdict to trust: one with a verdict, or one an
// older version wrote beside its findings, is refused.
func TestDecodeStateRefusesVerdicts(t *testing.T) {
	tests := map[string]struct {
		doc     string
		want    string
		version int // of a *versionError, 0 when none
	}{
		"verdict field": {
			doc: `{"version": 2, "saved_at": "2026-03-01T12:00:00Z", "targets": [
				{"key": "a:443", "host": "a", "port": 443, "verdict": "ok", "duration_ns": 0, "probes": 1, "failures": 0}]}`,
			want: `decoding state: json: unknown field "verdict"`,
		},
		"version 1": {
			doc:     `{"version": 1, "saved_at": "2026-03-01T12:00:00Z", "targets": []}`,
			want:    "state version 1, this mitmwatch reads version 2",
			version: 1,
		},
		"findings without a probe": {
			doc: `{"version": 2, "saved_at": "2026-03-01T12:00:00Z", "targets": [
				{"key": "a:443", "host": "a", "port": 443, "duration_ns": 0, "probes": 0, "failures": 0,
				 "findings": [{"reason": "system-root-only", "severity": "critical"}]}]}`,
			want: "state: targets[0]: findings without a probe",
		},
		"unknown reason": {
			doc: `{"version": 2, "saved_at": "2026-03-01T12:00:00Z", "targets": [
				{"key": "a:443", "host": "a", "port": 443, "duration_ns": 0, "probes": 1, "failures": 0,
				 "findings": [{"reason": "verdict-ok", "severity": "info"}]}]}`,
			want: `state: targets[0]: findings[0]: unknown reason "verdict-ok"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decodeState([]byte(tc.doc))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			var ve *versionError
			if got := errors.As(err, &ve); got != (tc.version != 0) || got && ve.version != tc.version {
				t.Errorf("version error %v, want version %d", ve, tc.version)
			}
		})
	}
}
