package trust

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/atomicfile"
)

// Every check reads the same store files: the system bundle, a hundred
// and fifty files of the certificate directory, the build tools'
// bundles. Opening, reading and decoding them is a sixth of a check's
// CPU, on a machine where they change a few times a year. A snapshot
// keeps the blocks of the files a process read, each under its file's
// identity and stat (device, inode, size, modification and change
// times, as git's index keeps a file), so that the next check takes a
// file's blocks from one read of the snapshot while its stat is the
// same.
//
// A file's change time moves with every write and cannot be set back
// by its owner, so a file that matches its stat holds what was read.
// One caveat, git's "racily clean" entry: a file written twice within
// the clock's granularity keeps one stat for two contents. So a file
// changed less than racyWindow before it was read is never kept, and is
// read again by the next check.
//
// The snapshot is the user's own file: who can write it could make a
// check see other certificates in a file than the file holds. So it
// serves only files this user cannot write (the system's, owned by root
// and writable by root alone): hiding a root there means writing the
// file, and the file's stat then tells. A file the user can write (a
// bundle in the home directory) is read every time. Run as root, a check
// takes every file from root's own snapshot.
//
// The snapshot is an optimisation only: a missing, unreadable, corrupt or
// foreign one is no snapshot, and the files are read.

// SnapshotFile is the snapshot's name in check's state directory.
const SnapshotFile = "stores.bin"

const (
	snapshotMagic  = "mitmwatch stores 2\n"
	maxSnapshot    = 16 << 20 // bytes: a few stores of a few hundred roots
	maxSnapFiles   = 4096
	maxSnapBlocks  = 8192 // in all: Debian's stores and a few bundles are ~1000
	maxSnapNames   = 8192 // directory entries in all: Debian's is ~300
	racyWindow     = 2 * time.Second
	maxSnapTypeLen = 64
)

// snapshot is the process's snapshot: the one read (loaded, by
// identity) and the one to write (used: every file this process read or
// took from the snapshot).
type snapshot struct {
	mu    sync.Mutex
	path  string
	load  func() map[string]snapFile
	used  map[string]snapFile
	dirty bool // used holds a file loaded lacks, or a changed one
	now   func() time.Time
}

// snapFile is one file's blocks, or one certificate directory's names
// (ScanDir's), with the stat they were read under.
type snapFile struct {
	size, mtime, ctime int64
	blocks             []Block
	names              []string
}

var snap = &snapshot{now: time.Now}

// UseSnapshot makes the process take unchanged store files from the
// snapshot at path and keep what it reads for SaveSnapshot. It is for a
// short process that reads the stores once (check), before it reads any.
func UseSnapshot(path string) {
	snap.use(path)
}

func (s *snapshot) use(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == path {
		return
	}
	s.path, s.used, s.dirty = path, map[string]snapFile{}, false
	s.load = sync.OnceValue(func() map[string]snapFile {
		data, err := readOwn(path, maxSnapshot)
		if err != nil {
			return nil
		}
		files, err := decodeSnapshot(data)
		if err != nil {
			return nil
		}
		return files
	})
}

// statOf is the part of a stat a kept file must match; ok is false where
// the system gives no change time, and nothing is kept.
func statOf(info os.FileInfo) (size, mtime, ctime int64, ok bool) {
	c := changeTime(info)
	return info.Size(), info.ModTime().UnixNano(), c.UnixNano(), !c.IsZero()
}

// lookup returns the blocks kept for the file with identity id, when it
// has the stat it had when they were read.
func (s *snapshot) lookup(id string, info os.FileInfo) ([]Block, bool) {
	f, ok := s.entry(id, info)
	return f.blocks, ok && f.names == nil
}

// entry returns what is kept under id for a file or directory, when it
// has the stat it had when it was read.
func (s *snapshot) entry(id string, info os.FileInfo) (snapFile, bool) {
	s.mu.Lock()
	path, load := s.path, s.load
	s.mu.Unlock()
	size, mtime, ctime, ok := statOf(info)
	if path == "" || !ok || writable(info) {
		return snapFile{}, false
	}
	f, ok := load()[id]
	if !ok || f.size != size || f.mtime != mtime || f.ctime != ctime {
		return snapFile{}, false
	}
	s.use1(path, id, f)
	return f, true
}

// use1 records that the process used a kept entry, unless the snapshot
// in use has changed meanwhile.
func (s *snapshot) use1(path, id string, f snapFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == path {
		s.used[id] = f
	}
}

// keep records the blocks read at readAt (the snapshot's clock, taken
// before the read) from the file with identity id, stat'ed as info
// before that, unless it had changed too recently before the read to be
// told apart from a second write. What a process read earlier is judged
// by when it was read, not by when it is kept: a file read while it was
// racy stays unkept, however long the process runs. A file the process
// read before the snapshot was in use is kept too, and one it already
// keeps as it is changes nothing.
func (s *snapshot) keep(id string, info os.FileInfo, blocks []Block, readAt time.Time) {
	s.keepEntry(id, info, snapFile{blocks: blocks}, readAt)
}

