//go:build unix

package blobs

import (
	"io/fs"
	"syscall"
)

// diskBytes is what a file really takes on disk: its allocated 512-byte blocks (POSIX
// st_blocks), so a sparse partial counts only the pieces written so far.
func diskBytes(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * statBlockSize
	}
	return fi.Size()
}
