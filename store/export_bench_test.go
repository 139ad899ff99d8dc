package store_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/bundle"
	"github.com/chattorrent/chattorrent/store/history"
)

// BenchmarkExportStream builds one large room through the store's public API (200,000
// entries of 8 authors by default; CHATTORRENT_BENCH_EXPORT_ENTRIES sets another count,
// e.g. 1000000), one entry in 100 announcing a file and four of those files held, then
// writes its history.json and history.zip to io.Discard, streamed (store.Stream, as the
// box serves them) and, for comparison, whole (Store.Export, as the box did before). For
// each it reports the output's size and how much memory the export itself took:
//
//   - held-MiB: the largest live heap right after a full collection, forced every 4 MiB
//     of output (or 25 bytes per entry, if more), over the live heap before: what the
//     export keeps reachable, independent of when the collector runs;
//   - then, in a second run without forced collections: rss-MiB, the process's peak
//     resident set (VmHWM, reset first) over its resident set before, with the Go memory
//     limit set, as the box's GOMEMLIMIT does, to what the runtime held before plus 16 MiB;
//     s, how long it took; alloc-B/entry, bytes allocated per entry (garbage the collector
//     must clear: with the store's whole room in the heap, each collection marks all of
//     it, so under the limit allocation costs time, and the collector's CPU cap lets RSS
//     past the limit when it cannot keep up).
//
// Run it once, alone (it takes the machine's CPU and ~1.5 GiB of RAM at 1,000,000):
//
//	go test ./store -run '^$' -bench ExportStream -benchtime 1x -timeout 0
//	CHATTORRENT_BENCH_EXPORT_ENTRIES=1000000 go test ./store -run '^$' -bench ExportStream -benchtime 1x -timeout 0
func BenchmarkExportStream(b *testing.B) {
	n := 200_000
	if v := os.Getenv("CHATTORRENT_BENCH_EXPORT_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("CHATTORRENT_BENCH_EXPORT_ENTRIES=%q: want a positive count", v)
		}
	}
	dir := b.TempDir()
	s, blobs, room := buildExportRoom(b, dir, n)
	defer s.Close()

	for _, tc := range []struct {
		name  string
		write func(w io.Writer) error
	}{
		{"json/stream", func(w io.Writer) error {
			h, err := s.Stream(room)
			if err != nil {
				return err
			}
			return h.WriteJSON(w, time.Now())
		}},
		{"zip/stream", func(w io.Writer) error {
			h, err := s.Stream(room)
			if err != nil {
				return err
			}
			return bundle.WriteStream(w, h, blobs, time.Now())
		}},
		{"json/whole", func(w io.Writer) error { // web/api.go before: the export and its JSON in memory
			x, err := s.Export(room, time.Now())
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := json.NewEncoder(&buf).Encode(x); err != nil {
				return err
			}
			_, err = w.Write(buf.Bytes())
			return err
		}},
		{"zip/whole", func(w io.Writer) error { // the export in memory, then the zip
			x, err := s.Export(room, time.Now())
			if err != nil {
				return err
			}
			return bundle.Write(w, x, blobs, time.Now())
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				m := measureExport(b, n, tc.write)
				b.ReportMetric(float64(m.out)/1e6, "out-MB")
				b.ReportMetric(float64(m.held)/(1<<20), "held-MiB")
				b.ReportMetric(m.took.Seconds(), "s")
				b.ReportMetric(float64(m.rss)/(1<<20), "rss-MiB")
				b.ReportMetric(float64(m.alloc)/float64(n), "alloc-B/entry")
				b.ReportMetric(float64(n), "entries")
			}
		})
	}
}

type exportMeasure struct {
	out, held, rss, alloc int64
	took                  time.Duration
}

// measureExport runs write to io.Discard twice and measures what it took (see
// BenchmarkExportStream): first with a full collection every step bytes of output, for
// the heap the export holds, then untouched but under a memory limit, for the time, the
// allocations and the peak RSS.
func measureExport(b *testing.B, n int, write func(io.Writer) error) exportMeasure {
	b.Helper()
	var m exportMeasure

	// Held: the live heap right after a full collection, at points along the export.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := int64(ms.HeapAlloc)
	step := max(int64(4<<20), int64(n)*25)
	cw := &countWriter{every: step, at: func() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		m.held = max(m.held, int64(ms.HeapAlloc)-base)
	}}
	if err := write(cw); err != nil {
		b.Fatal(err)
	}
	m.out = cw.n

	// RSS: the peak resident set over the one before, the Go runtime limited to what it
	// held before plus 16 MiB, as the box's GOMEMLIMIT limits it.
	runtime.GC()
	debug.FreeOSMemory()
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(samples)
	totalBefore, allocBefore := samples[0].Value.Uint64(), samples[1].Value.Uint64()
	rssBefore := procStatus(b, "VmRSS")
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil { // resets VmHWM
		b.Logf("cannot reset VmHWM (%v): rss-MiB is the peak since start", err)
	}
	old := debug.SetMemoryLimit(int64(totalBefore) + 16<<20)
	start := time.Now()
	err := write(&countWriter{})
	m.took = time.Since(start)
	debug.SetMemoryLimit(old)
	if err != nil {
		b.Fatal(err)
	}
	metrics.Read(samples)
	m.rss = procStatus(b, "VmHWM") - rssBefore
	m.alloc = int64(samples[1].Value.Uint64() - allocBefore)
	b.Logf("%d bytes out in %v; heap held +%.1f MiB, peak RSS +%.1f MiB (%.0f MiB before), %.0f bytes allocated per entry",
		m.out, m.took.Round(time.Millisecond), float64(m.held)/(1<<20), float64(m.rss)/(1<<20), float64(rssBefore)/(1<<20), float64(m.alloc)/float64(n))
	return m
}

