package archiver

import "github.com/chattorrent/chattorrent/net/rtc"

// The box's sessions store through CheckedAdder: one signature per run, not per entry.
var _ rtc.CheckedAdder = (*sessionRoom)(nil)
