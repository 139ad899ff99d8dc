//go:build unix

package update

import (
	"fmt"
	"syscall"
)

// Exec replaces the process with the program at path (same process id, so systemd keeps
// following it).
func Exec(path string, args, env []string) error {
	if err := syscall.Exec(path, args, env); err != nil {
		return fmt.Errorf("update: exec %s: %w", path, err)
	}
	return nil
}
