package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

// errVerifyFailed makes "verify" exit 1 once the failures are printed.
var errVerifyFailed = errors.New("verify: some entries failed")

// verifyCmd runs "chattorrent verify FILE.json": it checks every entry of a history export
// (fields, id, signature, room, each author's chain) and names each one that fails.
func verifyCmd(args []string, stdout io.Writer, now time.Time) error {
	if len(args) != 1 {
		return usageError{err: errors.New("usage: chattorrent verify FILE.json")}
	}
	f, err := os.Open(args[0])
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	x, fails, err := history.VerifyExport(f, now)
	if err != nil {
		return fmt.Errorf("verify %s: %w", args[0], err)
	}
	for _, fl := range fails {
		fmt.Fprintf(stdout, "FAIL %s\n", fl)
	}
	total := len(x.Entries) + countUnparsed(fails)
	fmt.Fprintf(stdout, "room %q (%s): %d entries, %d passed, %d failed\n",
		x.Room.Name, x.Room.ID, total, total-len(fails), len(fails))
	if len(fails) > 0 {
		return errVerifyFailed
	}
	return nil
}

// countUnparsed counts the failures of entries that were not even JSON entries: they are
// not in Export.Entries.
func countUnparsed(fails []history.Failure) int {
	n := 0
	for _, f := range fails {
		if f.Unparsed {
			n++
		}
	}
	return n
}
