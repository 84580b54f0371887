package trust

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// later is a clock past racyWindow, so that files written by a test are
// old enough to be kept.
func later() time.Time { return time.Now().Add(time.Hour) }

// textOf is the PEM text of new roots named names, with a comment
// first (the blocks' lines start at 2).
func textOf(t *testing.T, names ...string) []byte {
	t.Helper()
	certs := make([]*x509.Certificate, len(names))
	for i, n := range names {
		certs[i] = newRoot(t, n)
	}
	return []byte("# a comment\n" + pemOf(certs...))
}

// statted stats path and gives its identity.
func statted(t *testing.T, path string) (string, os.FileInfo) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return identity(path, info), info
}

// TestSnapshotKeepsUnchangedFiles: a file read by one check is taken by
// the next while its stat is the same; a rewrite of the same size, a
// file changed just before it was read, and a text of another size are
// not.
func TestSnapshotKeepsUnchangedFiles(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("a file's change time is read on Linux only; elsewhere nothing is kept")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, SnapshotFile)
	store := filepath.Join(dir, "store.pem")
	data := textOf(t, "Kept One", "Kept Two")
	if err := os.WriteFile(store, data, 0o644); err != nil {
		t.Fatal(err)
	}
	blocks := decodeBlocks(data)
	headed := append([]Block(nil), blocks...)
	headed[1].Headers = true

	first := &snapshot{now: later}
	first.use(path)
	id, info := statted(t, store)
	if _, ok := first.lookup(id, info); ok {
		t.Fatal("a snapshot that does not exist holds the file")
	}
	first.keep(id, info, blocks)
	first.keepText("sha256:text", 1234, headed)
	if err := first.save(); err != nil {
		t.Fatal(err)
	}

	next := &snapshot{now: later}
	next.use(path)
	id, info = statted(t, store)
	if got, ok := next.lookup(id, info); !ok || !sameBlocks(got, blocks) {
		t.Errorf("the unchanged file: %v, want its blocks", ok)
	}
	if got, ok := next.lookupText("sha256:text", 1234); !ok || !sameBlocks(got, headed) {
		t.Errorf("the text: %v, want its blocks, headers and all", ok)
	}
	if _, ok := next.lookupText("sha256:text", 1235); ok {
		t.Error("a text of another size was taken")
	}
	if err := next.save(); err != nil {
		t.Fatal(err)
	}
	if next.dirty {
		t.Error("a snapshot that served everything is to be written again")
	}

	// The same size, other certificates: the change time moves.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(store, textOf(t, "Kept One", "Kept Six"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, info = statted(t, store)
	if _, ok := next.lookup(id, info); ok {
		t.Error("a file rewritten in place was taken from the snapshot")
	}

	// Read now, just after it changed: not kept.
	racy := &snapshot{now: time.Now}
	racy.use(filepath.Join(dir, "racy.bin"))
	racy.keep(id, info, decodeBlocks(data))
	if err := racy.save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "racy.bin")); !os.IsNotExist(err) {
		t.Errorf("a file changed within %s of its read was kept: %v", racyWindow, err)
	}
}

// TestSnapshotThroughBundle: Bundle takes an unchanged file from the
// snapshot an earlier process wrote, without reading it, and reads it
// again once it changes. It replaces the process's snapshot, so it does
// not run in parallel.
func TestSnapshotThroughBundle(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("a file's change time is read on Linux only; elsewhere nothing is kept")
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(store, textOf(t, "Bundled"), 0o644); err != nil {
		t.Fatal(err)
	}
	saved := snap
	t.Cleanup(func() { snap = saved })
	reads := 0
	read := func(p string) ([]byte, error) { reads++; return os.ReadFile(p) }
	forget := func() {
		bundlesMu.Lock()
		clear(bundles)
		bundlesMu.Unlock()
	}
	process := func() []Block { // a check: a fresh process's caches
		t.Helper()
		forget()
		snap = &snapshot{now: later}
		UseSnapshot(filepath.Join(dir, SnapshotFile))
		_, info := statted(t, store)
		blocks, err := Bundle(store, info, read)
		if err != nil {
			t.Fatal(err)
		}
		if err := SaveSnapshot(); err != nil {
			t.Fatal(err)
		}
		return blocks
	}
	first := process()
	second := process()
	if reads != 1 || !sameBlocks(first, second) {
		t.Errorf("two checks read the unchanged file %d times (blocks alike: %v), want once", reads, sameBlocks(first, second))
	}
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(store, textOf(t, "Rebundled"), 0o644); err != nil {
		t.Fatal(err)
	}
	if third := process(); reads != 2 || sameBlocks(third, first) {
		t.Errorf("the changed file: %d reads, blocks alike %v; want it read again", reads, sameBlocks(third, first))
	}
	names := make([]string, 40) // Node's roots, in kind: past minKeptText
	for i := range names {
		names[i] = fmt.Sprintf("In Memory %d", i)
	}
	text := textOf(t, names...)
	if len(text) < minKeptText {
		t.Fatalf("the text is %d bytes, under minKeptText", len(text))
	}
	process()
	want := Blocks(text)
	if err := SaveSnapshot(); err != nil {
		t.Fatal(err)
	}
	process()
	if got, ok := snap.lookupText(contentID(text), len(text)); !ok || !sameBlocks(got, want) || !sameBlocks(Blocks(text), want) {
		t.Errorf("a text decoded by an earlier check: kept %v", ok)
	}
}

