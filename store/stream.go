package store

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"time"
	"unsafe"

	"github.com/tidwall/buntdb"

	"github.com/chattorrent/chattorrent/store/history"
)

// streamBudget is about how many bytes of stored entry JSON one pass of a HistoryStream
// reads ahead, over all of the room's authors together; each author still reads at least
// one entry at a time (so a room of DefaultMaxAuthorsPerRoom authors with 16 KiB bodies
// holds about 4 MiB at worst). A variable so tests can make it tiny.
var streamBudget = 512 << 10

// HistoryStream is a room's history as it stood when Store.Stream took it, read from the
// database in bounded chunks: exporting it takes memory that does not grow with the room.
//
// Consistency: Stream notes, under the room's lock, each author's last stored seq and
// entry id (a few bytes per author) and lets go of the lock. A pass reads each author's
// entries 1..that seq in chunks, each chunk in its own short read transaction, so writers
// wait at most one chunk, never the whole export. Stored entries are never changed or
// removed, so every pass sees exactly the entries stored when the stream was taken, in the
// same order, however many entries arrive meanwhile (those are left out).
//
// A HistoryStream may be read any number of times (history.zip reads it twice), from one
// goroutine at a time per pass; it holds nothing open between passes.
type HistoryStream struct {
	s     *Store
	room  history.ExportRoom
	heads []streamHead // by author
	n     int
}

type streamHead struct {
	author string
	seq    int64  // the last seq taken
	tip    string // the id of the entry at seq
}

