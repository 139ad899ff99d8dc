package store

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/buntdb"

	"github.com/chattorrent/chattorrent/store/history"
)

// baseStore makes a store of layout version 1 (entries in rooms.db, as the store wrote it
// before issue 15) with one room and n entries of key 'a': what rooms.db's recovery is
// about, before the migration to version 2 that follows it at Open.
func baseStore(t *testing.T, n int) (dir string, es []history.Entry) {
	t.Helper()
	dir = t.TempDir()
	es = chain(testKey('a'), roomA, history.Entry{}, n)
	writeV1(t, dir, map[string]string{roomA: "Aula"}, es...)
	return dir, es
}

// checkStore opens dir, wants exactly want, appends one more entry and checks that a
// reopen keeps it all.
func checkStore(t *testing.T, dir string, want []history.Entry, lb *logBuffer) {
	t.Helper()
	s := mustOpen(t, dir, testOptions(t, lb))
	got, err := s.Entries(roomA)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID {
			t.Fatalf("entry %d differs", i)
		}
	}
	next := chain(testKey('a'), roomA, want[len(want)-1], 1)
	mustAppend(t, s, roomA, next...)
	s.Close()
	s = mustOpen(t, dir, testOptions(t, nil))
	defer s.Close()
	if got, _ := s.Entries(roomA); len(got) != len(want)+1 {
		t.Fatalf("after append and reopen: %d entries, want %d", len(got), len(want)+1)
	}
}

// recordStarts are the offsets of the file's set records.
func recordStarts(b []byte) []int {
	var out []int
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("*3\r\n$3\r\nset\r\n"))
		if j < 0 {
			return out
		}
		out = append(out, i+j)
		i += j + 1
	}
}

func TestGarbageTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 3000)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	whole := resp("set", entryKey(roomA, author(testKey('a')), 9), `{"a":1}`)
	for _, tc := range []struct {
		name  string
		tail  []byte
		saved bool // the cut bytes hold more records: kept in a side file
	}{
		{"random bytes", random, false},
		{"half-written record", whole[:len(whole)/2], false},
		{"record cut after its length prefix", []byte("*3\r\n$3\r\nset\r\n$77\r\n"), false},
		{"zero-filled tail", make([]byte, 8192), false},
		{"zeros then half a record", append(make([]byte, 100), whole[:20]...), false},
		{"record whose length is wrong", []byte("*3\r\n$3\r\nset\r\n$2\r\nkey\r\n$1\r\nv\r\n"), false},
		{"unknown command", resp("get", "k"), false},
		{"short command (buntdb panics on it)", resp("s", "k", "v"), false},
		{"text line", []byte("hello\n"), false},
		{"garbage then whole records", append([]byte("#junk\r\n"), bytes.Repeat(whole, 3)...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, es := baseStore(t, 5)
			clean := fileBytes(t, dir)
			writeFile(t, dir, append(bytes.Clone(clean), tc.tail...))
			lb := &logBuffer{}
			checkStore(t, dir, es, lb)
			if !strings.Contains(lb.String(), "cut the damaged end") {
				t.Errorf("recovery not logged:\n%s", lb)
			}
			saved, _ := filepath.Glob(filepath.Join(dir, FileName+".cut-*"))
			if tc.saved != (len(saved) == 1) {
				t.Fatalf("side files %v, want saved=%v", saved, tc.saved)
			}
			if tc.saved {
				b, err := os.ReadFile(saved[0])
				if err != nil || !bytes.Equal(b, tc.tail) {
					t.Fatalf("side file holds %q (%v)", b, err)
				}
			}
		})
	}
}

// buntdb on its own refuses a file with garbage after the last record: the reason the store
// cuts the tail itself. (A file that merely ends mid-record it truncates on its own.)
func TestBuntdbRefusesGarbageTail(t *testing.T) {
	dir, _ := baseStore(t, 2)
	writeFile(t, dir, append(fileBytes(t, dir), "garbage\r\n"...))
	db, err := buntdb.Open(filepath.Join(dir, FileName))
	if err == nil {
		db.Close()
		t.Skip("buntdb now accepts a garbage tail; recoverFile is still harmless")
	}
	if !errors.Is(err, buntdb.ErrInvalid) {
		t.Fatalf("buntdb.Open: %v", err)
	}
}

