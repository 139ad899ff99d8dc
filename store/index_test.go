package store

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

// The store answers sync from its index and reads entries from rooms.db; what it answers
// is what a history.Log holding the same entries answers: heads, tips, At, and Missing in
// the same order (by ts, author, seq; each author in seq order where its clock went back),
// before and after a reopen.
func TestIndexAnswersAsLog(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, nil)
	opts.Now = func() time.Time { return testNow }
	s := mustOpen(t, dir, opts)
	if err := s.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	log := history.NewLog(roomA)
	var all []history.Entry
	for _, k := range []byte{'a', 'b', 'c'} {
		key := testKey(k)
		prev := history.Entry{}
		for i := range 30 {
			// Timestamps jump around, backwards too, and collide between authors.
			e := history.Entry{Room: roomA, Author: author(key), Name: "Ana", Kind: history.KindText,
				Seq: prev.Seq + 1, Prev: prev.ID, TS: testNow.UnixMilli() - int64(rng.IntN(20))*1000,
				Body: string(rune('a'+i)) + " ✓"}
			e.Sign(key)
			all = append(all, e)
			prev = e
		}
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	// Entries arrive in any order; each goes in once its author's previous one is in.
	for len(all) > 0 {
		rest := all[:0]
		for _, e := range all {
			added, err := log.Add(e, testNow)
			if err != nil {
				rest = append(rest, e)
				continue
			}
			if got, err := s.Append(roomA, e); err != nil || got != added {
				t.Fatalf("append seq %d: %v %v", e.Seq, got, err)
			}
		}
		all = rest
	}
	check := func(s *Store) {
		t.Helper()
		rh, err := s.RoomHistory(roomA)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rh.Heads(), log.Heads(); !reflect.DeepEqual(got, want) {
			t.Errorf("heads %v, want %v", got, want)
		}
		if got, want := rh.Tips(), log.Tips(); !reflect.DeepEqual(got, want) {
			t.Errorf("tips %v, want %v", got, want)
		}
		for _, heads := range []map[string]int64{nil, {author(testKey('a')): 10}, {author(testKey('a')): 30, author(testKey('b')): 29, author(testKey('c')): 3}, log.Heads()} {
			if got, want := rh.Missing(heads), log.Missing(heads); !reflect.DeepEqual(got, want) && len(got)+len(want) > 0 {
				t.Errorf("missing(%v): %d entries, want %d, or another order", heads, len(got), len(want))
			}
		}
		for _, seq := range []int64{0, 1, 17, 30, 31} {
			got, ok := rh.At(author(testKey('b')), seq)
			want, wok := log.At(author(testKey('b')), seq)
			if ok != wok || got != want {
				t.Errorf("at %d: %v %v, want %v %v", seq, got.ID, ok, want.ID, wok)
			}
		}
		es, err := s.Entries(roomA)
		if err != nil || !reflect.DeepEqual(es, log.Entries()) {
			t.Errorf("entries differ (%v)", err)
		}
		x, err := s.Export(roomA, testNow)
		if err != nil || !reflect.DeepEqual(x, history.NewExport(log, "Aula", testNow)) {
			t.Errorf("export differs (%v)", err)
		}
		if r, _ := s.Room(roomA); r.Entries != 90 || r.LastTS != testNow.UnixMilli() {
			// The largest of 90 random ts drawn from 20 values is, with this seed, testNow.
			t.Errorf("room %+v", r)
		}
	}
	check(s)
	s.Close()
	s = mustOpen(t, dir, opts)
	defer s.Close()
	check(s)
}

// Append refuses what does not chain with the reasons history.Log gives, takes an entry it
// holds again as a duplicate, and Write chains to the stored head.
func TestIndexRefusals(t *testing.T) {
	s := mustOpen(t, t.TempDir(), testOptions(t, nil))
	defer s.Close()
	if err := s.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	ka, kb := testKey('a'), testKey('b')
	es := chain(ka, roomA, history.Entry{}, 3)
	mustAppend(t, s, roomA, es[:2]...)
	if added, err := s.Append(roomA, es[1]); added || err != nil {
		t.Fatalf("duplicate: %v %v", added, err)
	}
	fork := es[1]
	fork.Body = "otra cosa"
	fork.Sign(ka)
	other := chain(kb, roomA, history.Entry{}, 2)
	broken := chain(ka, roomA, fork, 1)[0] // seq 3 chained to another seq 2
	for _, c := range []struct {
		e    history.Entry
		want error
	}{
		{fork, history.ErrFork},
		{other[1], history.ErrGap},
		{broken, history.ErrBrokenChain},
	} {
		if _, err := s.Append(roomA, c.e); !errors.Is(err, c.want) {
			t.Errorf("seq %d: %v, want %v", c.e.Seq, err, c.want)
		}
	}
	if r, _ := s.Room(roomA); r.Entries != 2 {
		t.Fatalf("%d entries", r.Entries)
	}
	mustAppend(t, s, roomA, es[2], other[0], other[1])
	w, err := s.Write(roomA, history.Entry{Author: author(kb), Name: "Bea", Kind: history.KindText, TS: testNow.UnixMilli(), Body: "hola"},
		func(e *history.Entry) { e.Sign(kb) })
	if err != nil || w.Seq != 3 || w.Prev != other[1].ID || w.Room != roomA {
		t.Fatalf("write: %+v %v", w, err)
	}
}
