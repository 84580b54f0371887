package trust

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// names lists the entries a scan gives, by name.
func names(t *testing.T, files []DirFile) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		out = append(out, filepath.Base(f.Path))
	}
	return out
}

// TestScanDir: one scan gives what x509 reads of a directory (every entry
// but hash links to the same directory, stat'ed through links), is shared
// while the directory is unchanged, and sees every change: a link added
// or re-pointed at once, a file rewritten in place once the stats are
// older than statsFresh.
func TestScanDir(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links")
	}
	dir, other := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "Root.pem"), "one")
	write(t, filepath.Join(other, "Elsewhere.crt"), "elsewhere")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("Root.pem", filepath.Join(dir, "1a2b3c4d.0")))
	must(os.Symlink(filepath.Join(other, "Elsewhere.crt"), filepath.Join(dir, "Elsewhere.pem")))
	must(os.Symlink("Missing.pem", filepath.Join(dir, "dangling.0")))
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o755))

	t0 := time.Now()
	first, err := scanDirAt(dir, t0)
	must(err)
	if got, want := names(t, first), []string{"Elsewhere.pem", "Root.pem", "sub"}; !slices.Equal(got, want) {
		t.Fatalf("scanned %q, want %q", got, want)
	}
	for _, f := range first {
		if f.Err != nil {
			t.Errorf("%s: %v", f.Path, f.Err)
			continue
		}
		if filepath.Base(f.Path) == "Elsewhere.pem" && f.Info.Size() != int64(len("elsewhere")) {
			t.Errorf("%s: stat not through the link: size %d", f.Path, f.Info.Size())
		}
	}

	again, err := scanDirAt(dir, t0.Add(statsFresh/2))
	must(err)
	if &again[0] != &first[0] {
		t.Error("an unchanged directory was scanned again within statsFresh")
	}
	// A reader that read the clock before the scan (it waited for the
	// scan's lock) is served by it.
	earlier, err := scanDirAt(dir, t0.Add(-time.Millisecond))
	must(err)
	if &earlier[0] != &first[0] {
		t.Error("a reader whose clock reading precedes the scan scanned again")
	}

	// A file rewritten in place changes no directory time: its new stat
	// shows once the old one is stale.
	write(t, filepath.Join(dir, "Root.pem"), "rewritten")
	later, err := scanDirAt(dir, t0.Add(statsFresh))
	must(err)
	for _, f := range later {
		if filepath.Base(f.Path) == "Root.pem" && (f.Err != nil || f.Info.Size() != int64(len("rewritten"))) {
			t.Errorf("Root.pem after its rewrite: %v, %v", f.Info, f.Err)
		}
	}

	// An entry added, even within statsFresh, is seen at once.
	must(os.Symlink(filepath.Join(other, "Elsewhere.crt"), filepath.Join(dir, "Added.pem")))
	added, err := scanDirAt(dir, t0.Add(statsFresh))
	must(err)
	if got, want := names(t, added), []string{"Added.pem", "Elsewhere.pem", "Root.pem", "sub"}; !slices.Equal(got, want) {
		t.Errorf("after adding a link: %q, want %q", got, want)
	}

	// A hash link re-pointed out of the directory is read from then on.
	must(os.Remove(filepath.Join(dir, "1a2b3c4d.0")))
	must(os.Symlink(filepath.Join(other, "Elsewhere.crt"), filepath.Join(dir, "1a2b3c4d.0")))
	repointed, err := scanDirAt(dir, t0.Add(statsFresh))
	must(err)
	if got, want := names(t, repointed), []string{"1a2b3c4d.0", "Added.pem", "Elsewhere.pem", "Root.pem", "sub"}; !slices.Equal(got, want) {
		t.Errorf("after re-pointing a hash link: %q, want %q", got, want)
	}
}

// TestScanDirErrors: a missing directory, a file and an unreadable
// directory give the errors ReadDir gives, and nothing is remembered.
func TestScanDirErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := ScanDir(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("missing directory: %v, want not-exist", err)
	}
	file := filepath.Join(dir, "file")
	write(t, file, "x")
	if _, err := ScanDir(file); err == nil {
		t.Error("a file scanned as a directory")
	}
}

// TestScanDirConcurrent: the readers of a check scan at once; they share
// one result.
func TestScanDirConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, n := range []string{"a.pem", "b.pem", "c.pem"} {
		write(t, filepath.Join(dir, n), n)
	}
	var wg sync.WaitGroup
	got := make([][]DirFile, 8)
	for i := range got {
		wg.Go(func() {
			var err error
			if got[i], err = ScanDir(dir); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, g := range got[1:] {
		if len(g) != 3 || len(got[0]) != 3 || &g[0] != &got[0][0] {
			t.Fatalf("concurrent scans differ: %v, %v", names(t, g), names(t, got[0]))
		}
	}
}
