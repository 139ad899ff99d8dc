package store

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/tidwall/buntdb"

	"github.com/chattorrent/chattorrent/store/history"
)

// writeV1 writes rooms and entries in layout version 1, as the store wrote them before
// issue 15 (Store.set of one key a transaction): rooms.db with r:<room> → the room's
// metadata JSON and e:<room>:<author>:<seq %016x> → json.Marshal of the entry. A room with
// an empty name gets no metadata record (an orphan's entries).
func writeV1(t testing.TB, dir string, rooms map[string]string, es ...history.Entry) {
	t.Helper()
	db, err := buntdb.Open(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	set := func(k, v string) {
		err := db.Update(func(tx *buntdb.Tx) error {
			_, _, err := tx.Set(k, v, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for id, name := range rooms {
		if name == "" {
			continue
		}
		v, err := json.Marshal(roomMeta{ID: id, Name: name, Created: testNow.UnixMilli()})
		if err != nil {
			t.Fatal(err)
		}
		set("r:"+id, string(v))
	}
	for _, e := range es {
		v, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		set("e:"+e.Room+":"+e.Author+":"+fmt.Sprintf("%016x", e.Seq), string(v))
	}
}
