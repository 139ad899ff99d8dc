package store

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// authorKey is the rooms.db key of an author's number in a room.
func authorKey(room, a string) string { return "a:" + room + ":" + a }

// addAuthor gives a new author of r its number, written to rooms.db (durably under
// SyncAlways) before its first entry. r.mu is held for writing.
func (s *Store) addAuthor(r *room, a string) (*authorHead, error) {
	num := r.nextNum
	if err := s.set(authorKey(r.meta.ID, a), strconv.Itoa(num)); err != nil {
		return nil, err
	}
	r.nextNum++
	au := &authorHead{id: a, num: num}
	r.authors[a] = au
	return au, nil
}

// store writes one entry (its JSON, val) as the author's next: the frame, then the index
// record, each made durable under SyncAlways before the next step, then the head in RAM.
// r.mu is held for writing. A failure leaves the head unchanged: the entry is not stored.
func (s *Store) store(r *room, au *authorHead, val []byte, id [32]byte, ts int64) error {
	l, err := s.writeFrame(r, val)
	if err != nil {
		return err
	}
	rec := idxRec{id: id, ts: ts, maxTS: ts, loc: l}
	if au.seq > 0 {
		rec.maxTS = max(au.maxTS, ts)
	}
	if err := s.writeRec(r, au, au.seq+1, &rec); err != nil {
		return err
	}
	if au.seq == 0 {
		r.writers++
	}
	au.seq, au.tip, au.maxTS = au.seq+1, id, rec.maxTS
	r.entries++
	r.lastTS = max(r.lastTS, ts)
	return nil
}

// writeFrame appends a frame to the room's segment, rolling it at segmentMax.
func (s *Store) writeFrame(r *room, payload []byte) (loc, error) {
	if len(payload) > maxFrame {
		return loc{}, fmt.Errorf("write: an entry of %d bytes is past the frame limit", len(payload))
	}
	b := frame(payload)
	if r.segF == nil || (r.segSize > 0 && r.segSize+int64(len(b)) > segmentMax) {
		if err := s.nextSegment(r, int64(len(b))); err != nil {
			return loc{}, err
		}
	}
	off := r.segSize
	if _, err := r.segF.WriteAt(b, off); err != nil {
		_ = r.segF.Truncate(off) // best effort; Open cuts a torn frame anyway
		return loc{}, fmt.Errorf("write segment: %w", err)
	}
	if s.syncEach(r) {
		if err := fsync(r.segF); err != nil {
			return loc{}, fmt.Errorf("fsync segment: %w", err)
		}
		r.owedSeg = false // the fsync covered every frame before this one too
	} else if r.bulk {
		r.owedSeg = true
	}
	r.segSize += int64(len(b))
	r.dirty = true
	s.dataBytes.Add(int64(len(b)))
	return loc{seg: r.seg, off: uint32(off), n: uint32(len(payload))}, nil
}

