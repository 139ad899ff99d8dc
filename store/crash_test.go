package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

// crashDirEnv tells the re-executed test binary to be the crash child, appending in dir.
const crashDirEnv = "CHATTORRENT_STORE_CRASH_DIR"

var reID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestCrashChild is the child of TestCrash: it appends entries of two authors to roomA in
// a loop and prints each entry's id only after Append returned (the id is acknowledged),
// until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only run by TestCrash")
	}
	s, err := Open(dir, Options{Sync: SyncAlways}) // real clock: entries get ts from it
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRoom(roomA, "crash"); err != nil && !errors.Is(err, ErrExists) {
		t.Fatal(err)
	}
	keys := []struct {
		k    []byte
		name string
	}{{testKey('a'), "Ana"}, {testKey('b'), "Bruno"}}
	for i := range 100_000 { // a bound, in case the parent never kills
		k := keys[i%2]
		e := history.Entry{Author: author(k.k), Name: k.name, Kind: history.KindText,
			TS: time.Now().UnixMilli(), Body: fmt.Sprintf("entry %d of pid %d", i, os.Getpid())}
		got, err := s.Write(roomA, e, func(e *history.Entry) { e.Sign(k.k) })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stdout.WriteString(got.ID + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrash kills a process that is appending (SIGKILL, at a random moment) 20 times over
// the same store: every entry it acknowledged must be there, the files must end on whole
// frames and records after Open, and the store must keep accepting (the child goes on
// writing each round, the parent writes at the end). A SIGKILL loses nothing that write(2)
// returned for (the page cache survives): this tests the acknowledgement order (frame, then
// index record, then the ack) and the recovery of a frame written but not indexed. A torn
// write (what a power cut leaves) is added by hand every third round: half a frame on the
// segment and half a record on an index, which Open must cut.
func TestCrash(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		return
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	acked := map[string]bool{}
	for round := range 20 {
		killAfter := 1 + rng.IntN(12)
		got := runCrashChild(t, dir, killAfter, time.Duration(rng.IntN(3000))*time.Microsecond)
		for _, id := range got {
			acked[id] = true
		}
		torn := round%3 == 2
		if torn {
			tearTails(t, dir, rng)
		}
		lb := &logBuffer{}
		s, err := Open(dir, testOptions(t, lb))
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		es, err := s.Entries(roomA)
		s.Close()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if torn && !strings.Contains(lb.String(), "cut the torn end of a room's segment") {
			t.Errorf("round %d: a torn frame was not cut:\n%s", round, lb)
		}
		if torn && !strings.Contains(lb.String(), "cut the torn end of an author's index") {
			t.Errorf("round %d: a torn index record was not cut:\n%s", round, lb)
		}
		checkWholeFiles(t, filepath.Join(dir, roomsDir, roomA))
		have := ids(es)
		for id := range acked {
			if !have[id] {
				t.Fatalf("round %d: acknowledged entry %.12s is missing (%d stored, %d acknowledged)", round, id, len(es), len(acked))
			}
		}
		t.Logf("round %d: killed after %d acks, %d stored, %d acknowledged in all", round, len(got), len(es), len(acked))
	}
	// The store still takes entries, and keeps them.
	s := mustOpen(t, dir, testOptions(t, nil))
	k := testKey('a')
	e, err := s.Write(roomA, history.Entry{Author: author(k), Name: "Ana", Kind: history.KindText, TS: testNow.UnixMilli(), Body: "después"},
		func(e *history.Entry) { e.Sign(k) })
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, dir, testOptions(t, nil))
	defer s.Close()
	rh, _ := s.RoomHistory(roomA)
	if got, ok := rh.At(e.Author, e.Seq); !ok || got.ID != e.ID {
		t.Fatalf("an entry written after the crashes is not there: %v", ok)
	}
}

// tearTails appends what a torn write leaves: part of a frame (or zero bytes) to the room's
// last segment, part of a record to author a's index.
func tearTails(t *testing.T, dir string, rng *rand.Rand) {
	t.Helper()
	rdir := filepath.Join(dir, roomsDir, roomA)
	segs, _ := filepath.Glob(filepath.Join(rdir, "seg-*"))
	idxs, _ := filepath.Glob(filepath.Join(rdir, "*.idx"))
	if len(segs) == 0 || len(idxs) == 0 {
		t.Fatal("no segment or index files")
	}
	part := frame(bytes.Repeat([]byte("x"), 300))[:1+rng.IntN(300)]
	if rng.IntN(2) == 0 {
		part = make([]byte, 1+rng.IntN(4096)) // a zero-filled tail
	}
	appendTo(t, segs[len(segs)-1], part)
	appendTo(t, idxs[rng.IntN(len(idxs))], bytes.Repeat([]byte{7}, 1+rng.IntN(recSize-1)))
}

func appendTo(t *testing.T, name string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkWholeFiles fails unless every segment of the room's dir is whole frames that pass
// their CRC, and every index file whole records.
func checkWholeFiles(t *testing.T, rdir string) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(rdir, "seg-*"))
	for _, name := range segs {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(b); {
			if len(b)-off < frameHeader {
				t.Fatalf("%s: a torn frame header at %d", name, off)
			}
			n := int(binary.LittleEndian.Uint32(b[off:]))
			if n == 0 || off+frameHeader+n > len(b) || binary.LittleEndian.Uint32(b[off+4:]) != crc32.Checksum(b[off+frameHeader:off+frameHeader+n], crcTable) {
				t.Fatalf("%s: a torn or damaged frame at %d", name, off)
			}
			off += frameHeader + n
		}
	}
	idxs, _ := filepath.Glob(filepath.Join(rdir, "*.idx"))
	for _, name := range idxs {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size()%recSize != 0 {
			t.Fatalf("%s: %d bytes, not whole records", name, fi.Size())
		}
	}
}