// A record torn at every point of its length: the entries before it are all kept.
func TestTornTailMidRecord(t *testing.T) {
	dir, es := baseStore(t, 4)
	full := fileBytes(t, dir)
	starts := recordStarts(full)
	last := starts[len(starts)-1]
	step := max(1, (len(full)-last)/40)
	for cut := last + 1; cut < len(full); cut += step {
		writeFile(t, dir, full[:cut])
		s := mustOpen(t, dir, testOptions(t, nil))
		got, err := s.Entries(roomA)
		s.Close()
		if err != nil || len(got) != len(es)-1 {
			t.Fatalf("cut at %d of %d: %d entries (%v), want %d", cut, len(full), len(got), err, len(es)-1)
		}
	}
	writeFile(t, dir, full[:last+7])
	checkStore(t, dir, es[:len(es)-1], nil)
}

// Zero bytes between whole records (a power cut under a file system that extends the file
// before its data lands): buntdb skips them but miscounts its offset, so the store squeezes
// them out, keeping every record, and the next writes land in the right place.
func TestZeroHolesBetweenRecords(t *testing.T) {
	dir, es := baseStore(t, 4)
	full := fileBytes(t, dir)
	starts := recordStarts(full)
	var holed []byte
	prev := 0
	for i, st := range starts[1:] {
		holed = append(holed, full[prev:st]...)
		holed = append(holed, make([]byte, 100*(i+1))...)
		prev = st
	}
	holed = append(holed, full[prev:]...)
	holed = append(holed, make([]byte, 512)...) // and a zero tail
	writeFile(t, dir, holed)
	lb := &logBuffer{}
	checkStore(t, dir, es, lb)
	if !strings.Contains(lb.String(), "removed zero bytes") {
		t.Errorf("not logged:\n%s", lb)
	}
	orig, _ := filepath.Glob(filepath.Join(dir, FileName+".before-recovery-*"))
	if len(orig) != 1 {
		t.Fatalf("original not kept: %v", orig)
	}
	if b, _ := os.ReadFile(orig[0]); !bytes.Equal(b, holed[:len(holed)-512]) {
		t.Fatal("kept original differs (only the zero tail may be cut)")
	}
}

func TestScanAOF(t *testing.T) {
	rec := resp("set", "k", "v")
	for _, tc := range []struct {
		in         string
		good, size int64
		holes      int
	}{
		{"", 0, 0, 0},
		{string(rec), int64(len(rec)), int64(len(rec)), 0},
		{string(rec) + string(rec[:5]), int64(len(rec)), int64(len(rec)) + 5, 0},
		{"\x00\x00" + string(rec), int64(len(rec)) + 2, int64(len(rec)) + 2, 1},
		{string(rec) + "\x00\x00", int64(len(rec)), int64(len(rec)) + 2, 0},
		{"*0\r\n" + string(rec), int64(len(rec)) + 4, int64(len(rec)) + 4, 0},
		{string(resp("del", "k")), 20, 20, 0},
		{string(resp("flushdb")), 17, 17, 0},
		{string(resp("set", "k", "v", "ex", "10")), 43, 43, 0},
		{string(resp("set", "k", "v", "px", "10")), 0, 43, 0},
		{string(resp("set", "k")), 0, 20, 0},
		{"*x\r\n", 0, 4, 0},
		{"*3\n", 0, 3, 0},
	} {
		res, err := scanAOF(strings.NewReader(tc.in))
		if err != nil || res.good != tc.good || res.size != tc.size || len(res.holes) != tc.holes {
			t.Errorf("%q: %+v %v, want good %d size %d holes %d", tc.in, res, err, tc.good, tc.size, tc.holes)
		}
	}
}
