//go:build unix

package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
)

// later is a clock past racyWindow, so that files written by a test are
// old enough to be kept.
func later() time.Time { return time.Now().Add(time.Hour) }

// keptHere skips a test where nothing is kept (no change time is read
// but on Linux), and makes the test's files another user's
// (asAnotherUser).
func keptHere(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("a file's change time is read on Linux only; elsewhere nothing is kept")
	}
	asAnotherUser(t)
}

// asAnotherUser makes the test's files another user's to the snapshot,
// which then serves them (as it serves root's files to a user), and
// restores the process's user after the test. Tests that call it do not
// run in parallel.
func asAnotherUser(t *testing.T) {
	saved := ourUID
	ourUID = os.Geteuid() + 4321
	t.Cleanup(func() { ourUID = saved })
}

// freshProcess forgets what this process read (its bundles and
// directory listings) and gives it the snapshot at path afresh, as the
// next check starts; the test's snapshot is dropped when it ends.
func freshProcess(t *testing.T, path string) {
	t.Helper()
	t.Cleanup(func() { snap.restart("", time.Now) })
	bundlesMu.Lock()
	clear(bundles)
	bundlesMu.Unlock()
	dirsMu.Lock()
	clear(dirs)
	dirsMu.Unlock()
	snap.restart(path, later)
}

