package history

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// missingScan is Missing as it was before the heap merge: a linear scan of the runs for
// each entry (O(entries × authors)). The reference the merge must agree with.
func missingScan(l *Log, heads map[string]int64) []Entry {
	var runs [][]Entry
	for a, c := range l.chains {
		from := min(max(heads[a], 0), int64(len(c)))
		if from < int64(len(c)) {
			runs = append(runs, c[from:])
		}
	}
	var out []Entry
	for len(runs) > 0 {
		best := 0
		for r := 1; r < len(runs); r++ {
			if compareEntries(runs[r][0], runs[best][0]) < 0 {
				best = r
			}
		}
		out = append(out, runs[best][0])
		if runs[best] = runs[best][1:]; len(runs[best]) == 0 {
			runs = slices.Delete(runs, best, best+1)
		}
	}
	return out
}

// randomLog builds a log's chains directly (Missing only reads them; no signatures needed):
// authors whose clocks jump back and forth and often tie with each other.
func randomLog(rng *rand.Rand, authors, maxLen int) *Log {
	l := NewLog("0123456789abcdef0123456789abcdef")
	for a := range authors {
		id := fmt.Sprintf("author-%03d", a)
		ts := int64(1_700_000_000_000) + int64(rng.IntN(50))
		n := int64(rng.IntN(maxLen + 1))
		for seq := int64(1); seq <= n; seq++ {
			ts += int64(rng.IntN(20) - 6) // sometimes backwards
			e := Entry{Author: id, Seq: seq, TS: ts, ID: fmt.Sprintf("%s/%d", id, seq)}
			l.chains[id] = append(l.chains[id], e)
			l.entries++
		}
		if len(l.chains[id]) == 0 {
			delete(l.chains, id)
		}
	}
	return l
}

func TestMissingMergeMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		l := randomLog(rng, rng.IntN(12), 30)
		var heads map[string]int64
		if i%3 != 0 {
			heads = map[string]int64{"stranger": 4}
			for a, c := range l.chains {
				if rng.IntN(4) > 0 {
					heads[a] = int64(rng.IntN(len(c)+3) - 1) // also <0 and past the head
				}
			}
		}
		got, want := l.Missing(heads), missingScan(l, heads)
		if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Fatalf("case %d: heads %v: merge gives %d entries, scan %d; first difference at %d",
				i, heads, len(got), len(want), firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []Entry) int {
	for i := range min(len(a), len(b)) {
		if a[i].ID != b[i].ID {
			return i
		}
	}
	return min(len(a), len(b))
}

// BenchmarkMissing: a full sync of a room with many authors. The scan was O(n·k); the
// merge is O(n log k).
func BenchmarkMissing(b *testing.B) {
	for _, authors := range []int{16, 256, 2048} {
		l := randomLog(rand.New(rand.NewPCG(3, 4)), authors, 100)
		b.Run(fmt.Sprintf("authors=%d/merge", authors), func(b *testing.B) {
			for b.Loop() {
				l.Missing(nil)
			}
		})
		if authors > 256 {
			continue // the scan takes over a second per op there
		}
		b.Run(fmt.Sprintf("authors=%d/scan", authors), func(b *testing.B) {
			for b.Loop() {
				missingScan(l, nil)
			}
		})
	}
}
