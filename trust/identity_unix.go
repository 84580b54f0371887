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