// clock is the snapshot's clock, for a reader to note when it read.
func (s *snapshot) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

// keepEntry is keep for what was read under id: a file's blocks or a
// directory's names.
func (s *snapshot) keepEntry(id string, info os.FileInfo, f snapFile, readAt time.Time) {
	s.mu.Lock()
	path, load := s.path, s.load
	s.mu.Unlock()
	size, mtime, ctime, ok := statOf(info)
	if path == "" || !ok || writable(info) {
		return
	}
	f.size, f.mtime, f.ctime = size, mtime, ctime
	same := func(g snapFile, ok bool) bool { return ok && g.size == size && g.mtime == mtime && g.ctime == ctime }
	loaded, inLoaded := load()[id]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path != path {
		return
	}
	used, inUsed := s.used[id]
	switch {
	case same(used, inUsed), readAt.IsZero(), readAt.UnixNano()-max(mtime, ctime) < int64(racyWindow):
	case same(loaded, inLoaded):
		s.used[id] = loaded
	default:
		s.used[id] = f
		s.dirty = true
	}
}

// Text decoded from memory (Blocks: Node's bundled roots, as the tool
// printed them) is kept under the SHA-256 of the text itself, which
// needs no stat to stay true.

// contentID is the identity of a text kept by its content.
func contentID(data []byte) string { return textID(sha256.Sum256(data)) }

// textID is the identity of a text of this SHA-256.
func textID(sum [32]byte) string { return "sha256:" + hex.EncodeToString(sum[:]) }

// lookupText returns the blocks kept for a text with identity id.
func (s *snapshot) lookupText(id string, size int) ([]Block, bool) {
	f, path, ok := s.peekText(id, size)
	if ok {
		s.use1(path, id, f)
	}
	return f.blocks, ok
}

// peekText is lookupText without marking the text used: a text looked at
// but not taken is not kept for the next check.
func (s *snapshot) peekText(id string, size int) (snapFile, string, bool) {
	s.mu.Lock()
	path, load := s.path, s.load
	s.mu.Unlock()
	if path == "" {
		return snapFile{}, "", false
	}
	f, ok := load()[id]
	if !ok || f.size != int64(size) || f.mtime != 0 || f.ctime != 0 {
		return snapFile{}, "", false
	}
	return f, path, true
}

// keepText records the blocks decoded from a text with identity id.
func (s *snapshot) keepText(id string, size int, blocks []Block) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" {
		return
	}
	s.used[id] = snapFile{size: int64(size), blocks: blocks}
	s.dirty = true
}

// active reports whether a snapshot is in use.
func (s *snapshot) active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.path != ""
}

// A certificate directory's listing (the entries ScanDir keeps, after a
// readlink of each of its hundreds of links) is kept the same way, under
// "dir:" and the directory's identity: adding, removing or re-pointing an
// entry moves the directory's times.

// lookupDir returns the names kept for the directory with identity id
// (none for a directory of links to one another only).
func (s *snapshot) lookupDir(id string, info os.FileInfo) ([]string, bool) {
	f, ok := s.entry("dir:"+id, info)
	return f.names, ok
}

// keepDir records the names read from the directory with identity id.
func (s *snapshot) keepDir(id string, info os.FileInfo, names []string, readAt time.Time) {
	s.keepEntry("dir:"+id, info, snapFile{names: slices.Clip(names)}, readAt)
}

// SaveSnapshot writes the files this process read to the snapshot, when
// one of them was not in it as it is: the next check then reads none of
// them. Files no longer read are dropped.
func SaveSnapshot() error {
	return snap.save()
}

func (s *snapshot) save() error {
	s.mu.Lock()
	path, dirty := s.path, s.dirty
	files := make(map[string]snapFile, len(s.used))
	for id, f := range s.used {
		files[id] = f
	}
	s.dirty = false
	s.mu.Unlock()
	if path == "" || !dirty {
		return nil
	}
	data := encodeSnapshot(files)
	if len(data) > maxSnapshot {
		return nil // stores this large are read, not kept
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("trust: keeping the stores: %w", err)
	}
	if err := ownedAlone(filepath.Dir(path), true); err != nil {
		// Not this user's own directory (another user's HOME): what is
		// written there could be replaced, and would not be read back.
		return fmt.Errorf("trust: keeping the stores: %w", err)
	}
	if err := atomicfile.Replace(path, data, 0o600); err != nil {
		return fmt.Errorf("trust: keeping the stores: %w", err)
	}
	return nil
}

// The snapshot's encoding: the magic line, then the certificates' DER
// once each, then every file with its blocks naming them by index. All
// integers are unsigned varints; strings and DER are length-prefixed.
//
//	magic
//	nDER  { len DER }
//	nFile { len id  size mtime ctime  nBlock { len type  line  headers  der }  nName { len name } }

