package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

// A backup's rooms come back through a bulk import (the owner's restore, firmware's
// backup.go): VerifyImport reads a room's entries and checks everything Import would,
// writing nothing, so a restore can refuse a bad file before it changes anything; Import
// then merges them into the store. The merge is an append-only union: what the store keeps
// already stays as it is (an entry it holds is skipped, one that would fork it refuses the
// whole file at VerifyImport), and what is new is appended in each author's chain order.

// ImportRoom is a room as a backup holds it.
type ImportRoom struct {
	ID      string
	Name    string
	Created time.Time // when the backed-up box created it; kept when the room is new here
}

// ImportCheck is what VerifyImport found in one room of a backup.
type ImportCheck struct {
	Entries int   // the room's entries in the backup
	New     int   // those the store does not hold yet
	Bytes   int64 // about what storing the room and its new entries adds against Limits.StoreBytes
	NewRoom bool  // the store keeps no such room yet
}

// chainTip is one author's last entry seen in a backup's room.
type chainTip struct {
	seq int64
	id  string
}

// VerifyImport reads a room's entries as a backup holds them (each author's chain from
// seq 1 in order, authors interleaved in any way) and checks every one: its fields, id and
// signature (history.Entry.Check, at the store's clock), its place in its author's chain
// (no gap, no broken link, no duplicate) and, when the store keeps the room, that it forks
// nothing stored. It writes nothing. The first failure is returned, naming the entry.
func (s *Store) VerifyImport(room ImportRoom, entries iter.Seq2[history.Entry, error]) (ImportCheck, error) {
	var c ImportCheck
	if err := s.verifyImport(room, entries, &c); err != nil {
		return c, fmt.Errorf("store: verify import of room %s: %w", room.ID, err)
	}
	return c, nil
}

func (s *Store) verifyImport(room ImportRoom, entries iter.Seq2[history.Entry, error], c *ImportCheck) error {
	if !validRoomID(room.ID) {
		return &history.Error{Code: history.CodeBadField, Field: "room", Msg: "want 32 lowercase hex characters"}
	}
	if !validRoomName(room.Name) {
		return &history.Error{Code: history.CodeBadField, Field: "room name", Msg: "want 1 to 80 bytes of text without control characters"}
	}
	s.mu.RLock()
	closed, kept := s.closed, s.rooms[room.ID] != nil
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if !kept {
		c.NewRoom = true
		m, err := json.Marshal(roomMeta{ID: room.ID, Name: room.Name, Created: room.Created.UnixMilli()})
		if err != nil {
			return err
		}
		c.Bytes += recordSize(roomKey(room.ID), string(m))
	}
	tips := make(map[string]chainTip)
	now := s.now()
	for e, err := range entries {
		if err != nil {
			return err
		}
		c.Entries++
		if err := e.Check(room.ID, now); err != nil {
			return fmt.Errorf("entry %d (author %.8s, seq %d): %w", c.Entries, e.Author, e.Seq, err)
		}
		tip := tips[e.Author]
		switch {
		case e.Seq <= tip.seq:
			return fmt.Errorf("entry %d (author %.8s, seq %d): %w", c.Entries, e.Author, e.Seq,
				&history.Error{Code: history.CodeFork, Msg: "the backup holds this author's seq twice"})
		case e.Seq > tip.seq+1:
			return fmt.Errorf("entry %d (author %.8s, seq %d): %w", c.Entries, e.Author, e.Seq,
				&history.Error{Code: history.CodeGap, Msg: "entries before this one are missing from the backup"})
		case e.Prev != tip.id:
			return fmt.Errorf("entry %d (author %.8s, seq %d): %w", c.Entries, e.Author, e.Seq,
				&history.Error{Code: history.CodeBrokenChain, Msg: "prev is not the author's previous entry in the backup"})
		}
		tips[e.Author] = chainTip{seq: e.Seq, id: e.ID}
		held, fresh, err := s.importHolds(room.ID, &e)
		if err != nil {
			return fmt.Errorf("entry %d (author %.8s, seq %d): %w", c.Entries, e.Author, e.Seq, err)
		}
		if held {
			continue
		}
		c.New++
		val, err := history.MarshalJSON(e)
		if err != nil {
			return err
		}
		c.Bytes += int64(len(val) + frameHeader + recSize)
		if fresh && e.Seq == 1 {
			c.Bytes += recordSize(authorKey(room.ID, e.Author), "00000")
		}
	}
	return nil
}

