package store

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

var big = flag.Bool("store.big", false, "benchmark Open with 20 rooms × 10,000 entries (default 20 × 500)")

// benchEntries makes n chained entries of one author with a typical short message.
func benchEntries(b *testing.B, room string, k byte, n int) []history.Entry {
	b.Helper()
	key := testKey(k)
	out := make([]history.Entry, 0, n)
	prev := history.Entry{}
	base := time.Now().UnixMilli() - int64(n)*1000
	for i := range n {
		e := history.Entry{Room: room, Author: author(key), Name: "Ana", Kind: history.KindText,
			Seq: prev.Seq + 1, Prev: prev.ID, TS: base + int64(i)*1000,
			Body: fmt.Sprintf("mensaje %d: ¿nos vemos a las seis en la puerta de la biblioteca?", i)}
		e.Sign(key)
		out = append(out, e)
		prev = e
	}
	return out
}

// noLimits turns the store's quotas off: benchmarks append far more than one author may in
// an hour.
var noLimits = Limits{Rooms: -1, AuthorsPerRoom: -1, AuthorEntriesPerHour: -1, AuthorHistoryPerHour: -1, AuthorBytesPerHour: -1, StoreBytes: -1}

func benchStore(b *testing.B, p SyncPolicy) *Store {
	b.Helper()
	s, err := Open(b.TempDir(), Options{Sync: p, Logger: testOptions(b, nil).Logger, Limits: noLimits})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.CreateRoom(roomA, "bench"); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkAppend is one Append (check, write, and the policy's fsync) per op.
func BenchmarkAppend(b *testing.B) {
	for _, p := range []SyncPolicy{SyncAlways, SyncEverySecond, SyncNever} {
		b.Run(p.String(), func(b *testing.B) {
			es := benchEntries(b, roomA, 'a', b.N)
			s := benchStore(b, p)
			defer s.Close()
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.Append(roomA, es[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkSyncPolicies appends the same entries under each policy in one run and reports
// entries/s of each and how many times faster than SyncAlways the others are.
func BenchmarkSyncPolicies(b *testing.B) {
	const n = 300
	rate := map[SyncPolicy]float64{}
	for range b.N {
		for _, p := range []SyncPolicy{SyncAlways, SyncEverySecond, SyncNever} {
			b.StopTimer()
			es := benchEntries(b, roomA, 'a', n)
			s := benchStore(b, p)
			b.StartTimer()
			start := time.Now()
			for _, e := range es {
				if _, err := s.Append(roomA, e); err != nil {
					b.Fatal(err)
				}
			}
			rate[p] += n / time.Since(start).Seconds()
			s.Close()
		}
	}
	for p, r := range rate {
		b.ReportMetric(r/float64(b.N), p.String()+"-entries/s")
	}
	b.ReportMetric(rate[SyncEverySecond]/rate[SyncAlways], "every-second/always")
	b.ReportMetric(rate[SyncNever]/rate[SyncAlways], "never/always")
}

// BenchmarkCheck is the signature and id check every entry gets once on Append; Open does
// not repeat it.
func BenchmarkCheck(b *testing.B) {
	e := benchEntries(b, roomA, 'a', 1)[0]
	now := time.Now()
	for b.Loop() {
		if err := e.Check(roomA, now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMain removes BenchmarkOpen's store, built once for all its runs.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchOpenDir.dir != "" {
		os.RemoveAll(benchOpenDir.dir)
	}
	os.Exit(code)
}

var benchOpenDir struct {
	sync.Once
	dir     string
	entries int
	bytes   int64
	err     error
}

// BenchmarkOpen opens a store of 20 rooms (2 authors each): the time to read rooms.db
// and check the rooms' tails, and the heap it then holds.
func BenchmarkOpen(b *testing.B) {
	perRoom := 500
	if *big {
		perRoom = 10_000
	}
	benchOpenDir.Do(func() {
		benchOpenDir.dir, benchOpenDir.err = os.MkdirTemp("", "store-bench-open-")
		if benchOpenDir.err == nil {
			benchOpenDir.entries, benchOpenDir.err = buildBigStore(b, benchOpenDir.dir, 20, perRoom)
		}
		benchOpenDir.bytes, _ = dirSize(benchOpenDir.dir)
	})
	if benchOpenDir.err != nil {
		b.Fatal(benchOpenDir.err)
	}
	opts := Options{Logger: testOptions(b, nil).Logger}
	var heap uint64
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		b.StartTimer()
		s, err := Open(benchOpenDir.dir, opts)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		heap = m1.HeapInuse - m0.HeapInuse
		rooms, err := s.Rooms()
		n := 0
		for _, r := range rooms {
			n += r.Entries
		}
		s.Close()
		if err != nil || n != benchOpenDir.entries {
			b.Fatalf("opened %d entries (%v), want %d", n, err, benchOpenDir.entries)
		}
	}
	b.ReportMetric(float64(benchOpenDir.entries), "entries")
	b.ReportMetric(float64(benchOpenDir.bytes)/(1<<20), "file-MB")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
	b.ReportMetric(float64(heap)/float64(benchOpenDir.entries), "heap-B/entry")
	b.ReportMetric(float64(benchOpenDir.entries)/(b.Elapsed().Seconds()/float64(b.N)), "entries/s")
}

// buildBigStore stores rooms × perRoom signed entries (two authors a room) through the
// store's public API: CreateRoom, then Append of every entry, rooms in parallel (each Append
// checks the entry as one from a peer). Quotas are off and nothing is fsynced (SyncNever);
// the file is the one a box receiving these entries would write.
func buildBigStore(b *testing.B, dir string, rooms, perRoom int) (int, error) {
	s, err := Open(dir, Options{Sync: SyncNever, Logger: testOptions(b, nil).Logger, Limits: noLimits})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var total atomic.Int64
	errs := make([]error, rooms)
	work := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range work {
				room := fmt.Sprintf("%032x", i+1)
				if errs[i] = s.CreateRoom(room, "sala "+room[28:]); errs[i] != nil {
					continue
				}
				half := perRoom / 2
				es := append(benchEntries(b, room, 'a', half), benchEntries(b, room, 'b', perRoom-half)...)
				for _, e := range es {
					if _, errs[i] = s.Append(room, e); errs[i] != nil {
						break
					}
					total.Add(1)
				}
			}
		})
	}
	for i := range rooms {
		work <- i
	}
	close(work)
	wg.Wait()
	return int(total.Load()), errors.Join(errs...)
}
