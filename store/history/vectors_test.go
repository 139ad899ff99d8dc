package history

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

// The shared vectors: the JS client's tests (web/jstest/history-vectors.test.mjs) read the
// same file and must agree byte for byte.
type vectors struct {
	Room      string      `json:"room"`
	Now       int64       `json:"now"` // ms: the clock to check ts against
	Keys      []vecKey    `json:"keys"`
	Encodings []vecEnc    `json:"encodings"`
	Cases     []vecCase   `json:"cases"`
	Sync      []vecSync   `json:"sync"`
	Log       []Entry     `json:"log"` // a valid history of two authors, in (author, seq) order
	Export    *Export     `json:"export"`
	Fork      vecForkCase `json:"fork"`
}

type vecKey struct {
	Name   string `json:"name"`
	Seed   string `json:"seed"`   // hex, 32 bytes: the Ed25519 private key seed
	Public string `json:"public"` // the Author form
	Finger string `json:"fingerprint"`
}

type vecEnc struct {
	Entry        Entry  `json:"entry"`
	SigningBytes string `json:"signing_bytes"` // hex
	IDBytes      string `json:"id_bytes"`      // hex: the bytes hashed for the id
}

// vecCase: add Prior (all valid) to an empty log, then Entry: Code "" means accepted.
type vecCase struct {
	Name  string `json:"name"`
	Prior int    `json:"prior"` // how many entries of Log (in order) are added first
	Entry Entry  `json:"entry"`
	Code  string `json:"code"`
	Field string `json:"field,omitempty"`
}

// vecSync: with all of Log stored, what a peer with Heads lacks, in order.
type vecSync struct {
	Heads   map[string]int64 `json:"heads"`
	Missing []string         `json:"missing"`
}

type vecForkCase struct {
	Prior  int    `json:"prior"`
	Entry  Entry  `json:"entry"`
	Author string `json:"author"`
}

const vecRoom = "0123456789abcdef0123456789abcdef"

var vecNow = time.UnixMilli(1764000000000)

func vecKeys() []ed25519.PrivateKey {
	var ks []ed25519.PrivateKey
	for _, c := range []byte{'a', 'b'} {
		ks = append(ks, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{c}, 32)))
	}
	return ks
}

func makeLog(t testing.TB) (*Log, []Entry) {
	keys := vecKeys()
	l := NewLog(vecRoom)
	var order []Entry
	write := func(k ed25519.PrivateKey, name, kind, body string, ts int64) {
		e := Entry{Author: EncodeKey(k.Public().(ed25519.PublicKey)), Name: name, Kind: kind, Body: body, TS: ts}
		l.Next(&e)
		e.Sign(k)
		if _, err := l.Add(e, vecNow); err != nil {
			t.Fatalf("add %+v: %v", e, err)
		}
		order = append(order, e)
	}
	t0 := vecNow.UnixMilli() - 60_000
	write(keys[0], "Ana", KindJoin, "", t0)
	write(keys[0], "Ana", KindText, "Hola, ¿qué tal? ✓", t0+1000)
	write(keys[1], "Bruno", KindJoin, "", t0+2000)
	write(keys[1], "Bruno", KindText, "Bien 👋 <b>not html</b>", t0+3000)
	write(keys[0], "Ana", KindText, "line one\nline two", t0+4000)
	write(keys[0], "Ana", "poll", "an unknown kind from a newer version", t0+5000)
	return l, order
}

