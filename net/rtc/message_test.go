package rtc

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

var alice = newAuthor("alice")

func validHello() string {
	return `{"t":"hello","v":1,"room":"` + testRoom + `","peer":{"id":"dev-1","name":"Ana"},"heads":{"` + alice.id + `":3}}`
}

func TestDecodeValid(t *testing.T) {
	m, err := DecodeMessage([]byte(validHello()))
	if err != nil {
		t.Fatal(err)
	}
	if m.T != TypeHello || m.Hello.V != 1 || m.Hello.Room != testRoom || m.Hello.Peer != (PeerInfo{"dev-1", "Ana"}) || m.Hello.Heads[alice.id] != 3 {
		t.Fatalf("hello = %+v", m.Hello)
	}
	// Unknown keys are ignored; a newer version decodes (Session refuses it).
	m, err = DecodeMessage([]byte(`{"t":"hello","v":2,"x":[1],"room":"` + testRoom + `","peer":{"id":"a","name":"b","c":1},"heads":{}}`))
	if err != nil || m.Hello.V != 2 || len(m.Hello.Heads) != 0 {
		t.Fatalf("%+v %v", m, err)
	}
	e := entry(alice, testRoom, 1, "", "hi")
	msgs, err := EncodeEntries([]history.Entry{e})
	if err != nil || len(msgs) != 1 {
		t.Fatal(err)
	}
	m, err = DecodeMessage(msgs[0])
	if err != nil || m.T != TypeEntries || len(m.Entries) != 1 {
		t.Fatalf("%+v %v", m, err)
	}
	var back history.Entry
	if err := json.Unmarshal(m.Entries[0], &back); err != nil || back != e {
		t.Fatalf("entry round trip: %+v %v", back, err)
	}
	ack, err := EncodeAck([]string{e.ID}, 7)
	if err != nil {
		t.Fatal(err)
	}
	m, err = DecodeMessage(ack)
	if err != nil || m.T != TypeAck || len(m.IDs) != 1 || m.IDs[0] != e.ID || m.Others != 7 {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := EncodeAck(nil, MaxAckOthers+1); err == nil {
		t.Error("EncodeAck took n over MaxAckOthers")
	}
	m, err = DecodeMessage([]byte(`{"t":"entries","entries":[]}`))
	if err != nil || m.T != TypeEntries || len(m.Entries) != 0 {
		t.Fatalf("%+v %v", m, err)
	}
}

func malformedCases() map[string]string {
	h := func(repl ...string) string { return strings.NewReplacer(repl...).Replace(validHello()) }
	id := strings.Repeat("a", 64)
	return map[string]string{
		"empty":            ``,
		"not json":         `hello`,
		"truncated":        `{"t":"hello"`,
		"array":            `[1,2]`,
		"null":             `null`,
		"string":           `"hello"`,
		"no t":             `{"v":1}`,
		"t not string":     `{"t":1}`,
		"t null":           `{"t":null}`,
		"t wrong case key": `{"T":"ack","ids":[]}`,
		"unknown t":        `{"t":"bye"}`,
		"t wrong case":     `{"t":"ACK","ids":[]}`,
		"hello no v":       h(`"v":1,`, ``),
		"hello v string":   h(`"v":1`, `"v":"1"`),
		"hello v float":    h(`"v":1`, `"v":1.0`),
		"hello v exp":      h(`"v":1`, `"v":1e0`),
		"hello v zero":     h(`"v":1`, `"v":0`),
		"hello v huge":     h(`"v":1`, `"v":99999999999999999999`),
		"hello room upper": h(testRoom, strings.ToUpper(testRoom)),
		"hello room short": h(testRoom, testRoom[:31]),
		"hello room null":  h(`"`+testRoom+`"`, `null`),
		"hello no peer":    h(`"peer":{"id":"dev-1","name":"Ana"},`, ``),
		"hello peer null":  h(`{"id":"dev-1","name":"Ana"}`, `null`),
		"hello peer array": h(`{"id":"dev-1","name":"Ana"}`, `[]`),
		"hello peer id":    h(`"dev-1"`, `"dev 1"`),
		"hello peer id 65": h(`"dev-1"`, `"`+strings.Repeat("a", 65)+`"`),
		"hello name empty": h(`"Ana"`, `""`),
		"hello name ctrl":  h(`"Ana"`, `"A\u0007na"`),
		"hello name long":  h(`"Ana"`, `"`+strings.Repeat("é", 33)+`"`),
		"hello no heads":   h(`,"heads":{"`+alice.id+`":3}`, ``),
		"hello heads null": h(`{"`+alice.id+`":3}`, `null`),
		"hello heads list": h(`{"`+alice.id+`":3}`, `[3]`),
		"hello head neg":   h(`:3}`, `:-1}`),
		"hello head big":   h(`:3}`, `:9007199254740992}`),
		"hello head float": h(`:3}`, `:3.5}`),
		"hello head null":  h(`:3}`, `:null}`),
		"hello head str":   h(`:3}`, `:"3"}`),
		"hello head key":   h(alice.id, "not-a-key"),
		"entries missing":  `{"t":"entries"}`,
		"entries null":     `{"t":"entries","entries":null}`,
		"entries object":   `{"t":"entries","entries":{}}`,
		"entries scalar":   `{"t":"entries","entries":[1]}`,
		"entries null el":  `{"t":"entries","entries":[null]}`,
		"entries 201":      `{"t":"entries","entries":[` + strings.Repeat(`{},`, 200) + `{}]}`,
		"ack missing":      `{"t":"ack"}`,
		"ack null":         `{"t":"ack","ids":null}`,
		"ack not hex":      `{"t":"ack","ids":["` + strings.Repeat("g", 64) + `"]}`,
		"ack upper":        `{"t":"ack","ids":["` + strings.Repeat("A", 64) + `"]}`,
		"ack short":        `{"t":"ack","ids":["` + id[:63] + `"]}`,
		"ack number":       `{"t":"ack","ids":[1]}`,
		"trailing garbage": `{"t":"ack","ids":[]} x`,
		"bad utf8":         "{\"t\":\"ack\xff\",\"ids\":[]}",
	}
}

func TestDecodeMalformed(t *testing.T) {
	for name, in := range malformedCases() {
		t.Run(name, func(t *testing.T) {
			m, err := DecodeMessage([]byte(in))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeMessage(%q) = %+v, %v; want ErrMalformed", in, m, err)
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	pad := strings.Repeat(" ", MaxMessage)
	big := []byte(`{"t":"ack","ids":[]}` + pad)
	if _, err := DecodeMessage(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	// Exactly MaxMessage bytes is allowed.
	ok := []byte(`{"t":"ack","ids":[]}`)
	ok = append(ok, []byte(pad[:MaxMessage-len(ok)])...)
	if _, err := DecodeMessage(ok); err != nil {
		t.Fatalf("%d bytes: %v", len(ok), err)
	}
}

func TestEncodeEntriesBatches(t *testing.T) {
	h := NewMemHistory(history.NewLog(testRoom))
	es := write(t, h, alice, 450)
	msgs, err := EncodeEntries(es)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3 (200+200+50)", len(msgs))
	}
	// Big bodies: the byte limit cuts before the count limit.
	big := make([]history.Entry, 40)
	for i := range big {
		big[i] = entry(alice, testRoom, int64(i+1), "", strings.Repeat("<\x01", history.MaxBody/2))
	}
	msgs, err = EncodeEntries(big)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if len(m) > MaxBatchBytes {
			t.Fatalf("message of %d bytes > %d", len(m), MaxBatchBytes)
		}
		d, err := DecodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		n += len(d.Entries)
	}
	if n != len(big) || len(msgs) < 2 {
		t.Fatalf("%d entries in %d messages", n, len(msgs))
	}
}

func TestHelloRoundTrip(t *testing.T) {
	in := Hello{V: 1, Room: testRoom, Peer: PeerInfo{"x", "Zoë"}, Heads: map[string]int64{alice.id: 7}}
	b, err := EncodeHello(in)
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeMessage(b)
	if err != nil || m.Hello.Peer != in.Peer || !maps.Equal(m.Hello.Heads, in.Heads) {
		t.Fatalf("%+v %v", m.Hello, err)
	}
	b, err = EncodeHello(Hello{V: 1, Room: testRoom, Peer: PeerInfo{"x", "y"}})
	if err != nil || !strings.Contains(string(b), `"heads":{}`) {
		t.Fatalf("%s %v", b, err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(validHello()))
	f.Add([]byte(`{"t":"ack","ids":["` + strings.Repeat("a", 64) + `"]}`))
	e := entry(alice, testRoom, 1, "", "hi")
	msgs, _ := EncodeEntries([]history.Entry{e})
	f.Add(msgs[0])
	f.Add([]byte(`{"t":"refused","code":"author-rate","ids":["` + strings.Repeat("a", 64) + `"]}`))
	f.Add([]byte(`{"t":"heads","heads":{"` + alice.id + `":2},"tips":{"` + alice.id + `":"` + strings.Repeat("b", 64) + `"},"more":true}`))
	for _, in := range malformedCases() {
		f.Add([]byte(in))
	}
	f.Add([]byte(`{"t":"entries","entries":[ {"a":"]}\\\"{"} , {"b":[1,{"c":"}"}]}]  }`))
	f.Add([]byte(`{"t":"entries","entries":[{"a":1},2,"x",[3]]}`))
	f.Add([]byte(`{"t":"entries","entries":[{"a":1}],"entries":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if es, ok := splitEntries(data); ok {
			// The fast path must give what the general path gives.
			var top map[string]json.RawMessage
			var want []json.RawMessage
			if err := json.Unmarshal(data, &top); err != nil {
				t.Fatalf("split a message the general path cannot read: %v", err)
			}
			if err := json.Unmarshal(top["entries"], &want); err != nil || len(want) != len(es) {
				t.Fatalf("split %d entries, the general path %d (%v)", len(es), len(want), err)
			}
			for i := range es {
				if string(es[i]) != string(want[i]) {
					t.Fatalf("entry %d: split %s, general %s", i, es[i], want[i])
				}
			}
		}
		m, err := DecodeMessage(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrTooLarge", err)
			}
			return
		}
		switch m.T {
		case TypeHello:
			b, err := EncodeHello(*m.Hello)
			if err != nil {
				t.Fatal(err)
			}
			m2, err := DecodeMessage(b)
			if err != nil || m2.Hello.Room != m.Hello.Room || m2.Hello.Peer != m.Hello.Peer || !maps.Equal(m2.Hello.Heads, m.Hello.Heads) {
				t.Fatalf("hello round trip: %+v %v", m2.Hello, err)
			}
		case TypeEntries:
			if len(m.Entries) > MaxBatch {
				t.Fatal("too many entries")
			}
		case TypeRefused:
			b, err := EncodeRefused(m.Code, m.IDs)
			if err != nil {
				t.Fatal(err)
			}
			if m2, err := DecodeMessage(b); err != nil || m2.Code != m.Code || !slices.Equal(m2.IDs, m.IDs) {
				t.Fatalf("refused round trip: %+v %v", m2, err)
			}
		case TypeHeads:
			if m.Hello == nil || m.Hello.Heads == nil {
				t.Fatal("heads without heads")
			}
			for a := range m.Hello.Tips {
				if _, ok := m.Hello.Heads[a]; !ok {
					t.Fatalf("a tip without a head: %s", a)
				}
			}
		case TypeAck, "want", "nope", "got", "cancel":
		default:
			t.Fatalf("type %q decoded", m.T)
		}
	})
}

// BenchmarkDecodeEntries: a full entries message (200 text entries) decoded as a session
// receives it, then each entry decoded, against the general path (the message as a map,
// the array, then the entries) measured in the same run: x-general is the ratio.
func BenchmarkDecodeEntries(b *testing.B) {
	es := make([]history.Entry, 0, MaxBatch)
	var prev string
	for i := range MaxBatch {
		e := entry(alice, testRoom, int64(i+1), prev, strings.Repeat("hola ", 20))
		prev = e.ID
		es = append(es, e)
	}
	msgs, err := EncodeEntries(es)
	if err != nil || len(msgs) != 1 {
		b.Fatal(len(msgs), err)
	}
	decodeAll := func(raw []json.RawMessage) {
		for _, r := range raw {
			var e history.Entry
			if err := json.Unmarshal(r, &e); err != nil {
				b.Fatal(err)
			}
		}
	}
	general := func() {
		var top map[string]json.RawMessage
		var raw []json.RawMessage
		if json.Unmarshal(msgs[0], &top) != nil || json.Unmarshal(top["entries"], &raw) != nil {
			b.Fatal("general path failed")
		}
		decodeAll(raw)
	}
	start := time.Now()
	for range b.N {
		general()
	}
	generalDur := time.Since(start)
	b.ResetTimer()
	for range b.N {
		m, err := DecodeMessage(msgs[0])
		if err != nil {
			b.Fatal(err)
		}
		decodeAll(m.Entries)
	}
	b.ReportMetric(float64(b.Elapsed())/float64(generalDur), "x-general")
	b.ReportMetric(float64(b.N*MaxBatch)/b.Elapsed().Seconds(), "entries/s")
}

// FuzzDecodeEntry: wherever decodeEntry's fast path answers, json.Unmarshal gives the same
// entry without an error; where it does not, decodeEntry is json.Unmarshal.
func FuzzDecodeEntry(f *testing.F) {
	e := entry(alice, testRoom, 2, strings.Repeat("c", 64), "hola ñandú 🦜")
	b, _ := json.Marshal(e)
	f.Add(b)
	for _, s := range []string{
		`{}`, ` { } `, `{"seq":1,"seq":2}`, `{"Room":"x"}`, `{"room":null}`, `{"seq":1.0}`, `{"seq":1e3}`,
		`{"seq":-0}`, `{"seq":01}`, `{"seq":9223372036854775808}`, `{"body":"a\"b"}`, `{"body":"\u00e9"}`,
		"{\"body\":\"\xff\"}", `{"other":1}`, `{"seq":"1"}`, `{"ts":-5 , "kind" : "text" }`, `[]`, `"x"`, `1`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // decodeEntry is given valid JSON values only
		}
		fast, ok := decodeEntryFast(raw)
		var want history.Entry
		err := json.Unmarshal(raw, &want)
		if ok && (err != nil || fast != want) {
			t.Fatalf("%q: fast %+v, json %+v (%v)", raw, fast, want, err)
		}
		got, gotErr := decodeEntry(raw)
		if got != want || (gotErr == nil) != (err == nil) {
			t.Fatalf("%q: decodeEntry %+v (%v), json %+v (%v)", raw, got, gotErr, want, err)
		}
	})
}

// TestDecodeEntryFastPath: what EncodeEntries writes is read by the fast path.
func TestDecodeEntryFastPath(t *testing.T) {
	es := []history.Entry{entry(alice, testRoom, 1, "", "hi"), entry(alice, testRoom, 2, strings.Repeat("c", 64), "ñandú 🦜 <b>")}
	msgs, err := EncodeEntries(es)
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeMessage(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range m.Entries {
		got, ok := decodeEntryFast(raw)
		if !ok || got != es[i] {
			t.Errorf("entry %d: fast path %v, %+v", i, ok, got)
		}
	}
	if _, b, ok := splitDecodeEntries(msgs[0]); !ok || !slices.Equal(b.es, es) {
		t.Errorf("splitDecodeEntries: %v, %+v", ok, b.es)
	}
}

func TestIsID(t *testing.T) {
	for s, want := range map[string]bool{
		strings.Repeat("a", 64): true, strings.Repeat("0f", 32): true,
		strings.Repeat("A", 64): false, strings.Repeat("a", 63): false, strings.Repeat("a", 65): false,
		strings.Repeat("a", 63) + "g": false, strings.Repeat("a", 62) + "é": false, "": false,
	} {
		if history.IsID(s) != want {
			t.Errorf("IsID(%q) = %v", s, !want)
		}
	}
}

// FuzzSplitDecodeEntries: a message splitDecodeEntries reads is valid JSON, and DecodeMessage
// with decodeEntries reads it the same (the entries, their sizes, nothing refused).
func FuzzSplitDecodeEntries(f *testing.F) {
	es := []history.Entry{entry(alice, testRoom, 1, "", "hi"), entry(alice, testRoom, 2, strings.Repeat("c", 64), "ñandú <b>")}
	msgs, _ := EncodeEntries(es)
	f.Add(msgs[0])
	f.Add([]byte(`{"t":"entries","entries":[ {"seq":1} , {"body":"a\u00e9"} ] } `))
	f.Add([]byte(`{"t":"entries","entries":[{"seq":1}],"x":1}`))
	f.Add([]byte(`{"t":"entries","entries":[{"seq":1}]`))
	f.Add([]byte(`{"t":"entries","entries":[{"seq":1},]}`))
	f.Add([]byte(`{"t":"entries","entries":[{"seq":1} {"seq":2}]}`))
	f.Add([]byte(`{"t":"entries","entries":[{"body":"\"}"},{"body":"]}"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, b, ok := splitDecodeEntries(data)
		if !ok {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("read a message that is not valid JSON: %q", data)
		}
		want, err := DecodeMessage(data)
		if err != nil {
			t.Fatalf("read a message DecodeMessage refuses (%v): %q", err, data)
		}
		wb := decodeEntries(want.Entries)
		if want.T != m.T || len(want.Entries) != len(m.Entries) || len(wb.bad) != 0 ||
			!slices.Equal(wb.es, b.es) || !slices.Equal(wb.sizes, b.sizes) {
			t.Fatalf("%q: fast %+v %+v, general %+v %+v", data, m, b, want, wb)
		}
		for i := range m.Entries {
			if string(m.Entries[i]) != string(want.Entries[i]) {
				t.Fatalf("entry %d: %s, general %s", i, m.Entries[i], want.Entries[i])
			}
		}
	})
}
