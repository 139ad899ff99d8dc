package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLogRingKeepsTheLastLines(t *testing.T) {
	var r logRing
	for i := range logRingLines + 50 {
		fmt.Fprintf(&r, "line %d\n", i)
	}
	r.Write([]byte("half a "))
	r.Write([]byte(strings.Repeat("x", 4*logRingLineBytes) + "\nnext"))
	lines := r.Lines()
	if len(lines) != logRingLines {
		t.Fatalf("%d lines kept", len(lines))
	}
	if lines[0] != "line 51\n" || !strings.HasPrefix(lines[len(lines)-1], "half a xxx") || len(lines[len(lines)-1]) > logRingLineBytes+1 {
		t.Errorf("first %q, last %d bytes", lines[0], len(lines[len(lines)-1]))
	}
}

func TestApplyFactoryReset(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"store/rooms.db", "files/ab/cd", "ca.crt", "identity.json", "owner.json", "releases/state.json"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o700)
		os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o600)
	}
	log := slog.New(slog.DiscardHandler)
	if err := applyFactoryReset(dir, log); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 6 { // no marker: nothing happens
		t.Fatalf("without a marker the reset removed files: %d left", len(ents))
	}
	os.WriteFile(filepath.Join(dir, factoryResetFile), nil, 0o600)
	if err := applyFactoryReset(dir, log); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("after the reset %d entries are left", len(ents))
	}
}

func TestFlooredClock(t *testing.T) {
	built := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	at := func(t time.Time) func() time.Time { return func() time.Time { return t } }
	if got := flooredClock(at(time.Unix(0, 0)), built)(); !got.Equal(built) {
		t.Errorf("a box at 1970 mints certificates at %v, want the build time", got)
	}
	later := built.Add(48 * time.Hour)
	if got := flooredClock(at(later), built)(); !got.Equal(later) {
		t.Errorf("a box with a good clock: %v", got)
	}
}
