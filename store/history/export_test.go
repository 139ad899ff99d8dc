package history

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func exportJSON(t *testing.T, mut func(x map[string]any)) []byte {
	t.Helper()
	l, _ := makeLog(t)
	b, err := json.Marshal(NewExport(l, "Aula 7", vecNow))
	if err != nil {
		t.Fatal(err)
	}
	if mut == nil {
		return b
	}
	var x map[string]any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	mut(x)
	b, err = json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func entriesOf(x map[string]any) []any { return x["entries"].([]any) }

func TestVerifyExportGood(t *testing.T) {
	x, fails, err := VerifyExport(bytes.NewReader(exportJSON(t, nil)), vecNow)
	if err != nil || len(fails) != 0 {
		t.Fatalf("err=%v fails=%v", err, fails)
	}
	if len(x.Entries) != 6 || x.Room.Name != "Aula 7" {
		t.Fatalf("got %d entries, room %+v", len(x.Entries), x.Room)
	}
}

func TestVerifyExportTampered(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mut   func(x map[string]any)
		index int
		want  error
	}{
		{"body edited", func(x map[string]any) { entriesOf(x)[1].(map[string]any)["body"] = "edited" }, 1, ErrBadID},
		{"body edited and id recomputed", func(x map[string]any) {
			e := entriesOf(x)[1].(map[string]any)
			e["body"] = "edited"
			var en Entry
			b, _ := json.Marshal(e)
			json.Unmarshal(b, &en)
			e["id"] = en.ComputeID()
		}, 1, ErrBadSignature},
		{"signature swapped", func(x map[string]any) {
			es := entriesOf(x)
			es[1].(map[string]any)["sig"] = es[0].(map[string]any)["sig"]
		}, 1, ErrBadID},
		{"entry removed from a chain", func(x map[string]any) {
			es := entriesOf(x)
			x["entries"] = append(es[:1:1], es[2:]...)
		}, 3, ErrGap},
		{"entry from another room", func(x map[string]any) { x["room"].(map[string]any)["id"] = strings.Repeat("e", 32) }, 0, ErrWrongRoom},
		{"entry with wrong types", func(x map[string]any) { entriesOf(x)[2].(map[string]any)["seq"] = "two" }, 2, ErrBadField},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, fails, err := VerifyExport(bytes.NewReader(exportJSON(t, tc.mut)), vecNow)
			if err != nil {
				t.Fatal(err)
			}
			if len(fails) == 0 {
				t.Fatal("tampered export verified")
			}
			if fails[0].Index != tc.index || !errors.Is(fails[0].Err, tc.want) {
				t.Fatalf("first failure %v, want entry %d: %v", fails[0], tc.index, tc.want)
			}
		})
	}
}

func TestVerifyExportNotAnExport(t *testing.T) {
	for _, in := range []string{``, `[]`, `{"format":"other","v":1}`, `{"format":"chattorrent-history","v":9}`, `{"format":`} {
		if _, _, err := VerifyExport(strings.NewReader(in), vecNow); err == nil {
			t.Errorf("%q: want an error", in)
		}
	}
}

func TestMissingKeepsSeqOrderWhenTheClockWentBack(t *testing.T) {
	keys := vecKeys()
	l := NewLog(vecRoom)
	write := func(k ed25519.PrivateKey, ts int64) {
		e := Entry{Author: EncodeKey(k.Public().(ed25519.PublicKey)), Name: "X", Kind: KindText, TS: ts}
		l.Next(&e)
		e.Sign(k)
		if _, err := l.Add(e, vecNow); err != nil {
			t.Fatal(err)
		}
	}
	write(keys[0], 5000)
	write(keys[0], 3000) // the author's clock jumped back
	write(keys[1], 4000)
	peer := NewLog(vecRoom)
	for _, e := range l.Missing(nil) {
		if _, err := peer.Add(e, vecNow); err != nil {
			t.Fatalf("entries arrive out of chain order: %v", err)
		}
	}
}