// A frame written whose index record was not (the process died between the two) is
// indexed at the next Open: it was whole on the card, and it chains onto its author's head.
func TestUnindexedFrameRecovered(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, testOptions(t, nil))
	if err := s.CreateRoom(roomA, "Aula"); err != nil {
		t.Fatal(err)
	}
	es := chain(testKey('a'), roomA, history.Entry{}, 3)
	mustAppend(t, s, roomA, es[:2]...)
	val, err := json.Marshal(es[2])
	if err != nil {
		t.Fatal(err)
	}
	err = s.withRoom(roomA, true, func(r *room) error {
		_, err := s.writeFrame(r, val) // the frame only, as if killed before the record
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	lb := &logBuffer{}
	s = mustOpen(t, dir, testOptions(t, lb))
	defer s.Close()
	got, err := s.Entries(roomA)
	if err != nil || len(got) != 3 || got[2] != es[2] {
		t.Fatalf("%d entries (%v), want 3 with the unindexed one", len(got), err)
	}
	if !strings.Contains(lb.String(), "indexed entries written just before") {
		t.Errorf("log lacks the recovery:\n%s", lb)
	}
	mustAppend(t, s, roomA, chain(testKey('a'), roomA, es[2], 1)...)
}

// runCrashChild starts the child, reads killAfter ids, waits delay, SIGKILLs it and returns
// every id it printed.
func runCrashChild(t *testing.T, dir string, killAfter int, delay time.Duration) []string {
	t.Helper()
	cmd, stdout, stderr := startChild(t, dir)
	var out []string
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		if !reID.MatchString(sc.Text()) {
			continue
		}
		out = append(out, sc.Text())
		if len(out) == killAfter && !killed {
			time.Sleep(delay) // a random moment: usually inside the next Write
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err := cmd.Wait()
	if !killed {
		t.Fatalf("child ended before %d acks (%d): %v\n%s", killAfter, len(out), err, stderr)
	}
	return out
}

// startChild re-executes the test binary as TestCrashChild; under qemu-user without
// binfmt_misc the kernel cannot run it directly, so it runs through qemu-<arch>-static.
func startChild(t *testing.T, dir string) (*exec.Cmd, io.Reader, *bytes.Buffer) {
	t.Helper()
	args := []string{"-test.run=^TestCrashChild$", "-test.count=1"}
	try := func(name string, args ...string) (*exec.Cmd, io.Reader, *bytes.Buffer, error) {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, nil, nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, nil, nil, err
		}
		return cmd, stdout, &stderr, nil
	}
	cmd, stdout, stderr, err := try(os.Args[0], args...)
	if errors.Is(err, syscall.ENOEXEC) {
		qemu, lerr := exec.LookPath("qemu-" + qemuArch() + "-static")
		if lerr != nil {
			t.Skipf("cannot re-execute the test binary (%v) and no qemu: %v", err, lerr)
		}
		cmd, stdout, stderr, err = try(qemu, append([]string{os.Args[0]}, args...)...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return cmd, stdout, stderr
}

func qemuArch() string {
	switch runtime.GOARCH {
	case "arm64":
		return "aarch64"
	case "amd64":
		return "x86_64"
	case "386":
		return "i386"
	}
	return runtime.GOARCH
}
