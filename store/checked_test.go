package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// TestAppendRunDeferred: a run stored with one write to each file leaves the very bytes
// one-by-one appends leave; it stops at the first entry it would not store as new (the
// caller appends that one on its own, which says why); a failed write stores none of it.
func TestAppendRunDeferred(t *testing.T) {
	ka, kb := testKey('a'), testKey('b')
	as := chain(ka, roomA, history.Entry{}, 450)
	bs := chain(kb, roomA, history.Entry{}, 30)
	// Both stores get the same entries: one by one, or as runs of up to 200 with the
	// entry a run stops at appended on its own (what a session does).
	write := func(dir string, runs bool) *Store {
		opts := testOptions(t, nil)
		opts.Sync = SyncAlways
		s := mustOpen(t, dir, opts)
		if err := s.CreateRoom(roomA, "Aula"); err != nil {
			t.Fatal(err)
		}
		for _, es := range [][]history.Entry{as[:250], bs, as[250:]} {
			for len(es) > 0 {
				n := 0
				if runs {
					var err error
					if n, err = s.AppendRunDeferred(roomA, es[:min(200, len(es))]); err != nil {
						t.Fatal(err)
					}
				}
				if n == 0 {
					if ok, err := s.AppendCheckedDeferred(roomA, es[0]); !ok || err != nil {
						t.Fatal(ok, err)
					}
					n = 1
				}
				es = es[n:]
			}
		}
		if err := s.Flush(roomA); err != nil {
			t.Fatal(err)
		}
		return s
	}
	d1, d2 := t.TempDir(), t.TempDir()
	s1, s2 := write(d1, true), write(d2, false)
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(d2, roomsDir, roomA, "*"))
	if len(names) != 3 {
		t.Fatalf("files %v, want a segment and two index files", names)
	}
	for _, name := range names {
		want, _ := os.ReadFile(name)
		got, err := os.ReadFile(filepath.Join(d1, roomsDir, roomA, filepath.Base(name)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s differs written as runs (%d bytes) and one by one (%d bytes): %v", filepath.Base(name), len(got), len(want), err)
		}
	}

	// Where a run stops.
	opts := testOptions(t, nil)
	opts.Sync = SyncAlways
	opts.Limits.AuthorEntriesPerHour = 40
	s := mustOpen(t, t.TempDir(), opts)
	defer s.Close()
	if err := s.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	run := func(es []history.Entry) int {
		t.Helper()
		n, err := s.AppendRunDeferred(roomA, es)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := run(as[:5]); n != 0 {
		t.Fatalf("an author with nothing stored: %d stored, want 0 (one by one: its number, the authors' quota)", n)
	}
	if _, err := s.AppendCheckedDeferred(roomA, as[0]); err != nil {
		t.Fatal(err)
	}
	if n := run(as[:5]); n != 0 {
		t.Fatalf("a run that starts with a duplicate: %d stored, want 0", n)
	}
	gapped := append(slices.Clone(as[1:4]), as[5:8]...)
	if n := run(gapped); n != 3 {
		t.Fatalf("a run with a gap after 3: %d stored", n)
	}
	forged := slices.Clone(as[4:8])
	forged[2].Prev = as[1].ID
	if n := run(forged); n != 2 {
		t.Fatalf("a run with a broken link after 2: %d stored", n)
	}
	if n := run(as[6:100]); n != 40-6 {
		t.Fatalf("%d stored within a quota of 40 entries an hour (6 stored before): want %d", n, 40-6)
	}
	if _, err := s.AppendCheckedDeferred(roomA, as[40]); !errors.Is(err, ErrAuthorRate) {
		t.Fatalf("the entry the run stopped at, on its own: %v, want the rate's refusal", err)
	}

	// A failed write stores nothing: heads, count and files as before; the same run then
	// goes in whole.
	s3 := mustOpen(t, t.TempDir(), testOptions(t, nil))
	defer s3.Close()
	if err := s3.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	if _, err := s3.AppendCheckedDeferred(roomA, as[0]); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		segs, _ := filepath.Glob(filepath.Join(s3.dir(), roomsDir, roomA, "seg-*"))
		fi, err := os.Stat(segs[0])
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	eio := errors.New("input/output error")
	testHookWriteRun = func(name string) error {
		if strings.HasSuffix(name, ".idx") {
			return eio
		}
		return nil
	}
	n, err := s3.AppendRunDeferred(roomA, as[1:50])
	testHookWriteRun = nil
	if n != 0 || !errors.Is(err, eio) {
		t.Fatalf("a run whose index write failed: %d, %v", n, err)
	}
	if h, _ := s3.Heads(roomA); h[author(ka)] != 1 || size() != before {
		t.Fatalf("after a failed run: head %d, segment %d bytes (was %d)", h[author(ka)], size(), before)
	}
	if r, _ := s3.Room(roomA); r.Entries != 1 {
		t.Fatalf("after a failed run the room counts %d entries", r.Entries)
	}
	if n := func() int { n, _ := s3.AppendRunDeferred(roomA, as[1:50]); return n }(); n != 49 {
		t.Fatalf("the same run after: %d stored", n)
	}
	rh, _ := s3.RoomHistory(roomA)
	if e, ok := rh.At(author(ka), 49); !ok || e.ID != as[48].ID {
		t.Fatal("an entry of the run does not read back")
	}
}
