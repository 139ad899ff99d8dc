package history

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzMarshalJSON: MarshalJSON writes what json.Marshal writes.
func FuzzMarshalJSON(f *testing.F) {
	f.Add("0123456789abcdef0123456789abcdef", "k3y", "alice", int64(2), strings.Repeat("c", 64), int64(1796609185382), "text", "hola ñandú 🦜 <b>&", "sig", "id")
	f.Add("", "", "", int64(-1), "", int64(0), "", "a\"b\\c\n\u2028\x7f\xff", "", "")
	f.Fuzz(func(t *testing.T, room, author, name string, seq int64, prev string, ts int64, kind, body, sig, id string) {
		e := Entry{Room: room, Author: author, Name: name, Seq: seq, Prev: prev, TS: ts, Kind: kind, Body: body, Sig: sig, ID: id}
		want, wantErr := json.Marshal(e)
		got, err := MarshalJSON(e)
		if (err == nil) != (wantErr == nil) || string(got) != string(want) {
			t.Fatalf("MarshalJSON %s (%v), json.Marshal %s (%v)", got, err, want, wantErr)
		}
	})
}
