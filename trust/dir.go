package trust

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// A store directory (/etc/ssl/certs) is read by three readers in a check:
// the system store, the audit and the build tools' stores. Each used to
// list it and readlink every one of its ~300 entries to skip c_rehash's
// hash links, then stat the ~150 others through their links: a few
// milliseconds of system calls each, for the same answer. ScanDir gives
// them one scan.

// DirFile is an entry of a certificate directory that is read for its
// certificates: any entry but a link to another entry of the same
// directory.
type DirFile struct {
	Path string      // the directory joined with the entry's name
	Info os.FileInfo // stat'ed following links; nil when Err is set
	Err  error       // the stat's error
}

// statsFresh is how long a scan's stats of the directory's files are
// given out again. A check's readers all scan within it; a daemon's next
// round, minutes later, stats the files afresh and sees a file rewritten
// in place.
const statsFresh = time.Second

// maxDirs bounds the directories remembered; settings name a few.
const maxDirs = 64

// dirScan is one directory's scan.
type dirScan struct {
	mu    sync.Mutex // held while scanning: concurrent readers wait for one scan
	info  os.FileInfo
	names []string // the entries read for certificates, in directory order
	files []DirFile
	at    time.Time // when files were stat'ed
	// listed is when names were read (the snapshot's clock), zero when
	// they came from the snapshot.
	listed time.Time
}

var (
	dirsMu sync.Mutex
	dirs   = map[string]*dirScan{}
)

// ScanDir lists the files of a certificate directory as crypto/x509 reads
// them: every entry but links to another entry of the same directory
// (c_rehash's hash links, whose files are read under their own names),
// stat'ed following links. The error is that of reading the directory
// itself. The slice is shared: callers must not modify it.
//
// The list of names is kept while the directory is unchanged (the same
// inode, modification and change times: adding, removing or re-pointing a
// link changes them, since a link cannot be re-pointed in place), and the
// stats for statsFresh.
func ScanDir(dir string) ([]DirFile, error) { return scanDirAt(dir, time.Now()) }

// scanDirAt is ScanDir at the time now.
func scanDirAt(dir string, now time.Time) ([]DirFile, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	s := scanOf(dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.info == nil || !sameDirectory(s.info, info) {
		// The last check's listing, while the directory's times say no
		// entry was added, removed or re-pointed (snapshot.go).
		id := identity(dir, info)
		names, ok := snap.lookupDir(id, info)
		var listed time.Time
		if !ok {
			listed = snap.clock()
			entries, err := os.ReadDir(dir)
			if err != nil {
				s.info, s.files = nil, nil
				return nil, err
			}
			names = make([]string, 0, len(entries))
			for _, e := range entries {
				if !SameDirLink(dir, e) {
					names = append(names, e.Name())
				}
			}
			snap.keepDir(id, info, names, listed)
		}
		s.info, s.names, s.files, s.listed = info, names, nil, listed
	} else {
		snap.keepDir(identity(dir, info), info, s.names, s.listed)
	}
	// A reader that read the clock before the kept stats were taken (it
	// waited on mu while they were) is served by them: they are fresher
	// than it asked for.
	if s.files != nil && now.Sub(s.at) < statsFresh {
		return s.files, nil
	}
	files := make([]DirFile, len(s.names))
	for i, name := range s.names {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		files[i] = DirFile{Path: path, Info: fi, Err: err}
	}
	s.files, s.at = files, now
	return files, nil
}

func scanOf(dir string) *dirScan {
	dirsMu.Lock()
	defer dirsMu.Unlock()
	s, ok := dirs[dir]
	if !ok {
		if len(dirs) >= maxDirs {
			clear(dirs)
		}
		s = &dirScan{}
		dirs[dir] = s
	}
	return s
}

// sameDirectory reports whether two stats are of the same directory with
// the same entries, as far as its times tell.
func sameDirectory(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size() && changeTime(a).Equal(changeTime(b))
}

// SameDirLink reports whether a directory entry is a link to another
// entry of the same directory, as c_rehash's hash links are: x509 skips
// them (the file they name is read under its own name), and a readlink
// costs a third of the stat that would follow the link's chain.
func SameDirLink(dir string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink == 0 {
		return false
	}
	target, err := os.Readlink(filepath.Join(dir, e.Name()))
	return err == nil && !strings.Contains(target, "/")
}

// DirBlocks gives the blocks of the files of a directory a package
// manager keeps (a distribution's copy of the Mozilla roots) as one set.
// The snapshot keeps the set while the directory's own stat is the same,
// so that a check neither stats nor reads its hundred and fifty files. A
// package manager replaces a file (a new one renamed over it: dpkg, rpm)
// rather than write it in place, which moves the directory's times as
// adding or removing one does; a file written in place is seen once the
// directory next changes.
//
// The set is kept only when it was read whole, from regular files this
// user cannot write (the snapshot's rule for a file): a link's target, or
// a file the user could rewrite, changes without the directory's times,
// and a failed read would be kept until they move. ok is false where dir
// is not a directory.
func DirBlocks(dir string) (blocks []Block, ok bool) {
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		return nil, false
	}
	id := "set:" + identity(dir, info)
	if f, ok := snap.entry(id, info); ok && f.names == nil {
		return f.blocks, true
	}
	readAt := snap.clock()
	entries, err := os.ReadDir(dir)
	whole := err == nil
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path) // following links, as the store's readers do
		if err != nil {
			whole = false
			continue
		}
		if fi.IsDir() {
			continue // never read: the set is the directory's files
		}
		if !e.Type().IsRegular() || writable(fi) {
			whole = false
		}
		b, err := Bundle(path, fi, readRegular)
		if err != nil {
			whole = false
			continue
		}
		blocks = append(blocks, b...)
	}
	if whole {
		snap.keepEntry(id, info, snapFile{blocks: slices.Clip(blocks)}, readAt)
	}
	return blocks, true
}
