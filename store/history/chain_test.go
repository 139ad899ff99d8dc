package history

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// chainVectors are the shared vectors of CheckBatch: web/jstest/chain.test.mjs replays
// testdata/chain_vectors.json against history.js's checkBatch and must agree entry for entry.
type chainVectors struct {
	Room  string      `json:"room"`
	Now   int64       `json:"now"`
	Keys  []vecKey    `json:"keys"`
	Cases []chainCase `json:"cases"`
}

// chainCase: with Stored in the history, CheckBatch(Batch) gives Want, one per entry.
type chainCase struct {
	Name   string      `json:"name"`
	Stored []Entry     `json:"stored"`
	Batch  []Entry     `json:"batch"`
	Want   []chainWant `json:"want"`
}

// chainWant is one entry's verdict: Code "" means it passes.
type chainWant struct {
	Code  string `json:"code,omitempty"`
	Field string `json:"field,omitempty"`
	By    string `json:"by,omitempty"`
}

func chainKeys() []ed25519.PrivateKey {
	var ks []ed25519.PrivateKey
	for _, c := range []byte{'c', 'd', 'e'} {
		ks = append(ks, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{c}, 32)))
	}
	return ks
}

// chainOf is n valid entries of key's author, seq 1..n, linked.
func chainOf(k ed25519.PrivateKey, name string, n int, t0 int64) []Entry {
	var out []Entry
	prev := ""
	for i := 1; i <= n; i++ {
		e := Entry{Room: vecRoom, Author: EncodeKey(k.Public().(ed25519.PublicKey)), Name: name,
			Seq: int64(i), Prev: prev, TS: t0 + int64(i)*1000, Kind: KindText, Body: name + " " + strings.Repeat("·", i)}
		e.Sign(k)
		out = append(out, e)
		prev = e.ID
	}
	return out
}

// resign re-signs e with k after a change (a valid entry with new content).
func resign(e Entry, k ed25519.PrivateKey) Entry { e.Sign(k); return e }

// rehash recomputes e's id without signing again: what a forger without the key can do.
func rehash(e Entry) Entry { e.ID = e.ComputeID(); return e }

const otherID = "00000000000000000000000000000000000000000000000000000000000000ff"

