//go:build !unix

package board

import "os"

// isMountPoint cannot tell a mount point without a device number: a laptop without unix
// has no USB sticks mounted under the box's globs, so nothing is one.
func isMountPoint(string, os.FileInfo) bool { return false }
