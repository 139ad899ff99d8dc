package store

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/chattorrent/chattorrent/store/history"
)

// A room in RAM is its metadata and, per author, its number, head and tip: nothing per
// entry. The entries are frames in the room's segments, found through the author's index
// file (segment.go; docs/ARCHITECTURE.md, "store").

// room is one room: metadata, authors' heads, and its open files for appending.
type room struct {
	mu      sync.RWMutex // guards everything below but meta
	meta    roomMeta
	dir     string                 // rooms/<id>
	authors map[string]*authorHead // every author with a number (a: key), with entries or not
	nextNum int                    // the next author number
	forked  map[string]bool        // authors seen with two entries at one seq
	entries int
	writers int // authors with entries
	lastTS  int64

	seg      uint32           // the segment appended to; 0 before the first
	segSize  int64            // its size
	segF     *os.File         // open for appending; nil until the first append after Open
	idxFs    map[int]*os.File // index files open for writing, by author number (≤ maxOpenIdx)
	dirty    bool             // written since the last fsync (SyncEverySecond)
	bulk     bool             // writes not fsynced each (SyncAlways): an import's batch, a deferred append
	owedSeg  bool             // segF was written in bulk and not fsynced since
	owedIdx  map[int]bool     // index files (by author number) written in bulk and not fsynced since
	flushMu  sync.Mutex       // held by a Flush from taking what is owed until it is fsynced
	flushErr error            // a failed Flush's: every later Flush fails with it (guarded by flushMu)
}

// author is one author of a room: its number (its index file) and head.
type authorHead struct {
	id    string
	num   int
	seq   int64    // the last stored seq; 0 when none
	tip   [32]byte // the id at seq
	maxTS int64    // the largest ts of its entries
}

// pos is a stored entry's place: its author and seq.
type pos struct {
	author string
	seq    int64
}

// idHex is an entry id in its text form.
func idHex(id *[32]byte) string { return hex.EncodeToString(id[:]) }

// parseID decodes an id's text form: 64 lowercase hex characters.
func parseID(s string) ([32]byte, bool) {
	var id [32]byte
	if !history.IsID(s) {
		return id, false
	}
	_, err := hex.Decode(id[:], []byte(s))
	return id, err == nil
}

func newRoom(m roomMeta, root string) *room {
	return &room{meta: m, dir: filepath.Join(root, roomsDir, m.ID), authors: make(map[string]*authorHead), forked: make(map[string]bool)}
}

// len is how many entries the room holds.
func (r *room) len() int { return r.entries }

// head is the author's last stored seq and id ("" and 0 when none).
func (r *room) head(a string) (int64, string) {
	au := r.authors[a]
	if au == nil || au.seq == 0 {
		return 0, ""
	}
	return au.seq, idHex(&au.tip)
}

// rec reads the author's index record at seq (1 <= seq <= its head).
func (r *room) rec(au *authorHead, seq int64) (idxRec, error) {
	if f := r.idxFs[au.num]; f != nil {
		return readRec(f, seq)
	}
	f, err := os.Open(filepath.Join(r.dir, idxName(au.num)))
	if err != nil {
		return idxRec{}, fmt.Errorf("open index: %w", err)
	}
	defer f.Close()
	return readRec(f, seq)
}

// holds reports whether the entry with this id is stored at (author, seq).
func (r *room) holds(a string, seq int64, id string) (bool, error) {
	au := r.authors[a]
	if au == nil || seq < 1 || seq > au.seq {
		return false, nil
	}
	want, ok := parseID(id)
	if !ok {
		return false, nil
	}
	if seq == au.seq {
		return au.tip == want, nil
	}
	rec, err := r.rec(au, seq)
	if err != nil {
		return false, err
	}
	return rec.id == want, nil
}

// chainErr is why e cannot be the author's next entry, or nil when it can: the same rules
// as history.Log.Add (a fork, a gap, a broken chain). A fork marks the author as forked.
func (r *room) chainErr(e *history.Entry) error {
	n, tip := r.head(e.Author)
	switch {
	case e.Seq <= n:
		r.forked[e.Author] = true
		return &history.Error{Code: history.CodeFork, Msg: "another entry is stored at this author and seq; keeping the first"}
	case e.Seq > n+1:
		return &history.Error{Code: history.CodeGap, Msg: "entries before this one are missing"}
	case e.Prev != tip:
		return &history.Error{Code: history.CodeBrokenChain, Msg: "prev is not the author's previous entry"}
	}
	return nil
}

// heads is, per author with entries, the last stored seq.
func (r *room) heads() map[string]int64 {
	h := make(map[string]int64, r.writers)
	for a, au := range r.authors {
		if au.seq > 0 {
			h[a] = au.seq
		}
	}
	return h
}

// tips is, per author with entries, the id of the last stored entry.
func (r *room) tips() map[string]string {
	t := make(map[string]string, r.writers)
	for a, au := range r.authors {
		if au.seq > 0 {
			t[a] = idHex(&au.tip)
		}
	}
	return t
}

// span is one author's entries from..to to merge.
type span struct {
	author   string
	num      int
	from, to int64
}

// spans are the runs of the entries a peer with these heads lacks (nil: everything).
func (r *room) spans(heads map[string]int64) []span {
	var out []span
	for a, au := range r.authors {
		if from := min(max(heads[a], 0), au.seq); from < au.seq {
			out = append(out, span{author: a, num: au.num, from: from + 1, to: au.seq})
		}
	}
	return out
}

// mergeRun is one author's run being merged: rec is at seq.
type mergeRun struct {
	span
	seq int64
	rec idxRec
	rr  *recReader
}

