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

// TestDirBlocks: a package's directory is read as one set by one check
// and taken whole from the snapshot by the next, unread (a file written
// in place goes unseen), until a file is added, replaced by a rename or
// removed (the directory's times move). A set with a link, a file this
// user could write or a file that could not be read is read again at
// every check. It replaces the process's snapshot, so it does not run in
// parallel.
func TestDirBlocks(t *testing.T) {
	keptHere(t)
	dir := t.TempDir()
	pkg := filepath.Join(dir, "mozilla")
	if err := os.Mkdir(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, text []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(pkg, name), text, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// appendTo writes in place, as no package manager does.
	appendTo := func(name, root string) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(pkg, name), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(textOf(t, root)); err != nil {
			t.Fatal(err)
		}
	}
	check := func() int { // a check: how many certificates it sees
		t.Helper()
		freshProcess(t, filepath.Join(dir, SnapshotFile))
		blocks, ok := DirBlocks(pkg)
		if !ok {
			t.Fatal("DirBlocks: not a directory")
		}
		if err := SaveSnapshot(); err != nil {
			t.Fatal(err)
		}
		return len(blocks)
	}
	// Each step changes the directory after a pause: a directory's times
	// are taken from the clock's ticks.
	step := func(change func()) {
		t.Helper()
		time.Sleep(10 * time.Millisecond)
		change()
	}
	write("A.crt", textOf(t, "Root A"))
	write("B.crt", textOf(t, "Root B"))
	if n := check(); n != 2 {
		t.Fatalf("first check: %d certificates, want 2", n)
	}
	appendTo("A.crt", "Root A2")
	if n := check(); n != 2 {
		t.Fatalf("a file written in place: %d certificates; want the kept set's 2, the directory unchanged", n)
	}
	step(func() { write("C.crt", textOf(t, "Root C")) })
	if n := check(); n != 4 {
		t.Fatalf("a file added: %d certificates; want the set read again, 4", n)
	}
	step(func() {
		write(".B.crt.new", textOf(t, "Root B", "Root B2"))
		if err := os.Rename(filepath.Join(pkg, ".B.crt.new"), filepath.Join(pkg, "B.crt")); err != nil {
			t.Fatal(err)
		}
	})
	if n := check(); n != 5 {
		t.Fatalf("a file replaced by a rename: %d certificates; want the set read again, 5", n)
	}
	step(func() {
		if err := os.Remove(filepath.Join(pkg, "C.crt")); err != nil {
			t.Fatal(err)
		}
	})
	if n := check(); n != 4 {
		t.Fatalf("a file removed: %d certificates; want the set read again, 4", n)
	}

	for _, c := range []struct {
		name   string
		add    func()
		remove string
	}{
		{"a link", func() {
			if err := os.Symlink(filepath.Join(dir, "linked.crt"), filepath.Join(pkg, "L.crt")); err != nil {
				t.Fatal(err)
			}
		}, "L.crt"},
		{"a file this user could write", func() {
			write("W.crt", textOf(t, "Root W"))
			if err := os.Chmod(filepath.Join(pkg, "W.crt"), 0o666); err != nil {
				t.Fatal(err)
			}
		}, "W.crt"},
		{"a file that could not be read", func() {
			if err := os.Symlink(filepath.Join(dir, "missing.crt"), filepath.Join(pkg, "M.crt")); err != nil {
				t.Fatal(err)
			}
		}, "M.crt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "linked.crt"), textOf(t, "Root L"), 0o644); err != nil {
				t.Fatal(err)
			}
			step(c.add)
			n := check()
			appendTo("A.crt", "Root A3")
			if again := check(); again != n+1 {
				t.Errorf("%d certificates, then %d after a file was written in place; want the set read at each check", n, again)
			}
			step(func() {
				if err := os.Remove(filepath.Join(pkg, c.remove)); err != nil {
					t.Fatal(err)
				}
			})
			check()
		})
	}
	if _, ok := DirBlocks(filepath.Join(pkg, "A.crt")); ok {
		t.Error("DirBlocks on a file: ok")
	}
	if _, ok := DirBlocks(filepath.Join(dir, "missing")); ok {
		t.Error("DirBlocks on a missing directory: ok")
	}
}
