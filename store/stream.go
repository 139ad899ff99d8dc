package store

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/chattorrent/chattorrent/store/history"
)

// HistoryStream is a room's history as it stood when Store.Stream took it, read from the
// database in bounded chunks: exporting it takes memory that does not grow with the room.
//
// Consistency: Stream notes, under the room's lock, each author's last stored seq and
// entry id (a few bytes per author) and lets go of the lock. A pass reads each author's
// index records 1..that seq sequentially and each entry's frame, without the room's lock,
// so writers never wait for an export. Records up to a head never change (but for a
// repair), so every pass sees the entries stored when the stream was taken, in the same
// order, however many entries arrive meanwhile (those are left out).
//
// Format: a frame's payload is json.Marshal of its history.Entry, which the store wrote
// once; EntriesJSON hands it out as it is (checked to start with its room and author),
// Entries decodes it.
//
// A HistoryStream may be read any number of times (history.zip reads it twice), from one
// goroutine at a time per pass; it holds nothing open between passes.
type HistoryStream struct {
	s     *Store
	room  history.ExportRoom
	dir   string       // the room's files
	heads []streamHead // by author
	n     int
}

type streamHead struct {
	author string
	num    int    // its index file
	seq    int64  // the last seq taken
	tip    string // the id of the entry at seq
	prefix []byte // how its entries' JSON starts
}

// Stream takes a room's history for streaming (see HistoryStream); ErrNotFound when the
// store keeps no such room.
func (s *Store) Stream(roomID string) (*HistoryStream, error) {
	h := &HistoryStream{s: s}
	err := s.withRoom(roomID, false, func(r *room) error {
		h.room = history.ExportRoom{ID: r.meta.ID, Name: r.meta.Name}
		h.dir = r.dir
		for a, au := range r.authors {
			if au.seq > 0 {
				h.heads = append(h.heads, streamHead{author: a, num: au.num, seq: au.seq, tip: idHex(&au.tip)})
				h.n += int(au.seq)
			}
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
// to keep up with. The string is a view of the pass's read buffer: it is valid until the
// loop body returns (copy it, strings.Clone, to keep it).
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

// item is one stored entry in a pass: its JSON (a view of the frame just read, valid until
// the next read) and what the merge orders it by.
type item struct {
	head *streamHead
	room string
	seq  int64
	ts   int64
	val  string
}

func (it item) key() string { return damageKey(it.room, it.head.author, it.seq) }

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

// entry decodes the whole entry and checks it against its place.
func (it item) entry() (history.Entry, error) {
	var e history.Entry
	// encoding/json neither keeps nor changes what it decodes: no copy of the value.
	if err := json.Unmarshal(unsafe.Slice(unsafe.StringData(it.val), len(it.val)), &e); err != nil {
		return e, fmt.Errorf("stored entry %s: %w", it.key(), err)
	}
	if e.Room != it.room || e.Author != it.head.author || e.Seq != it.seq || e.TS != it.ts {
		return e, fmt.Errorf("stored entry %s does not match its index", it.key())
	}
	return e, nil
}

// checkEvery is how many entries a pass yields between checks that the store is open.
const checkEvery = 1024

// items is one pass: the authors' chains merged in display order, each entry read from
// its frame (CRC-checked).
func (h *HistoryStream) items() iter.Seq2[item, error] {
	return func(yield func(item, error) bool) {
		if err := h.open(); err != nil {
			yield(item{}, err)
			return
		}
		byAuthor := make(map[string]*streamHead, len(h.heads))
		spans := make([]span, 0, len(h.heads))
		for i := range h.heads {
			hd := &h.heads[i]
			// Every stored payload starts so: json.Marshal of a history.Entry, fields in order.
			hd.prefix = []byte(`{"room":"` + h.room.ID + `","author":"` + hd.author + `","name":`)
			byAuthor[hd.author] = hd
			spans = append(spans, span{author: hd.author, num: hd.num, from: 1, to: hd.seq})
		}
		fs := newFiles(h.dir)
		defer fs.close()
		stopped := false
		k := 0
		err := merge(h.dir, spans, func(a string, seq int64, rec idxRec) (bool, error) {
			if k++; k%checkEvery == 0 {
				if err := h.open(); err != nil {
					return false, err
				}
			}
			hd := byAuthor[a]
			b, err := fs.frame(rec.loc)
			if err != nil {
				return false, fmt.Errorf("stored entry %s: %w", damageKey(h.room.ID, a, seq), err)
			}
			if !bytes.HasPrefix(b, hd.prefix) {
				return false, fmt.Errorf("stored entry %s is not an entry of its place as the store writes them", damageKey(h.room.ID, a, seq))
			}
			// A view of the frame's buffer, reused by the next read: valid until yield
			// returns (entry decodes it into new strings; EntriesJSON says so).
			if !yield(item{head: hd, room: h.room.ID, seq: seq, ts: rec.ts, val: unsafe.String(&b[0], len(b))}, nil) {
				stopped = true
				return false, nil
			}
			return true, nil
		})
		if err != nil && !stopped {
			yield(item{}, fmt.Errorf("store: stream room %s: %w", h.room.ID, err))
		}
	}
}

// open is ErrClosed once the store is closed.
func (h *HistoryStream) open() error {
	h.s.mu.RLock()
	defer h.s.mu.RUnlock()
	if h.s.closed {
		return ErrClosed
	}
	return nil
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

// MissingStream is Missing as a stream: what a peer with these heads lacks, in the same
// order, read from the room's files entry by entry as the caller takes them, so a first
// sync of a large room never holds it in memory. Like Stream it notes each author's head
// under the room's lock and reads without it: entries stored meanwhile are left out (the
// next hello asks for them). Each entry is checked as Missing checks it: a damaged one and
// its author's later entries are left out and logged. The sequence stops at the first
// error (ErrClosed once the store is closed), yielded with a zero Entry.
func (s *Store) MissingStream(roomID string, heads map[string]int64) (iter.Seq2[history.Entry, error], error) {
	var spans []span
	var r *room
	err := s.withRoom(roomID, false, func(rm *room) error {
		r, spans = rm, rm.spans(heads)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: missing of room %s: %w", roomID, err)
	}
	h := &HistoryStream{s: s}
	return func(yield func(history.Entry, error) bool) {
		if err := h.open(); err != nil {
			yield(history.Entry{}, err)
			return
		}
		fs := newFiles(r.dir)
		defer fs.close()
		stopped, k := false, 0
		err := s.mergeSound(r, fs, spans, func(e history.Entry) (bool, error) {
			if k++; k%checkEvery == 0 {
				if err := h.open(); err != nil {
					return false, err
				}
			}
			if !yield(e, nil) {
				stopped = true
				return false, nil
			}
			return true, nil
		})
		if err != nil && !stopped {
			yield(history.Entry{}, fmt.Errorf("store: missing of room %s: %w", roomID, err))
		}
	}, nil
}

// MissingSeq is Store.MissingStream for this room, ending quietly at an error (nothing once
// the store is closed): the streaming form of Missing, for a session that sends a large
// history without holding it (net/rtc queues Missing's slice today).
func (h *RoomHistory) MissingSeq(heads map[string]int64) iter.Seq[history.Entry] {
	return func(yield func(history.Entry) bool) {
		seq, err := h.s.MissingStream(h.room, heads)
		if err != nil {
			return
		}
		for e, err := range seq {
			if err != nil || !yield(e) {
				return
			}
		}
	}
}
