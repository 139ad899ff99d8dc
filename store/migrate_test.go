package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/buntdb"

	"github.com/chattorrent/chattorrent/store/history"
)

// v1Fixture is a version-1 store: two named rooms (two authors in roomA, one in roomB)
// and n entries in all, written by writeV1 as the pre-issue-15 store wrote them.
func v1Fixture(t *testing.T, n int) (dir string, a, b []history.Entry) {
	t.Helper()
	dir = t.TempDir()
	a = append(chain(testKey('a'), roomA, history.Entry{}, n/2), chain(testKey('b'), roomA, history.Entry{}, n/4)...)
	b = chain(testKey('c'), roomB, history.Entry{}, n-len(a))
	writeV1(t, dir, map[string]string{roomA: "Aula", roomB: "Otra"}, append(slices.Clone(a), b...)...)
	return dir, a, b
}

// v1Keys counts rooms.db's keys by kind, opening it with buntdb as version 1 did.
func v1Keys(t *testing.T, dir string) (rooms, entries int, version string) {
	t.Helper()
	db, err := buntdb.Open(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatalf("rooms.db does not open: %v", err)
	}
	defer db.Close()
	db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys("*", func(k, v string) bool {
			switch {
			case strings.HasPrefix(k, "r:"):
				rooms++
			case strings.HasPrefix(k, "e:"):
				entries++
			case k == versionKey:
				version = v
			}
			return true
		})
	})
	return rooms, entries, version
}

// sameEntries fails unless got holds exactly want's entries (any order).
func sameEntries(t *testing.T, what string, got, want []history.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	have := make(map[string]history.Entry, len(got))
	for _, e := range got {
		have[e.ID] = e
	}
	for _, e := range want {
		if have[e.ID] != e {
			t.Fatalf("%s: entry %s seq %d is missing or differs", what, e.Author[:6], e.Seq)
		}
	}
}

// A store written by version 1 opens, is migrated in place to segments (rooms.db then
// holds no entry and the version key), keeps every room and entry, and takes new ones.
// TestMigrateSaysBusy: a long migration calls Options.Busy as it goes (the box pushes
// systemd's start timeout back with it).
func TestMigrateSaysBusy(t *testing.T) {
	dir, a, b := v1Fixture(t, 1500)
	o := testOptions(t, nil)
	calls := 0
	o.Busy = func() { calls++ }
	s := mustOpen(t, dir, o)
	defer s.Close()
	if want := len(a)/1024 + len(b)/1024; calls != want || calls == 0 {
		t.Errorf("Busy called %d times for rooms of %d and %d entries, want %d", calls, len(a), len(b), want)
	}
}

func TestMigrate(t *testing.T) {
	dir, a, b := v1Fixture(t, 400)
	lb := &logBuffer{}
	s := mustOpen(t, dir, testOptions(t, lb))
	if !strings.Contains(lb.String(), "migrated the store") {
		t.Errorf("log lacks the migration:\n%s", lb)
	}
	rooms, err := s.Rooms()
	if err != nil || len(rooms) != 2 || rooms[0].Name != "Aula" || rooms[1].Name != "Otra" ||
		!rooms[0].Created.Equal(testNow) || rooms[0].Entries != len(a) || rooms[1].Entries != len(b) {
		t.Fatalf("rooms %+v %v", rooms, err)
	}
	ga, _ := s.Entries(roomA)
	gb, _ := s.Entries(roomB)
	sameEntries(t, "room A", ga, a)
	sameEntries(t, "room B", gb, b)
	next := chain(testKey('b'), roomA, a[len(a)-1], 1) // the last of a is b's head
	mustAppend(t, s, roomA, next...)
	s.Close()
	if r, e, v := v1Keys(t, dir); r != 2 || e != 0 || v != layoutVersion {
		t.Fatalf("rooms.db after the migration: %d rooms, %d entries, version %q", r, e, v)
	}
	if _, err := os.Stat(filepath.Join(dir, migrateDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the migration's directory is left: %v", err)
	}
	s = mustOpen(t, dir, testOptions(t, nil))
	defer s.Close()
	ga, _ = s.Entries(roomA)
	sameEntries(t, "room A after a reopen", ga, append(slices.Clone(a), next...))
}

// A migration that fails midway (at each stage: while writing entries, once built, after
// moving rooms/ in) leaves the version-1 rooms.db byte for byte as it was and openable;
// the next Open migrates it.
func TestMigrateFailsCleanly(t *testing.T) {
	for _, stage := range []string{"entries", "built", "moved"} {
		t.Run(stage, func(t *testing.T) {
			dir, a, b := v1Fixture(t, 2100)
			before := fileBytes(t, dir)
			o := testOptions(t, nil)
			injected := errors.New("injected failure")
			o.migrateHook = func(at string) error {
				if at == stage {
					return injected
				}
				return nil
			}
			if _, err := Open(dir, o); !errors.Is(err, injected) {
				t.Fatalf("open: %v, want the injected failure", err)
			}
			if !bytes.Equal(fileBytes(t, dir), before) {
				t.Fatal("a failed migration changed rooms.db")
			}
			if r, e, v := v1Keys(t, dir); r != 2 || e != len(a)+len(b) || v != "" {
				t.Fatalf("rooms.db after a failed migration: %d rooms, %d entries, version %q", r, e, v)
			}
			s := mustOpen(t, dir, testOptions(t, nil))
			defer s.Close()
			ga, _ := s.Entries(roomA)
			gb, _ := s.Entries(roomB)
			sameEntries(t, "room A", ga, a)
			sameEntries(t, "room B", gb, b)
		})
	}
}