// countWriter counts what it discards and calls at every `every` bytes (when set).
type countWriter struct {
	n, every, next int64
	at             func()
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.at != nil && c.n >= c.next {
		c.next = c.n + c.every
		c.at()
	}
	return len(p), nil
}

// procStatus is a field of /proc/self/status in bytes (VmRSS, VmHWM).
func procStatus(b *testing.B, field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status: ", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("%s: %v", field, err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// buildExportRoom stores one room of n entries by 8 authors through Store.Write: text of
// about 100 bytes, one entry in 100 an image announcement, the first four of them held
// (256 KiB each) in the blobs it returns.
func buildExportRoom(b *testing.B, dir string, n int) (*store.Store, *blobs.Store, string) {
	return buildExportRoomT(b, dir, n)
}

func buildExportRoomT(b testing.TB, dir string, n int) (*store.Store, *blobs.Store, string) {
	b.Helper()
	s, err := store.Open(filepath.Join(dir, "store"), store.Options{
		Sync:   store.SyncNever,
		Logger: slog.New(slog.DiscardHandler),
		Limits: store.Limits{StoreBytes: -1, Rooms: -1, AuthorsPerRoom: -1},
	})
	if err != nil {
		b.Fatal(err)
	}
	blobs, err := blobs.New(filepath.Join(dir, "files"), 0)
	if err != nil {
		b.Fatal(err)
	}
	var held []string
	for i := range 4 {
		data := bytes.Repeat([]byte{byte(i), 'x', 'y', 'z'}, 64<<10)
		root, err := blobs.Put(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, pieces.RootHex(root))
	}
	const room = "0123456789abcdef0123456789abcdef"
	if err := s.CreateRoom(room, "Aula 7"); err != nil {
		b.Fatal(err)
	}
	keys := make([]ed25519.PrivateKey, 8)
	for i := range keys {
		keys[i] = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, ed25519.SeedSize))
	}
	start := time.Now()
	t0 := start.Add(-time.Duration(n) * time.Second).UnixMilli()
	for i := range n {
		k := keys[i%len(keys)]
		e := history.Entry{Author: history.EncodeKey(k.Public().(ed25519.PublicKey)), Name: fmt.Sprintf("Persona %d", i%len(keys)),
			Kind: history.KindText, TS: t0 + int64(i)*1000,
			Body: fmt.Sprintf("message %d: hola, ¿qué tal? this is an ordinary line of chat, about a hundred bytes ✓", i)}
		if i%100 == 50 {
			root, size := strings.Repeat(fmt.Sprintf("%02x", i%256), 32), int64(1000+i)
			if j := i / 100; j < len(held) {
				root, size = held[j], 256<<10
			}
			body, err := pieces.Meta{Kind: "image", Root: root, Size: size, Name: fmt.Sprintf("foto %d.jpg", i), Type: "image/jpeg", Duration: -1}.Body()
			if err != nil {
				b.Fatal(err)
			}
			e.Kind, e.Body = "image", body
		}
		if _, err := s.Write(room, e, func(e *history.Entry) { e.Sign(k) }); err != nil {
			b.Fatalf("entry %d: %v", i, err)
		}
	}
	b.Logf("stored %d entries in %v (rooms.db %s)", n, time.Since(start).Round(time.Millisecond), fileSize(s.Path()))
	return s, blobs, room
}

func fileSize(p string) string {
	fi, err := os.Stat(p)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.0f MB", float64(fi.Size())/1e6)
}

// A room's history.zip streamed from the store (store.Stream, bundle.WriteStream) is byte
// for byte the zip of its whole export (Store.Export, bundle.Write), held and missing files,
// read-ahead chunks of any size, and so is its history.json.
func TestStreamZipMatchesWhole(t *testing.T) {
	dir := t.TempDir()
	s, blobs, room := buildExportRoomT(t, dir, 1_000)
	defer s.Close()
	now := time.Now()
	x, err := s.Export(room, now)
	if err != nil {
		t.Fatal(err)
	}
	var whole, streamed bytes.Buffer
	if err := bundle.Write(&whole, x, blobs, now); err != nil {
		t.Fatal(err)
	}
	h, err := s.Stream(room)
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.WriteStream(&streamed, h, blobs, now); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(whole.Bytes(), streamed.Bytes()) {
		t.Fatalf("streamed zip (%d bytes) differs from the whole one (%d bytes)", streamed.Len(), whole.Len())
	}
	if !bytes.Contains(whole.Bytes(), []byte("media/")) {
		t.Error("no file included: the test room should hold some")
	}
	whole.Reset()
	streamed.Reset()
	json.NewEncoder(&whole).Encode(x)
	if err := h.WriteJSON(&streamed, now); err != nil || !bytes.Equal(whole.Bytes(), streamed.Bytes()) {
		t.Fatalf("history.json differs (%v)", err)
	}
}
