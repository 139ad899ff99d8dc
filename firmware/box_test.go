package main

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/web"
)

// TestBoxMembers: a room's members are the authors of its stored history, so a room the
// box kept before membership existed keeps all its members; other keys are not members,
// and a room the box does not keep is ErrNoRoom (which the API answers like a non-member).
func TestBoxMembers(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	room := strings.Repeat("e", 32)
	if err := st.CreateRoom(room, "Aula de antes"); err != nil {
		t.Fatal(err)
	}
	ana := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	anaID := history.EncodeKey(ana.Public().(ed25519.PublicKey))
	e := history.Entry{Author: anaID, Name: "Ana", Kind: history.KindJoin, TS: time.Now().UnixMilli()}
	if _, err := st.Write(room, e, func(e *history.Entry) { e.Sign(ana) }); err != nil {
		t.Fatal(err)
	}
	stranger := history.EncodeKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32)).Public().(ed25519.PublicKey))
	b := boxAPI{store: st}
	for _, tc := range []struct {
		room    string
		authors []string
		want    bool
		err     error
	}{
		{room, []string{anaID}, true, nil},
		{room, []string{stranger, anaID}, true, nil},
		{room, []string{stranger}, false, nil},
		{room, nil, false, nil},
		{strings.Repeat("f", 32), []string{anaID}, false, web.ErrNoRoom},
	} {
		got, err := b.Member(tc.room, tc.authors)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("Member(%s…, %d keys) = %v, %v; want %v, %v", tc.room[:4], len(tc.authors), got, err, tc.want, tc.err)
		}
	}
}
