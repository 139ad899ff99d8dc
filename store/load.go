package store

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/chattorrent/chattorrent/store/history"
)

// maxSkipLogs is how many skipped entries are logged one by one on Open; the rest are
// counted in a summary.
const maxSkipLogs = 20

// storedEntry is an entry key, parsed.
type storedEntry struct {
	room, author string
	seq          int64
}

// load builds the rooms and their indexes from buntdb's keys: one pass over the keys
// (room metadata, which rooms have entries, keys that are no entry's), then the rooms'
// entries, rooms in parallel, each in key order: by author, then seq.
func (s *Store) load() error {
	start := time.Now()
	var skips atomic.Int64
	skip := func(key, why string) {
		if skips.Add(1) <= maxSkipLogs {
			s.log.Warn("skipping a stored record", "key", key, "reason", why)
		}
	}
	var metas []roomMeta
	withEntries := make(map[string]bool)
	err := s.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys("*", func(key, val string) bool {
			switch {
			case strings.HasPrefix(key, "r:"):
				var m roomMeta
				if err := json.Unmarshal([]byte(val), &m); err != nil {
					skip(key, "room metadata is not JSON: "+err.Error())
				} else if m.ID != key[2:] || !validRoomID(m.ID) {
					skip(key, "room metadata does not match its key")
				} else {
					metas = append(metas, m)
				}
			case strings.HasPrefix(key, "e:"):
				se, ok := parseEntryKey(key)
				if ok {
					valid, seen := withEntries[se.room]
					if !seen {
						// A room's id is checked once, not at each of its entries.
						valid = validRoomID(se.room)
						withEntries[se.room] = valid
					}
					ok = valid
				}
				if !ok {
					skip(key, "not an entry key")
				}
			default:
				skip(key, "unknown key")
			}
			return true
		})
	})
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	for _, m := range metas {
		s.rooms[m.ID] = newRoom(m)
	}
	// Index the rooms in parallel: parsing the entries' JSON is most of Open's time and
	// rooms are independent.
	jobs := make(chan *room)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(s.rooms), len(withEntries), 1)) {
		wg.Go(func() {
			for r := range jobs {
				n.Add(int64(s.index(r, skip)))
			}
		})
	}
	var orphans []*room
	for id, valid := range withEntries {
		if !valid {
			continue
		}
		r := s.rooms[id]
		if r == nil {
			r = newRoom(roomMeta{ID: id})
			orphans = append(orphans, r)
		}
		jobs <- r
	}
	close(jobs)
	wg.Wait()
	for _, r := range orphans {
		if r.len() > 0 {
			// Entries without their room's metadata: keep them under a room with no name
			// rather than hide them.
			s.log.Warn("entries of a room with no metadata: keeping them, unnamed", "room", r.meta.ID, "entries", r.len())
			s.rooms[r.meta.ID] = r
		}
	}
	if k := skips.Load(); k > 0 {
		s.log.Warn("skipped stored records that do not check; peers can send them again",
			"skipped", k, "file", s.path)
	}
	s.log.Info("store opened", "file", s.path, "rooms", len(s.rooms), "entries", n.Load(),
		"sync", s.opts.Sync.String(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// indexed is what the index needs of a stored entry's JSON (the rest is not even decoded).
type indexed struct {
	Room   string `json:"room"`
	Author string `json:"author"`
	Seq    int64  `json:"seq"`
	Prev   string `json:"prev"`
	TS     int64  `json:"ts"`
	ID     string `json:"id"`
}

// index adds a room's stored entries to its index, in key order (by author, then seq as
// fixed-width hex, which is chain order); what does not check is skipped. It returns how
// many were added. It owns r until it returns.
//
// A stored record is the store's own write of an entry it checked in full (fields, id,
// signature) before writing it, so index trusts it: it checks only what is cheap and
// structural (the record is JSON, the entry is the one its key names, id and prev have the
// shape of ids, and each author's chain links up: seq 1, 2, 3 … and prev is the id stored
// at seq-1), not the Ed25519 signature and not the id's hash. See docs/ARCHITECTURE.md
// ("Open trusts rooms.db") for why, and for what a damaged or rewritten record then does.
func (s *Store) index(r *room, skip func(key, why string)) int {
	n := 0
	prefix := "e:" + r.meta.ID + ":"
	// The range ends before "e:<room>;", ';' being the byte after ':'.
	_ = s.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendRange("", prefix, prefix[:len(prefix)-1]+";", func(key, val string) bool {
			se, ok := parseEntryKey(key)
			if !ok {
				return true // skipped (and logged) by load's pass over the keys
			}
			e, ok := scanIndexed(val)
			if !ok {
				e = indexed{}
				if err := json.Unmarshal([]byte(val), &e); err != nil {
					skip(key, "not an entry: "+err.Error())
					return true
				}
			}
			if e.Room != se.room || e.Author != se.author || e.Seq != se.seq {
				skip(key, "entry does not match its key")
				return true
			}
			id, ok := parseID(e.ID)
			prev, pok := parseID(e.Prev)
			if !ok || (e.Prev != "" && !pok) {
				skip(key, "id or prev is not 64 lowercase hex characters")
				return true
			}
			// The chain, as chainErr checks it, without making the prev's text.
			c := r.chains[se.author]
			switch have := int64(len(c)); {
			case e.Seq != have+1:
				skip(key, history.ErrGap.Code+": entries before this one are missing")
				return true
			case (have == 0) != (e.Prev == ""), have > 0 && c[have-1].id != prev:
				skip(key, history.ErrBrokenChain.Code+": prev is not the author's previous entry")
				return true
			}
			r.push(se.author, id, e.TS, len(val))
			n++
			return true
		})
	})
	return n
}

