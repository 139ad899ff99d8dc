package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

// refusal checks that err is the quota refusal of code: errors.Is with its sentinel, and
// interface{ RefusalCode() string } through the wrapping.
func refusal(t *testing.T, err error, sentinel error, code string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("want %s, got %v", code, err)
	}
	var rc interface{ RefusalCode() string }
	if !errors.As(err, &rc) || rc.RefusalCode() != code {
		t.Fatalf("%v: no refusal code %q", err, code)
	}
	for _, other := range []error{ErrRoomsFull, ErrAuthorsFull, ErrAuthorRate, ErrStoreFull} {
		if other != sentinel && errors.Is(err, other) {
			t.Fatalf("%v also matches %v", err, other)
		}
	}
}

func limitOptions(t *testing.T, l Limits) Options {
	o := testOptions(t, nil)
	o.Limits = l
	return o
}

func roomID(i int) string { return fmt.Sprintf("%032x", i+1) }

func TestQuotaDefaults(t *testing.T) {
	s := mustOpen(t, t.TempDir(), testOptions(t, nil))
	defer s.Close()
	want := Limits{Rooms: 256, AuthorsPerRoom: 256, AuthorEntriesPerHour: 600, AuthorHistoryPerHour: 20000, AuthorBytesPerHour: 32 << 20, StoreBytes: 1 << 30}
	if got := s.Limits(); got != want {
		t.Fatalf("limits %+v, want %+v", got, want)
	}
}

func TestRoomsFull(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, limitOptions(t, Limits{Rooms: 2}))
	for i := range 2 {
		if err := s.CreateRoom(roomID(i), "Aula"); err != nil {
			t.Fatal(err)
		}
	}
	before := treeBytes(t, dir)
	refusal(t, s.CreateRoom(roomID(2), "Aula"), ErrRoomsFull, "rooms-full")
	if err := s.CreateRoom(roomID(0), "again"); !errors.Is(err, ErrExists) {
		t.Fatalf("an existing room: %v", err)
	}
	if !bytes.Equal(treeBytes(t, dir), before) {
		t.Fatal("a refused room wrote to rooms.db")
	}
	s.Close()
	// A lowered limit keeps every stored room and refuses new ones.
	s = mustOpen(t, dir, limitOptions(t, Limits{Rooms: 1}))
	defer s.Close()
	if rs, _ := s.Rooms(); len(rs) != 2 {
		t.Fatalf("after reopening with a lower limit: %d rooms", len(rs))
	}
	refusal(t, s.CreateRoom(roomID(3), "Aula"), ErrRoomsFull, "rooms-full")
}

func TestAuthorsFull(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, limitOptions(t, Limits{AuthorsPerRoom: 2}))
	if err := s.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRoom(roomB, "Cocina"); err != nil {
		t.Fatal(err)
	}
	ka, kb, kc, kbox := testKey('a'), testKey('b'), testKey('c'), testKey('x')
	a := chain(ka, roomA, history.Entry{}, 2)
	mustAppend(t, s, roomA, a[0])
	mustAppend(t, s, roomA, chain(kb, roomA, history.Entry{}, 1)...)
	before := treeBytes(t, dir)
	_, err := s.Append(roomA, chain(kc, roomA, history.Entry{}, 1)[0])
	refusal(t, err, ErrAuthorsFull, "authors-full")
	if !bytes.Equal(treeBytes(t, dir), before) {
		t.Fatal("a refused entry wrote to rooms.db")
	}
	mustAppend(t, s, roomA, a[1])                                    // a known author goes on
	mustAppend(t, s, roomB, chain(kc, roomB, history.Entry{}, 1)...) // the limit is per room
	// The box's own entries are exempt.
	if _, err := s.Write(roomA, history.Entry{Author: author(kbox), Name: "box", Kind: history.KindJoin, TS: testNow.UnixMilli()},
		func(e *history.Entry) { e.Sign(kbox) }); err != nil {
		t.Fatalf("the box's own entry: %v", err)
	}
	s.Close()
	s = mustOpen(t, dir, limitOptions(t, Limits{AuthorsPerRoom: 1}))
	defer s.Close()
	if es, _ := s.Entries(roomA); len(es) != 4 {
		t.Fatalf("after reopening with a lower limit: %d entries", len(es))
	}
}

