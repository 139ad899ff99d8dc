package store

import (
	"errors"
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
