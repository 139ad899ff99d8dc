package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/chattorrent/chattorrent/store/history"
)

// Migration from layout version 1, where rooms.db held every entry as a key
// e:<room>:<author>:<seq %016x> → the entry's JSON, to version 2 (docs/ARCHITECTURE.md,
// "store"). The new layout is built whole in migrateDir, every file and directory fsynced,
// then rooms/ is moved into place and the new rooms.db renamed over the old one: that
// rename is the commit. Before it the old rooms.db is untouched (a stray rooms/ is removed
// by the next attempt); after it the store is version 2.

// migrateDir is where a migration builds the new layout, inside the store's dir.
const migrateDir = "migrate.tmp"

// needsMigration reports whether rooms.db is a version-1 store with entries. An empty
// store without the version key gets it (wrote: rooms.db changed, not yet fsynced).
func (s *Store) needsMigration() (migrate, wrote bool, err error) {
	var v string
	var old bool
	err = s.db.View(func(tx *buntdb.Tx) error {
		var err error
		if v, err = tx.Get(versionKey); errors.Is(err, buntdb.ErrNotFound) {
			v = ""
		} else if err != nil {
			return err
		}
		return tx.AscendGreaterOrEqual("", "e:", func(k, _ string) bool {
			old = strings.HasPrefix(k, "e:")
			return false
		})
	})
	switch {
	case err != nil:
		return false, false, fmt.Errorf("read: %w", err)
	case v == layoutVersion:
		return false, false, nil
	case v != "":
		return false, false, fmt.Errorf("rooms.db is of layout version %q; this program knows %q", v, layoutVersion)
	case old:
		return true, false, nil
	}
	err = s.db.Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(versionKey, layoutVersion, nil)
		return err
	})
	if err != nil {
		return false, false, fmt.Errorf("write the version: %w", err)
	}
	return false, true, nil
}

// hook runs the test's failure injection at a stage of the migration.
func (s *Store) hook(stage string) error {
	if s.opts.migrateHook == nil {
		return nil
	}
	return s.opts.migrateHook(stage)
}

// migrate turns the open version-1 rooms.db into version 2. On success s.db is closed
// (the caller opens the new rooms.db); on failure the old rooms.db is as it was.
func (s *Store) migrate() error {
	start := time.Now()
	dir := s.dir()
	tmp := filepath.Join(dir, migrateDir)
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(tmp, roomsDir), 0o700); err != nil {
		return err
	}
	s.log.Info("migrating the store to layout version "+layoutVersion+" (entries out of rooms.db)", "dir", dir)
	n, err := s.buildV2(tmp)
	if err == nil {
		err = s.hook("built")
	}
	if err != nil {
		return errors.Join(err, os.RemoveAll(tmp))
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close rooms.db: %w", err)
	}
	s.db = nil
	rooms := filepath.Join(dir, roomsDir)
	if err := os.RemoveAll(rooms); err != nil { // a previous attempt's
		return err
	}
	if err := os.Rename(filepath.Join(tmp, roomsDir), rooms); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := s.hook("moved"); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(tmp, FileName), s.path); err != nil { // the commit
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(tmp); err != nil {
		s.log.Warn("could not remove the migration's directory", "dir", tmp, "err", err)
	}
	s.log.Info("migrated the store", "entries", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// buildV2 writes the version-2 layout of s.db's rooms and entries into tmp, every file
// and directory fsynced. Entries are checked as version 1's Open checked them (structure
// and chains); what fails is logged and left out, as Open then skipped it.
func (s *Store) buildV2(tmp string) (int, error) {
	t := newStore(tmp, Options{Sync: SyncNever, Logger: s.log, Now: s.now,
		Limits: Limits{Rooms: -1, AuthorsPerRoom: -1, AuthorEntriesPerHour: -1, AuthorBytesPerHour: -1, StoreBytes: -1}})
	if err := t.openDB(); err != nil {
		return 0, err
	}
	defer func() {
		for _, r := range t.rooms {
			_ = r.closeFiles(true)
		}
		if t.db != nil {
			_ = t.db.Close()
		}
	}()
	if err := t.set(versionKey, layoutVersion); err != nil {
		return 0, err
	}
	skips := 0
	skip := func(key, why string) {
		if skips++; skips <= maxSkipLogs {
			s.log.Warn("migration: skipping a stored record", "key", key, "reason", why)
		}
	}
	var metas []roomMeta
	withEntries := make(map[string]bool)
	err := s.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys("*", func(key, val string) bool {
			switch {
			case strings.HasPrefix(key, "r:"):
				var m roomMeta
				if err := json.Unmarshal([]byte(val), &m); err != nil || m.ID != key[2:] || !validRoomID(m.ID) {
					skip(key, "room metadata does not parse or match its key")
				} else {
					metas = append(metas, m)
				}
			case strings.HasPrefix(key, "e:"):
				if se, ok := parseEntryKey(key); ok && validRoomID(se.room) {
					withEntries[se.room] = true
				} else {
					skip(key, "not an entry key")
				}
			default:
				skip(key, "unknown key")
			}
			return true
		})
	})
	if err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	for id := range withEntries {
		if !slicesContainsRoom(metas, id) {
			// Entries without their room's metadata: kept under a room with no name, as
			// version 1 kept them.
			metas = append(metas, roomMeta{ID: id})
		}
	}
	n := 0
	for _, m := range metas {
		val, err := json.Marshal(m)
		if err != nil {
			return 0, err
		}
		if err := t.set(roomKey(m.ID), string(val)); err != nil {
			return 0, err
		}
		r := newRoom(m, tmp)
		t.rooms[m.ID] = r
		k, err := s.migrateRoom(t, r, skip)
		if err != nil {
			return 0, fmt.Errorf("room %s: %w", m.ID, err)
		}
		n += k
		if err := r.closeFiles(true); err != nil {
			return 0, err
		}
	}
	if skips > 0 {
		s.log.Warn("migration: skipped stored records that do not check; peers can send them again", "skipped", skips)
	}
	if err := t.db.Close(); err != nil {
		return 0, fmt.Errorf("close the new rooms.db: %w", err)
	}
	t.db = nil
	return n, syncTree(tmp)
}