// restart is a fresh process's snapshot at path, with the clock now.
func (s *snapshot) restart(path string, now func() time.Time) {
	s.mu.Lock()
	s.path, s.now = "", now
	s.mu.Unlock()
	s.use(path)
}

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
	keptHere(t)
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
	first.keep(id, info, blocks, first.clock())
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

	// Rewritten in place, the same size, its modification time set back:
	// only the change time tells.
	time.Sleep(10 * time.Millisecond)
	rewritten := bytes.Replace(data, []byte("# a comment"), []byte("# b comment"), 1)
	if err := os.WriteFile(store, rewritten, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(store, time.Time{}, info.ModTime()); err != nil {
		t.Fatal(err)
	}
	id, now := statted(t, store)
	if now.Size() != info.Size() || !now.ModTime().Equal(info.ModTime()) || changeTime(now).Equal(changeTime(info)) {
		t.Fatalf("the rewrite changed size or modification time, or not the change time")
	}
	if _, ok := next.lookup(id, now); ok {
		t.Error("a file rewritten in place was taken from the snapshot")
	}
	info = now

	// Read now, just after it changed: not kept.
	racy := &snapshot{now: time.Now}
	racy.use(filepath.Join(dir, "racy.bin"))
	racy.keep(id, info, decodeBlocks(data), racy.clock())
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
	keptHere(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(store, textOf(t, "Bundled"), 0o644); err != nil {
		t.Fatal(err)
	}
	reads := 0
	read := func(p string) ([]byte, error) { reads++; return os.ReadFile(p) }
	process := func() []Block { // a check
		t.Helper()
		freshProcess(t, filepath.Join(dir, SnapshotFile))
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
		"other magic":  append([]byte("mitmwatch stores 1\n"), good[len(snapshotMagic):]...),
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
	f.Add(encodeSnapshot(map[string]snapFile{"1:2": {size: 3, mtime: 4, ctime: 5, blocks: []Block{{Type: "CERTIFICATE", DER: []byte{0x30, 0}, Line: 2}}},
		"dir:1:3": {size: 6, mtime: 7, ctime: 8, names: []string{"a.pem", "b.pem"}}}))
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
			if !sameBlocks(again[id].blocks, f.blocks) || !slices.Equal(again[id].names, f.names) {
				t.Fatalf("%q: blocks or names differ after re-encoding", id)
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

// TestSnapshotOwnedAlone: a snapshot is read only when it and its
// directory are this user's alone: not one another user owns, one in a
// directory others may write, a link to a good one, or a FIFO (which
// would hold the check). It needs root to give files away.
func TestSnapshotOwnedAlone(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getuid() != 0 {
		t.Skip("needs root on Linux to give files to another user")
	}
	asAnotherUser(t)
	base := t.TempDir()
	store := filepath.Join(base, "store.pem")
	if err := os.WriteFile(store, textOf(t, "Owned"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, info := statted(t, store)
	// good writes a snapshot holding store in a directory of its own.
	good := func(name string) string {
		t.Helper()
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		s := &snapshot{now: later}
		s.use(filepath.Join(dir, SnapshotFile))
		s.keep(id, info, decodeBlocks(textOf(t, "Owned")), s.clock())
		if err := s.save(); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, SnapshotFile)
	}
	serves := func(path string) bool {
		t.Helper()
		done := make(chan bool, 1)
		go func() {
			s := &snapshot{now: later}
			s.use(path)
			_, ok := s.lookup(id, info)
			done <- ok
		}()
		select {
		case ok := <-done:
			return ok
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: reading the snapshot hangs", path)
			return false
		}
	}
	if !serves(good("mine")) {
		t.Fatal("this user's own snapshot is not read")
	}
	theirs := good("theirs")
	if err := os.Chown(theirs, 4321, 4321); err != nil {
		t.Fatal(err)
	}
	open := good("open")
	if err := os.Chmod(filepath.Dir(open), 0o777); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link", SnapshotFile)
	if err := os.Mkdir(filepath.Dir(link), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(good("target"), link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(base, "fifo", SnapshotFile)
	if err := os.Mkdir(filepath.Dir(fifo), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for what, path := range map[string]string{"another user's": theirs, "in a directory anyone writes": open, "a link": link, "a FIFO": fifo} {
		if serves(path) {
			t.Errorf("a snapshot %s was read", what)
		}
	}
	s := &snapshot{now: later}
	s.use(filepath.Join(filepath.Dir(open), "again.bin"))
	s.keep(id, info, decodeBlocks(textOf(t, "Owned")), s.clock())
	if err := s.save(); err == nil {
		t.Error("a snapshot was written in a directory anyone writes")
	}
}

// TestSnapshotKeepsDirectoryListings: a certificate directory's listing
// (its entries but the links to one another) is kept as the files are,
// and a directory an entry was added to is listed again.
func TestSnapshotKeepsDirectoryListings(t *testing.T) {
	keptHere(t)
	base := t.TempDir()
	certs := filepath.Join(base, "certs")
	if err := os.Mkdir(certs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a.pem", "b.pem"} {
		write(t, filepath.Join(certs, n), "x")
	}
	if err := os.Symlink("a.pem", filepath.Join(certs, "1a2b3c4d.0")); err != nil {
		t.Fatal(err)
	}
	process := func() []string { // a check
		t.Helper()
		freshProcess(t, filepath.Join(base, SnapshotFile))
		files, err := ScanDir(certs)
		if err != nil {
			t.Fatal(err)
		}
		if err := SaveSnapshot(); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range files {
			names = append(names, filepath.Base(f.Path))
		}
		return names
	}
	if got := process(); fmt.Sprint(got) != "[a.pem b.pem]" {
		t.Fatalf("listed %v", got)
	}
	snap.restart(filepath.Join(base, SnapshotFile), later)
	id, info := statted(t, certs)
	if names, ok := snap.lookupDir(id, info); !ok || fmt.Sprint(names) != "[a.pem b.pem]" {
		t.Errorf("the next check's listing: %v, %v", names, ok)
	}
	if got := process(); fmt.Sprint(got) != "[a.pem b.pem]" {
		t.Errorf("listed from the snapshot: %v", got)
	}
	time.Sleep(10 * time.Millisecond)
	write(t, filepath.Join(certs, "c.pem"), "x")
	if got := process(); fmt.Sprint(got) != "[a.pem b.pem c.pem]" {
		t.Errorf("after an entry was added: %v", got)
	}
}

// TestSnapshotJudgesARacyReadByItsTime: a listing and a file read while
// they had just changed are not kept later in the same process, when the
// clock has moved past the racy window but what was read has not been
// read again: a write in the same tick after the read would have left
// their stat as it was.
func TestSnapshotJudgesARacyReadByItsTime(t *testing.T) {
	keptHere(t)
	base := t.TempDir()
	certs := filepath.Join(base, "certs")
	if err := os.Mkdir(certs, 0o755); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(certs, "a.pem")
	write(t, store, string(textOf(t, "Racy")))
	path := filepath.Join(base, SnapshotFile)
	freshProcess(t, path)
	snap.restart(path, time.Now) // the files were written just now
	read := func() {
		t.Helper()
		if _, err := ScanDir(certs); err != nil {
			t.Fatal(err)
		}
		_, info := statted(t, store)
		if _, err := Bundle(store, info, os.ReadFile); err != nil {
			t.Fatal(err)
		}
	}
	read()
	snap.mu.Lock()
	snap.now = later // the process runs on past the window
	snap.mu.Unlock()
	read()
	if err := SaveSnapshot(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("what was read while racy was kept once the clock moved on: %v", err)
	}
}

// TestTextKnownBySum: a text an earlier check decoded is known by its
// SHA-256 and size alone (KeepsText), and its blocks given without it
// (KeptText); only taking them, not asking, keeps it for the next
// check. It replaces the process's snapshot, so it does not run in
// parallel.
func TestTextKnownBySum(t *testing.T) {
	path := filepath.Join(t.TempDir(), SnapshotFile)
	names := make([]string, 40) // Node's roots, in kind: past minKeptText
	for i := range names {
		names[i] = fmt.Sprintf("Known %d", i)
	}
	text := textOf(t, names...)
	sum := sha256.Sum256(text)
	want := decodeBlocks(text)

	freshProcess(t, path)
	if KeepsText(sum, len(text)) {
		t.Fatal("a text no check has decoded is known")
	}
	if got := Blocks(text); !sameBlocks(got, want) {
		t.Fatal("Blocks: not the text's blocks")
	}
	if err := SaveSnapshot(); err != nil {
		t.Fatal(err)
	}

	freshProcess(t, path)
	other := sum
	other[0] ^= 1
	if !KeepsText(sum, len(text)) || KeepsText(sum, len(text)+1) || KeepsText(other, len(text)) {
		t.Fatalf("known: %v; of another size %v; another digest %v; want it alone", KeepsText(sum, len(text)), KeepsText(sum, len(text)+1), KeepsText(other, len(text)))
	}
	id := textID(sum)
	if used := usedNow(id); used {
		t.Error("asking whether a text is known kept it for the next check")
	}
	if got, ok := KeptText(sum, len(text)); !ok || !sameBlocks(got, want) {
		t.Error("KeptText: not the blocks kept")
	}
	if _, ok := KeptText(other, len(text)); ok {
		t.Error("KeptText: blocks for another digest")
	}
	if used := usedNow(id); !used {
		t.Error("a text taken from the snapshot is not kept for the next check")
	}

	freshProcess(t, "")
	if KeepsText(sum, len(text)) {
		t.Error("a text is known with no snapshot in use")
	}
}

// usedNow reports whether this process took the entry id.
func usedNow(id string) bool {
	snap.mu.Lock()
	defer snap.mu.Unlock()
	_, ok := snap.used[id]
	return ok
}
