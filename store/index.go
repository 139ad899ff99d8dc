package store

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/tidwall/buntdb"

	"github.com/chattorrent/chattorrent/store/history"
)

// The store keeps one copy of each entry in RAM: buntdb's (its records are replayed into
// memory on Open). Beside it each room holds an index of what sync needs without reading an
// entry: per author, the chain of ids and timestamps. A stored entry's author and seq are
// its place in the index, its prev the id at seq-1. Heads, tips, the chain checks of Append
// and the order of Missing come from the index; the entries themselves (bodies, names,
// signatures) are read from buntdb when they are sent or exported.

// entryRec is one stored entry in a room's index: 48 bytes (the entry's JSON is ~600).
type entryRec struct {
	id   [32]byte // the entry's id, decoded from hex
	ts   int64    // ms since 1970, as the author stated it
	size uint32   // bytes of its JSON record in rooms.db
}

// pos is a stored entry's place: its author (an interned key of the room's chains) and seq.
type pos struct {
	author string
	seq    int64
}

// idHex is an entry id in its text form.
func idHex(id *[32]byte) string { return hex.EncodeToString(id[:]) }

// parseID decodes an id's text form: 64 lowercase hex characters.
func parseID(s string) ([32]byte, bool) {
	var id [32]byte
	if !isHexID(s) {
		return id, false
	}
	_, err := hex.Decode(id[:], []byte(s))
	return id, err == nil
}

// isHexID reports whether s is 64 lowercase hex characters, the shape of an entry id.
func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// len is how many entries the room holds.
func (r *room) len() int { return r.entries }

// head is the author's last stored seq and id ("" and 0 when none).
func (r *room) head(author string) (int64, string) {
	c := r.chains[author]
	if len(c) == 0 {
		return 0, ""
	}
	return int64(len(c)), idHex(&c[len(c)-1].id)
}

// holds reports whether the entry with this id is stored at (author, seq).
func (r *room) holds(author string, seq int64, id string) bool {
	c := r.chains[author]
	if seq < 1 || seq > int64(len(c)) {
		return false
	}
	want, ok := parseID(id)
	return ok && c[seq-1].id == want
}

// chainErr is why e cannot be the author's next entry, or nil when it can: the same rules
// as history.Log.Add (a fork, a gap, a broken chain). A fork marks the author as forked.
func (r *room) chainErr(e *history.Entry) error {
	c := r.chains[e.Author]
	n := int64(len(c))
	switch {
	case e.Seq <= n:
		r.forked[e.Author] = true
		return &history.Error{Code: history.CodeFork, Msg: "another entry is stored at this author and seq; keeping the first"}
	case e.Seq > n+1:
		return &history.Error{Code: history.CodeGap, Msg: "entries before this one are missing"}
	case n == 0 && e.Prev != "", n > 0 && e.Prev != idHex(&c[n-1].id):
		return &history.Error{Code: history.CodeBrokenChain, Msg: "prev is not the author's previous entry"}
	}
	return nil
}

// push appends an entry that chains (chainErr said nil) to its author's chain.
func (r *room) push(author string, id [32]byte, ts int64, size int) {
	if a, ok := r.authors[author]; ok {
		author = a
	} else {
		r.authors[author] = author
	}
	r.chains[author] = append(r.chains[author], entryRec{id: id, ts: ts, size: uint32(size)})
	r.entries++
	r.lastTS = max(r.lastTS, ts)
}

// heads is, per author, the last stored seq.
func (r *room) heads() map[string]int64 {
	h := make(map[string]int64, len(r.chains))
	for a, c := range r.chains {
		h[a] = int64(len(c))
	}
	return h
}

// tips is, per author, the id of the last stored entry.
func (r *room) tips() map[string]string {
	t := make(map[string]string, len(r.chains))
	for a, c := range r.chains {
		t[a] = idHex(&c[len(c)-1].id)
	}
	return t
}