// Stream takes a room's history for streaming (see HistoryStream); ErrNotFound when the
// store keeps no such room.
func (s *Store) Stream(roomID string) (*HistoryStream, error) {
	h := &HistoryStream{s: s}
	err := s.withRoom(roomID, false, func(r *room) error {
		h.room = history.ExportRoom{ID: r.meta.ID, Name: r.meta.Name}
		tips := r.log.Tips()
		for a, seq := range r.log.Heads() {
			h.heads = append(h.heads, streamHead{author: a, seq: seq, tip: tips[a]})
			h.n += int(seq)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: stream room %s: %w", roomID, err)
	}
	slices.SortFunc(h.heads, func(a, b streamHead) int { return cmp.Compare(a.author, b.author) })
	return h, nil
}

// Room is the streamed room's id and name.
func (h *HistoryStream) Room() history.ExportRoom { return h.room }

// Len is how many entries a pass yields.
func (h *HistoryStream) Len() int { return h.n }

// Entries yields the entries in display order, the order of Store.Entries and of an
// export: a merge of the authors' chains by (ts, author, seq), each chain in seq order.
// It stops at the first error (ErrClosed once the store is closed), yielded with a zero
// Entry.
func (h *HistoryStream) Entries() iter.Seq2[history.Entry, error] { return h.entries(nil) }

// EntriesOfKind yields, in the same order, only the entries whose kind keep accepts (a
// history.zip's media list: those announcing files). The others are read only as far as
// their ts and kind, so a pass over a room of few such entries allocates little.
func (h *HistoryStream) EntriesOfKind(keep func(kind string) bool) iter.Seq2[history.Entry, error] {
	return h.entries(keep)
}

func (h *HistoryStream) entries(keep func(string) bool) iter.Seq2[history.Entry, error] {
	return func(yield func(history.Entry, error) bool) {
		per := max(streamBudget/max(len(h.heads), 1), 1)
		runs := make(runs, 0, len(h.heads))
		for _, hd := range h.heads {
			if hd.seq < 1 {
				continue
			}
			r := &run{head: hd, next: 1, keep: keep}
			if err := h.fill(r, per); err != nil {
				yield(history.Entry{}, err)
				return
			}
			runs = append(runs, r)
		}
		runs.init()
		for len(runs) > 0 {
			r := runs[0]
			e := r.buf[r.i]
			r.i++
			if r.i == len(r.buf) {
				if r.next > r.head.seq { // this author is done
					last := len(runs) - 1
					runs[0] = runs[last]
					runs[last] = nil
					runs = runs[:last]
				} else if err := h.fill(r, per); err != nil {
					yield(history.Entry{}, err)
					return
				}
			}
			runs.down(0)
			if keep != nil && !keep(e.Kind) {
				continue
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// run is one author's chain being merged: a chunk of it read ahead.
type run struct {
	head streamHead
	next int64           // the next seq to read
	buf  []history.Entry // read ahead; buf[i] is the next to yield
	i    int
	keep func(kind string) bool // nil: every entry whole; else only those it keeps, the rest as ts and kind
}

// sortKey is what the merge needs of an entry the pass does not yield.
type sortKey struct {
	TS   int64  `json:"ts"`
	Kind string `json:"kind"`
}

// fill reads the author's next entries, about budget bytes of them (one at least), in
// one read transaction.
func (h *HistoryStream) fill(r *run, budget int) error {
	clear(r.buf) // let the yielded entries' strings go
	r.buf, r.i = r.buf[:0], 0
	var bad error
	read := 0
	err := h.view(func(tx *buntdb.Tx) error {
		from := entryKey(h.room.ID, r.head.author, r.next)
		to := entryKey(h.room.ID, r.head.author, r.head.seq+1)
		return tx.AscendRange("", from, to, func(key, val string) bool {
			// encoding/json neither keeps nor changes what it decodes: no copy of val.
			data := unsafe.Slice(unsafe.StringData(val), len(val))
			var e history.Entry
			if r.keep != nil {
				var k sortKey
				if err := json.Unmarshal(data, &k); err != nil {
					bad = fmt.Errorf("stored entry %s: %w", key, err)
					return false
				}
				e = history.Entry{Room: h.room.ID, Author: r.head.author, Seq: r.next, TS: k.TS, Kind: k.Kind}
			}
			if r.keep == nil || r.keep(e.Kind) {
				e = history.Entry{}
				if err := json.Unmarshal(data, &e); err != nil {
					bad = fmt.Errorf("stored entry %s: %w", key, err)
					return false
				}
				if e.Room != h.room.ID || e.Author != r.head.author || e.Seq != r.next {
					bad = fmt.Errorf("stored entry %s does not match its key", key)
					return false
				}
				if e.Seq == r.head.seq && e.ID != r.head.tip {
					bad = fmt.Errorf("stored entry %s is not the one the room's log holds", key)
					return false
				}
			}
			r.buf = append(r.buf, e)
			r.next++
			read += len(val)
			return read < budget
		})
	})
	if err == nil {
		err = bad
	}
	if err == nil && len(r.buf) == 0 {
		err = fmt.Errorf("stored entry %s is missing", entryKey(h.room.ID, r.head.author, r.next))
	}
	if err != nil {
		return fmt.Errorf("store: stream room %s: %w", h.room.ID, err)
	}
	return nil
}

// view runs fn in a read transaction while the store is open.
func (h *HistoryStream) view(fn func(tx *buntdb.Tx) error) error {
	s := h.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	err := s.db.View(fn)
	if errors.Is(err, buntdb.ErrDatabaseClosed) {
		return ErrClosed
	}
	return err
}

// runs is a min-heap of runs by their next entry, as history.Log.Missing merges.
type runs []*run

func (q runs) less(i, j int) bool {
	a, b := q[i].buf[q[i].i], q[j].buf[q[j].i]
	return cmp.Or(cmp.Compare(a.TS, b.TS), cmp.Compare(a.Author, b.Author), cmp.Compare(a.Seq, b.Seq)) < 0
}

func (q runs) init() {
	for i := len(q)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
}

func (q runs) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(q) {
			return
		}
		m := l
		if r := l + 1; r < len(q) && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			return
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
}

// WriteJSON writes the room's verifiable export made at now, streamed: the same bytes as
// json.NewEncoder(w).Encode of Store.Export's (compact, one line).
func (h *HistoryStream) WriteJSON(w io.Writer, now time.Time) error {
	x := history.NewExportWriter(w, h.room, history.ExportTime(now), "")
	for e, err := range h.Entries() {
		if err != nil {
			return err
		}
		if err := x.Entry(e); err != nil {
			return err
		}
	}
	return x.Close()
}