func cat(parts ...[]Entry) []Entry {
	var out []Entry
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func buildChainVectors() *chainVectors {
	keys := chainKeys()
	t0 := vecNow.UnixMilli() - 3_600_000
	A := chainOf(keys[0], "Ana", 8, t0)
	B := chainOf(keys[1], "Bruno", 4, t0+500)
	C := chainOf(keys[2], "Carla", 3, t0+700)
	ok := func(n int) []chainWant { return make([]chainWant, n) }
	run := func(n, at int, code, field string, es []Entry) []chainWant {
		w := make([]chainWant, n)
		for i := range w {
			if i == at {
				w[i] = chainWant{Code: code, Field: field}
			} else {
				w[i] = chainWant{Code: code, By: es[at].ID}
			}
		}
		return w
	}
	var cases []chainCase

	// Several authors interleaved, each in seq order.
	good := []Entry{A[0], B[0], A[1], C[0], B[1], A[2], C[1], B[2], A[3], C[2], B[3], A[4]}
	cases = append(cases, chainCase{Name: "good batch of three authors", Batch: good, Want: ok(len(good))})

	// A forger changes A[3]'s prev (and its id, which it can compute, not its signature): the
	// link at seq 4 is broken, A's run 1..6 is refused whole; B's run is unaffected.
	forged := A[3]
	forged.Prev = otherID
	forged = rehash(forged)
	batch := cat(A[:3], []Entry{forged}, A[4:6], B[:2])
	want := append(run(6, 3, CodeBrokenChain, "prev", batch), ok(2)...)
	cases = append(cases, chainCase{Name: "forged link in the middle", Batch: batch, Want: want})

	// Each entry validly signed, but seq 3 does not chain to seq 2: the run is refused.
	broken := A[2]
	broken.Prev = otherID
	broken = resign(broken, keys[0])
	batch = cat(A[:2], []Entry{broken}, C[:1])
	want = append(run(3, 2, CodeBrokenChain, "prev", batch), ok(1)...)
	cases = append(cases, chainCase{Name: "valid signatures on a broken chain", Batch: batch, Want: want})

	// Out of order: still one run per author once sorted by seq.
	shuffled := []Entry{A[4], B[2], A[0], A[3], B[0], A[2], B[3], A[1], B[1]}
	cases = append(cases, chainCase{Name: "reordered batch", Batch: shuffled, Want: ok(len(shuffled))})

	// A run that continues the stored head.
	batch = cat(A[3:6], B[:1])
	cases = append(cases, chainCase{Name: "run continuing the stored head", Stored: A[:3], Batch: batch, Want: ok(len(batch))})

	// A validly signed run whose first entry does not chain to the stored head (seq 3).
	w4 := A[3]
	w4.Prev = otherID
	w4 = resign(w4, keys[0])
	w5 := A[4]
	w5.Prev = w4.ID
	w5 = resign(w5, keys[0])
	batch = []Entry{w4, w5}
	cases = append(cases, chainCase{Name: "run not continuing the stored head", Stored: A[:3], Batch: batch,
		Want: run(2, 0, CodeBrokenChain, "prev", batch)})

	// The last entry of A's run has a bad signature (another entry's): the run is refused.
	badLast := A[3]
	badLast.Sig = A[2].Sig
	badLast = rehash(badLast)
	batch = cat(A[:3], []Entry{badLast}, B[:3])
	want = append(run(4, 3, CodeBadSignature, "", batch), ok(3)...)
	cases = append(cases, chainCase{Name: "bad signature on the last entry", Batch: batch, Want: want})

	// The edge: seq 2's own signature is bad, but seq 3 (validly signed) commits to it.
	vouched := A[1]
	vouched.Sig = A[0].Sig
	vouched = rehash(vouched)
	next := A[2]
	next.Prev = vouched.ID
	next = resign(next, keys[0])
	batch = []Entry{A[0], vouched, next}
	cases = append(cases, chainCase{Name: "bad own signature vouched for by a later entry", Batch: batch, Want: ok(3)})

	// The same run without the voucher: seq 2 ends the run, its signature is checked.
	batch = []Entry{A[0], vouched}
	cases = append(cases, chainCase{Name: "bad own signature ending the batch", Batch: batch,
		Want: run(2, 1, CodeBadSignature, "", batch)})

	// Duplicates: stored ones and a copy within the batch.
	batch = []Entry{A[0], A[1], A[2], A[2], A[3]}
	cases = append(cases, chainCase{Name: "duplicates", Stored: A[:2], Batch: batch, Want: ok(len(batch))})

	// Another entry at a stored seq is checked on its own signature: a valid one passes (the
	// log then refuses it as a fork), a forged one does not.
	fork := A[1]
	fork.Body = "another seq 2"
	fork = resign(fork, keys[0])
	forgedFork := fork
	forgedFork.Body = "a forged seq 2"
	forgedFork = rehash(forgedFork)
	batch = []Entry{fork, forgedFork, B[0]}
	cases = append(cases, chainCase{Name: "entries at a stored seq", Stored: A[:3], Batch: batch,
		Want: []chainWant{{}, {Code: CodeBadSignature}, {}}})

	// An entry refused on its own (bad id) splits its author's run in two, each verified.
	badID := A[1]
	badID.ID = otherID
	batch = []Entry{A[0], badID, A[2], A[3]}
	cases = append(cases, chainCase{Name: "bad id splits a run", Batch: batch,
		Want: []chainWant{{}, {Code: CodeBadID}, {}, {}}})

	// Two different entries at one seq in the batch: each on its own signature.
	batch = []Entry{A[0], A[1], fork, A[2]}
	cases = append(cases, chainCase{Name: "two entries at one seq in the batch", Batch: batch, Want: ok(4)})

	var ks []vecKey
	for i, k := range keys {
		pub := EncodeKey(k.Public().(ed25519.PublicKey))
		ks = append(ks, vecKey{Name: []string{"Ana", "Bruno", "Carla"}[i], Seed: hex.EncodeToString(k.Seed()), Public: pub, Finger: Fingerprint(pub)})
	}
	return &chainVectors{Room: vecRoom, Now: vecNow.UnixMilli(), Keys: ks, Cases: cases}
}

func storedOf(es []Entry) Stored {
	m := make(map[string]Entry)
	for _, e := range es {
		m[e.Author+" "+strconv.FormatInt(e.Seq, 10)] = e
	}
	return func(author string, seq int64) (Entry, bool) {
		e, ok := m[author+" "+strconv.FormatInt(seq, 10)]
		return e, ok
	}
}

func TestChainVectors(t *testing.T) {
	v := buildChainVectors()
	got, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "chain_vectors.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./store/history -run TestChainVectors -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("testdata/chain_vectors.json is stale: run with -update and review the diff")
	}
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			errs := CheckBatch(v.Room, c.Batch, vecNow, storedOf(c.Stored))
			if len(errs) != len(c.Batch) {
				t.Fatalf("%d results for %d entries", len(errs), len(c.Batch))
			}
			for i, err := range errs {
				if g := wantOf(err); g != c.Want[i] {
					t.Errorf("entry %d (seq %d): got %+v (%v), want %+v", i, c.Batch[i].Seq, g, err, c.Want[i])
				}
			}
		})
	}
}

