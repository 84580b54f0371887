//go:build unix

package trust

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// identity names a file by device and inode, so that the links of a
// certificate directory (c_rehash's and the .pem names) and the file they
// point at share one read.
func identity(path string, info os.FileInfo) string {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return strconv.FormatUint(uint64(st.Dev), 16) + ":" + strconv.FormatUint(uint64(st.Ino), 16)
	}
	return path
}

// ourUID is the user this process runs as.
var ourUID = os.Getuid()

// writable reports whether this process's user could have written the
// file: it owns it, or the file is writable by its group or by anyone
// (whatever the groups this user is in). Root could write anything, and
// owns the snapshot it would be tricked by.
func writable(info os.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	return ourUID != 0 && (int(st.Uid) == ourUID || info.Mode().Perm()&0o022 != 0)
}

// readOwn reads the file at path when it and its directory are this
// process's user's alone: owned by it, written by no one else, a regular
// file (no link followed, no FIFO waited on) of at most max bytes. The
// snapshot is trusted with what the stores hold; one someone else could
// have placed (a cache directory reached through another user's HOME) is
// none.
func readOwn(path string, max int64) ([]byte, error) {
	if err := ownedAlone(filepath.Dir(path), true); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := ownedInfo(path, info, false); err != nil {
		return nil, err
	}
	if info.Size() > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	// Sized by the stat: io.ReadAll's doubling would copy a snapshot of
	// hundreds of kilobytes a dozen times.
	buf := bytes.NewBuffer(make([]byte, 0, info.Size()+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(f, max+1)); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return data, nil
}

// ownedAlone checks that path is this process's user's alone (ownedInfo),
// without following a link.
func ownedAlone(path string, dir bool) error {
	info, err := os.Lstat(path)
	if err != nil {
		return err
	}
	return ownedInfo(path, info, dir)
}

func ownedInfo(path string, info os.FileInfo, dir bool) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return fmt.Errorf("%s: no owner", path)
	case dir && !info.IsDir(), !dir && !info.Mode().IsRegular():
		return fmt.Errorf("%s: not a regular %s", path, map[bool]string{true: "directory", false: "file"}[dir])
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s: owned by user %d", path, st.Uid)
	case info.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s: writable by others (%v)", path, info.Mode().Perm())
	}
	return nil
}