// TestSnapshotIgnoresDamage: a snapshot cut short, with another magic, an
// index past its certificates or bytes after its end is no snapshot.
func TestSnapshotIgnoresDamage(t *testing.T) {
	t.Parallel()
	blocks := decodeBlocks(textOf(t, "Damaged"))
	good := encodeSnapshot(map[string]snapFile{"1:2": {size: 3, mtime: 4, ctime: 5, blocks: blocks}})
	if files, err := decodeSnapshot(good); err != nil || !sameBlocks(files["1:2"].blocks, blocks) {
		t.Fatalf("the good snapshot: %v", err)
	}
	badIndex := encodeSnapshot(map[string]snapFile{"1:2": {size: 3, mtime: 4, ctime: 5, blocks: blocks}})
	badIndex[len(badIndex)-1] = 9
	for name, data := range map[string][]byte{
		"empty":        nil,
		"cut short":    good[:len(good)-3],
		"other magic":  append([]byte("mitmwatch stores 2\n"), good[len(snapshotMagic):]...),
		"bad index":    badIndex,
		"trailing":     append(bytes.Clone(good), 0),
		"huge a count": append([]byte(snapshotMagic), 0xff, 0xff, 0xff, 0xff, 0x0f),
	} {
		if _, err := decodeSnapshot(data); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, SnapshotFile)
	if err := os.WriteFile(path, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	s := &snapshot{now: later}
	s.use(path)
	store := filepath.Join(dir, "x.pem")
	if err := os.WriteFile(store, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, info := statted(t, store)
	if _, ok := s.lookup(id, info); ok {
		t.Error("a damaged snapshot served a file")
	}
}

// FuzzDecodeSnapshot: garbage is rejected or read without panicking,
// within the bounds, and what is read encodes back to what decodes the
// same.
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add([]byte(snapshotMagic))
	f.Add(encodeSnapshot(map[string]snapFile{"1:2": {size: 3, mtime: 4, ctime: 5, blocks: []Block{{Type: "CERTIFICATE", DER: []byte{0x30, 0}, Line: 2}}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := decodeSnapshot(data)
		if err != nil {
			return
		}
		again, err := decodeSnapshot(encodeSnapshot(files))
		if err != nil || len(again) != len(files) {
			t.Fatalf("re-encoded: %v, %d files of %d", err, len(again), len(files))
		}
		for id, f := range files {
			if !sameBlocks(again[id].blocks, f.blocks) {
				t.Fatalf("%q: blocks differ after re-encoding", id)
			}
		}
	})
}

// TestWritable: a user's own file, or one its group or anyone may write,
// is never served from the snapshot; root's snapshot serves anything. It
// changes the process's idea of its user, so it does not run in
// parallel, and needs root to give a file away.
func TestWritable(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getuid() != 0 {
		t.Skip("needs root on Linux to give files to another user")
	}
	saved := ourUID
	t.Cleanup(func() { ourUID = saved })
	path := filepath.Join(t.TempDir(), "store.pem")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		what       string
		us, owner  int
		mode       os.FileMode
		isWritable bool
	}{
		{"root's file, as root", 0, 0, 0o644, false},
		{"root's file, as another user", 4321, 0, 0o644, false},
		{"root's group-writable file", 4321, 0, 0o664, true},
		{"root's world-writable file", 4321, 0, 0o646, true},
		{"the user's own file", 4321, 4321, 0o644, true},
		{"another user's file", 4321, 1234, 0o644, false},
	} {
		ourUID = tt.us
		if err := os.Chmod(path, tt.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, tt.owner, 0); err != nil {
			t.Fatal(err)
		}
		if _, info := statted(t, path); writable(info) != tt.isWritable {
			t.Errorf("%s: writable %v, want %v", tt.what, !tt.isWritable, tt.isWritable)
		}
	}
}
