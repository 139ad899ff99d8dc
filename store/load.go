package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/chattorrent/chattorrent/store/history"
)

// layoutVersion is the store's layout, the value of rooms.db's versionKey. Version 1 (no
// key) kept every entry in rooms.db.
const (
	layoutVersion = "2"
	versionKey    = "v"
)

// maxSkipLogs is how many skipped records are logged one by one on Open; the rest are
// counted in a summary.
const maxSkipLogs = 20

// load builds the rooms from rooms.db's keys (metadata and authors' numbers), then checks
// each room's files' tails, rooms in parallel (openRoom). Nothing here reads the history:
// the cost grows with rooms and authors and what a crash left unsynced.
func (s *Store) load() error {
	start := time.Now()
	var skips atomic.Int64
	skip := func(key, why string) {
		if skips.Add(1) <= maxSkipLogs {
			s.log.Warn("skipping a stored record", "key", key, "reason", why)
		}
	}
	var metas []roomMeta
	type authorNum struct {
		room, author string
		num          int
	}
	var nums []authorNum
	err := s.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys("*", func(key, val string) bool {
			switch {
			case key == versionKey:
			case strings.HasPrefix(key, "r:"):
				var m roomMeta
				if err := json.Unmarshal([]byte(val), &m); err != nil {
					skip(key, "room metadata is not JSON: "+err.Error())
				} else if m.ID != key[2:] || !validRoomID(m.ID) {
					skip(key, "room metadata does not match its key")
				} else {
					metas = append(metas, m)
				}
			case strings.HasPrefix(key, "a:"):
				room, a, ok := strings.Cut(key[2:], ":")
				n, err := strconv.Atoi(val)
				if !ok || err != nil || n < 0 || a == "" {
					skip(key, "not an author's number")
				} else {
					nums = append(nums, authorNum{room, a, n})
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
		s.rooms[m.ID] = newRoom(m, s.dir())
	}
	for _, n := range nums {
		r := s.rooms[n.room]
		if r == nil {
			skip(authorKey(n.room, n.author), "an author of no stored room")
			continue
		}
		r.authors[n.author] = &authorHead{id: n.author, num: n.num}
		r.nextNum = max(r.nextNum, n.num+1)
	}
	// The rooms' tails, in parallel: each is a few reads per author.
	jobs := make(chan *room)
	var bytes, entries atomic.Int64
	errs := make(chan error, len(s.rooms))
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(s.rooms), 1)) {
		wg.Go(func() {
			for r := range jobs {
				n, err := s.openRoom(r)
				if err != nil {
					errs <- fmt.Errorf("room %s: %w", r.meta.ID, err)
				}
				bytes.Add(n)
				entries.Add(int64(r.entries))
			}
		})
	}
	for _, r := range s.rooms {
		jobs <- r
	}
	close(jobs)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		return err
	}
	s.dataBytes.Store(bytes.Load())
	if k := skips.Load(); k > 0 {
		s.log.Warn("skipped stored records that do not check", "skipped", k, "file", s.path)
	}
	s.log.Info("store opened", "file", s.path, "rooms", len(s.rooms), "entries", entries.Load(),
		"sync", s.opts.Sync.String(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// openRoom finds each author's head from the last record of its index file, cutting
// records a crash tore or left pointing at a frame that is not whole; then scans the
// segments past the furthest frame an index points to: whole frames of entries that chain
// onto their author's head (written, not yet indexed) are indexed, a torn frame and what
// follows it in its segment are cut. It returns the bytes of the room's files. It owns r
// until it returns.
func (s *Store) openRoom(r *room) (int64, error) {
	ents, err := os.ReadDir(r.dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var first, last uint32
	for _, e := range ents {
		if n, ok := parseSegName(e.Name()); ok {
			if first == 0 || n < first {
				first = n
			}
			last = max(last, n)
		}
	}
	fs := newFiles(r.dir)
	defer fs.close()
	var furthest loc
	for _, au := range r.authors {
		rec, n, err := s.authorTail(r, fs, au)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			continue
		}
		au.seq, au.tip, au.maxTS = n, rec.id, rec.maxTS
		r.writers++
		r.entries += int(n)
		r.lastTS = max(r.lastTS, rec.maxTS)
		if rec.loc.after(furthest) {
			furthest = rec.loc
		}
	}
	fs.close()
	if last > 0 {
		from, off := first, int64(0)
		if furthest.seg > 0 {
			from, off = furthest.seg, furthest.end()
		}
		for seg := from; seg <= last; seg++ {
			size, err := s.scanTail(r, seg, off)
			if err != nil {
				return 0, err
			}
			r.seg, r.segSize = seg, size
			off = 0
		}
	}
	if err := r.closeFiles(s.opts.Sync == SyncNever); err != nil {
		return 0, err
	}
	ents, err = os.ReadDir(r.dir)
	if err != nil {
		return 0, err
	}
	var bytes int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			bytes += fi.Size()
		}
	}
	return bytes, nil
}

// authorTail is the author's last record that checks and its seq (0: none), cutting the
// records after it.
func (s *Store) authorTail(r *room, fs *files, au *authorHead) (idxRec, int64, error) {
	name := filepath.Join(r.dir, idxName(au.num))
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return idxRec{}, 0, nil
	}
	if err != nil {
		return idxRec{}, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return idxRec{}, 0, err
	}
	n := fi.Size() / recSize
	cut := fi.Size()%recSize != 0
	for n > 0 {
		rec, err := readRec(f, n)
		if err == nil {
			_, err = fs.frame(rec.loc)
			if err == nil {
				break
			}
			if !errors.Is(err, errBadFrame) && !errors.Is(err, os.ErrNotExist) {
				return idxRec{}, 0, err
			}
		} else if !errors.Is(err, errBadFrame) {
			return idxRec{}, 0, err
		}
		n--
		cut = true
	}
	if cut {
		if err := f.Truncate(n * recSize); err != nil {
			return idxRec{}, 0, fmt.Errorf("cut index: %w", err)
		}
		if err := f.Sync(); err != nil {
			return idxRec{}, 0, fmt.Errorf("fsync index: %w", err)
		}
		s.log.Warn("cut the torn end of an author's index (records of entries not whole on the card)",
			"room", r.meta.ID, "author", au.id, "file", name, "kept", n, "was_bytes", fi.Size())
	}
	if n == 0 {
		return idxRec{}, 0, nil
	}
	rec, err := readRec(f, n)
	return rec, n, err
}

