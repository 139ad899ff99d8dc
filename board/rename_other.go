//go:build !linux

package board

import (
	"errors"
	"os"
)

// renameNoReplace renames old to new, failing if new exists: a check, then a plain rename
// (outside linux, for a developer's machine).
func renameNoReplace(old, new string) error {
	if _, err := os.Lstat(new); !errors.Is(err, os.ErrNotExist) {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: os.ErrExist}
	}
	return os.Rename(old, new)
}
