package store

import (
	"cmp"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/chattorrent/chattorrent/store/history"
)

// loadNow is the clock entries are re-checked against on Open. They were checked against
// the real clock when they were appended; a Pi has no battery-backed clock and may boot
// with its time behind, which must not turn stored entries into "future" ones.
var loadNow = time.UnixMilli(history.MaxSeq)

// maxSkipLogs is how many skipped entries are logged one by one on Open; the rest are
// counted in a summary.
const maxSkipLogs = 20

// storedEntry is an entry key and its JSON, as read from buntdb.
type storedEntry struct {
	key, room, author string
	seq               int64
	val               string
}

// load replays the buntdb keys into rooms and their logs.
func (s *Store) load() error {
	start := time.Now()
	var skips atomic.Int64
	skip := func(key, why string) {
		if skips.Add(1) <= maxSkipLogs {
			s.log.Warn("skipping a stored record", "key", key, "reason", why)
		}
	}
	var metas []roomMeta
	byRoom := make(map[string][]storedEntry)
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
				if !ok {
					skip(key, "not an entry key")
					break
				}
				se.val = val
				byRoom[se.room] = append(byRoom[se.room], se)
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
	// Rebuild the rooms' logs in parallel: re-checking signatures is most of Open's time
	// and rooms are independent. Within a room, entries go in (author, seq) order.
	type job struct {
		r  *room
		es []storedEntry
	}
	jobs := make(chan job)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(byRoom), 1)) {
		wg.Go(func() {
			for j := range jobs {
				n.Add(int64(rebuild(j.r, j.es, skip)))
			}
		})
	}
	var orphans []*room
	for id, es := range byRoom {
		r := s.rooms[id]
		if r == nil {
			r = newRoom(roomMeta{ID: id})
			orphans = append(orphans, r)
		}
		jobs <- job{r, es}
	}
	close(jobs)
	wg.Wait()
	for _, r := range orphans {
		if r.log.Len() > 0 {
			// Entries without their room's metadata: keep them under a room with no name
			// rather than hide them.
			s.log.Warn("entries of a room with no metadata: keeping them, unnamed", "room", r.meta.ID, "entries", r.log.Len())
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

// rebuild adds a room's stored entries to its log in (author, seq) order; what does not
// check is skipped. It returns how many were added. It owns r until it returns.
func rebuild(r *room, stored []storedEntry, skip func(key, why string)) int {
	// Keys already ascend by author, then seq as fixed-width hex; sort anyway, so the order
	// never depends on the key encoding.
	slices.SortFunc(stored, func(a, b storedEntry) int {
		return cmp.Or(cmp.Compare(a.author, b.author), cmp.Compare(a.seq, b.seq))
	})
	n := 0
	for _, se := range stored {
		var e history.Entry
		if err := json.Unmarshal([]byte(se.val), &e); err != nil {
			skip(se.key, "not an entry: "+err.Error())
			continue
		}
		if e.Room != se.room || e.Author != se.author || e.Seq != se.seq {
			skip(se.key, "entry does not match its key")
			continue
		}
		if _, err := r.add(e, loadNow); err != nil {
			skip(se.key, err.Error())
			continue
		}
		n++
	}
	return n
}

func newRoom(m roomMeta) *room {
	return &room{meta: m, log: history.NewLog(m.ID), authors: make(map[string]string)}
}

// add adds e to the room's log. It first makes e share the strings the room already holds
// (the room id, the author id, prev as the previous entry's id: ~140 bytes an entry) so a
// large history costs less RAM. The caller holds r.mu for writing (or owns r).
func (r *room) add(e history.Entry, now time.Time) (bool, error) {
	return r.addWith(e, func(e history.Entry) (bool, error) { return r.log.Add(e, now) })
}

// addChecked is add for an entry checked already (history.CheckBatch, then append): only
// the chain rules are applied, its signature is not verified again.
func (r *room) addChecked(e history.Entry) (bool, error) { return r.addWith(e, r.log.AddChecked) }

func (r *room) addWith(e history.Entry, logAdd func(history.Entry) (bool, error)) (bool, error) {
	if e.Room == r.meta.ID {
		e.Room = r.meta.ID
	}
	a, known := r.authors[e.Author]
	if known {
		e.Author = a
	}
	if head, ok := r.log.Head(e.Author); ok && head.ID == e.Prev {
		e.Prev = head.ID
	}
	added, err := logAdd(e)
	if !added || err != nil {
		return added, err
	}
	if !known {
		r.authors[e.Author] = e.Author
	}
	r.lastTS = max(r.lastTS, e.TS)
	return true, nil
}

// entryKey is the buntdb key of an entry.
func entryKey(room, author string, seq int64) string {
	return "e:" + room + ":" + author + ":" + fmt.Sprintf("%016x", seq)
}

func roomKey(room string) string { return "r:" + room }

// parseEntryKey splits e:<room>:<author>:<seq>.
func parseEntryKey(key string) (storedEntry, bool) {
	parts := strings.Split(key, ":")
	if len(parts) != 4 || len(parts[3]) != 16 {
		return storedEntry{}, false
	}
	seq, err := strconv.ParseInt(parts[3], 16, 64)
	if err != nil || seq < 1 {
		return storedEntry{}, false
	}
	return storedEntry{key: key, room: parts[1], author: parts[2], seq: seq}, true
}
