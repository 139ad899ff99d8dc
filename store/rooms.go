package store

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/buntdb"

	"github.com/chattorrent/chattorrent/store/history"
)

// Room is a room's summary for the room list.
type Room struct {
	ID      string    // 32 lowercase hex characters
	Name    string    // 1..MaxRoomName bytes; "" only for a room recovered without metadata
	Created time.Time // when CreateRoom stored it
	Entries int       // stored history entries
	LastTS  int64     // the largest entry ts, ms since 1970 like history.Entry.TS; 0 when empty
}

var reRoomID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func validRoomID(id string) bool { return reRoomID.MatchString(id) }

func validRoomName(name string) bool {
	if name == "" || len(name) > MaxRoomName || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// CreateRoom stores a new room. It returns ErrExists (the stored name is kept) when the id
// is stored already, and a *QuotaError matching ErrRoomsFull when the box keeps
// Limits.Rooms rooms, or ErrStoreFull when the store's budget is spent.
func (s *Store) CreateRoom(id, name string) error {
	if err := s.createRoom(id, name); err != nil {
		return fmt.Errorf("store: create room %s: %w", id, err)
	}
	return nil
}

func (s *Store) createRoom(id, name string) error {
	if !validRoomID(id) {
		return &history.Error{Code: history.CodeBadField, Field: "room", Msg: "want 32 lowercase hex characters"}
	}
	if !validRoomName(name) {
		return &history.Error{Code: history.CodeBadField, Field: "room name", Msg: "want 1 to 80 bytes of text without control characters"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.rooms[id]; ok {
		return ErrExists
	}
	if l := s.limits.Rooms; l >= 0 && len(s.rooms) >= l {
		return s.quotaError(ErrRoomsFull, int64(l), "box", "rooms", len(s.rooms))
	}
	m := roomMeta{ID: id, Name: name, Created: s.now().UnixMilli()}
	val, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := s.checkSpace(recordSize(roomKey(id), string(val)), "room "+id); err != nil {
		return err
	}
	if err := s.set(roomKey(id), string(val)); err != nil {
		return err
	}
	s.rooms[id] = newRoom(m, s.dir())
	return nil
}

// set writes one key in one transaction and makes it durable (under SyncAlways).
// One record is one write(2) of a few hundred bytes: a crash leaves it whole or torn, and
// a torn record is cut off on the next Open. Transactions of several keys are not atomic
// across a crash (buntdb replays each record on its own), so the store never relies on one.
func (s *Store) set(key, val string) error {
	err := s.db.Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(key, val, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if s.statDB() != nil {
		s.dbBytes.Add(recordSize(key, val)) // an estimate, until the next stat works
	}
	return s.durable()
}

// recordSize is about what one key and value add to rooms.db.
func recordSize(key, val string) int64 { return int64(len(key) + len(val) + recordOverhead) }

// Rooms lists the rooms, oldest first.
func (s *Store) Rooms() ([]Room, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("store: rooms: %w", ErrClosed)
	}
	out := make([]Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		r.mu.RLock()
		out = append(out, r.summary())
		r.mu.RUnlock()
	}
	slices.SortFunc(out, func(a, b Room) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Room is one room's summary.
func (s *Store) Room(id string) (Room, error) {
	var out Room
	err := s.withRoom(id, false, func(r *room) error {
		if testHookRoomLocked != nil {
			testHookRoomLocked(r)
		}
		out = r.summary()
		return nil
	})
	if err != nil {
		return Room{}, fmt.Errorf("store: room %s: %w", id, err)
	}
	return out, nil
}

// testHookRoomLocked, when set by a test, runs inside Room with the room's read lock held.
var testHookRoomLocked func(r *room)

// summary is the room's summary. The caller holds r.mu (for reading at least): summary
// never takes it itself, since a second RLock by one goroutine deadlocks as soon as a
// writer waits between the two (sync.RWMutex blocks new readers once a writer waits).
func (r *room) summary() Room {
	var created time.Time
	if r.meta.Created != 0 {
		created = time.UnixMilli(r.meta.Created)
	}
	return Room{ID: r.meta.ID, Name: r.meta.Name, Created: created, Entries: r.len(), LastTS: r.lastTS}
}

// withRoom runs fn with the room's lock held (for writing when write), while the store
// stays open.
func (s *Store) withRoom(id string, write bool, fn func(r *room) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	r := s.rooms[id]
	if r == nil {
		return ErrNotFound
	}
	if write {
		r.mu.Lock()
		defer r.mu.Unlock()
	} else {
		r.mu.RLock()
		defer r.mu.RUnlock()
	}
	return fn(r)
}

// Append checks a received entry and stores it: (true, nil) when new and now durable,
// (false, nil) when already stored, and a *history.Error (wrapped) when refused: bad
// fields, id or signature, another room, a gap, a broken chain or a fork (the first entry
// at an (author, seq) is kept), or a *QuotaError (ErrAuthorsFull, ErrAuthorRate,
// ErrStoreFull) past a limit. A refused entry writes nothing.
func (s *Store) Append(roomID string, e history.Entry) (bool, error) {
	return s.appendReceived(roomID, e, false, false)
}

// AppendChecked is Append for a received entry that history.CheckBatch passed: its
// fields, id and signature (perhaps through a later entry of its author) are not checked
// again; the chain rules and the limits are.
func (s *Store) AppendChecked(roomID string, e history.Entry) (bool, error) {
	return s.appendReceived(roomID, e, true, false)
}

// AppendCheckedDeferred is AppendChecked without waiting for the card: under SyncAlways the
// entry's frame and index record are written but not fsynced; they are durable once
// Flush(roomID) returns (or the same files are fsynced for a later append). A first sync
// of thousands of entries then costs two fsyncs a Flush instead of two an entry.
// Whoever acknowledges the entry must call Flush first. The entry is readable at once;
// a power cut before Flush can lose it (never an entry acknowledged after a Flush), and
// Open cuts what is torn back to whole entries, as after an import's batch.
func (s *Store) AppendCheckedDeferred(roomID string, e history.Entry) (bool, error) {
	return s.appendReceived(roomID, e, true, true)
}

// appendReceived appends a peer's entry under the room's lock: checked, it passed
// history.CheckBatch; deferred, its writes are left for Flush to fsync.
func (s *Store) appendReceived(roomID string, e history.Entry, checked, deferred bool) (bool, error) {
	var added bool
	err := s.withRoom(roomID, true, func(r *room) error {
		if deferred {
			r.bulk = s.opts.Sync == SyncAlways
			defer func() { r.bulk = false }()
		}
		var err error
		added, err = s.append(r, e, s.now(), false, checked)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: append to room %s: %w", roomID, err)
	}
	return added, nil
}

// AppendRunDeferred is AppendCheckedDeferred for a run of one author's entries in seq
// order, each passed by history.CheckBatch, under one hold of the room's lock and with one
// write to the segment and one to the author's index file (a first sync's batch cost two
// writes an entry). It stores es[0], es[1], ... while each is its author's next entry, new,
// and within every limit, and returns how many it stored. It stops at the first it would
// not store that way, storing nothing from there: a duplicate, a fork, a gap, a broken
// link, a limit, an author with no entry stored yet, a frame that would roll the segment,
// a room whose files are not open yet. The caller appends that one on its own
// (AppendCheckedDeferred), which stores it or says why not. A failed write stores none of
// the run (0 and the error; the room's heads and files are as before).
func (s *Store) AppendRunDeferred(roomID string, es []history.Entry) (int, error) {
	var n int
	err := s.withRoom(roomID, true, func(r *room) error {
		r.bulk = s.opts.Sync == SyncAlways
		defer func() { r.bulk = false }()
		var err error
		n, err = s.appendRun(r, es, s.now())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: append to room %s: %w", roomID, err)
	}
	return n, nil
}

// appendRun stores the longest prefix of es that append would store as new entries, with
// one write per file (AppendRunDeferred). r.mu is held for writing.
func (s *Store) appendRun(r *room, es []history.Entry, now time.Time) (int, error) {
	if len(es) == 0 || r.segF == nil {
		return 0, nil
	}
	au := r.authors[es[0].Author]
	if au == nil || au.seq == 0 {
		return 0, nil // a new author: its number and the authors' quota, one by one
	}
	f, err := s.idxFile(r, au)
	if err != nil {
		return 0, err
	}
	seq0, tip0, maxTS0 := au.seq, au.tip, au.maxTS
	entries0, lastTS0, size0 := r.entries, r.lastTS, r.segSize
	var undos []func()
	rb := runBufs.Get().(*runBuf)
	defer rb.put()
	frames, recs := rb.frames[:0], rb.recs[:0]
	old := now.Add(-RateWindow).UnixMilli()
	tip := idHex(&au.tip) // the text of au.tip, the last stored id, as the run moves on
	n := 0
	for i := range es {
		e := &es[i]
		if e.Author != au.id || e.Seq != au.seq+1 || e.Prev != tip {
			break // a duplicate, fork, gap or broken link: append says which
		}
		id, ok := parseID(e.ID)
		if !ok {
			break
		}
		start := len(frames)
		var hdr [frameHeader]byte
		frames = append(frames, hdr[:]...)
		frames, err = history.AppendJSON(frames, *e)
		if err != nil {
			frames = frames[:start]
			break
		}
		payload := frames[start+frameHeader:]
		flen := int64(len(frames) - start)
		if len(payload) > maxFrame || r.segSize+flen > segmentMax ||
			s.checkSpace(int64(len(frames)+len(recs))+recSize, "room "+r.meta.ID) != nil {
			frames = frames[:start]
			break
		}
		undo, _, over := s.rates.reserve(e.Author, int64(len(payload)), e.TS < old, s.limits)
		if over {
			frames = frames[:start]
			break
		}
		undos = append(undos, undo)
		putFrameHeader(frames[start:], payload)
		rec := idxRec{id: id, ts: e.TS, maxTS: max(au.maxTS, e.TS), loc: loc{seg: r.seg, off: uint32(r.segSize), n: uint32(len(payload))}}
		var b [recSize]byte
		rec.marshal(b[:])
		recs = append(recs, b[:]...)
		au.seq, au.tip, au.maxTS = au.seq+1, id, rec.maxTS
		tip = e.ID
		r.entries++
		r.lastTS = max(r.lastTS, e.TS)
		r.segSize += flen
		n++
	}
	rb.frames, rb.recs = frames, recs
	if n == 0 {
		return 0, nil
	}
	err = writeRun(r.segF, frames, size0)
	if err == nil {
		err = writeRun(f, recs, seq0*recSize)
	}
	if err != nil {
		_ = r.segF.Truncate(size0) // best effort; Open cuts a torn frame anyway
		au.seq, au.tip, au.maxTS = seq0, tip0, maxTS0
		r.entries, r.lastTS, r.segSize = entries0, lastTS0, size0
		for _, undo := range undos {
			undo()
		}
		return 0, err
	}
	s.dataBytes.Add(int64(len(frames) + len(recs)))
	r.owedSeg = r.owedSeg || r.bulk
	s.wroteRec(r, au)
	return n, nil
}

// runBuf is appendRun's two buffers: a run's frames and its index records. They hold at
// most one message's entries (net/rtc.MaxMessage, 256 KiB) and their records; a pool keeps
// them between runs, one per run under way (at most one per session), none kept past
// maxRunBuf.
type runBuf struct{ frames, recs []byte }

const maxRunBuf = 1 << 20

var runBufs = sync.Pool{New: func() any { return new(runBuf) }}

func (rb *runBuf) put() {
	if cap(rb.frames) <= maxRunBuf && cap(rb.recs) <= maxRunBuf {
		runBufs.Put(rb)
	}
}

// writeRun writes b at off in f (a run's frames or records), told to testHookWriteRun.
func writeRun(f *os.File, b []byte, off int64) error {
	if testHookWriteRun != nil {
		if err := testHookWriteRun(f.Name()); err != nil {
			return err
		}
	}
	if _, err := f.WriteAt(b, off); err != nil {
		return fmt.Errorf("write run: %w", err)
	}
	return nil
}

// testHookWriteRun, when set by a test, is told of each write of a run; an error it returns
// is the write's.
var testHookWriteRun func(name string) error

// Flush makes durable what AppendCheckedDeferred wrote to the room before Flush was called
// (the segment first, then the index files written); it does nothing when nothing is owed.
// The fsyncs run without the room's lock, so appends go on meanwhile (a session stores the
// next batch while the last one's acknowledgement waits for the card); flushes of one room
// take turns, so a Flush that finds nothing owed returns only once the one before it, which
// took what was owed, is done. A failed fsync fails every later Flush of the room too (what
// it took may hold other sessions' entries, and the kernel may have dropped the pages): no
// deferred entry of the room is acknowledged again until the store is opened anew.
func (s *Store) Flush(roomID string) error {
	var rm *room
	err := s.withRoom(roomID, false, func(r *room) error { rm = r; return nil })
	if err == nil {
		rm.flushMu.Lock()
		defer rm.flushMu.Unlock()
		err = rm.flushErr
	}
	var names []string
	if err == nil {
		err = s.withRoom(roomID, true, func(r *room) error { names = r.takeOwed(); return nil })
	}
	for _, name := range names {
		if err = fsyncName(name); err != nil {
			rm.flushErr = err
			break
		}
	}
	if err != nil {
		return fmt.Errorf("store: flush room %s: %w", roomID, err)
	}
	return nil
}

// Write makes a new entry of this box's own: e.Author picks the chain; Write fills in Room,
// Seq and Prev from that author's stored head, calls sign (which sets Sig and ID: e.g.
// func(e *history.Entry) { e.Sign(key) }) and appends the entry. It returns what was stored.
// The box's own entries are exempt from the per-author quotas (ErrAuthorsFull,
// ErrAuthorRate), not from the store's budget (ErrStoreFull).
func (s *Store) Write(roomID string, e history.Entry, sign func(*history.Entry)) (history.Entry, error) {
	err := s.withRoom(roomID, true, func(r *room) error {
		e.Room = r.meta.ID
		e.Seq, e.Prev = r.head(e.Author)
		e.Seq++
		sign(&e)
		_, err := s.append(r, e, s.now(), true, false)
		return err
	})
	if err != nil {
		return history.Entry{}, fmt.Errorf("store: write to room %s: %w", roomID, err)
	}
	return e, nil
}

// append checks e against r's heads and the store's limits (the per-author ones unless
// own, the box's own entry), writes it, then moves the author's head. r.mu is held. Every
// check comes before the first write: a refusal writes nothing. checked: e passed
// history.CheckBatch, its signature is not verified again.
func (s *Store) append(r *room, e history.Entry, now time.Time, own, checked bool) (bool, error) {
	if s.repairs(r, &e) {
		return false, s.repair(r, e, now)
	}
	held, err := r.holds(e.Author, e.Seq, e.ID)
	if err != nil {
		return false, err
	}
	if held {
		return false, nil
	}
	if !checked {
		if err := e.Check(r.meta.ID, now); err != nil {
			return false, err
		}
	}
	if err := r.chainErr(&e); err != nil {
		return false, err
	}
	au := r.authors[e.Author]
	if (au == nil || au.seq == 0) && !own {
		if l := s.limits.AuthorsPerRoom; l >= 0 && r.writers >= l {
			return false, s.quotaError(ErrAuthorsFull, int64(l), "room "+r.meta.ID, "room", r.meta.ID, "authors", r.writers)
		}
	}
	id, ok := parseID(e.ID)
	if !ok {
		return false, errors.New("internal: a checked entry's id does not parse")
	}
	val, err := history.MarshalJSON(e)
	if err != nil {
		return false, err
	}
	more := int64(len(val) + frameHeader + recSize)
	if au == nil {
		more += recordSize(authorKey(r.meta.ID, e.Author), "00000")
	}
	if err := s.checkSpace(more, "room "+r.meta.ID); err != nil {
		return false, err
	}
	undo := func() {}
	if !own {
		old := e.TS < now.Add(-RateWindow).UnixMilli() // history, not someone writing now
		u, limit, over := s.rates.reserve(e.Author, int64(len(val)), old, s.limits)
		if over {
			return false, s.quotaError(ErrAuthorRate, limit, "author "+e.Author, "room", r.meta.ID, "author", e.Author)
		}
		undo = u
	}
	if au == nil {
		if au, err = s.addAuthor(r, e.Author); err != nil {
			undo()
			return false, err
		}
	}
	if err := s.store(r, au, val, id, e.TS); err != nil {
		// Not acknowledged; the head is unchanged, so the same entry can come again.
		undo()
		return false, err
	}
	return true, nil
}

// repair writes a good copy of an entry in place of its damaged one (see Store.read) once
// it checks in full: a new frame, and the author's index record rewritten to point at it.
// r.mu is held for writing.
func (s *Store) repair(r *room, e history.Entry, now time.Time) error {
	if err := e.Check(r.meta.ID, now); err != nil {
		return err
	}
	id, _ := parseID(e.ID)
	val, err := history.MarshalJSON(e)
	if err != nil {
		return err
	}
	au := r.authors[e.Author]
	old, err := r.rec(au, e.Seq)
	if err != nil {
		old = idxRec{maxTS: e.TS} // the record itself was damaged
	}
	l, err := s.writeFrame(r, val)
	if err != nil {
		return err
	}
	rec := idxRec{id: id, ts: e.TS, maxTS: max(old.maxTS, e.TS), loc: l}
	if err := s.writeRec(r, au, e.Seq, &rec); err != nil {
		return err
	}
	if e.Seq == au.seq {
		au.tip, au.maxTS = id, max(au.maxTS, e.TS)
	}
	r.lastTS = max(r.lastTS, e.TS)
	key := damageKey(r.meta.ID, e.Author, e.Seq)
	s.damaged.Delete(key)
	s.log.Info("a damaged stored entry was replaced by a good copy from a peer", "entry", key)
	return nil
}

// Heads is, per author, the last stored seq of the room.
func (s *Store) Heads(roomID string) (map[string]int64, error) {
	var out map[string]int64
	err := s.withRoom(roomID, false, func(r *room) error { out = r.heads(); return nil })
	if err != nil {
		return nil, fmt.Errorf("store: heads of room %s: %w", roomID, err)
	}
	return out, nil
}

// Missing lists what a peer with these heads lacks, in the order of history.Log.Missing:
// by (ts, author, seq), each author's entries in seq order. They are read from the
// room's segments.
func (s *Store) Missing(roomID string, heads map[string]int64) ([]history.Entry, error) {
	var out []history.Entry
	err := s.withRoom(roomID, false, func(r *room) (err error) {
		out, err = s.read(r, r.spans(heads))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: missing of room %s: %w", roomID, err)
	}
	return out, nil
}

// Entries is the room's whole history in display order (by ts, then author, then seq),
// read from the room's segments.
func (s *Store) Entries(roomID string) ([]history.Entry, error) {
	var out []history.Entry
	err := s.withRoom(roomID, false, func(r *room) (err error) {
		out, err = s.read(r, r.spans(nil))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: entries of room %s: %w", roomID, err)
	}
	return out, nil
}

// Export is the room's history as a verifiable JSON export.
func (s *Store) Export(roomID string, now time.Time) (*history.Export, error) {
	var out *history.Export
	err := s.withRoom(roomID, false, func(r *room) error {
		es, err := s.read(r, r.spans(nil))
		if err != nil {
			return err
		}
		out = &history.Export{
			Format:   history.ExportFormat,
			V:        history.ExportVersion,
			Room:     history.ExportRoom{ID: r.meta.ID, Name: r.meta.Name},
			Exported: now.UTC().Format(time.RFC3339),
			Entries:  es,
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: export room %s: %w", roomID, err)
	}
	return out, nil
}

// RoomHistory is one room of the store seen as a session's history (it satisfies
// net/rtc.History): Add stores durably before returning.
type RoomHistory struct {
	s    *Store
	room string
}

// RoomHistory returns the adapter for a stored room.
func (s *Store) RoomHistory(roomID string) (*RoomHistory, error) {
	if err := s.withRoom(roomID, false, func(*room) error { return nil }); err != nil {
		return nil, fmt.Errorf("store: room %s: %w", roomID, err)
	}
	return &RoomHistory{s: s, room: roomID}, nil
}

// Heads is, per author, the last stored seq; empty once the store is closed.
func (h *RoomHistory) Heads() map[string]int64 {
	m, err := h.s.Heads(h.room)
	if err != nil {
		return map[string]int64{}
	}
	return m
}

// Missing lists what a peer with these heads lacks; nothing once the store is closed.
func (h *RoomHistory) Missing(heads map[string]int64) []history.Entry {
	es, _ := h.s.Missing(h.room, heads)
	return es
}

// Add is Store.Append for this room.
func (h *RoomHistory) Add(e history.Entry) (bool, error) { return h.s.Append(h.room, e) }

// AddChecked is Store.AppendChecked for this room (net/rtc.CheckedAdder).
func (h *RoomHistory) AddChecked(e history.Entry) (bool, error) { return h.s.AppendChecked(h.room, e) }

// AddCheckedDeferred is Store.AppendCheckedDeferred for this room (net/rtc.DeferredAdder).
func (h *RoomHistory) AddCheckedDeferred(e history.Entry) (bool, error) {
	return h.s.AppendCheckedDeferred(h.room, e)
}

// AddRunDeferred is Store.AppendRunDeferred for this room (net/rtc.RunAdder).
func (h *RoomHistory) AddRunDeferred(es []history.Entry) (int, error) {
	return h.s.AppendRunDeferred(h.room, es)
}

// Flush is Store.Flush for this room (net/rtc.DeferredAdder).
func (h *RoomHistory) Flush() error { return h.s.Flush(h.room) }

// Write is Store.Write for this room.
func (h *RoomHistory) Write(e history.Entry, sign func(*history.Entry)) (history.Entry, error) {
	return h.s.Write(h.room, e, sign)
}

// Tips is, per author, the id of the last stored entry; empty once the store is closed.
func (h *RoomHistory) Tips() map[string]string {
	var out map[string]string
	if h.s.withRoom(h.room, false, func(r *room) error { out = r.tips(); return nil }) != nil {
		return map[string]string{}
	}
	return out
}

// At is the author's stored entry at seq.
func (h *RoomHistory) At(author string, seq int64) (history.Entry, bool) {
	var e history.Entry
	var ok bool
	h.s.withRoom(h.room, false, func(r *room) error {
		au := r.authors[author]
		if au == nil || seq < 1 || seq > au.seq {
			return nil
		}
		es, err := h.s.read(r, []span{{author: author, num: au.num, from: seq, to: seq}})
		if err == nil && len(es) == 1 {
			e, ok = es[0], true
		}
		return nil
	})
	return e, ok
}

// MarkForked records, in memory, that a peer holds another entry of this author at a
// stored seq (the store keeps the first; nothing is written).
func (h *RoomHistory) MarkForked(author string) {
	h.s.withRoom(h.room, true, func(r *room) error { r.forked[author] = true; return nil })
}