// missing is where the entries a peer with these heads lacks are, in the order
// history.Log.Missing gives them: by (ts, author, seq) merged from the per-author runs, so
// each author's entries stay in seq order even where its clock went backwards.
func (r *room) missing(heads map[string]int64) []pos {
	// Runs are distinct authors', so no two first entries compare equal.
	runs := history.MinHeap[run]{Less: func(a, b run) bool {
		return cmp.Or(cmp.Compare(a.recs[0].ts, b.recs[0].ts), cmp.Compare(a.author, b.author), cmp.Compare(a.seq, b.seq)) < 0
	}}
	total := 0
	for a, c := range r.chains {
		from := min(max(heads[a], 0), int64(len(c)))
		if from < int64(len(c)) {
			runs.Items = append(runs.Items, run{author: a, seq: from + 1, recs: c[from:]})
			total += len(c) - int(from)
		}
	}
	runs.Init()
	out := make([]pos, 0, total)
	for len(runs.Items) > 0 {
		top := &runs.Items[0]
		out = append(out, pos{top.author, top.seq})
		top.seq++
		if top.recs = top.recs[1:]; len(top.recs) == 0 {
			runs.DropTop()
		} else {
			runs.Fix()
		}
	}
	return out
}

// run is the rest of one author's chain to merge: recs[0] is at seq.
type run struct {
	author string
	seq    int64
	recs   []entryRec
}

// read reads the entries at these places from buntdb, in order, in one read transaction.
// The caller holds r.mu (for reading at least), so the index and the file agree.
//
// Open does not re-check stored entries (load.go), so read checks each one it reads before
// it is sent or exported: its id must be the hash of its content and the id the index
// holds. One that fails was damaged in rooms.db (the SD card): it is logged and marked
// damaged (Append then takes a good copy from a peer in its place), and it and the
// author's later entries are left out of what read returns, so a peer never receives an
// entry that does not check, nor the gap after it. The signature is not checked again:
// a record changed so that its id still matches was rewritten on purpose (see
// docs/ARCHITECTURE.md, "Open trusts rooms.db").
func (s *Store) read(r *room, at []pos) ([]history.Entry, error) {
	out := make([]history.Entry, 0, len(at))
	var broken map[string]bool // authors with a damaged entry in this read
	err := s.db.View(func(tx *buntdb.Tx) error {
		for _, p := range at {
			if broken[p.author] {
				continue
			}
			key := entryKey(r.meta.ID, p.author, p.seq)
			val, err := tx.Get(key)
			if err != nil {
				return fmt.Errorf("read %s: %w", key, err)
			}
			var e history.Entry
			if err := json.Unmarshal([]byte(val), &e); err != nil || !s.sound(r, p, &e) {
				if broken == nil {
					broken = make(map[string]bool)
				}
				broken[p.author] = true
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		// Unreachable while only the store writes rooms.db: every indexed entry was read
		// and parsed from it at Open, or written by Append.
		s.log.Error("an indexed entry cannot be read", "room", r.meta.ID, "err", err)
		return nil, err
	}
	return out, nil
}

// sound reports whether e, read at p, is the entry the index holds there and its id is the
// hash of its content. One that is not is marked damaged and logged (once).
func (s *Store) sound(r *room, p pos, e *history.Entry) bool {
	rec := &r.chains[p.author][p.seq-1]
	if e.Room == r.meta.ID && e.Author == p.author && e.Seq == p.seq && e.ID == idHex(&rec.id) && e.ComputeID() == e.ID {
		return true
	}
	key := entryKey(r.meta.ID, p.author, p.seq)
	if _, seen := s.damaged.LoadOrStore(key, true); !seen {
		s.log.Error("a stored entry is damaged (its id is not the hash of its content): not sent; a peer that has it can send it again",
			"key", key, "file", s.path)
	}
	return false
}

// repairs reports whether e, fully checked, replaces a damaged record at its place: the
// record there was marked damaged by read, and e is the entry the index expects there (its
// id), or the author's last one (a damaged id, whose next entries Open could not chain).
// The caller holds r.mu for writing.
func (s *Store) repairs(r *room, e *history.Entry) bool {
	c := r.chains[e.Author]
	if e.Seq < 1 || e.Seq > int64(len(c)) {
		return false
	}
	if _, ok := s.damaged.Load(entryKey(r.meta.ID, e.Author, e.Seq)); !ok {
		return false
	}
	want, ok := parseID(e.ID)
	if !ok {
		return false
	}
	prev := ""
	if e.Seq > 1 {
		prev = idHex(&c[e.Seq-2].id)
	}
	return e.Prev == prev && (c[e.Seq-1].id == want || e.Seq == int64(len(c)))
}
