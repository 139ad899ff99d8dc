//go:build !unix

package blobs

import "io/fs"

// diskBytes is a file's apparent size where the allocated blocks are not known (a sparse
// partial then counts at its full size, as reserved).
func diskBytes(fi fs.FileInfo) int64 { return fi.Size() }