// merge yields the records of the spans in the order history.Log.Missing gives entries:
// by (ts, author, seq), each author's entries in seq order even where its clock went
// backwards. Each run is a buffered sequential read of its author's index file.
func merge(dir string, spans []span, yield func(author string, seq int64, rec idxRec) (bool, error)) error {
	// Runs are distinct authors', so no two tops compare equal.
	runs := history.MinHeap[*mergeRun]{Less: func(a, b *mergeRun) bool {
		return cmp.Or(cmp.Compare(a.rec.ts, b.rec.ts), cmp.Compare(a.author, b.author), cmp.Compare(a.seq, b.seq)) < 0
	}}
	defer func() {
		for _, m := range runs.Items {
			m.rr.close()
		}
	}()
	for _, sp := range spans {
		rr, err := openRecs(dir, sp.num, sp.from, sp.to)
		if err != nil {
			return err
		}
		m := &mergeRun{span: sp, seq: sp.from, rr: rr}
		runs.Items = append(runs.Items, m)
		if m.rec, err = rr.next(); err != nil {
			return err
		}
	}
	runs.Init()
	for len(runs.Items) > 0 {
		top := runs.Items[0]
		more, err := yield(top.author, top.seq, top.rec)
		if err != nil || !more {
			return err
		}
		if top.seq == top.to {
			top.rr.close()
			runs.DropTop()
			continue
		}
		top.seq++
		if top.rec, err = top.rr.next(); err != nil {
			return err
		}
		runs.Fix()
	}
	return nil
}

// read reads the entries of these spans in display order. The caller holds r.mu (for
// reading at least).
//
// Each entry read is checked before it is sent or exported: its frame's CRC, its id must
// be the hash of its content and the id the index holds. One that fails was damaged on the
// card: it is logged and marked damaged (Append then takes a good copy from a peer in its
// place), and it and the author's later entries are left out of what read returns, so a
// peer never receives an entry that does not check, nor the gap after it.
func (s *Store) read(r *room, spans []span) ([]history.Entry, error) {
	var out []history.Entry
	fs := newFiles(r.dir)
	defer fs.close()
	err := s.mergeSound(r, fs, spans, func(e history.Entry) (bool, error) {
		out = append(out, e)
		return true, nil
	})
	if err != nil {
		s.log.Error("an indexed entry cannot be read", "room", r.meta.ID, "err", err)
		return nil, err
	}
	return out, nil
}

// readEntry reads and checks the entry of a record; ok is false when it is damaged.
// mergeSound is merge with each entry read and checked (readEntry): visit gets the sound
// ones in display order; an author's damaged entry and everything after it are skipped.
func (s *Store) mergeSound(r *room, fs *files, spans []span, visit func(history.Entry) (bool, error)) error {
	var broken map[string]bool // authors with a damaged entry in this read
	return merge(r.dir, spans, func(a string, seq int64, rec idxRec) (bool, error) {
		if broken[a] {
			return true, nil
		}
		e, ok, err := s.readEntry(r, fs, a, seq, rec)
		if err != nil {
			return false, err
		}
		if !ok {
			if broken == nil {
				broken = make(map[string]bool)
			}
			broken[a] = true
			return true, nil
		}
		return visit(e)
	})
}

func (s *Store) readEntry(r *room, fs *files, a string, seq int64, rec idxRec) (history.Entry, bool, error) {
	var e history.Entry
	b, err := fs.frame(rec.loc)
	if err != nil && !errors.Is(err, errBadFrame) {
		return e, false, err
	}
	if err != nil || json.Unmarshal(b, &e) != nil || !s.sound(r, pos{a, seq}, &rec, &e) {
		s.markDamaged(r, a, seq)
		return e, false, nil
	}
	return e, true, nil
}

// sound reports whether e, read at p, is the entry the index holds there and its id is the
// hash of its content.
func (s *Store) sound(r *room, p pos, rec *idxRec, e *history.Entry) bool {
	return e.Room == r.meta.ID && e.Author == p.author && e.Seq == p.seq && e.ID == idHex(&rec.id) && e.ComputeID() == e.ID
}

// damageKey names a stored entry in the damaged set and in logs.
func damageKey(room, author string, seq int64) string {
	return room + ":" + author + ":" + strconv.FormatInt(seq, 10)
}

// markDamaged notes and logs (once) an entry found damaged.
func (s *Store) markDamaged(r *room, a string, seq int64) {
	key := damageKey(r.meta.ID, a, seq)
	if _, seen := s.damaged.LoadOrStore(key, true); !seen {
		s.log.Error("a stored entry is damaged (its frame or id does not check): not sent; a peer that has it can send it again",
			"entry", key, "dir", r.dir)
	}
}

// repairs reports whether e, fully checked, replaces a damaged entry at its place: the
// entry there was marked damaged by read, and e is the entry the index expects there (its
// id), or the author's last one. The caller holds r.mu for writing.
func (s *Store) repairs(r *room, e *history.Entry) bool {
	au := r.authors[e.Author]
	if au == nil || e.Seq < 1 || e.Seq > au.seq {
		return false
	}
	if _, ok := s.damaged.Load(damageKey(r.meta.ID, e.Author, e.Seq)); !ok {
		return false
	}
	want, ok := parseID(e.ID)
	if !ok {
		return false
	}
	prev := ""
	if e.Seq > 1 {
		rec, err := r.rec(au, e.Seq-1)
		if err != nil {
			return false
		}
		prev = idHex(&rec.id)
	}
	if e.Prev != prev {
		return false
	}
	if e.Seq == au.seq {
		return true
	}
	rec, err := r.rec(au, e.Seq)
	return err == nil && rec.id == want
}