func buildVectors(t testing.TB) *vectors {
	keys := vecKeys()
	l, order := makeLog(t)
	v := &vectors{Room: vecRoom, Now: vecNow.UnixMilli()}
	for i, k := range keys {
		pub := EncodeKey(k.Public().(ed25519.PublicKey))
		v.Keys = append(v.Keys, vecKey{Name: []string{"Ana", "Bruno"}[i], Seed: hex.EncodeToString(k.Seed()), Public: pub, Finger: Fingerprint(pub)})
	}
	// Log in (author, seq) order so adding it in order always chains.
	byAuthor := map[string][]Entry{}
	var authors []string
	for _, e := range order {
		if _, ok := byAuthor[e.Author]; !ok {
			authors = append(authors, e.Author)
		}
		byAuthor[e.Author] = append(byAuthor[e.Author], e)
	}
	for _, a := range authors {
		v.Log = append(v.Log, byAuthor[a]...)
	}
	for _, e := range v.Log[:2] {
		v.Encodings = append(v.Encodings, vecEnc{Entry: e, SigningBytes: hex.EncodeToString(e.SigningBytes()), IDBytes: hex.EncodeToString(e.encode(true))})
	}
	ana := keys[0]
	head := v.Log[3] // Ana seq 4 (the poll): the next of Ana's is seq 5
	next := func(mut func(e *Entry), resign bool) Entry {
		e := Entry{Room: vecRoom, Author: head.Author, Name: "Ana", Seq: head.Seq + 1, Prev: head.ID, TS: vecNow.UnixMilli(), Kind: KindText, Body: "next"}
		if mut != nil && !resign {
			e.Sign(ana)
			mut(&e)
			return e
		}
		if mut != nil {
			mut(&e)
		}
		e.Sign(ana)
		return e
	}
	prior := len(v.Log)
	add := func(name, code, field string, e Entry) {
		v.Cases = append(v.Cases, vecCase{Name: name, Prior: prior, Entry: e, Code: code, Field: field})
	}
	add("valid next entry", "", "", next(nil, false))
	add("unknown kind is kept", "", "", next(func(e *Entry) { e.Kind = "sticker-v9" }, true))
	add("body at the limit", "", "", next(func(e *Entry) { e.Body = strings.Repeat("x", MaxBody) }, true))
	add("ts just inside the future slack", "", "", next(func(e *Entry) { e.TS = vecNow.Add(FutureSlack).UnixMilli() }, true))
	add("bad signature", CodeBadSignature, "", next(func(e *Entry) {
		e.Body = "changed after signing"
		e.ID = e.ComputeID()
	}, false))
	add("signature by another key", CodeBadSignature, "", func() Entry {
		e := next(nil, false)
		other := Entry(e)
		other.Sign(keys[1])
		e.Sig = other.Sig
		e.ID = e.ComputeID()
		return e
	}())
	add("id not the hash", CodeBadID, "", next(func(e *Entry) { e.ID = strings.Repeat("0", 64) }, false))
	add("body changed, id kept", CodeBadID, "", next(func(e *Entry) { e.Body = "tampered" }, false))
	add("another room", CodeWrongRoom, "", next(func(e *Entry) { e.Room = strings.Repeat("f", 32) }, true))
	add("ts far in the future", CodeFuture, "", next(func(e *Entry) { e.TS = vecNow.Add(FutureSlack + time.Second).UnixMilli() }, true))
	add("body too large", CodeTooLarge, "body", next(func(e *Entry) { e.Body = strings.Repeat("x", MaxBody+1) }, true))
	add("gap in the chain", CodeGap, "", next(func(e *Entry) { e.Seq += 1 }, true))
	add("prev is not the previous entry", CodeBrokenChain, "", next(func(e *Entry) { e.Prev = v.Log[0].ID }, true))
	add("fork: another entry at an existing seq", CodeFork, "", next(func(e *Entry) { e.Seq, e.Prev = head.Seq, v.Log[2].ID }, true))
	add("seq 1 with a prev", CodeBadField, "prev", next(func(e *Entry) { e.Seq = 1 }, true))
	add("seq 0", CodeBadField, "seq", next(func(e *Entry) { e.Seq = 0 }, true))
	add("bad room", CodeBadField, "room", next(func(e *Entry) { e.Room = "ROOM" }, true))
	add("empty name", CodeBadField, "name", next(func(e *Entry) { e.Name = "" }, true))
	add("name with a control character", CodeBadField, "name", next(func(e *Entry) { e.Name = "A\u0007" }, true))
	add("bad kind", CodeBadField, "kind", next(func(e *Entry) { e.Kind = "Text!" }, true))
	add("bad author", CodeBadField, "author", next(func(e *Entry) { e.Author = "not-a-key" }, false))
	add("bad sig encoding", CodeBadField, "sig", next(func(e *Entry) { e.Sig = "!!"; e.ID = e.ComputeID() }, false))
	add("bad id encoding", CodeBadField, "id", next(func(e *Entry) { e.ID = "XYZ" }, false))
	add("negative ts", CodeBadField, "ts", next(func(e *Entry) { e.TS = -1 }, true))
	// Entry already stored: not an error, not added again.
	v.Cases = append(v.Cases, vecCase{Name: "duplicate is ignored", Prior: prior, Entry: v.Log[1], Code: "duplicate"})
	// First entry of a new author on an empty log.
	v.Cases = append(v.Cases, vecCase{Name: "first entry on an empty log", Prior: 0, Entry: v.Log[0]})
	v.Cases = append(v.Cases, vecCase{Name: "second entry without the first", Prior: 0, Entry: v.Log[1], Code: CodeGap})

	for _, c := range v.Cases {
		if c.Code == CodeFork {
			v.Fork = vecForkCase{Prior: prior, Entry: c.Entry, Author: head.Author}
		}
	}
	v.Sync = []vecSync{
		{Heads: map[string]int64{}, Missing: ids(l.Missing(nil))},
		{Heads: map[string]int64{v.Log[0].Author: 2}, Missing: ids(l.Missing(map[string]int64{v.Log[0].Author: 2}))},
		{Heads: l.Heads(), Missing: []string{}},
	}
	v.Export = NewExport(l, "Aula 7", vecNow)
	return v
}

func ids(es []Entry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestVectors(t *testing.T) {
	v := buildVectors(t)
	got, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "vectors.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./store/history -run TestVectors -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("testdata/vectors.json is stale or this code changed the format: run with -update and review the diff")
	}
	// Replay the cases as the JS tests do.
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			l := NewLog(v.Room)
			for _, e := range v.Log[:c.Prior] {
				if _, err := l.Add(e, vecNow); err != nil {
					t.Fatalf("prior: %v", err)
				}
			}
			before := l.Len()
			added, err := l.Add(c.Entry, vecNow)
			switch c.Code {
			case "":
				if err != nil || !added {
					t.Fatalf("want accepted, got added=%v err=%v", added, err)
				}
			case "duplicate":
				if err != nil || added {
					t.Fatalf("want ignored, got added=%v err=%v", added, err)
				}
			default:
				var he *Error
				if !errors.As(err, &he) || he.Code != c.Code || he.Field != c.Field {
					t.Fatalf("want %s %s, got %v", c.Code, c.Field, err)
				}
				if l.Len() != before {
					t.Fatal("a refused entry changed the log")
				}
			}
		})
	}
}

func TestForkKeepsFirst(t *testing.T) {
	v := buildVectors(t)
	l := NewLog(v.Room)
	for _, e := range v.Log {
		l.Add(e, vecNow)
	}
	kept, _ := l.Head(v.Fork.Author)
	if _, err := l.Add(v.Fork.Entry, vecNow); !errors.Is(err, ErrFork) {
		t.Fatalf("want fork, got %v", err)
	}
	if !l.Forked(v.Fork.Author) {
		t.Fatal("author not marked forked")
	}
	if h, _ := l.Head(v.Fork.Author); h.ID != kept.ID {
		t.Fatal("the first entry was replaced")
	}
}
