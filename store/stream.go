package store

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/buntdb"

	"github.com/chattorrent/chattorrent/store/history"
)

// streamBudget is about how many bytes of stored entries one pass of a HistoryStream reads
// ahead in one read transaction, over all of the room's authors together (each author reads
// at least one entry at a time). It bounds how long a chunk keeps writers waiting; the
// read-ahead itself holds only references to buntdb's values (56 bytes an entry), never
// copies. A variable so tests can make it tiny.
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
// Format: a stored value is json.Marshal of its history.Entry, which the store wrote once
// and never rewrites; EntriesJSON hands it out as it is (checked to start with its key's
// room and author), Entries decodes it.
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
		tips := r.tips()
		for a, seq := range r.heads() {
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
func (h *HistoryStream) Entries() iter.Seq2[history.Entry, error] { return h.EntriesOfKind(nil) }

// EntriesOfKind yields, in the same order, only the entries whose kind keep accepts (nil:
// all), such as those announcing files for a history.zip's media list. The others are
// never decoded.
func (h *HistoryStream) EntriesOfKind(keep func(kind string) bool) iter.Seq2[history.Entry, error] {
	return func(yield func(history.Entry, error) bool) {
		for it, err := range h.items() {
			if err != nil {
				yield(history.Entry{}, err)
				return
			}
			if keep != nil && !keep(it.kind()) {
				continue
			}
			e, err := it.entry()
			if err == nil && e.Seq == it.head.seq && e.ID != it.head.tip {
				err = fmt.Errorf("stored entry %s is not the one the room's log holds", it.key())
			}
			if err != nil {
				yield(history.Entry{}, fmt.Errorf("store: stream room %s: %w", h.room.ID, err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// EntriesJSON yields, in the same order, each entry's JSON as stored: the bytes
// json.Marshal gives for the history.Entry (the store wrote it so, and never rewrites it),
// without decoding it. An export made of these is byte for byte the export of the decoded
// entries, and a pass allocates next to nothing per entry, so the collector has no garbage
// to keep up with.
func (h *HistoryStream) EntriesJSON() iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for it, err := range h.items() {
			if err != nil {
				yield("", err)
				return
			}
			if !yield(it.val, nil) {
				return
			}
		}
	}
}

// item is one stored entry in a pass: its value as buntdb holds it (not copied) and what
// the merge orders it by.
type item struct {
	head *streamHead
	room string
	seq  int64
	ts   int64
	val  string
}

func (it item) key() string { return entryKey(it.room, it.head.author, it.seq) }

// kind is the entry's kind, read from its JSON without decoding the rest ("" if absent).
func (it item) kind() string {
	i := strings.Index(it.val, `,"kind":"`)
	if i < 0 {
		return ""
	}
	k := it.val[i+len(`,"kind":"`):]
	if j := strings.IndexByte(k, '"'); j >= 0 {
		return k[:j] // a kind is [a-z][a-z0-9-]*: no escapes
	}
	return ""
}

// entry decodes the whole entry and checks it against its key.
func (it item) entry() (history.Entry, error) {
	var e history.Entry
	// encoding/json neither keeps nor changes what it decodes: no copy of the value.
	if err := json.Unmarshal(unsafe.Slice(unsafe.StringData(it.val), len(it.val)), &e); err != nil {
		return e, fmt.Errorf("stored entry %s: %w", it.key(), err)
	}
	if e.Room != it.room || e.Author != it.head.author || e.Seq != it.seq || e.TS != it.ts {
		return e, fmt.Errorf("stored entry %s does not match its key", it.key())
	}
	return e, nil
}

// items is one pass: the authors' chains merged in display order.
func (h *HistoryStream) items() iter.Seq2[item, error] {
	return func(yield func(item, error) bool) {
		per := max(streamBudget/max(len(h.heads), 1), 1)
		runs := history.MinHeap[*streamRun]{Items: make([]*streamRun, 0, len(h.heads)), Less: func(p, q *streamRun) bool {
			a, b := p.buf[p.i], q.buf[q.i]
			return cmp.Or(cmp.Compare(a.ts, b.ts), cmp.Compare(a.head.author, b.head.author), cmp.Compare(a.seq, b.seq)) < 0
		}}
		for i := range h.heads {
			if h.heads[i].seq < 1 {
				continue
			}
			r := &streamRun{head: &h.heads[i], next: 1}
			if err := h.fill(r, per); err != nil {
				yield(item{}, err)
				return
			}
			runs.Items = append(runs.Items, r)
		}
		runs.Init()
		for len(runs.Items) > 0 {
			r := runs.Items[0]
			it := r.buf[r.i]
			r.i++
			switch {
			case r.i < len(r.buf):
				runs.Fix()
			case r.next > r.head.seq: // this author is done
				runs.DropTop()
			default:
				if err := h.fill(r, per); err != nil {
					yield(item{}, err)
					return
				}
				runs.Fix()
			}
			if !yield(it, nil) {
				return
			}
		}
	}
}

// streamRun is one author's chain being merged: a chunk of it read ahead.
type streamRun struct {
	head *streamHead
	next int64  // the next seq to read
	buf  []item // read ahead; buf[i] is the next to yield
	i    int
}

// fill reads the author's next entries, about budget bytes of them (one at least), in
// one read transaction. It only finds each one's ts: the values are buntdb's own strings,
// which never change, so nothing is copied.
func (h *HistoryStream) fill(r *streamRun, budget int) error {
	clear(r.buf) // let go of the values yielded
	r.buf, r.i = r.buf[:0], 0
	var bad error
	read := 0
	// Every stored value starts so: json.Marshal of a history.Entry, fields in order.
	prefix := `{"room":"` + h.room.ID + `","author":"` + r.head.author + `","name":`
	err := h.view(func(tx *buntdb.Tx) error {
		from := entryKey(h.room.ID, r.head.author, r.next)
		to := entryKey(h.room.ID, r.head.author, r.head.seq+1)
		return tx.AscendRange("", from, to, func(key, val string) bool {
			it := item{head: r.head, room: h.room.ID, seq: r.next, val: val}
			// Keys of one author ascend by seq; a key past the one expected means a gap.
			if seq, err := strconv.ParseUint(key[max(len(key)-16, 0):], 16, 63); err != nil || int64(seq) != r.next {
				bad = fmt.Errorf("stored entry %s is missing", it.key())
				return false
			}
			ts, ok := storedTS(val)
			if !ok || !strings.HasPrefix(val, prefix) {
				bad = fmt.Errorf("stored entry %s is not an entry of its key as the store writes them", key)
				return false
			}
			it.ts = ts
			r.buf = append(r.buf, it)
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

// storedTS reads the "ts" of an entry's stored JSON without decoding it. In JSON that
// json.Marshal wrote, `,"ts":` can only be that key: a '"' inside a string is escaped, and
// a string ending there followed by ':' is a key, and no other key ends in "ts".
func storedTS(val string) (int64, bool) {
	i := strings.Index(val, `,"ts":`)
	if i < 0 {
		return 0, false
	}
	rest := val[i+len(`,"ts":`):]
	j := strings.IndexAny(rest, ",}")
	if j < 0 {
		return 0, false
	}
	ts, err := strconv.ParseInt(rest[:j], 10, 64)
	return ts, err == nil
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

// WriteJSON writes the room's verifiable export made at now, streamed: the same bytes as
// json.NewEncoder(w).Encode of Store.Export's (compact, one line).
func (h *HistoryStream) WriteJSON(w io.Writer, now time.Time) error {
	x := history.NewExportWriter(w, h.room, history.ExportTime(now), "")
	for js, err := range h.EntriesJSON() {
		if err != nil {
			return err
		}
		if err := x.EntryJSON(js); err != nil {
			return err
		}
	}
	return x.Close()
}
