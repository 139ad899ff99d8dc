package archiver

import "github.com/chattorrent/chattorrent/net/rtc"

// The box's sessions store through CheckedAdder: one signature per run, not per entry.
var _ rtc.CheckedAdder = (*sessionRoom)(nil)

// ... and make a received batch durable at once (two fsyncs a batch, not two an entry).
var _ rtc.DeferredAdder = (*sessionRoom)(nil)

// ... and store a run of one author's entries with one write to each file.
var _ rtc.RunAdder = (*sessionRoom)(nil)