func TestAuthorRate(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, limitOptions(t, Limits{AuthorEntriesPerHour: 3}))
	defer s.Close()
	var mu sync.Mutex
	clock := time.Now()
	s.rates = newRates(func() time.Time { mu.Lock(); defer mu.Unlock(); return clock })
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	for _, id := range []string{roomA, roomB} {
		if err := s.CreateRoom(id, "Aula"); err != nil {
			t.Fatal(err)
		}
	}
	ka, kb, kbox := testKey('a'), testKey('b'), testKey('x')
	a := chain(ka, roomA, history.Entry{}, 5)
	mustAppend(t, s, roomA, a[:2]...)
	advance(30 * time.Minute)
	mustAppend(t, s, roomB, chain(ka, roomB, history.Entry{}, 1)...) // the third, in another room
	before := treeBytes(t, dir)
	_, err := s.Append(roomA, a[2])
	refusal(t, err, ErrAuthorRate, "author-rate")
	if !bytes.Equal(treeBytes(t, dir), before) {
		t.Fatal("a refused entry wrote to rooms.db")
	}
	mustAppend(t, s, roomA, chain(kb, roomA, history.Entry{}, 3)...) // another author
	// The box's own entries are not counted.
	for range 4 {
		if _, err := s.Write(roomA, history.Entry{Author: author(kbox), Name: "box", Kind: history.KindText, Body: "hola", TS: testNow.UnixMilli()},
			func(e *history.Entry) { e.Sign(kbox) }); err != nil {
			t.Fatalf("the box's own entry: %v", err)
		}
	}
	// The window rolls: the first two leave it after an hour, the third stays.
	advance(31 * time.Minute)
	mustAppend(t, s, roomA, a[2:4]...)
	_, err = s.Append(roomA, a[4])
	refusal(t, err, ErrAuthorRate, "author-rate")
	advance(30 * time.Minute)
	mustAppend(t, s, roomA, a[4])
}

// TestAuthorHistoryRate: entries written more than a RateWindow ago (a phone bringing its
// history to a new box) are counted apart, against AuthorHistoryPerHour, not the recent
// entries' AuthorEntriesPerHour; the bytes rate counts both.
func TestAuthorHistoryRate(t *testing.T) {
	ka := testKey('a')
	var es []history.Entry
	prev := history.Entry{}
	for i := range 10 {
		e := history.Entry{Room: roomA, Author: author(ka), Name: "Ana", Kind: history.KindText,
			Seq: prev.Seq + 1, Prev: prev.ID, Body: fmt.Sprint("message ", i),
			TS: testNow.Add(-RateWindow-time.Minute).UnixMilli() + int64(i)} // written before the window
		if i >= 7 {
			e.TS = testNow.UnixMilli() - 1000 + int64(i) // written now
		}
		e.Sign(ka)
		es, prev = append(es, e), e
	}
	s := mustOpen(t, t.TempDir(), limitOptions(t, Limits{AuthorEntriesPerHour: 2, AuthorHistoryPerHour: 6}))
	defer s.Close()
	if err := s.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, roomA, es[:6]...) // six old ones: over the recent entries' 2
	_, err := s.Append(roomA, es[6])
	refusal(t, err, ErrAuthorRate, "author-rate") // the seventh old one
	s.limits.AuthorHistoryPerHour = 7
	mustAppend(t, s, roomA, es[6:9]...) // the seventh old one, then two recent ones
	_, err = s.Append(roomA, es[9])
	refusal(t, err, ErrAuthorRate, "author-rate") // a third recent one

	size := int64(0)
	for _, e := range es[:2] {
		b, _ := json.Marshal(e)
		size += int64(len(b))
	}
	s2 := mustOpen(t, t.TempDir(), limitOptions(t, Limits{AuthorBytesPerHour: size + 10}))
	defer s2.Close()
	if err := s2.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s2, roomA, es[:2]...)
	_, err = s2.Append(roomA, es[2])
	refusal(t, err, ErrAuthorRate, "author-rate") // old entries count against the bytes rate
}

func TestAuthorBytesRate(t *testing.T) {
	ka := testKey('a')
	a := chain(ka, roomA, history.Entry{}, 3)
	size := int64(0)
	for _, e := range a[:2] {
		b, _ := json.Marshal(e)
		size += int64(len(b))
	}
	s := mustOpen(t, t.TempDir(), limitOptions(t, Limits{AuthorBytesPerHour: size + 10}))
	defer s.Close()
	if err := s.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, roomA, a[:2]...)
	_, err := s.Append(roomA, a[2])
	refusal(t, err, ErrAuthorRate, "author-rate")
	if !strings.Contains(err.Error(), fmt.Sprint(size+10)) {
		t.Errorf("the error does not say the limit: %v", err)
	}
}

