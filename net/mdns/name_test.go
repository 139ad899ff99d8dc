package mdns

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeName(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, tc := range []struct {
		in, want string
	}{
		{"", "chattorrent"},
		{"chattorrent", "chattorrent"},
		{"ChatTorrent", "chattorrent"},
		{"box-1", "box-1"},
		{"7", "7"},
		{"a-b-c", "a-b-c"},
		{long, long},
		{strings.ToUpper(long), long},
	} {
		got, err := normalizeName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("normalizeName(%q) = %q, %v; want %q, nil", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in, says string
	}{
		{long + "a", "at most 63"},
		{"chattorrent.local", "without dots"},
		{"chat torrent", "not a letter"},
		{"chat_torrent", "not a letter"},
		{"-chat", "start or end"},
		{"chat-", "start or end"},
		{"-", "start or end"},
		{"çhat", "not a letter"},
		{"chat\x00", "not a letter"},
		{"İ", "not a letter"}, // lowercases to a longer non-ASCII string
	} {
		_, err := normalizeName(tc.in)
		if !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), tc.says) || !strings.HasPrefix(err.Error(), "mdns: ") {
			t.Errorf("normalizeName(%q) error = %v; want ErrInvalidName saying %q", tc.in, err, tc.says)
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{Name: "bad.name"}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("New with a dotted name: err = %v, want ErrInvalidName", err)
	}
	for _, port := range []int{-1, 65536} {
		if _, err := New(Config{Port: port}); err == nil || !strings.HasPrefix(err.Error(), "mdns: ") {
			t.Errorf("New with port %d: err = %v, want an mdns error", port, err)
		}
	}
	r, err := New(Config{Name: "Box"})
	if err != nil {
		t.Fatal(err)
	}
	if r.base != "box" || r.port != 443 || r.Name() != "" {
		t.Errorf("New: base %q port %d Name %q; want box, 443, \"\" before Run", r.base, r.port, r.Name())
	}
	select {
	case <-r.Ready():
		t.Error("Ready closed before Run")
	default:
	}
}

// Aliases are validated, and one that Run might claim as the box's own name is dropped
// (answering it unprobed would defeat the clash check).
func TestNewAliases(t *testing.T) {
	if _, err := New(Config{Name: "box-1a2b3c", Aliases: []string{"bad.alias"}}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("New with a dotted alias: err = %v, want ErrInvalidName", err)
	}
	r, err := New(Config{Name: "box-1a2b3c", Aliases: []string{"Box", "box", "box-1a2b3c", "box-1a2b3c-2", "box-1a2b3c-16"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.aliases) != 1 || r.aliases[0] != "box" {
		t.Errorf("aliases %q, want [box]", r.aliases)
	}
}

func TestCandidate(t *testing.T) {
	for _, tc := range []struct {
		base string
		n    int
		want string
	}{
		{"chattorrent", 0, "chattorrent"},
		{"chattorrent", 1, "chattorrent"},
		{"chattorrent", 2, "chattorrent-2"},
		{"chattorrent", 3, "chattorrent-3"},
		{"chattorrent", 16, "chattorrent-16"},
		{"box-2", 2, "box-2-2"},
		{strings.Repeat("a", 63), 2, strings.Repeat("a", 61) + "-2"},
		{strings.Repeat("a", 62), 10, strings.Repeat("a", 60) + "-10"},
		{strings.Repeat("a", 61), 2, strings.Repeat("a", 61) + "-2"},
		// Cutting must not leave a "--".
		{strings.Repeat("a", 60) + "-bb", 2, strings.Repeat("a", 60) + "-2"},
	} {
		got := candidate(tc.base, tc.n)
		if got != tc.want {
			t.Errorf("candidate(%q, %d) = %q, want %q", tc.base, tc.n, got, tc.want)
		}
		if _, err := normalizeName(got); err != nil {
			t.Errorf("candidate(%q, %d) = %q is not a valid name: %v", tc.base, tc.n, got, err)
		}
	}
	// Every candidate of every valid base length is a valid, distinct label.
	for l := 1; l <= 63; l++ {
		base := strings.Repeat("x", l)
		seen := map[string]bool{}
		for n := 1; n <= maxCandidates; n++ {
			c := candidate(base, n)
			if _, err := normalizeName(c); err != nil || seen[c] {
				t.Fatalf("candidate(%d bytes, %d) = %q: err %v, repeated %v", l, n, c, err, seen[c])
			}
			seen[c] = true
		}
	}
}

func TestCandidates(t *testing.T) {
	got, err := Candidates("Box")
	if err != nil || len(got) != maxCandidates || got[0] != "box" || got[1] != "box-2" || got[15] != "box-16" {
		t.Errorf("Candidates(Box) = %q, %v", got, err)
	}
	long := strings.Repeat("a", 63)
	got, _ = Candidates(long)
	for _, c := range got {
		if len(c) > 63 {
			t.Errorf("candidate %q is longer than a label", c)
		}
	}
	if _, err := Candidates("a.local"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Candidates(a.local): %v", err)
	}
}