func newRoom(m roomMeta) *room {
	return &room{meta: m, chains: make(map[string][]entryRec), authors: make(map[string]string), forked: make(map[string]bool)}
}

// entryKey is the buntdb key of an entry.
func entryKey(room, author string, seq int64) string {
	return "e:" + room + ":" + author + ":" + fmt.Sprintf("%016x", seq)
}

func roomKey(room string) string { return "r:" + room }

// parseEntryKey splits e:<room>:<author>:<seq>.
func parseEntryKey(key string) (storedEntry, bool) {
	rest, ok := strings.CutPrefix(key, "e:")
	room, rest, ok1 := strings.Cut(rest, ":")
	author, hexSeq, ok2 := strings.Cut(rest, ":")
	if !ok || !ok1 || !ok2 || len(hexSeq) != 16 || strings.Contains(hexSeq, ":") {
		return storedEntry{}, false
	}
	seq, err := strconv.ParseInt(hexSeq, 16, 64)
	if err != nil || seq < 1 {
		return storedEntry{}, false
	}
	return storedEntry{room: room, author: author, seq: seq}, true
}

// scanIndexed reads what the index needs from an entry's JSON as the store writes it
// (json.Marshal of a history.Entry: its fields in order, no spaces), without decoding the
// rest or allocating: the strings it returns are parts of v. ok is false for anything else,
// and the caller then decodes v with encoding/json. The name, kind and body are skipped up
// to their closing quote, not validated (they are decoded, and a bad one is caught, when
// the entry is read: Store.read).
func scanIndexed(v string) (e indexed, ok bool) {
	sc := jsonScan{s: v}
	ok = sc.lit(`{"room":`) && sc.plain(&e.Room) &&
		sc.lit(`,"author":`) && sc.plain(&e.Author) &&
		sc.lit(`,"name":`) && sc.skip() &&
		sc.lit(`,"seq":`) && sc.int(&e.Seq) &&
		sc.lit(`,"prev":`) && sc.plain(&e.Prev) &&
		sc.lit(`,"ts":`) && sc.int(&e.TS) &&
		sc.lit(`,"kind":`) && sc.skip() &&
		sc.lit(`,"body":`) && sc.skip() &&
		sc.lit(`,"sig":`) && sc.skip() &&
		sc.lit(`,"id":`) && sc.plain(&e.ID) &&
		sc.lit(`}`) && sc.s == ""
	return e, ok
}

// jsonScan consumes s from the front.
type jsonScan struct{ s string }

func (j *jsonScan) lit(x string) bool {
	rest, ok := strings.CutPrefix(j.s, x)
	j.s = rest
	return ok
}

// plain reads a string with no escapes and no control characters.
func (j *jsonScan) plain(out *string) bool {
	if !strings.HasPrefix(j.s, `"`) {
		return false
	}
	for i := 1; i < len(j.s); i++ {
		switch c := j.s[i]; {
		case c == '"':
			*out, j.s = j.s[1:i], j.s[i+1:]
			return true
		case c == '\\' || c < 0x20:
			return false
		}
	}
	return false
}

// skip passes over a string, escapes and all.
func (j *jsonScan) skip() bool {
	if !strings.HasPrefix(j.s, `"`) {
		return false
	}
	for i := 1; i < len(j.s); i++ {
		switch c := j.s[i]; {
		case c == '"':
			j.s = j.s[i+1:]
			return true
		case c == '\\':
			i++
		case c < 0x20:
			return false
		}
	}
	return false
}

// int reads an integer without a sign, exponent or fraction (seq and ts are positive).
func (j *jsonScan) int(out *int64) bool {
	i := 0
	for i < len(j.s) && j.s[i] >= '0' && j.s[i] <= '9' {
		i++
	}
	if i == 0 || (i > 1 && j.s[0] == '0') {
		return false
	}
	n, err := strconv.ParseInt(j.s[:i], 10, 64)
	if err != nil {
		return false
	}
	*out, j.s = n, j.s[i:]
	return true
}
