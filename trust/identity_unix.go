//go:build unix

package trust

import (
	"os"
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
