package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/net/cert"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/history"
)

// BenchmarkBackupMemory writes the backup of a box whose one room holds 5,000 and then
// 100,000 entries, to io.Discard, sampling the Go heap while it runs: the peak heap stays
// the same whatever the history (the rooms are streamed, twice), and the bytes allocated
// per entry are small and constant.
//
//	go test ./firmware/ -run '^$' -bench BackupMemory -benchtime 1x
func BenchmarkBackupMemory(b *testing.B) {
	for _, n := range []int{5_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			st, err := store.Open(filepath.Join(dir, "store"), store.Options{Sync: store.SyncNever})
			if err != nil {
				b.Fatal(err)
			}
			id, err := store.LoadIdentity(dir, "Caja")
			if err != nil {
				b.Fatal(err)
			}
			room := fmt.Sprintf("%032x", n)
			if err := st.CreateRoom(room, "Grande"); err != nil {
				b.Fatal(err)
			}
			rh, _ := st.RoomHistory(room)
			ts := time.Now().Add(-time.Hour).UnixMilli()
			for i := range n {
				e := history.Entry{Author: id.Author(), Name: id.Name, TS: ts + int64(i), Kind: history.KindText,
					Body: fmt.Sprintf("mensaje %d: hola, ¿qué tal? un texto de longitud corriente para un chat", i)}
				if _, err := rh.Write(e, id.Sign); err != nil {
					b.Fatal(err)
				}
			}
			files, _ := blobs.New(filepath.Join(dir, "files"), 0)
			src := backupSource{dataDir: dir, box: "caja", st: st, files: files}
			writeCA(b, dir)
			var peak uint64
			var written int64
			b.ResetTimer()
			for b.Loop() {
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() {
					var m runtime.MemStats
					for {
						select {
						case <-stop:
							return
						case <-time.After(2 * time.Millisecond):
						}
						runtime.ReadMemStats(&m)
						peak = max(peak, m.HeapAlloc)
					}
				})
				cw := &countWriter{}
				if err := writeBackup(cw, src, time.Now()); err != nil {
					b.Fatal(err)
				}
				close(stop)
				wg.Wait()
				written = cw.n
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.TotalAlloc-base.TotalAlloc)/float64(n), "alloc-B/entry")
			}
			b.StopTimer()
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(written)/(1<<20), "backup-MiB")
			st.Close()
		})
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return io.Discard.Write(p)
}

// writeCA makes a CA and server certificate in dir.
func writeCA(tb testing.TB, dir string) {
	tb.Helper()
	if _, err := cert.Load(dir, cert.Options{Hostname: "caja", Addrs: func() ([]netip.Addr, error) { return nil, nil }}); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkRestoreMemory restores the backup of a room of 1,000 and then 10,000 entries
// into a new box (its store syncing every entry, as the box's does), sampling the Go heap:
// the peak stays the same whatever the history; it reports the restore's entries a second
// (both passes: every signature is checked twice, once before anything changes).
//
//	go test ./firmware/ -run '^$' -bench RestoreMemory -benchtime 1x
func BenchmarkRestoreMemory(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			st, err := store.Open(filepath.Join(dir, "store"), store.Options{Sync: store.SyncNever})
			if err != nil {
				b.Fatal(err)
			}
			id, _ := store.LoadIdentity(dir, "Caja")
			room := fmt.Sprintf("%032x", n)
			st.CreateRoom(room, "Grande")
			rh, _ := st.RoomHistory(room)
			ts := time.Now().Add(-time.Hour).UnixMilli()
			for i := range n {
				e := history.Entry{Author: id.Author(), Name: id.Name, TS: ts + int64(i), Kind: history.KindText,
					Body: fmt.Sprintf("mensaje %d: hola, ¿qué tal? un texto de longitud corriente para un chat", i)}
				if _, err := rh.Write(e, id.Sign); err != nil {
					b.Fatal(err)
				}
			}
			files, _ := blobs.New(filepath.Join(dir, "files"), 0)
			writeCA(b, dir)
			path := filepath.Join(b.TempDir(), "backup.tar")
			f, _ := os.Create(path)
			if err := writeBackup(f, backupSource{dataDir: dir, box: "caja", st: st, files: files}, time.Now()); err != nil {
				b.Fatal(err)
			}
			f.Close()
			st.Close()
			var peak uint64
			var took time.Duration
			runs := 0
			for b.Loop() {
				to := b.TempDir()
				nst, nfiles, err := offlineStore(to, 0, slog.New(slog.DiscardHandler))
				if err != nil {
					b.Fatal(err)
				}
				in, _ := os.Open(path)
				runtime.GC()
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() {
					var m runtime.MemStats
					for {
						select {
						case <-stop:
							return
						case <-time.After(2 * time.Millisecond):
						}
						runtime.ReadMemStats(&m)
						peak = max(peak, m.HeapAlloc)
					}
				})
				start := time.Now()
				res, err := restoreFile(in, nst, nfiles, to, time.Now())
				took += time.Since(start)
				runs++
				close(stop)
				wg.Wait()
				in.Close()
				nst.Close()
				if err != nil || res.Entries != n {
					b.Fatalf("restore: %+v %v", res, err)
				}
			}
			b.ReportMetric(float64(n*runs)/took.Seconds(), "entries/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
