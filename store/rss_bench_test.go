package store

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/testenv"
)

// BenchmarkBoxRSS starts the real appliance binary (`chattorrent serve`) twice in one run:
// on an empty data directory (the baseline) and on one whose store holds
// $CHATTORRENT_BENCH_ROOMS rooms × $CHATTORRENT_BENCH_ENTRIES signed entries a room
// (default 20 × 10,000; written here beforehand through Store.Append, as the box stores
// what peers send). It reports the time from start to ready (listening; the store opened)
// and the CPU time the process used until then,
// the resident memory once ready and a few seconds later (VmRSS), the peak (VmHWM), and
// the memory per stored entry over the empty box. The binary opens sockets: run it inside
// a loopback-only network namespace (it skips elsewhere):
//
//	unshare -n sh -c 'ip link set lo up && exec "$@"' sh go test ./store/ -run '^$' -bench BoxRSS -benchtime 1x
func BenchmarkBoxRSS(b *testing.B) {
	if reason := testenv.NotLoopbackOnly(); reason != "" {
		b.Skip(reason)
	}
	rooms, perRoom := envInt(b, "CHATTORRENT_BENCH_ROOMS", 20), envInt(b, "CHATTORRENT_BENCH_ENTRIES", 10_000)
	tmp := b.TempDir()
	bin := filepath.Join(tmp, "chattorrent")
	if out, err := exec.Command("go", "build", "-o", bin, "../firmware").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	full := filepath.Join(tmp, "full")
	b.Logf("writing %d rooms × %d entries", rooms, perRoom)
	n, err := buildBigStore(b, filepath.Join(full, "store"), rooms, perRoom)
	if err != nil {
		b.Fatal(err)
	}
	size, err := dirSize(filepath.Join(full, "store"))
	if err != nil {
		b.Fatal(err)
	}
	var idle, big boxMem
	b.ResetTimer()
	for b.Loop() {
		idle = runBox(b, bin, filepath.Join(tmp, fmt.Sprintf("idle-%d", time.Now().UnixNano())))
		big = runBox(b, bin, full)
	}
	if log, _ := os.ReadFile(filepath.Join(full, "server.log")); !strings.Contains(string(log), fmt.Sprintf("entries=%d ", n)) {
		b.Fatalf("the box did not open the %d entries:\n%s", n, log)
	}
	b.StopTimer()
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	b.ReportMetric(float64(n), "entries")
	b.ReportMetric(float64(size)/(1<<20), "files-MiB")
	b.ReportMetric(idle.ready.Seconds(), "idle-ready-s")
	b.ReportMetric(big.ready.Seconds(), "full-ready-s")
	b.ReportMetric(idle.cpu.Seconds(), "idle-ready-cpu-s")
	b.ReportMetric(big.cpu.Seconds(), "full-ready-cpu-s")
	b.ReportMetric(float64(n)/big.ready.Seconds(), "opened-entries/s")
	b.ReportMetric(mib(idle.rss), "idle-RSS-MiB")
	b.ReportMetric(mib(idle.settled), "idle-RSS-5s-MiB")
	b.ReportMetric(mib(idle.hwm), "idle-HWM-MiB")
	b.ReportMetric(mib(big.rss), "full-RSS-MiB")
	b.ReportMetric(mib(big.settled), "full-RSS-5s-MiB")
	b.ReportMetric(mib(big.hwm), "full-HWM-MiB")
	b.ReportMetric(float64(big.settled-idle.settled)/float64(n), "RSS-B/entry")
	b.ReportMetric(float64(big.hwm-idle.hwm)/float64(n), "HWM-B/entry")
	b.ReportMetric(float64(size)/float64(n), "files-B/entry")
}

// dirSize is the bytes of the files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	})
	return n, err
}

// envInt is the positive integer in the environment variable name, or def when unset.
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// boxMem is what one start of the binary showed.
type boxMem struct {
	ready   time.Duration // start to ready file
	cpu     time.Duration // CPU time (user and system) the process used until ready
	rss     int64         // VmRSS once ready
	settled int64         // VmRSS 5 s later
	hwm     int64         // VmHWM 5 s after ready
}

// runBox starts `chattorrent serve` on dataDir, waits for its ready file, samples its
// memory and stops it with SIGTERM.
func runBox(b *testing.B, bin, dataDir string) boxMem {
	b.Helper()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		b.Fatal(err)
	}
	ready := filepath.Join(dataDir, "ready.json")
	logf, err := os.Create(filepath.Join(dataDir, "server.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--data-dir", dataDir,
		"--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--ready-file", ready,
		"--hostname", "rssbox", "--webrtc-loopback", "--mic", "none", "--sticks", filepath.Join(dataDir, "sticks", "*"))
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	var m boxMem
	for {
		if bs, err := os.ReadFile(ready); err == nil {
			var r struct{ HTTPS string }
			if json.Unmarshal(bs, &r) == nil && r.HTTPS != "" {
				m.ready = time.Since(start)
				break
			}
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(logf.Name())
			b.Fatalf("the box exited before ready: %v\n%s", err, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 5*time.Minute {
			stop()
			b.Fatal("the box was not ready within 5 minutes")
		}
	}
	m.rss, _ = procStatus(cmd.Process.Pid)
	m.cpu = procCPU(cmd.Process.Pid)
	time.Sleep(5 * time.Second)
	m.settled, m.hwm = procStatus(cmd.Process.Pid)
	stop()
	return m
}

// procStatus reads VmRSS and VmHWM (bytes) from /proc/PID/status.
func procStatus(pid int) (rss, hwm int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	kb := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return n << 10
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			rss = kb(v)
		} else if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			hwm = kb(v)
		}
	}
	return rss, hwm
}

// procCPU is the user and system time of a process so far, from /proc/PID/stat (in clock
// ticks, taken as 100 a second: Linux's USER_HZ on every platform here). On a busy machine
// it says more than the wall-clock time to ready, which waits for CPU too.
func procCPU(pid int) time.Duration {
	bs, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which is in parentheses and may hold spaces): state is
	// the first, utime the 12th, stime the 13th.
	_, rest, ok := strings.Cut(string(bs), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}
