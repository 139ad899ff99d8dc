package main

import (
	"bufio"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The store keeps every entry in memory (buntdb and the rooms' logs: about 1.3 KB of live
// heap an entry, PERFORMANCE.md). With Go's default GOGC the heap grows to twice that
// before a collection, which a Pi Zero's 512 MB cannot give a large archive. So, unless
// GOMEMLIMIT says otherwise, the runtime gets a soft limit of half the machine's memory:
// far above what a small box uses (nothing changes there), and where the heap nears it the
// GC runs more often instead of the box being killed for memory.

// setMemoryLimit applies that limit and returns it in bytes (0: none set).
func setMemoryLimit(log *slog.Logger) int64 {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return 0
	}
	total := memTotal("/proc/meminfo")
	if total <= 0 {
		return 0
	}
	limit := total / 2
	debug.SetMemoryLimit(limit)
	log.Debug("memory limit", "bytes", limit, "machine", total)
	return limit
}

// releaseMemory returns the garbage of a large start (buntdb replays every record and the
// store indexes every entry) to the OS now rather than over the next minutes.
func releaseMemory() { debug.FreeOSMemory() }

// memTotal reads MemTotal from a meminfo file, in bytes; 0 when unknown.
func memTotal(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil || kb <= 0 {
			return 0
		}
		return kb << 10
	}
	return 0
}