// nextSegment opens the room's current segment for appending (the first append after
// Open), or rolls to a new one when a frame of need bytes does not fit or there is none.
func (s *Store) nextSegment(r *room, need int64) error {
	if err := s.ensureDir(r); err != nil {
		return err
	}
	if r.segF != nil {
		if err := s.syncClose(r, r.segF, r.owedSeg); err != nil {
			return fmt.Errorf("close segment: %w", err)
		}
		r.segF, r.owedSeg = nil, false
	}
	if r.seg == 0 || (r.segSize > 0 && r.segSize+need > segmentMax) {
		r.seg, r.segSize = r.seg+1, 0
	}
	f, err := os.OpenFile(filepath.Join(r.dir, segName(r.seg)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	if r.segSize == 0 && s.opts.Sync == SyncAlways {
		if err := syncDir(r.dir); err != nil {
			f.Close()
			return fmt.Errorf("fsync room dir: %w", err)
		}
	}
	r.segF = f
	return nil
}

// ensureDir makes the room's directory (durably under SyncAlways).
func (s *Store) ensureDir(r *room) error {
	if _, err := os.Stat(r.dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fmt.Errorf("room dir: %w", err)
	}
	if s.opts.Sync == SyncAlways {
		if err := syncDir(filepath.Dir(r.dir)); err != nil {
			return fmt.Errorf("fsync rooms dir: %w", err)
		}
	}
	return nil
}

// maxOpenIdx is how many index files a room keeps open for writing: its active authors.
const maxOpenIdx = 16

// writeRec writes the author's index record of seq (a new one, or one rewritten by a
// repair).
func (s *Store) writeRec(r *room, au *authorHead, seq int64, rec *idxRec) error {
	f, err := s.idxFile(r, au)
	if err != nil {
		return err
	}
	var b [recSize]byte
	rec.marshal(b[:])
	if _, err := f.WriteAt(b[:], (seq-1)*recSize); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	s.wroteRec(r, au)
	if s.syncEach(r) {
		if err := fsync(f); err != nil {
			return fmt.Errorf("fsync index: %w", err)
		}
		delete(r.owedIdx, au.num)
	}
	if seq > au.seq {
		s.dataBytes.Add(recSize)
	}
	return nil
}

// wroteRec notes records written to the author's index file: owed an fsync when written
// in bulk.
func (s *Store) wroteRec(r *room, au *authorHead) {
	if r.bulk { // set under SyncAlways only: each write is not fsynced on its own
		if r.owedIdx == nil {
			r.owedIdx = make(map[int]bool)
		}
		r.owedIdx[au.num] = true
	}
	r.dirty = true
}

// idxFile is the author's index file, opened for writing (closing the others first when
// maxOpenIdx are open).
func (s *Store) idxFile(r *room, au *authorHead) (*os.File, error) {
	f := r.idxFs[au.num]
	if f == nil {
		if len(r.idxFs) >= maxOpenIdx {
			for num, g := range r.idxFs {
				if err := s.syncClose(r, g, r.owedIdx[num]); err != nil {
					return nil, fmt.Errorf("close index: %w", err)
				}
				delete(r.idxFs, num)
				delete(r.owedIdx, num)
			}
		}
		if err := s.ensureDir(r); err != nil {
			return nil, err
		}
		name := filepath.Join(r.dir, idxName(au.num))
		_, statErr := os.Stat(name)
		var err error
		if f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			return nil, fmt.Errorf("open index: %w", err)
		}
		if errors.Is(statErr, os.ErrNotExist) && s.opts.Sync == SyncAlways {
			if err := syncDir(r.dir); err != nil {
				f.Close()
				return nil, fmt.Errorf("fsync room dir: %w", err)
			}
		}
		if r.idxFs == nil {
			r.idxFs = make(map[int]*os.File)
		}
		r.idxFs[au.num] = f
	}
	return f, nil
}

// testHookFsync, when set by a test, is told of each fsync of a segment or index file
// made while appending; an error it returns is the fsync's.
var testHookFsync func(name string) error

// fsync is f.Sync, told to testHookFsync.
func fsync(f *os.File) error {
	if testHookFsync != nil {
		if err := testHookFsync(f.Name()); err != nil {
			return err
		}
	}
	return f.Sync()
}

// syncClose closes a file of r, fsyncing it first when it may hold unsynced writes: under
// SyncEverySecond, or when owed (written in bulk under SyncAlways; otherwise SyncAlways
// synced it already).
func (s *Store) syncClose(r *room, f *os.File, owed bool) error {
	var err error
	if s.opts.Sync == SyncEverySecond || owed {
		err = fsync(f)
	}
	return errors.Join(err, f.Close())
}

// takeOwed returns the files r owes an fsync (the segment first) and owes nothing more:
// the caller fsyncs them. r.mu is held for writing.
func (r *room) takeOwed() []string {
	var names []string
	if r.owedSeg && r.segF != nil {
		names = append(names, r.segF.Name())
	}
	r.owedSeg = false
	for _, num := range slices.Sorted(maps.Keys(r.owedIdx)) {
		if f := r.idxFs[num]; f != nil {
			names = append(names, f.Name())
		}
	}
	clear(r.owedIdx)
	return names
}

// fsyncName fsyncs a file by its name: through a descriptor of its own, so that the
// room's may be closed (a segment rolled) meanwhile.
func fsyncName(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	return errors.Join(fsync(f), f.Close())
}

// syncOwed fsyncs what r wrote in bulk since (an import's batch, deferred appends): the
// segment first, then the index files, so a record is durable only after its frame. r.mu
// is held for writing. What failed stays owed.
func (r *room) syncOwed() error {
	if r.owedSeg && r.segF != nil {
		if err := fsync(r.segF); err != nil {
			return fmt.Errorf("fsync segment: %w", err)
		}
	}
	r.owedSeg = false
	var errs []error
	for num := range r.owedIdx {
		if f := r.idxFs[num]; f != nil {
			if err := fsync(f); err != nil {
				errs = append(errs, fmt.Errorf("fsync index: %w", err))
				continue
			}
		}
		delete(r.owedIdx, num)
	}
	return errors.Join(errs...)
}

// sync fsyncs what the room wrote since the last one (SyncEverySecond). r.mu is held.
func (r *room) sync() error {
	if !r.dirty {
		return nil
	}
	var errs []error
	if r.segF != nil {
		errs = append(errs, r.segF.Sync())
	}
	for _, f := range r.idxFs {
		errs = append(errs, f.Sync())
	}
	r.dirty = false
	return errors.Join(errs...)
}

// closeFiles closes the room's open files, fsyncing them unless never.
func (r *room) closeFiles(never bool) error {
	var errs []error
	files := []*os.File{r.segF}
	for _, f := range r.idxFs {
		files = append(files, f)
	}
	for _, f := range files {
		if f == nil {
			continue
		}
		if !never {
			errs = append(errs, f.Sync())
		}
		errs = append(errs, f.Close())
	}
	r.segF, r.owedSeg = nil, false
	clear(r.idxFs)
	clear(r.owedIdx)
	return errors.Join(errs...)
}
