package rtc

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/store/testenv"
)

// BenchmarkCheck: entries verified per second (fields, id, Ed25519 signature).
func BenchmarkCheck(b *testing.B) {
	h := NewMemHistory(history.NewLog(testRoom))
	es := write(b, h, alice, 1000)
	now := time.Now()
	b.ResetTimer()
	for i := range b.N {
		if err := es[i%len(es)].Check(testRoom, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// recordConn keeps a copy of every message sent through it.
type recordConn struct {
	MsgConn
	mu   sync.Mutex
	sent [][]byte
}

func (r *recordConn) Send(ctx context.Context, msg []byte) error {
	r.mu.Lock()
	r.sent = append(r.sent, append([]byte(nil), msg...))
	r.mu.Unlock()
	return r.MsgConn.Send(ctx, msg)
}

// BenchmarkSync: one side holds 10,000 (then 100,000) entries, the other none; the time
// until all are stored on the other side, against sending the very same messages raw (no
// JSON, no verification, no store) over a fresh channel of the same kind: x-raw is the ratio.
func BenchmarkSync(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		hA := NewMemHistory(history.NewLog(testRoom))
		write(b, hA, alice, n)
		b.Run(fmt.Sprintf("entries=%d/vnet", n), func(b *testing.B) {
			benchSync(b, hA, n, func() (Options, Options) { return vnetOptions(b) }, memReceiver)
		})
		b.Run(fmt.Sprintf("entries=%d/loopback", n), func(b *testing.B) {
			testenv.NeedLoopbackOnly(b)
			benchSync(b, hA, n, loopbackOptions, memReceiver)
		})
		b.Run(fmt.Sprintf("entries=%d/loopback-store", n), func(b *testing.B) {
			testenv.NeedLoopbackOnly(b)
			benchSync(b, hA, n, loopbackOptions, storeReceiver)
		})
	}
}

// A receiver is the history a benchmark syncs into and how many entries it holds.
type receiver func(b *testing.B) (History, func() int)

// memReceiver is an in-memory log.
func memReceiver(b *testing.B) (History, func() int) {
	h := NewMemHistory(history.NewLog(testRoom))
	return h, h.Len
}

// storeReceiver is what a box syncs into: a room of a store on disk, with the store's
// default durability (SyncAlways) and no quota in the way.
func storeReceiver(b *testing.B) (History, func() int) {
	st, err := store.Open(b.TempDir(), store.Options{Limits: store.Limits{
		AuthorEntriesPerHour: -1, AuthorHistoryPerHour: -1, AuthorBytesPerHour: -1, StoreBytes: -1}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.CreateRoom(testRoom, "bench"); err != nil {
		b.Fatal(err)
	}
	rh, err := st.RoomHistory(testRoom)
	if err != nil {
		b.Fatal(err)
	}
	return rh, func() int {
		r, err := st.Room(testRoom)
		if err != nil {
			b.Fatal(err)
		}
		return r.Entries
	}
}

func benchSync(b *testing.B, hA *MemHistory, benchEntries int, opts func() (Options, Options), recv receiver) {
	var syncDur, rawDur time.Duration
	var rawBytes int64
	for range b.N {
		b.StopTimer()
		oa, ob := opts()
		ca, cb := connect(b, oa, ob)
		rec := &recordConn{MsgConn: ca}
		hB, lenB := recv(b)
		wb := newWatcher()
		sa := newSession(b, hA, rec, "A", nil)
		sb := newSession(b, hB, cb, "B", wb)
		b.StartTimer()

		start := time.Now()
		stopA := runSession(b, context.Background(), sa)
		stopB := runSession(b, context.Background(), sb)
		waitForWithin(b, 10*time.Minute, func() bool { return lenB() == benchEntries }, wb)
		syncDur += time.Since(start)

		b.StopTimer()
		_, _ = stopA(), stopB()
		rec.mu.Lock()
		msgs := rec.sent
		rec.mu.Unlock()
		oa, ob = opts()
		ra, rb := connect(b, oa, ob)
		b.StartTimer()

		d, n := sendRaw(b, ra, rb, msgs)
		rawDur += d
		rawBytes += n
		_, _ = ra.Close(), rb.Close()
	}
	b.ReportMetric(float64(syncDur)/float64(rawDur), "x-raw")
	b.ReportMetric(float64(b.N*benchEntries)/syncDur.Seconds(), "entries/s")
	b.ReportMetric(float64(rawBytes)/rawDur.Seconds()/1e6, "raw-MB/s")
}

// sendRaw sends msgs from a to b and returns the time until b has read them all.
func sendRaw(b *testing.B, ca, cb MsgConn, msgs [][]byte) (time.Duration, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	got := make(chan int64, 1)
	start := time.Now()
	go func() {
		var n int64
		for range msgs {
			m, err := cb.Recv(ctx)
			if err != nil {
				break
			}
			n += int64(len(m))
		}
		got <- n
	}()
	for _, m := range msgs {
		if err := ca.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	n := <-got
	return time.Since(start), n
}