func slicesContainsRoom(ms []roomMeta, id string) bool {
	for _, m := range ms {
		if m.ID == id {
			return true
		}
	}
	return false
}

// migrateRoom writes one room's version-1 entries, in key order (by author, then seq),
// into t's room r.
func (s *Store) migrateRoom(t *Store, r *room, skip func(key, why string)) (int, error) {
	n := 0
	var werr error
	prefix := "e:" + r.meta.ID + ":"
	// The range ends before "e:<room>;", ';' being the byte after ':'.
	err := s.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendRange("", prefix, prefix[:len(prefix)-1]+";", func(key, val string) bool {
			se, ok := parseEntryKey(key)
			if !ok {
				return true
			}
			payload := []byte(val)
			e, ok := scanIndexed(val)
			if !ok {
				// Not as json.Marshal writes it: decode and write it so (exports hand out
				// the stored JSON as it is).
				var full history.Entry
				if err := json.Unmarshal(payload, &full); err != nil {
					skip(key, "not an entry: "+err.Error())
					return true
				}
				if payload, werr = json.Marshal(full); werr != nil {
					return false
				}
				e = indexed{Room: full.Room, Author: full.Author, Seq: full.Seq, Prev: full.Prev, TS: full.TS, ID: full.ID}
			}
			if e.Room != se.room || e.Author != se.author || e.Seq != se.seq {
				skip(key, "entry does not match its key")
				return true
			}
			id, ok := parseID(e.ID)
			if !ok || (e.Prev != "" && !history.IsID(e.Prev)) {
				skip(key, "id or prev is not 64 lowercase hex characters")
				return true
			}
			switch seq, tip := r.head(se.author); {
			case e.Seq != seq+1:
				skip(key, history.ErrGap.Code+": entries before this one are missing")
				return true
			case e.Prev != tip:
				skip(key, history.ErrBrokenChain.Code+": prev is not the author's previous entry")
				return true
			}
			au := r.authors[se.author]
			if au == nil {
				if au, werr = t.addAuthor(r, se.author); werr != nil {
					return false
				}
			}
			if werr = t.store(r, au, payload, id, e.TS); werr != nil {
				return false
			}
			n++
			if n%1024 == 0 {
				if s.opts.Busy != nil {
					s.opts.Busy()
				}
				werr = s.hook("entries")
			}
			return werr == nil
		})
	})
	return n, errors.Join(err, werr)
}

// syncTree fsyncs every file and directory under root, root included.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syncDir(p)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		return errors.Join(f.Sync(), f.Close())
	})
}

// storedEntry is a version-1 entry key, parsed.
type storedEntry struct {
	room, author string
	seq          int64
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