func TestStoreFull(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, testOptions(t, nil))
	if err := s.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	budget := s.Usage() + 3000 // a few entries more
	s.Close()
	s = mustOpen(t, dir, limitOptions(t, Limits{StoreBytes: budget}))
	es := chain(testKey('a'), roomA, history.Entry{}, 20)
	var stored int
	var err error
	for _, e := range es {
		if _, err = s.Append(roomA, e); err != nil {
			break
		}
		stored++
	}
	refusal(t, err, ErrStoreFull, "store-full")
	if stored == 0 || stored == len(es) {
		t.Fatalf("stored %d of %d before the budget refused", stored, len(es))
	}
	if n := s.Usage(); n > budget {
		t.Fatalf("the store is %d bytes, past the budget of %d", n, budget)
	}
	refusal(t, s.CheckSpace(1<<20), ErrStoreFull, "store-full")
	s.Close()
	// Nothing stored is lost, and a larger budget takes the rest.
	s = mustOpen(t, dir, testOptions(t, nil))
	defer s.Close()
	if got, _ := s.Entries(roomA); len(got) != stored {
		t.Fatalf("after reopening: %d entries, stored %d", len(got), stored)
	}
	mustAppend(t, s, roomA, es[stored:]...)
}

func TestStoreFullCountsUsage(t *testing.T) {
	files := int64(0)
	o := limitOptions(t, Limits{StoreBytes: 1 << 20})
	o.Usage = func() int64 { return files }
	s := mustOpen(t, t.TempDir(), o)
	defer s.Close()
	if err := s.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	files = 1 << 20 // the files the box keeps fill the budget
	_, err := s.Append(roomA, chain(testKey('a'), roomA, history.Entry{}, 1)[0])
	refusal(t, err, ErrStoreFull, "store-full")
	refusal(t, s.CreateRoom(roomB, "Cocina"), ErrStoreFull, "store-full")
	if got := s.Usage(); got <= 1<<20 {
		t.Fatalf("usage %d does not count the files", got)
	}
}

// A hello states every author's head and tip; with DefaultMaxAuthorsPerRoom authors at the
// largest seq it must stay well inside one DataChannel message (net/rtc.MaxMessage, 256 KiB;
// not imported: store stays below net/). Well inside: under a quarter.
func TestAuthorsPerRoomFitsHello(t *testing.T) {
	const maxMessage = 262144
	heads := map[string]int64{}
	tips := map[string]string{}
	for i := range DefaultMaxAuthorsPerRoom {
		a := fmt.Sprintf("%043d", i) // an author key is 43 base64url characters
		heads[a] = history.MaxSeq
		tips[a] = strings.Repeat("f", 64) // an entry id is 64 hex characters
	}
	b, err := json.Marshal(map[string]any{"t": "hello", "v": 1, "room": roomA,
		"peer":  map[string]string{"id": strings.Repeat("p", 64), "name": strings.Repeat("n", 64)},
		"heads": heads, "tips": tips, "now": testNow.UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > maxMessage/4 {
		t.Fatalf("a hello of %d authors is %d bytes: more than a quarter of %d", DefaultMaxAuthorsPerRoom, len(b), maxMessage)
	}
	t.Logf("a hello of %d authors: %d bytes (%.0f%% of one message)", DefaultMaxAuthorsPerRoom, len(b), 100*float64(len(b))/maxMessage)
}

// Idle authors' rates are swept: the map stays about the size of the authors active in the
// last hour, however many came before.
func TestRatesSweepIdleAuthors(t *testing.T) {
	clock := time.Now()
	r := newRates(func() time.Time { return clock })
	l := Limits{}.withDefaults()
	for i := range 3 * rateSweepMin {
		if _, _, over := r.reserve(fmt.Sprint("old", i), 100, false, l); over {
			t.Fatal("refused under the limit")
		}
	}
	clock = clock.Add(RateWindow + time.Minute)
	for i := range rateSweepMin + 1 { // the map reaches its sweep mark, 4096, and is swept
		r.reserve(fmt.Sprint("new", i), 100, false, l)
	}
	if n := len(r.authors); n > 2*rateSweepMin {
		t.Fatalf("%d authors' rates kept; only %d were active in the last hour", n, rateSweepMin)
	}
}
