// Package atomicfile replaces a file whole, so that a crash, a power cut or
// a full disk leaves either the old file or the new one, never half of one.
// Every file mitmwatch rewrites in place (the daemon's state, a baseline,
// the ranges snapshot, a lab's record) goes through it, so that the steps
// that make a write durable are written down once. Replace keeps the
// guarantee for every reader while the machine runs, not across a power
// cut, for state whose loss costs only work redone.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Write replaces the file at path with data and gives it mode perm (umask
// does not apply). It writes a temporary file in path's directory, syncs it,
// renames it over path and syncs the directory, so that the rename itself
// survives a power cut. On failure the old file is untouched and no
// temporary file is left behind. Errors name path.
func Write(path string, data []byte, perm fs.FileMode) error {
	err := write(path, data, perm, true)
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Replace replaces the file at path as Write does, whole for every reader
// at every moment, but without the two syncs that make it durable: after
// a power cut the file may be the old one, or empty. It is for state
// whose reader takes an empty or lost file as none, and that is written on
// a path where two syncs (milliseconds) are felt: the checksum database's
// kept tree, written as the last step of a check that someone waits for.
func Replace(path string, data []byte, perm fs.FileMode) error {
	if err := write(path, data, perm, false); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// write writes data to a temporary file beside path, syncs it when sync is
// set, and renames it over path. The temporary file is removed on any
// failure.
func write(path string, data []byte, perm fs.FileMode, sync bool) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// syncDir makes a rename in dir durable. A directory that cannot be opened
// for reading (write and search permission only) is not an error: the new
// file is in place, only its durability is unconfirmed. Windows cannot sync
// a directory: there the rename is as durable as the file system makes it.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
