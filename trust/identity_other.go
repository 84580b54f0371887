//go:build !unix

package trust

import (
	"errors"
	"os"
)

// identity names a file by its path where the system gives no inode.
func identity(path string, _ os.FileInfo) string { return path }

// writable is true where the system gives no owner: nothing is taken from
// the snapshot.
func writable(os.FileInfo) bool { return true }

// readOwn reads nothing where the system gives no owner to check.
func readOwn(path string, _ int64) ([]byte, error) {
	return nil, errors.New(path + ": no owner to check")
}

// ownedAlone fails where the system gives no owner to check.
func ownedAlone(path string, _ bool) error { return errors.New(path + ": no owner to check") }
