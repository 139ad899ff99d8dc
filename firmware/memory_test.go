package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMemTotal(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		text string
		want int64
	}{
		{"MemTotal:         444852 kB\nMemFree:   1 kB\n", 444852 << 10}, // a Pi Zero 2 W
		{"MemFree:   1 kB\nMemTotal: 24684052 kB\n", 24684052 << 10},
		{"MemTotal: lots\n", 0},
		{"MemTotal: -5 kB\n", 0},
		{"", 0},
	} {
		p := filepath.Join(dir, "meminfo")
		if err := os.WriteFile(p, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := memTotal(p); got != c.want {
			t.Errorf("%q: %d, want %d", c.text, got, c.want)
		}
	}
	if got := memTotal(filepath.Join(dir, "missing")); got != 0 {
		t.Errorf("missing file: %d", got)
	}
}
