package store

import (
	"bytes"
	"errors"
	"iter"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

func seqOf(es []history.Entry) iter.Seq2[history.Entry, error] {
	return func(yield func(history.Entry, error) bool) {
		for _, e := range es {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// TestImportIsAUnionExemptFromTheRate: a backup's room merges into a store that holds part
// of it and a room of its own: nothing stored is lost, what is new is added, and an author
// past the hourly rate a peer would hit is still restored whole (the rate is for peers).
func TestImportIsAUnionExemptFromTheRate(t *testing.T) {
	s := mustOpen(t, t.TempDir(), limitOptions(t, Limits{AuthorEntriesPerHour: 3}))
	defer s.Close()
	ka, kb := testKey(1), testKey(2)
	a := chain(ka, roomA, history.Entry{}, 20)
	b := chain(kb, roomA, history.Entry{}, 5)
	if err := s.CreateRoom(roomA, "Aquí"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, roomA, a[:2]...)
	if _, err := s.Append(roomA, a[3]); err == nil {
		t.Fatal("a gap was taken")
	}
	// A peer's fourth entry in the hour is refused: the rate Import is exempt from.
	mustAppend(t, s, roomA, a[2])
	if _, err := s.Append(roomA, a[3]); !errors.Is(err, ErrAuthorRate) {
		t.Fatalf("a peer past the rate: %v", err)
	}
	backup := append(append([]history.Entry{}, a...), b...)
	c, err := s.VerifyImport(ImportRoom{ID: roomA, Name: "Allí"}, seqOf(backup))
	if err != nil || c.Entries != 25 || c.New != 22 || c.NewRoom || c.Bytes <= 0 {
		t.Fatalf("verify: %+v %v", c, err)
	}
	n, err := s.Import(ImportRoom{ID: roomA, Name: "Allí"}, seqOf(backup))
	if err != nil || n != 22 {
		t.Fatalf("import: %d %v", n, err)
	}
	if r, _ := s.Room(roomA); r.Name != "Aquí" || r.Entries != 25 {
		t.Errorf("after the import: %+v (the stored name is kept)", r)
	}
	// A new room keeps the backup's name and creation time.
	created := time.UnixMilli(1700000000000)
	n, err = s.Import(ImportRoom{ID: roomB, Name: "Nueva", Created: created}, seqOf(chain(ka, roomB, history.Entry{}, 4)))
	if r, _ := s.Room(roomB); err != nil || n != 4 || r.Name != "Nueva" || !r.Created.Equal(created) {
		t.Errorf("a new room: %d %v %+v", n, err, r)
	}
}

// TestVerifyImportRefuses: a tampered entry, a gap, a fork with what is stored, a
// duplicate are refused by VerifyImport, which writes nothing.
func TestVerifyImportRefuses(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, testOptions(t, nil))
	defer s.Close()
	ka := testKey(1)
	a := chain(ka, roomA, history.Entry{}, 6)
	if err := s.CreateRoom(roomA, "Aquí"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, roomA, a[:3]...)
	other := chain(ka, roomA, a[1], 1)[0] // another entry at seq 3: a fork
	other.Body = "otra cosa"
	other.Sign(ka)
	tampered := append([]history.Entry{}, a...)
	tampered[4].Body = "cambiado"
	before := treeBytes(t, dir)
	for name, es := range map[string][]history.Entry{
		"tampered":  tampered,
		"gap":       {a[0], a[1], a[3]},
		"fork":      {a[0], a[1], other},
		"duplicate": {a[0], a[1], a[1]},
		"bad room":  chain(ka, roomB, history.Entry{}, 2),
	} {
		if _, err := s.VerifyImport(ImportRoom{ID: roomA, Name: "Aquí"}, seqOf(es)); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if after := treeBytes(t, dir); !bytes.Equal(before, after) {
		t.Error("VerifyImport changed the store")
	}
	// Past the store's budget: the check says how much; CheckSpace refuses it.
	c, err := s.VerifyImport(ImportRoom{ID: roomA, Name: "Aquí"}, seqOf(a))
	if err != nil || c.New != 3 {
		t.Fatalf("a good room: %+v %v", c, err)
	}
}

// TestImportInsideTheBudget: a bulk import is still inside the store's byte budget.
func TestImportInsideTheBudget(t *testing.T) {
	s := mustOpen(t, t.TempDir(), limitOptions(t, Limits{StoreBytes: 12 << 10}))
	defer s.Close()
	es := chain(testKey(1), roomA, history.Entry{}, 60)
	c, err := s.VerifyImport(ImportRoom{ID: roomA, Name: "Aquí"}, seqOf(es))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSpace(c.Bytes); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("%d bytes against a 12 KiB budget: %v", c.Bytes, err)
	}
	if _, err := s.Import(ImportRoom{ID: roomA, Name: "Aquí"}, seqOf(es)); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("import past the budget: %v", err)
	}
}