// scanTail reads segment seg's frames from off: each whole frame whose entry is its
// author's next is indexed (it was written just before a crash, its record was not); a
// torn or damaged frame and the rest of the segment are cut. It returns the segment's
// size after.
func (s *Store) scanTail(r *room, seg uint32, off int64) (int64, error) {
	name := filepath.Join(r.dir, segName(seg))
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if off >= size {
		return size, nil
	}
	var head [frameHeader]byte
	sr := io.NewSectionReader(f, off, size-off)
	indexed := 0
	for off < size {
		if _, err := io.ReadFull(sr, head[:]); err != nil {
			break
		}
		n := int64(binary.LittleEndian.Uint32(head[:]))
		if n == 0 || n > maxFrame || off+frameHeader+n > size {
			break
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(sr, payload); err != nil {
			break
		}
		if binary.LittleEndian.Uint32(head[4:]) != crc32.Checksum(payload, crcTable) {
			break
		}
		l := loc{seg: seg, off: uint32(off), n: uint32(n)}
		off += frameHeader + n
		var e history.Entry
		if json.Unmarshal(payload, &e) != nil || e.Room != r.meta.ID {
			continue
		}
		au := r.authors[e.Author]
		if au == nil {
			continue
		}
		seq, tip := r.head(e.Author)
		id, ok := parseID(e.ID)
		if !ok || e.Seq != seq+1 || e.Prev != tip || e.ComputeID() != e.ID {
			continue // a repair's frame, or one of a write that failed
		}
		rec := idxRec{id: id, ts: e.TS, maxTS: e.TS, loc: l}
		if au.seq > 0 {
			rec.maxTS = max(au.maxTS, e.TS)
		}
		if err := s.writeRec(r, au, e.Seq, &rec); err != nil {
			return 0, err
		}
		if au.seq == 0 {
			r.writers++
		}
		au.seq, au.tip, au.maxTS = e.Seq, id, rec.maxTS
		r.entries++
		r.lastTS = max(r.lastTS, e.TS)
		indexed++
	}
	if indexed > 0 {
		s.log.Info("indexed entries written just before the store stopped", "room", r.meta.ID, "entries", indexed)
	}
	if off < size {
		if err := f.Truncate(off); err != nil {
			return 0, fmt.Errorf("cut segment: %w", err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("fsync segment: %w", err)
		}
		s.log.Warn("cut the torn end of a room's segment; every whole entry before it is kept",
			"file", name, "kept_bytes", off, "cut_bytes", size-off)
		size = off
	}
	return size, nil
}
