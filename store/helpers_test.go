package store

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

const (
	roomA = "0123456789abcdef0123456789abcdef"
	roomB = "fedcba9876543210fedcba9876543210"
)

var testNow = time.UnixMilli(1764000000000)

func testKey(c byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{c}, ed25519.SeedSize))
}

func author(k ed25519.PrivateKey) string { return history.EncodeKey(k.Public().(ed25519.PublicKey)) }

// chain makes n signed entries of k in room, seq from+1.. chained to prev.
func chain(k ed25519.PrivateKey, room string, prev history.Entry, n int) []history.Entry {
	var out []history.Entry
	for range n {
		e := history.Entry{Room: room, Author: author(k), Name: "Ana", Kind: history.KindText,
			Seq: prev.Seq + 1, Prev: prev.ID, TS: testNow.UnixMilli() - 60_000 + prev.Seq*1000,
			Body: fmt.Sprintf("message %d: hola ¿qué tal? ✓", prev.Seq+1)}
		e.Sign(k)
		out = append(out, e)
		prev = e
	}
	return out
}

// logBuffer collects log output for assertions; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	w   io.Writer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.w.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func testOptions(t testing.TB, lb *logBuffer) Options {
	w := io.Writer(io.Discard)
	if tt, ok := t.(*testing.T); ok {
		w = tt.Output()
	}
	if lb != nil {
		lb.w = w
		w = lb
	}
	return Options{
		Logger: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    func() time.Time { return testNow },
	}
}

func mustOpen(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func mustAppend(t testing.TB, s *Store, room string, es ...history.Entry) {
	t.Helper()
	for _, e := range es {
		added, err := s.Append(room, e)
		if err != nil || !added {
			t.Fatalf("append seq %d: added=%v err=%v", e.Seq, added, err)
		}
	}
}

func fileBytes(t testing.TB, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// treeBytes is every file of the store's dir (names and contents), to compare before and
// after a refused write.
func treeBytes(t testing.TB, dir string) []byte {
	t.Helper()
	var out []byte
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out = append(append(append(out, p...), 0), b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// segBytes is the first segment of a room.
func segBytes(t testing.TB, dir, room string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, roomsDir, room, segName(1)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeSeg(t testing.TB, dir, room string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, roomsDir, room, segName(1)), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, dir string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func ids(es []history.Entry) map[string]bool {
	m := make(map[string]bool, len(es))
	for _, e := range es {
		m[e.ID] = true
	}
	return m
}
