package ranges

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestSaveLoad(t *testing.T) {
	s := sampleSnapshot(t)
	for name, p := range s.Providers {
		p.Source = "testdata/" + name
		p.Fetched = now.UTC()
		s.Providers[name] = p
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ranges.json")
	if err := Embedded().Save(path); err != nil { // then overwrite it
		t.Fatal(err)
	}
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, got, cmpPrefix); diff != "" {
		t.Errorf("round trip mismatch (-saved +loaded):\n%s", diff)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"ranges.json"}) {
		t.Errorf("directory holds %v, want only ranges.json", names)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", fi.Mode(), err)
	}
}

// TestSaveFailureKeepsOldFile makes the write fail at each step that can
// fail and checks that the old file survives and no temporary file is left.
// The failures are chosen to work as root, which ignores permissions.
func TestSaveFailureKeepsOldFile(t *testing.T) {
	const old = "old snapshot\n"
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the path to save to
	}{
		{
			// The temporary name (".NAME.tmp…") exceeds NAME_MAX while NAME fits.
			name: "temp file cannot be created",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, strings.Repeat("r", 250))
				if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
					t.Skipf("file system refuses a 250-byte name: %v", err)
				}
				return path
			},
		},
		{
			// The temporary file is written, then the rename fails.
			name: "rename fails",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "ranges.json")
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(path, "keep"), []byte(old), 0o644); err != nil {
					t.Fatal(err)
				}
				return path
			},
		},
		{
			name: "unwritable directory",
			setup: func(t *testing.T, dir string) string {
				if os.Geteuid() == 0 {
					t.Skip("root ignores directory permissions")
				}
				path := filepath.Join(dir, "ranges.json")
				if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, 0o555); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(dir, 0o755) })
				return path
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.setup(t, dir)
			before := dirNames(t, dir)
			err := sampleSnapshot(t).Save(path)
			if err == nil {
				t.Fatal("Save succeeded")
			}
			if !strings.HasPrefix(err.Error(), "ranges: saving "+path+": ") {
				t.Errorf("error %q does not name %s", err, path)
			}
			if after := dirNames(t, dir); !slices.Equal(before, after) {
				t.Errorf("directory went from %v to %v", before, after)
			}
			check := path
			if fi, err := os.Stat(path); err == nil && fi.IsDir() {
				check = filepath.Join(path, "keep")
			}
			if b, err := os.ReadFile(check); err != nil || string(b) != old {
				t.Errorf("old file now %q (%v), want %q", b, err, old)
			}
		})
	}
}

func TestSaveErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "ranges.json")
	err := Embedded().Save(path)
	if err == nil || !strings.HasPrefix(err.Error(), "ranges: saving "+path+": ") {
		t.Errorf("Save into a missing directory: %v", err)
	}
	path = filepath.Join(t.TempDir(), "ranges.json")
	checkErr(t, Snapshot{}.Save(path), "ranges: saving "+path+": version 0, want 1")
}

func TestLoadErrors(t *testing.T) {
	bad := func(name string) string { return filepath.Join("testdata", "load", "bad", name) }
	tests := map[string]string{
		"corrupt.json":                "ranges: " + bad("corrupt.json") + ": unexpected EOF",
		"unknown-field.json":          "ranges: " + bad("unknown-field.json") + `: json: unknown field "comment"`,
		"unknown-provider-field.json": "ranges: " + bad("unknown-provider-field.json") + `: json: unknown field "note"`,
		"version2.json":               "ranges: " + bad("version2.json") + ": version 2, want 1",
		"no-version.json":             "ranges: " + bad("no-version.json") + ": version 0, want 1",
		"no-providers.json":           "ranges: " + bad("no-providers.json") + ": no providers",
		"bad-prefix.json":             "ranges: " + bad("bad-prefix.json") + ": …",
		"empty-prefix.json":           "ranges: " + bad("empty-prefix.json") + ": provider github: prefixes[1]: empty prefix",
		"empty-service-prefix.json":   "ranges: " + bad("empty-service-prefix.json") + `: provider aws: service "S3"[0]: empty prefix`,
		"bad-time.json":               "ranges: " + bad("bad-time.json") + ": …",
		"trailing.json":               "ranges: " + bad("trailing.json") + ": trailing data after the snapshot",
		"empty-name.json":             "ranges: " + bad("empty-name.json") + ": provider with an empty name",
		"missing.json":                "ranges: open " + bad("missing.json") + ": no such file or directory",
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := Load(bad(name))
			if err == nil {
				t.Fatalf("Load = %+v, want error", s)
			}
			checkErr(t, err, want)
		})
	}
}

func TestLoadNormalises(t *testing.T) {
	got, err := Load(filepath.Join("testdata", "load", "good", "unnormalised.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Snapshot{Version: Version, Providers: map[string]Provider{"github": {
		Source:   "x",
		Fetched:  time.Date(2025, 3, 4, 4, 6, 7, 0, time.UTC),
		Prefixes: pfx("192.0.2.0/24", "198.51.100.0/24"),
		Services: map[string][]netip.Prefix{"web": pfx("198.51.100.0/24")},
	}}}
	if diff := cmp.Diff(want, got, cmpPrefix); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}
