package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"runtime"
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
// the same file: every entry it acknowledged must be there, and the store must open.
// A SIGKILL loses nothing that write(2) returned for (the page cache survives): this tests
// the acknowledgement order and torn records, not power loss (see TestTornTailMidRecord and
// the durability notes in docs/ARCHITECTURE.md).
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
		s, err := Open(dir, testOptions(t, nil))
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		es, err := s.Entries(roomA)
		s.Close()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		have := ids(es)
		for id := range acked {
			if !have[id] {
				t.Fatalf("round %d: acknowledged entry %.12s is missing (%d stored, %d acknowledged)", round, id, len(es), len(acked))
			}
		}
		t.Logf("round %d: killed after %d acks, %d stored, %d acknowledged in all", round, len(got), len(es), len(acked))
	}
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
