//go:build !linux

package archiver

import "errors"

// kernelUnsynced: outside linux the kernel is not asked; such machines (a developer's
// laptop) have a real-time clock, so their clock counts as right unless it is before
// ClockOptions.NotBefore.
func kernelUnsynced() (bool, error) { return false, errors.ErrUnsupported }
