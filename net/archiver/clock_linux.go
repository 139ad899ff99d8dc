package archiver

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// kernelUnsynced asks the kernel (adjtimex, read only) whether the system clock is
// synchronised: STA_UNSYNC is set until a time service (NTP, timesyncd) disciplines it,
// so on a Pi with no network time it stays set.
func kernelUnsynced() (bool, error) {
	var tx unix.Timex // Modes 0: read, change nothing
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, fmt.Errorf("archiver: adjtimex: %w", err)
	}
	return state == unix.TIME_ERROR || tx.Status&unix.STA_UNSYNC != 0, nil
}