func wantOf(err error) chainWant {
	if err == nil {
		return chainWant{}
	}
	var he *Error
	if !errors.As(err, &he) {
		return chainWant{Code: "not a history error: " + err.Error()}
	}
	return chainWant{Code: he.Code, Field: he.Field, By: he.By}
}

// Every entry CheckBatch passes, added in seq order with AddChecked, builds the same log as
// Add on each: the good batches store everything, a refused run stores nothing.
func TestCheckBatchThenAddChecked(t *testing.T) {
	v := buildChainVectors()
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			l := NewLog(v.Room)
			for _, e := range c.Stored {
				if _, err := l.Add(e, vecNow); err != nil {
					t.Fatal(err)
				}
			}
			errs := CheckBatch(v.Room, c.Batch, vecNow, func(a string, seq int64) (Entry, bool) { return l.At(a, seq) })
			order := make([]int, len(c.Batch))
			for i := range order {
				order[i] = i
			}
			sortBySeq(c.Batch, order)
			for _, i := range order {
				if errs[i] != nil {
					continue
				}
				_, err := l.AddChecked(c.Batch[i])
				if err != nil && !errors.Is(err, ErrFork) && !errors.Is(err, ErrGap) {
					t.Errorf("entry %d passed CheckBatch but AddChecked: %v", i, err)
				}
			}
			// What the log holds chains and (but for the vouched-for edge) verifies.
			for a, n := range l.Heads() {
				for s := int64(1); s <= n; s++ {
					e, _ := l.At(a, s)
					if s > 1 {
						p, _ := l.At(a, s-1)
						if e.Prev != p.ID {
							t.Fatalf("stored %s seq %d does not chain", a, s)
						}
					}
				}
			}
		})
	}
}

func sortBySeq(es []Entry, order []int) {
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && es[order[j]].Seq < es[order[j-1]].Seq; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
}

// A run is authenticated by its last signature only: Check on each entry of a vouched-for
// run would refuse the intermediate one (PROTOCOL.md §3, the edge).
func TestVouchedEntryFailsCheckAlone(t *testing.T) {
	v := buildChainVectors()
	for _, c := range v.Cases {
		if c.Name != "bad own signature vouched for by a later entry" {
			continue
		}
		if err := c.Batch[1].Check(v.Room, vecNow); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Check of the vouched-for entry: %v, want bad-signature", err)
		}
		return
	}
	t.Fatal("case missing")
}

// CheckBatch agrees with Check on entries refused on their own fields.
func TestCheckBatchFields(t *testing.T) {
	k := chainKeys()[0]
	es := chainOf(k, "Ana", 2, vecNow.UnixMilli())
	es[0].Room = "ffffffffffffffffffffffffffffffff"
	es[0] = resign(es[0], k)
	es[1].Sig = base64.RawURLEncoding.EncodeToString([]byte("short"))
	errs := CheckBatch(vecRoom, es, vecNow, nil)
	for i, e := range es {
		if want := e.Check(vecRoom, vecNow); wantOf(errs[i]) != wantOf(want) {
			t.Errorf("entry %d: CheckBatch %v, Check %v", i, errs[i], want)
		}
	}
}

// A long run costs one signature: many entries, all checked.
func BenchmarkCheckBatch(b *testing.B) {
	k := chainKeys()[0]
	es := chainOf(k, "Ana", 200, vecNow.UnixMilli()-3_600_000)
	b.ResetTimer()
	for range b.N {
		for _, err := range CheckBatch(vecRoom, es, vecNow, nil) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(es))/b.Elapsed().Seconds(), "entries/s")
}
