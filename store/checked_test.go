package store

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chattorrent/chattorrent/store/history"
)

// TestAppendChecked: a batch checked with history.CheckBatch is stored without verifying
// each signature again; the chain rules still apply, and the stored entries come back on
// Open (which checks each on its own: a genuine run passes both ways).
func TestAppendChecked(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, testOptions(t, nil))
	if err := s.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	h, err := s.RoomHistory(roomA)
	if err != nil {
		t.Fatal(err)
	}
	ka := testKey('a')
	es := chain(ka, roomA, history.Entry{}, 20)
	for i, err := range history.CheckBatch(roomA, es, testNow, h.At) {
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	for _, e := range es {
		if added, err := h.AddChecked(e); !added || err != nil {
			t.Fatal(added, err)
		}
	}
	if added, err := h.AddChecked(es[3]); added || err != nil {
		t.Fatal("duplicate", added, err)
	}
	gap := chain(ka, roomA, es[19], 2)[1]
	if _, err := h.AddChecked(gap); !errors.Is(err, history.ErrGap) {
		t.Fatalf("gap: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, testOptions(t, nil))
	defer s.Close()
	if heads, _ := s.Heads(roomA); heads[author(ka)] != 20 {
		t.Fatalf("after Open: heads %v", heads)
	}
}

// TestAppendCheckedDeferred: entries appended deferred are written at once (readable, and
// counted) but fsynced only by Flush, two fsyncs a batch instead of two an entry; an index
// file closed before the Flush (more authors than open files) is fsynced as it closes; and
// what was flushed comes back on Open.
func TestAppendCheckedDeferred(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, nil)
	opts.Sync = SyncAlways
	s := mustOpen(t, dir, opts)
	if err := s.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	h, err := s.RoomHistory(roomA)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	fsyncs := map[string]int{}
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range fsyncs {
			n += c
		}
		return n
	}
	testHookFsync = func(name string) error { mu.Lock(); fsyncs[filepath.Base(name)]++; mu.Unlock(); return nil }
	defer func() { testHookFsync = nil }()

	const authors, each = maxOpenIdx + 4, 30
	var last []history.Entry
	for a := range authors {
		es := chain(testKey(byte('a'+a)), roomA, history.Entry{}, each)
		for _, e := range es {
			if added, err := h.AddCheckedDeferred(e); !added || err != nil {
				t.Fatalf("author %d seq %d: %v %v", a, e.Seq, added, err)
			}
		}
		last = append(last, es[each-1])
	}
	// Per entry that would be 2 × 600 fsyncs; the index files closed to open others (4
	// authors past maxOpenIdx, closed 16 at a time) are the only ones before the Flush.
	if n := total(); n > maxOpenIdx {
		t.Fatalf("%d fsyncs while appending %d entries deferred: want at most %d (files closed)", n, authors*each, maxOpenIdx)
	}
	for _, e := range last {
		if got, ok := h.At(e.Author, e.Seq); !ok || got.ID != e.ID {
			t.Fatalf("a deferred entry is not readable before the Flush: %v", ok)
		}
	}
	if r, _ := s.Room(roomA); r.Entries != authors*each {
		t.Fatalf("room counts %d entries, want %d", r.Entries, authors*each)
	}
	before := total()
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := total() - before; n < 2 || n > maxOpenIdx+1 {
		t.Fatalf("Flush made %d fsyncs: want the segment and the open index files it wrote", n)
	}
	// Every file the room wrote was fsynced at least once, and nothing is owed.
	names, _ := filepath.Glob(filepath.Join(dir, roomsDir, roomA, "*"))
	for _, name := range names {
		mu.Lock()
		c := fsyncs[filepath.Base(name)]
		mu.Unlock()
		if c == 0 {
			t.Errorf("%s was written deferred and never fsynced", filepath.Base(name))
		}
	}
	s.withRoom(roomA, false, func(r *room) error {
		if r.owedSeg || len(r.owedIdx) > 0 {
			t.Errorf("still owed after Flush: segment %v, index files %v", r.owedSeg, r.owedIdx)
		}
		return nil
	})
	before = total()
	if err := h.Flush(); err != nil || total() != before {
		t.Fatalf("a Flush with nothing owed: %v, %d fsyncs", err, total()-before)
	}
	next := chain(testKey('a'), roomA, last[0], 1)[0]
	if added, err := h.AddChecked(next); !added || err != nil {
		t.Fatal(added, err)
	}
	if n := total() - before; n != 2 {
		t.Fatalf("AppendChecked made %d fsyncs, want 2 (frame, then index record)", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, testOptions(t, nil))
	defer s.Close()
	heads, _ := s.Heads(roomA)
	for i, e := range last {
		want := int64(each)
		if i == 0 {
			want++
		}
		if heads[e.Author] != want {
			t.Fatalf("after Open: author %d at %d, want %d", i, heads[e.Author], want)
		}
	}
}

// TestFlushFailureSticks: once a Flush's fsync failed, every later Flush of the room fails
// too (what it took may be other sessions' entries): nothing deferred is acknowledged on a
// card that lost writes.
func TestFlushFailureSticks(t *testing.T) {
	opts := testOptions(t, nil)
	opts.Sync = SyncAlways
	s := mustOpen(t, t.TempDir(), opts)
	defer s.Close()
	if err := s.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	es := chain(testKey('a'), roomA, history.Entry{}, 4)
	for _, e := range es[:2] {
		if _, err := s.AppendCheckedDeferred(roomA, e); err != nil {
			t.Fatal(err)
		}
	}
	eio := errors.New("input/output error")
	testHookFsync = func(string) error { return eio }
	err := s.Flush(roomA)
	testHookFsync = nil
	if !errors.Is(err, eio) {
		t.Fatalf("Flush = %v, want the fsync's error", err)
	}
	for _, e := range es[2:] {
		if _, err := s.AppendCheckedDeferred(roomA, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(roomA); !errors.Is(err, eio) {
		t.Fatalf("a Flush after a failed one = %v, want the first failure again", err)
	}
}
