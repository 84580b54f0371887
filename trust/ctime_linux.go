package trust

import (
	"os"
	"syscall"
	"time"
)

// changeTime is the inode's change time, which no utimes can set back: a
// directory whose entries changed within its modification time's
// granularity, or whose time was reset, still shows it.
func changeTime(info os.FileInfo) time.Time {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)) // int32 on 32-bit systems
	}
	return time.Time{}
}