// importHolds reports whether the store holds e already (held), refuses an entry that
// forks a stored one, and says whether e's author is new to the room (fresh).
func (s *Store) importHolds(roomID string, e *history.Entry) (held, fresh bool, err error) {
	err = s.withRoom(roomID, false, func(r *room) error {
		au := r.authors[e.Author]
		fresh = au == nil
		if au == nil || e.Seq > au.seq {
			return nil
		}
		h, err := r.holds(e.Author, e.Seq, e.ID)
		if err != nil {
			return err
		}
		if !h {
			return &history.Error{Code: history.CodeFork, Msg: "the store holds another entry at this author and seq; restoring would lose it"}
		}
		held = true
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return false, true, nil
	}
	return held, fresh, err
}

// Import merges a backup's room into the store: the room is created (with the backup's
// name and creation time) when the store keeps no such room, and every entry the store
// does not hold is appended, checked again in full, in the order given (each author's
// chain in seq order, as VerifyImport wants it). Entries are the box's to restore, not a
// peer's to rate: they are exempt from the per-author quotas (ErrAuthorRate,
// ErrAuthorsFull), as the box's own writes are, and not from the store's budget
// (ErrStoreFull) nor the rooms limit. It returns how many entries were added. Call
// VerifyImport first: an entry refused midway stops the import there, with what came
// before it stored (append-only: nothing already stored is ever lost).
func (s *Store) Import(room ImportRoom, entries iter.Seq2[history.Entry, error]) (int, error) {
	added, err := s.importRoom(room, entries)
	if err != nil {
		return added, fmt.Errorf("store: import room %s: %w", room.ID, err)
	}
	return added, nil
}

func (s *Store) importRoom(ir ImportRoom, entries iter.Seq2[history.Entry, error]) (int, error) {
	if err := s.createImported(ir); err != nil {
		return 0, err
	}
	added := 0
	batch := make([]history.Entry, 0, importBatch)
	flush := func() error {
		n, err := s.importBatch(ir.ID, batch)
		added += n
		batch = batch[:0]
		return err
	}
	for e, err := range entries {
		if err != nil {
			return added, err
		}
		if batch = append(batch, e); len(batch) == importBatch {
			if err := flush(); err != nil {
				return added, err
			}
		}
	}
	return added, flush()
}

// importBatch is how many entries an import appends under one hold of the room's lock,
// with one fsync of the room's files at the end instead of two per entry (under
// SyncAlways): measured (firmware's BenchmarkRestoreMemory, x86 VM, 10,000 entries) a
// restore went from ~320 entries/s with an fsync per entry to ~3,000. A crash in a batch
// leaves what a crash under SyncNever leaves, which Open cuts back to whole entries; the
// restore can simply be run again. Other writers of the room wait for a batch at most, and
// never see the room in bulk mode (they need its lock).
const importBatch = 256

// importBatch appends a batch of a backup's entries to the room, those it holds skipped.
// What was written is made durable before the room's lock is let go, also after an error.
func (s *Store) importBatch(roomID string, batch []history.Entry) (int, error) {
	added := 0
	err := s.withRoom(roomID, true, func(r *room) error {
		r.bulk = s.opts.Sync == SyncAlways
		defer func() { r.bulk = false }()
		var err error
		for _, e := range batch {
			var held, ok bool
			if held, err = r.holds(e.Author, e.Seq, e.ID); err != nil {
				break
			}
			if held {
				continue
			}
			if ok, err = s.append(r, e, s.now(), true, false); err != nil {
				err = fmt.Errorf("author %.8s, seq %d: %w", e.Author, e.Seq, err)
				break
			}
			if ok {
				added++
			}
		}
		if serr := r.syncOwed(); serr != nil {
			return errors.Join(err, serr)
		}
		return err
	})
	return added, err
}

// syncEach reports whether each write to r is fsynced before the next step: under
// SyncAlways, but in an import's batch (synced once at its end).
func (s *Store) syncEach(r *room) bool { return s.opts.Sync == SyncAlways && !r.bulk }

// createImported stores the room with the backup's metadata unless the store keeps it
// already (its stored name is then kept).
func (s *Store) createImported(room ImportRoom) error {
	if !validRoomID(room.ID) || !validRoomName(room.Name) {
		return &history.Error{Code: history.CodeBadField, Field: "room", Msg: "a backup's room needs a valid id and name"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.rooms[room.ID]; ok {
		return nil
	}
	if l := s.limits.Rooms; l >= 0 && len(s.rooms) >= l {
		return s.quotaError(ErrRoomsFull, int64(l), "box", "rooms", len(s.rooms))
	}
	created := room.Created.UnixMilli()
	if room.Created.IsZero() {
		created = s.now().UnixMilli()
	}
	m := roomMeta{ID: room.ID, Name: room.Name, Created: created}
	val, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := s.checkSpace(recordSize(roomKey(room.ID), string(val)), "room "+room.ID); err != nil {
		return err
	}
	if err := s.set(roomKey(room.ID), string(val)); err != nil {
		return err
	}
	s.rooms[room.ID] = newRoom(m, s.dir())
	return nil
}
