package history

import (
	"cmp"
	"time"
)

// Log is one room's history in memory: per-author chains, append-only. It is not safe for
// concurrent use; its owner serialises access.
type Log struct {
	room    string
	chains  map[string][]Entry // author → entries at seq 1..n, in order
	ids     map[string]struct{}
	forked  map[string]bool
	entries int
}

// NewLog returns an empty log for a room.
func NewLog(room string) *Log {
	return &Log{
		room:   room,
		chains: make(map[string][]Entry),
		ids:    make(map[string]struct{}),
		forked: make(map[string]bool),
	}
}

// Room is the log's room id.
func (l *Log) Room() string { return l.room }

// Len is the number of stored entries.
func (l *Log) Len() int { return l.entries }

// Has reports whether an entry with this id is stored.
func (l *Log) Has(id string) bool { _, ok := l.ids[id]; return ok }

// Add checks e and appends it to its author's chain. It returns (false, nil) for an entry
// already stored, (true, nil) for a new one, and an *Error for a refused one. A refused
// entry changes nothing, except that a fork marks its author as forked.
func (l *Log) Add(e Entry, now time.Time) (bool, error) {
	if l.Has(e.ID) {
		return false, nil
	}
	if err := e.Check(l.room, now); err != nil {
		return false, err
	}
	return l.link(e)
}

// AddChecked is Add for an entry that CheckBatch passed (nil): its fields, id and time are
// not checked again and its signature is not verified again; only the chain rules apply.
func (l *Log) AddChecked(e Entry) (bool, error) {
	if l.Has(e.ID) {
		return false, nil
	}
	return l.link(e)
}

// link applies the chain rules to a checked entry and appends it.
func (l *Log) link(e Entry) (bool, error) {
	chain := l.chains[e.Author]
	n := int64(len(chain))
	switch {
	case e.Seq <= n:
		l.forked[e.Author] = true
		return false, &Error{Code: CodeFork, Msg: "another entry is stored at this author and seq; keeping the first"}
	case e.Seq > n+1:
		return false, &Error{Code: CodeGap, Msg: "entries before this one are missing"}
	case e.Seq > 1 && chain[n-1].ID != e.Prev:
		return false, &Error{Code: CodeBrokenChain, Msg: "prev is not the author's previous entry"}
	}
	l.chains[e.Author] = append(chain, e)
	l.ids[e.ID] = struct{}{}
	l.entries++
	return true, nil
}

// Forked reports whether two different entries were seen at one (author, seq).
func (l *Log) Forked(author string) bool { return l.forked[author] }

// MarkForked records that a peer holds another entry at one of this author's seqs.
func (l *Log) MarkForked(author string) { l.forked[author] = true }

// At is the author's entry at seq, if stored.
func (l *Log) At(author string, seq int64) (Entry, bool) {
	c := l.chains[author]
	if seq < 1 || seq > int64(len(c)) {
		return Entry{}, false
	}
	return c[seq-1], true
}

// Tips is, per author, the id of the last stored entry: sent beside the heads so that two
// peers holding different entries at one (author, seq) find out (PROTOCOL.md §2).
func (l *Log) Tips() map[string]string {
	t := make(map[string]string, len(l.chains))
	for a, c := range l.chains {
		t[a] = c[len(c)-1].ID
	}
	return t
}

// Heads is, per author, the last stored seq: what this side states on connect.
func (l *Log) Heads() map[string]int64 {
	h := make(map[string]int64, len(l.chains))
	for a, c := range l.chains {
		h[a] = int64(len(c))
	}
	return h
}

// Head is the author's last entry, if any: what a new entry of that author chains to.
func (l *Log) Head(author string) (Entry, bool) {
	c := l.chains[author]
	if len(c) == 0 {
		return Entry{}, false
	}
	return c[len(c)-1], true
}

// Missing lists what a peer with these heads lacks, oldest first, each author's entries in
// seq order even where the author's clock went backwards: a merge by (ts, author, seq) of
// the per-author runs, so the peer can chain every entry as it arrives. The merge keeps
// the runs in a binary min-heap by their first entry: O(n log k) for n entries of k
// authors (it was a linear scan of the runs per entry: O(n·k)).
func (l *Log) Missing(heads map[string]int64) []Entry {
	runs := MinHeap[[]Entry]{Less: func(a, b []Entry) bool { return compareEntries(a[0], b[0]) < 0 }}
	total := 0
	for a, c := range l.chains {
		from := min(max(heads[a], 0), int64(len(c)))
		if from < int64(len(c)) {
			runs.Items = append(runs.Items, c[from:])
			total += len(c) - int(from)
		}
	}
	// Runs are distinct authors' chains, so no two first entries compare equal and the
	// merge's order is total: the same as picking the smallest first entry each time.
	runs.Init()
	out := make([]Entry, 0, total)
	for len(runs.Items) > 0 {
		out = append(out, runs.Items[0][0])
		if runs.Items[0] = runs.Items[0][1:]; len(runs.Items[0]) == 0 {
			runs.DropTop()
		} else {
			runs.Fix()
		}
	}
	return out
}

// Entries is the whole history in display order: by ts, then author, then seq.
func (l *Log) Entries() []Entry { return l.Missing(nil) }

// Next fills in the chain fields of a new entry by author: Seq and Prev.
func (l *Log) Next(e *Entry) {
	e.Room = l.room
	if head, ok := l.Head(e.Author); ok {
		e.Seq, e.Prev = head.Seq+1, head.ID
	} else {
		e.Seq, e.Prev = 1, ""
	}
}

func compareEntries(a, b Entry) int {
	return cmp.Or(cmp.Compare(a.TS, b.TS), cmp.Compare(a.Author, b.Author), cmp.Compare(a.Seq, b.Seq))
}
