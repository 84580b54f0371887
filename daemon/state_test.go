package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
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
	if len(entries) != 1 || entries[0].Name() != stateFile {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state directory holds %v, want only %s", names, stateFile)
	}

	second, logs := l.daemon(t, ld, dir)
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
}

// A state file that cannot be used is set aside, never fatal.
func TestUnusableStateIsSetAside(t *testing.T) {
	t.Parallel()
	valid, err := encodeState(nil, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		write func(path string) error
	}{
		{"garbage", func(p string) error { return os.WriteFile(p, []byte("{not json"), 0o644) }},
		{"truncated", func(p string) error { return os.WriteFile(p, valid[:len(valid)/2], 0o644) }},
		{"unknown version", func(p string) error {
			return os.WriteFile(p, []byte(`{"version": 99, "saved_at": "2026-01-01T00:00:00Z", "targets": []}`), 0o644)
		}},
		{"unknown severity", func(p string) error {
			return os.WriteFile(p, []byte(`{"version": 1, "saved_at": "2026-01-01T00:00:00Z", "targets": [
				{"key": "a:443", "host": "a", "port": 443, "findings": [{"reason": "x", "severity": "dire", "detail": ""}],
				 "last_probe": "2026-01-01T00:00:00Z", "duration": 0, "probes": 1, "failures": 0}]}`), 0o644)
		}},
		{"unreadable", func(p string) error { return os.Mkdir(p, 0o755) }},
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
			if _, err := os.Stat(path + ".corrupt-1700000000"); err != nil {
				t.Errorf("not set aside: %v", err)
			}
			if got := logs.find("state file unusable, set aside; starting empty", nil); len(got) != 1 {
				t.Errorf("%d warnings about the state file, want 1", len(got))
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
		LastProbe: at, Duration: 1500 * time.Millisecond, Probes: 7, Failures: 2,
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
	if !strings.Contains(string(data), `"version": 1`) || !strings.Contains(string(data), `"severity": "critical"`) {
		t.Errorf("state file is not self-describing:\n%s", data)
	}
}
