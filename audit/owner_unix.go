//go:build unix

package audit

import (
	"os"
	"syscall"
)

// fileOwners says a stat tells a file's owner and file system here.
const fileOwners = true

// sameDevice reports whether two files are on one file system, where git
// stops looking for a repository by default.
func sameDevice(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev
}

// ownedByMe reports whether this user owns the file: git reads a
// repository of another user's only when safe.directory allows it.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
