//go:build !unix

package store

import "os"

// lockFile opens path; other systems get no lock (the appliance runs on Linux).
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
