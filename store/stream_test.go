package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/chattorrent/chattorrent/store/history"
)

// clockChain makes n signed entries of k in room after prev, the i-th stamped ts(i).
func clockChain(k []byte, room string, prev history.Entry, n int, ts func(i int) int64) []history.Entry {
	key := testKey(k[0])
	var out []history.Entry
	for i := range n {
		e := history.Entry{Room: room, Author: author(key), Name: "Ana <b>&", Kind: history.KindText,
			Seq: prev.Seq + 1, Prev: prev.ID, TS: ts(i), Body: fmt.Sprintf(`message %d <i>"hola"</i> ✓ ,"ts":1,"kind":"image"}`, prev.Seq+1)}
		e.Sign(key)
		out = append(out, e)
		prev = e
	}
	return out
}

// streamRoom stores roomA with three authors whose clocks interleave (one goes backwards)
// and a neighbour room, roomB, whose entries must never show up in roomA's stream.
func streamRoom(t *testing.T) *Store {
	s := mustOpen(t, t.TempDir(), testOptions(t, nil))
	t.Cleanup(func() { s.Close() })
	base := testNow.UnixMilli() - 3_600_000
	for _, id := range []string{roomA, roomB} {
		if err := s.CreateRoom(id, "Aula \"7\" <b>"); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, s, roomA, clockChain([]byte{1}, roomA, history.Entry{}, 40, func(i int) int64 { return base + int64(i)*1000 })...)
	mustAppend(t, s, roomA, clockChain([]byte{2}, roomA, history.Entry{}, 30, func(i int) int64 { return base + int64(i)*1500 + 1 })...)
	mustAppend(t, s, roomA, clockChain([]byte{3}, roomA, history.Entry{}, 25, func(i int) int64 { return base + 50_000 - int64(i)*700 })...)
	mustAppend(t, s, roomA, clockChain([]byte{4}, roomA, history.Entry{}, 3, func(int) int64 { return base + 2000 })...) // ties
	mustAppend(t, s, roomB, clockChain([]byte{1}, roomB, history.Entry{}, 10, func(i int) int64 { return base + int64(i) })...)
	return s
}

func collect(t *testing.T, h *HistoryStream) []history.Entry {
	t.Helper()
	var out []history.Entry
	for e, err := range h.Entries() {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// A stream yields Store.Entries's entries in its order, and WriteJSON writes the bytes the
// whole export encoded used to.
func TestStreamMatchesExport(t *testing.T) {
	s := streamRoom(t)
	want, err := s.Entries(roomA)
	if err != nil {
		t.Fatal(err)
	}
	x, err := s.Export(roomA, testNow)
	if err != nil {
		t.Fatal(err)
	}
	var wantJSON bytes.Buffer
	if err := json.NewEncoder(&wantJSON).Encode(x); err != nil {
		t.Fatal(err)
	}
	for _, budget := range []int{1} {
		h, err := s.Stream(roomA)
		if err != nil {
			t.Fatal(err)
		}
		if h.Len() != len(want) || h.Room() != x.Room {
			t.Fatalf("budget %d: Len %d, Room %+v; want %d, %+v", budget, h.Len(), h.Room(), len(want), x.Room)
		}
		for pass := range 2 {
			if got := collect(t, h); !reflect.DeepEqual(got, want) {
				t.Fatalf("budget %d pass %d: %d entries differ from Store.Entries's %d", budget, pass, len(got), len(want))
			}
		}
		var got bytes.Buffer
		if err := h.WriteJSON(&got, testNow); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), wantJSON.Bytes()) {
			t.Fatalf("budget %d: WriteJSON differs:\n got %s\nwant %s", budget, got.Bytes(), wantJSON.Bytes())
		}
	}
}

// A stream is the room as it stood when taken: entries stored later, of known authors or
// new ones, are left out of every pass.
func TestStreamSnapshot(t *testing.T) {
	s := streamRoom(t)
	want, _ := s.Entries(roomA)
	h, err := s.Stream(roomA)
	if err != nil {
		t.Fatal(err)
	}
	rh, err := s.RoomHistory(roomA)
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := s.rooms[roomA].head(author(testKey(1)))
	head, _ := rh.At(author(testKey(1)), seq)
	mustAppend(t, s, roomA, clockChain([]byte{1}, roomA, head, 5, func(int) int64 { return 1 })...)
	mustAppend(t, s, roomA, clockChain([]byte{9}, roomA, history.Entry{}, 5, func(int) int64 { return 1 })...)
	for range 2 {
		if got := collect(t, h); !reflect.DeepEqual(got, want) {
			t.Fatalf("%d entries, want the %d stored when the stream was taken", len(got), len(want))
		}
	}
	if h2, _ := s.Stream(roomA); h2.Len() != len(want)+10 {
		t.Errorf("a new stream has %d entries, want %d", h2.Len(), len(want)+10)
	}
}

func TestStreamErrors(t *testing.T) {
	s := streamRoom(t)
	if _, err := s.Stream("11111111111111111111111111111111"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown room: %v", err)
	}
	h, err := s.Stream(roomA)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRoom("00000000000000000000000000000000", "vacía"); err != nil {
		t.Fatal(err)
	}
	empty, _ := s.Stream("00000000000000000000000000000000")
	var b bytes.Buffer
	if err := empty.WriteJSON(&b, testNow); err != nil || !bytes.Contains(b.Bytes(), []byte(`"entries":[]}`)) {
		t.Errorf("empty room: %v, %s", err, b.Bytes())
	}
	// A stored frame damaged on the card fails the pass.
	bad, _ := s.Stream(roomA)
	seg := filepath.Join(s.dir(), roomsDir, roomA, segName(1))
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XX"), 300); err != nil {
		t.Fatal(err)
	}
	f.Close()
	n := 0
	for _, err := range bad.EntriesJSON() {
		if err != nil {
			n++
			if !strings.Contains(err.Error(), "torn or damaged") {
				t.Errorf("a damaged frame: %v", err)
			}
		}
	}
	if n != 1 {
		t.Errorf("a damaged frame: %d errors, want 1", n)
	}
	s.Close()
	n = 0
	for _, err := range h.Entries() {
		n++
		if !errors.Is(err, ErrClosed) {
			t.Errorf("after Close: %v, want ErrClosed", err)
		}
	}
	if n != 1 {
		t.Errorf("after Close: %d yields, want one error", n)
	}
}

// MissingStream yields what Missing returns, in its order, for any heads, and leaves out
// what is stored after it was taken.
func TestMissingStreamMatchesMissing(t *testing.T) {
	s := streamRoom(t)
	heads, err := s.Heads(roomA)
	if err != nil {
		t.Fatal(err)
	}
	var some map[string]int64
	for a, n := range heads {
		some = map[string]int64{a: n / 2}
		break
	}
	for _, hs := range []map[string]int64{nil, some, heads} {
		want, err := s.Missing(roomA, hs)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := s.MissingStream(roomA, hs)
		if err != nil {
			t.Fatal(err)
		}
		var got []history.Entry
		for e, err := range seq {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("heads %v: %d entries, Missing has %d (or another order)", hs, len(got), len(want))
		}
	}
	rh, _ := s.RoomHistory(roomA)
	n := 0
	for range rh.MissingSeq(some) {
		n++
	}
	if want := rh.Missing(some); n != len(want) {
		t.Errorf("RoomHistory.MissingSeq: %d entries, want %d", n, len(want))
	}
	if _, err := s.MissingStream("11111111111111111111111111111111", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown room: %v", err)
	}
}
