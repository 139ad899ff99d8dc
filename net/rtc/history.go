package rtc

import (
	"cmp"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

// History is the room history behind a Session. The appliance's store implements it; so
// does MemHistory. Methods are called from the session's goroutines and must be safe for
// concurrent use.
type History interface {
	// Heads is, per author, the last stored seq.
	Heads() map[string]int64
	// Missing lists what a peer with these heads lacks, each author's entries in seq order.
	Missing(heads map[string]int64) []history.Entry
	// Tips is, per author, the id of the last stored entry.
	Tips() map[string]string
	// At is the author's entry at seq, if stored.
	At(author string, seq int64) (history.Entry, bool)
	// Add checks and stores a received entry: (true, nil) when new, (false, nil) when
	// already stored, a *history.Error when refused (a fork, two valid signed entries at
	// one (author, seq), marks the author forked), or an error with a RefusalCode method
	// (a quota: the session tells the peer and goes on). A new entry is durable before Add
	// returns (it is acknowledged to the author right after).
	Add(e history.Entry) (bool, error)
}

// CheckedAdder is a History that can store a received entry the session checked already
// with history.CheckBatch (fields, id, and a signature of its author covering it, perhaps
// through a later entry's prev), applying only the chain rules: the session then verifies
// one signature per run instead of one per entry. A History without it gets Add, which
// verifies each entry's own signature again. A wrapper that embeds a CheckedAdder and
// overrides Add (a quota) must override AddChecked too (and a DeferredAdder's methods).
type CheckedAdder interface {
	AddChecked(e history.Entry) (bool, error)
}

// DeferredAdder is a CheckedAdder that can make received entries durable many at once
// instead of entry by entry: AddCheckedDeferred stores e as AddChecked does (readable at
// once), but it may be durable only once a Flush called after it returns. The session's
// sender calls Flush before it sends acks (an ack still means stored, PROTOCOL.md §2): one
// Flush covers every batch stored since the last, while the receiver stores the next; a
// failed Flush ends the session with those entries unacknowledged. The box's store does it
// with two fsyncs per Flush instead of two per entry. Flush is called from another
// goroutine than AddCheckedDeferred. A wrapper that overrides AddChecked (a quota) must
// override AddCheckedDeferred too.
type DeferredAdder interface {
	AddCheckedDeferred(e history.Entry) (bool, error)
	Flush() error
}

// RunAdder is a DeferredAdder that can store a run of one author's consecutive entries
// (each passed by history.CheckBatch) at once: AddRunDeferred stores the longest prefix of
// es it can store as new entries, each as AddCheckedDeferred would, and returns its length;
// the session takes the entry it stopped at on its own (AddCheckedDeferred stores it or
// says why not). The box's store writes a run with one write to each file instead of two
// writes an entry. A wrapper that overrides AddChecked (a quota) must override it too.
type RunAdder interface {
	DeferredAdder
	AddRunDeferred(es []history.Entry) (int, error)
}

// MissingStreamer is a History that can stream Missing: the same entries in the same order
// (each author's in seq order), read as the session sends them, so the first sync of a
// large room never holds it in memory. The session prefers it to Missing.
type MissingStreamer interface {
	MissingSeq(heads map[string]int64) iter.Seq[history.Entry]
}

// MemHistory is a History in memory: a history.Log behind a mutex.
type MemHistory struct {
	mu  sync.Mutex
	log *history.Log
	now func() time.Time
}

// NewMemHistory wraps log, which the caller must no longer touch directly.
func NewMemHistory(log *history.Log) *MemHistory {
	return &MemHistory{log: log, now: time.Now}
}

// Heads implements History.
func (h *MemHistory) Heads() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.Heads()
}

// Missing implements History.
func (h *MemHistory) Missing(heads map[string]int64) []history.Entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.Missing(heads)
}

// Tips implements History.
func (h *MemHistory) Tips() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.Tips()
}

// At implements History.
func (h *MemHistory) At(author string, seq int64) (history.Entry, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.At(author, seq)
}

// MarkForked records that the author was seen forked.
func (h *MemHistory) MarkForked(author string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log.MarkForked(author)
}

// Forked reports whether the author was seen forked.
func (h *MemHistory) Forked(author string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.Forked(author)
}

// Add implements History.
func (h *MemHistory) Add(e history.Entry) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.Add(e, h.now())
}

// AddChecked implements CheckedAdder.
func (h *MemHistory) AddChecked(e history.Entry) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.AddChecked(e)
}

// Len is the number of stored entries.
func (h *MemHistory) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.Len()
}

// Has reports whether the entry with this id is stored.
func (h *MemHistory) Has(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.Has(id)
}

// Entries is the whole history in display order.
func (h *MemHistory) Entries() []history.Entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.Entries()
}

// Write makes a new local entry by author: it fills in the chain fields, signs it and
// stores it. The caller then hands it to Session.Publish.
func (h *MemHistory) Write(e history.Entry, sign func(*history.Entry)) (history.Entry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log.Next(&e)
	sign(&e)
	if _, err := h.log.Add(e, h.now()); err != nil {
		return history.Entry{}, err
	}
	return e, nil
}

// seqOrder puts each author's entries in seq order while keeping the slots each author
// holds, so a time-interleaved list stays interleaved but never sends seq n+1 before n
// (which would be refused as a gap) even when an author's clock went backwards.
func seqOrder(es []history.Entry) {
	slots := make(map[string][]int)
	for i, e := range es {
		slots[e.Author] = append(slots[e.Author], i)
	}
	for _, idx := range slots {
		sorted := slices.IsSortedFunc(idx, func(a, b int) int { return cmp.Compare(es[a].Seq, es[b].Seq) })
		if sorted {
			continue
		}
		own := make([]history.Entry, len(idx))
		for k, i := range idx {
			own[k] = es[i]
		}
		slices.SortFunc(own, func(a, b history.Entry) int { return cmp.Compare(a.Seq, b.Seq) })
		for k, i := range idx {
			es[i] = own[k]
		}
	}
}
