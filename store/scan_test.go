package store

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/chattorrent/chattorrent/store/history"
)

// scanIndexed reads the store's own JSON as encoding/json does, and declines what it does
// not recognise (encoding/json decodes that instead).
func TestScanIndexed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	texts := []string{"Ana", `"comillas" y \barra\`, "<b>&amp;</b>", "línea\nnueva\ttab", "emoji 🎉 \u2028", "\x00\x1f", ""}
	prev := history.Entry{}
	k := testKey('s')
	for i := range 200 {
		e := history.Entry{Room: roomA, Name: texts[rng.IntN(len(texts))] + "x", Kind: history.KindText,
			Seq: prev.Seq + 1, Prev: prev.ID, TS: rng.Int64N(history.MaxSeq), Body: texts[rng.IntN(len(texts))] + texts[i%len(texts)]}
		e.Sign(k)
		prev = e
		v, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := scanIndexed(string(v))
		var want indexed
		if err := json.Unmarshal(v, &want); err != nil {
			t.Fatal(err)
		}
		if !ok || got != want {
			t.Fatalf("%s:\n got %+v %v\nwant %+v", v, got, ok, want)
		}
	}
	v, _ := json.Marshal(prev)
	for _, bad := range []string{
		"", "{}", "not json", string(v[:len(v)-1]), string(v) + " ", strings.Replace(string(v), `"seq":`, `"seq": `, 1),
		strings.Replace(string(v), `"seq":`, `"seq":-`, 1), strings.Replace(string(v), `"seq":`, `"seq":0`, 1),
		strings.Replace(string(v), `"room":"`, `"room":"\"`, 1), strings.Replace(string(v), `"ts":`, `"ts":1.5e`, 1),
	} {
		if got, ok := scanIndexed(bad); ok {
			t.Errorf("scanned %q as %+v", bad, got)
		}
	}
}

// A record in another JSON layout than the store's (spaces, another field order) is not
// what scanIndexed reads; Open decodes it with encoding/json and keeps it.
func TestOpenDecodesOtherLayouts(t *testing.T) {
	dir, _ := baseStore(t, 1)
	e := chain(testKey('z'), roomA, history.Entry{}, 1)[0]
	v, err := json.MarshalIndent(map[string]any{"id": e.ID, "sig": e.Sig, "body": e.Body, "kind": e.Kind,
		"ts": e.TS, "prev": e.Prev, "seq": e.Seq, "name": e.Name, "author": e.Author, "room": e.Room}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := scanIndexed(string(v)); ok {
		t.Fatal("scanIndexed read another layout")
	}
	writeFile(t, dir, append(fileBytes(t, dir), resp("set", entryKey(roomA, e.Author, 1), string(v))...))
	s := mustOpen(t, dir, testOptions(t, nil))
	defer s.Close()
	rh, err := s.RoomHistory(roomA)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := rh.At(e.Author, 1); !ok || got != e {
		t.Fatalf("at: %+v %v", got, ok)
	}
}