func encodeSnapshot(files map[string]snapFile) []byte {
	index := map[[32]byte]uint64{}
	var ders [][]byte
	for _, f := range files {
		for _, b := range f.blocks {
			if _, ok := index[b.Sum]; !ok {
				index[b.Sum] = uint64(len(ders))
				ders = append(ders, b.DER)
			}
		}
	}
	out := []byte(snapshotMagic)
	out = binary.AppendUvarint(out, uint64(len(ders)))
	for _, d := range ders {
		out = binary.AppendUvarint(out, uint64(len(d)))
		out = append(out, d...)
	}
	out = binary.AppendUvarint(out, uint64(len(files)))
	for id, f := range files {
		out = binary.AppendUvarint(out, uint64(len(id)))
		out = append(out, id...)
		out = binary.AppendUvarint(out, uint64(f.size))
		out = binary.AppendUvarint(out, uint64(f.mtime))
		out = binary.AppendUvarint(out, uint64(f.ctime))
		out = binary.AppendUvarint(out, uint64(len(f.blocks)))
		for _, b := range f.blocks {
			out = binary.AppendUvarint(out, uint64(len(b.Type)))
			out = append(out, b.Type...)
			out = binary.AppendUvarint(out, uint64(b.Line))
			headers := uint64(0)
			if b.Headers {
				headers = 1
			}
			out = binary.AppendUvarint(out, headers)
			out = binary.AppendUvarint(out, index[b.Sum])
		}
		out = binary.AppendUvarint(out, uint64(len(f.names)))
		for _, n := range f.names {
			out = binary.AppendUvarint(out, uint64(len(n)))
			out = append(out, n...)
		}
	}
	return out
}

var errSnapshot = errors.New("not a store snapshot")

// decodeSnapshot reads a snapshot. Each DER's SHA-256 is computed, not
// read: a certificate's identity across files comes from its bytes
// alone. Any malformation rejects the whole snapshot.
func decodeSnapshot(data []byte) (map[string]snapFile, error) {
	if len(data) > maxSnapshot || !bytes.HasPrefix(data, []byte(snapshotMagic)) {
		return nil, errSnapshot
	}
	r := snapReader{data: data[len(snapshotMagic):]}
	nDER := r.count(maxSnapBlocks)
	ders := make([]Block, 0, min(nDER, len(r.data))) // each needs a byte at least
	for range nDER {
		der := r.bytes()
		if r.err != nil {
			return nil, r.err
		}
		ders = append(ders, Block{DER: der, Sum: sha256.Sum256(der)})
	}
	nFile := r.count(maxSnapFiles)
	files := make(map[string]snapFile, min(nFile, len(r.data)))
	budget, names := maxSnapBlocks, maxSnapNames // in all the files
	for range nFile {
		id := string(r.bytes())
		f := snapFile{size: int64(r.uint()), mtime: int64(r.uint()), ctime: int64(r.uint())}
		nBlock := r.count(budget)
		budget -= nBlock
		f.blocks = sized[Block](nBlock)
		for range nBlock {
			typ := r.bytes()
			line, headers, i := r.uint(), r.uint(), r.uint()
			if r.err != nil || len(typ) > maxSnapTypeLen || line > 1<<31 || headers > 1 || i >= uint64(len(ders)) {
				return nil, errSnapshot
			}
			b := ders[i]
			b.Type, b.Line, b.Headers = blockType(typ), int(line), headers == 1
			f.blocks = append(f.blocks, b)
		}
		nName := r.count(names)
		names -= nName
		f.names = sized[string](nName)
		for range nName {
			n := r.bytes()
			if r.err != nil || len(n) == 0 || bytes.ContainsRune(n, '/') || string(n) == "." || string(n) == ".." {
				return nil, errSnapshot
			}
			f.names = append(f.names, string(n))
		}
		if r.err != nil || id == "" {
			return nil, errSnapshot
		}
		files[id] = f
	}
	if r.err != nil || len(r.data) != 0 {
		return nil, errSnapshot
	}
	return files, nil
}

// sized is an empty slice for n elements, nil for none (a file's entry
// has no names, a directory's no blocks). Sized by the counts, which the
// budgets bound: appending would copy the blocks of a bundle of hundreds
// several times over.
func sized[T any](n int) []T {
	if n == 0 {
		return nil
	}
	return make([]T, 0, n)
}

// blockType is a block's type as a string, the usual one without a copy
// of its own for each of the hundreds of blocks.
func blockType(typ []byte) string {
	if string(typ) == "CERTIFICATE" {
		return "CERTIFICATE"
	}
	return string(typ)
}

// snapReader reads the snapshot's fields, keeping the first error.
type snapReader struct {
	data []byte
	err  error
}

func (r *snapReader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.data)
	if n <= 0 {
		r.err = errSnapshot
		return 0
	}
	r.data = r.data[n:]
	return v
}

func (r *snapReader) count(limit int) int {
	n := r.uint()
	if n > uint64(limit) {
		r.err = errSnapshot
		return 0
	}
	return int(n)
}

func (r *snapReader) bytes() []byte {
	n := r.uint()
	if r.err != nil || n > uint64(len(r.data)) {
		r.err = errSnapshot
		return nil
	}
	b := r.data[:n:n]
	r.data = r.data[n:]
	return b
}
