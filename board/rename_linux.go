//go:build linux

package board

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames old to new, failing if new exists (RENAME_NOREPLACE, which vfat,
// exfat and ext4 support; elsewhere a check, then a plain rename).
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSYS) {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	if _, err := os.Lstat(new); !errors.Is(err, os.ErrNotExist) {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: os.ErrExist}
	}
	return os.Rename(old, new)
}
