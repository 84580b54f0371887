package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// names lists dir's entries, to show what a write left behind.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// writers are the two ways to replace a file: every test holds for both,
// durability aside.
var writers = []struct {
	name string
	fn   func(string, []byte, fs.FileMode) error
}{{"Write", Write}, {"Replace", Replace}}

func TestWriteReplacesWhole(t *testing.T) {
	t.Parallel()
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			if err := w.fn(path, []byte(strings.Repeat("long old content\n", 100)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := w.fn(path, []byte("new\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != "new\n" {
				t.Errorf("file holds %q (%v), want %q", b, err, "new\n")
			}
			if got := names(t, dir); !slices.Equal(got, []string{"state.json"}) {
				t.Errorf("directory holds %v, want only state.json", got)
			}
		})
	}
}

func TestWritePermissions(t *testing.T) {
	t.Parallel()
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			if runtime.GOOS == "windows" {
				t.Skip("Windows has no permission bits")
			}
			path := filepath.Join(t.TempDir(), "f")
			for _, perm := range []fs.FileMode{0o600, 0o644, 0o640} {
				if err := w.fn(path, []byte("x"), perm); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != perm {
					t.Errorf("written with %v, file has %v", perm, got)
				}
			}
		})
	}
}

// A write that fails leaves the old content and no temporary file.
func TestWriteFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			// A directory in the way: the rename onto it fails after the temporary
			// file was written.
			path := filepath.Join(dir, "busy")
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
			keep := filepath.Join(path, "keep")
			if err := os.WriteFile(keep, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := w.fn(path, []byte("new"), 0o644)
			if err == nil {
				t.Fatal(w.name + " over a non-empty directory succeeded")
			}
			if !strings.HasPrefix(err.Error(), "writing "+path+": ") {
				t.Errorf("error %q does not name %s", err, path)
			}
			if got := names(t, dir); !slices.Equal(got, []string{"busy"}) {
				t.Errorf("directory holds %v after a failed write, want only busy", got)
			}
			if b, err := os.ReadFile(keep); err != nil || string(b) != "old" {
				t.Errorf("old content now %q (%v)", b, err)
			}
		})
	}
}

func TestWriteMissingDirectory(t *testing.T) {
	t.Parallel()
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "missing", "f")
			err := w.fn(path, []byte("x"), 0o644)
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf(w.name+" into a missing directory: %v, want not exist", err)
			}
			if err == nil || !strings.HasPrefix(err.Error(), "writing "+path+": ") {
				t.Errorf("error %q does not name %s", err, path)
			}
		})
	}
}
