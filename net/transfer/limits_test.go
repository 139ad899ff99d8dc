package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/testenv"
)

// fakeClock is a FetcherOptions.Now that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// idleFetcher is a Fetcher that is not run: announcements only queue jobs.
func idleFetcher(t *testing.T, opts FetcherOptions) *Fetcher {
	t.Helper()
	b, err := blobs.New(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	opts.Blobs = b
	f, err := NewFetcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fakeMeta is the announcement of a file nobody sends, number i.
func fakeMeta(i int) pieces.Meta {
	sum := sha256.Sum256(fmt.Appendf(nil, "file %d", i))
	return pieces.Meta{Kind: "file", Root: pieces.RootHex(sum), Size: 256 << 20, Name: fmt.Sprintf("f%d.bin", i), Duration: -1}
}

type nopSender struct{}

func (nopSender) SendControl(context.Context, pieces.Control) error { return nil }
func (nopSender) SendFrame(context.Context, []byte) error           { return nil }

// TestFetchJobCaps: a room queues at most MaxJobsPerRoom files and all rooms MaxJobs;
// past them announcements are refused with ErrTooManyJobs, and a file already queued may
// still be announced by another peer.
func TestFetchJobCaps(t *testing.T) {
	f := idleFetcher(t, FetcherOptions{})
	next := 0
	announce := func(l *FetchLink) error { next++; return l.Fetch(fakeMeta(next)) }
	rooms := make([]*FetchLink, MaxJobs/MaxJobsPerRoom+1)
	for r := range rooms {
		rooms[r] = f.RoomLink(fmt.Sprintf("%032x", r), nopSender{}, "peer")
	}
	for r := range MaxJobs / MaxJobsPerRoom {
		for i := range MaxJobsPerRoom {
			if err := announce(rooms[r]); err != nil {
				t.Fatalf("room %d, file %d: %v", r, i, err)
			}
		}
		if err := announce(rooms[r]); !errors.Is(err, ErrTooManyJobs) {
			t.Fatalf("room %d: file %d: %v, want ErrTooManyJobs", r, MaxJobsPerRoom+1, err)
		}
	}
	if f.Pending() != MaxJobs {
		t.Fatalf("pending %d, want %d", f.Pending(), MaxJobs)
	}
	last := rooms[len(rooms)-1]
	if err := announce(last); !errors.Is(err, ErrTooManyJobs) {
		t.Fatalf("a new room past MaxJobs: %v", err)
	}
	// A file queued by room 0 announced by another peer: no new job, no error.
	other := f.RoomLink(fmt.Sprintf("%032x", 0), nopSender{}, "other")
	if err := other.Fetch(fakeMeta(1)); err != nil || f.Pending() != MaxJobs {
		t.Fatalf("a queued file announced again: %v, pending %d", err, f.Pending())
	}
	if st := f.Stats(); st.TooMany != MaxJobs/MaxJobsPerRoom+1 {
		t.Errorf("stats %+v", st)
	}
}

// TestFetchJobsLazy: a job only announced holds neither its event channel nor its piece
// bitmap (they were 512 slots and one bool a piece, for every announcement).
func TestFetchJobsLazy(t *testing.T) {
	f := idleFetcher(t, FetcherOptions{})
	l := f.RoomLink("r", nopSender{}, "peer")
	for i := range 10 {
		if err := l.Fetch(fakeMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.in != nil || j.have != nil || j.leaves != nil {
			t.Fatalf("job %s: in %v, have %d, leaves %d", j.meta.Name, j.in != nil, len(j.have), len(j.leaves))
		}
	}
}

// TestFetchParkedJobsExpire: jobs no peer announced for ParkedJobTTL are dropped, which
// frees a full room; a job announced again meanwhile stays.
func TestFetchParkedJobsExpire(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	f := idleFetcher(t, FetcherOptions{Now: clock.Now})
	l := f.RoomLink("r", nopSender{}, "peer")
	for i := range MaxJobsPerRoom {
		if err := l.Fetch(fakeMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Add(ParkedJobTTL / 2)
	if err := l.Fetch(fakeMeta(0)); err != nil { // announced again: its clock restarts
		t.Fatal(err)
	}
	clock.Add(ParkedJobTTL/2 - time.Second)
	if err := l.Fetch(fakeMeta(1000)); !errors.Is(err, ErrTooManyJobs) {
		t.Fatalf("before the TTL: %v", err)
	}
	clock.Add(time.Second)
	if err := l.Fetch(fakeMeta(1000)); err != nil {
		t.Fatalf("after the TTL: %v", err)
	}
	if f.Pending() != 2 || f.Stats().Expired != MaxJobsPerRoom-1 {
		t.Fatalf("pending %d, stats %+v", f.Pending(), f.Stats())
	}
	// Prune (Run's ticker) drops the rest once they are parked long enough.
	clock.Add(ParkedJobTTL)
	f.Prune()
	if f.Pending() != 0 {
		t.Fatalf("pending %d after Prune", f.Pending())
	}
}

// TestFetchBudgetIgnoresEmptyPartials: the review's case: parts of files nobody sends
// (sparse, 256 MiB each) no longer stop the box from fetching a real file.
func TestFetchBudgetIgnoresEmptyPartials(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no st_blocks here")
	}
	pb, m, data := holding(t, 3*pieces.PieceSize)
	dir := t.TempDir()
	pre, err := blobs.New(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		var root [32]byte
		root[0] = byte(i + 1)
		p, err := pre.OpenPartial(root, 256<<20)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	f, box, _ := newFetcher(t, dir, FetcherOptions{DiskBudget: 64 << 20})
	ph := connect(t, f, pb, "Móvil", nil)
	if err := ph.link.Fetch(m); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the file is stored", func() bool { return f.Stats().Fetched == 1 || f.Stats().Refused > 0 })
	if f.Stats().Refused > 0 {
		t.Fatalf("refused by the budget: %+v", f.Stats())
	}
	if got := stored(t, box, m); string(got) != string(data) {
		t.Fatal("the stored file differs")
	}
}

// TestPartialsExpire: a partial that gained no piece for PartialTTL is deleted by Prune,
// unless its fetch is running; a recent one stays.
func TestPartialsExpire(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	dir := t.TempDir()
	b, err := blobs.New(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFetcher(FetcherOptions{Now: clock.Now, Blobs: b})
	if err != nil {
		t.Fatal(err)
	}
	var roots [3][32]byte
	for i := range roots {
		roots[i][0] = byte(i + 1)
		p, err := b.OpenPartial(roots[i], 3*pieces.PieceSize)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WritePiece(0, make([]byte, pieces.PieceSize)); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	old := clock.Now().Add(-PartialTTL - time.Minute)
	for _, r := range roots[:2] {
		if err := os.Chtimes(filepath.Join(dir, "fetch-"+pieces.RootHex(r)+".part"), old, old); err != nil {
			t.Fatal(err)
		}
	}
	// roots[1] is being fetched: kept.
	f.mu.Lock()
	f.jobs["x"] = &job{meta: pieces.Meta{Root: "x"}, root: roots[1], running: true}
	f.order = append(f.order, f.jobs["x"])
	f.perRoom[""]++
	f.mu.Unlock()
	f.Prune()
	if b.PartialExists(roots[0]) || !b.PartialExists(roots[1]) || !b.PartialExists(roots[2]) {
		t.Fatalf("after Prune: %v %v %v (want false true true)", b.PartialExists(roots[0]), b.PartialExists(roots[1]), b.PartialExists(roots[2]))
	}
	if st := f.Stats(); st.PartsExpired != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestFetchParkedJobsMakeWay: files whose announcing peer left (or said nope) make way for
// a file a connected peer announces, in the room and over all rooms, even when connected
// peers are asked for them in case (FetchKept); files their connected announcer may still
// send do not. Else one peer announcing files it never sends held a room's
// places, and the box's, for ParkedJobTTL after it left.
func TestFetchParkedJobsMakeWay(t *testing.T) {
	f := idleFetcher(t, FetcherOptions{})
	hostile := f.RoomLink("r", nopSender{}, "hostile")
	for i := range MaxJobsPerRoom {
		if err := hostile.Fetch(fakeMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	honest := f.RoomLink("r", nopSender{}, "honest")
	if err := honest.Fetch(fakeMeta(1000)); !errors.Is(err, ErrTooManyJobs) {
		t.Fatalf("while the peer that announced them is connected: %v, want ErrTooManyJobs", err)
	}
	hostile.Close()
	// The honest peer is asked for the room's files in case it holds them (the box does so
	// when a peer connects): that does not keep them, and a new one asked so makes no way.
	for i := range MaxJobsPerRoom {
		if err := honest.FetchKept(fakeMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := honest.FetchKept(fakeMeta(5000)); !errors.Is(err, ErrTooManyJobs) {
		t.Fatalf("a file only kept, in a full room: %v, want ErrTooManyJobs", err)
	}
	if err := honest.Fetch(fakeMeta(1000)); err != nil {
		t.Fatalf("after it left: %v", err)
	}
	if f.Pending() != MaxJobsPerRoom || f.Stats().MadeWay != 1 {
		t.Fatalf("pending %d, stats %+v", f.Pending(), f.Stats())
	}
	f.mu.Lock()
	_, first := f.jobs[fakeMeta(0).Root] // the oldest went
	_, mine := f.jobs[fakeMeta(1000).Root]
	f.mu.Unlock()
	if first || !mine {
		t.Fatalf("the oldest parked job kept: %v; the new one queued: %v", first, mine)
	}

	// All rooms: the box's places held by rooms whose peers left.
	for r := 1; r < MaxJobs/MaxJobsPerRoom; r++ {
		l := f.RoomLink(fmt.Sprintf("room %d", r), nopSender{}, "hostile")
		for i := range MaxJobsPerRoom {
			if err := l.Fetch(fakeMeta(r*MaxJobsPerRoom + i)); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
	}
	if f.Pending() != MaxJobs {
		t.Fatalf("pending %d, want %d", f.Pending(), MaxJobs)
	}
	// The honest peer's files take the room's other places, then the room is full of
	// files its (connected) peer may send: the next one waits.
	for i := range MaxJobsPerRoom - 1 {
		if err := honest.Fetch(fakeMeta(2000 + i)); err != nil {
			t.Fatalf("the honest room, file %d: %v", i, err)
		}
	}
	if err := honest.Fetch(fakeMeta(3000)); !errors.Is(err, ErrTooManyJobs) {
		t.Fatalf("the honest room full of files its peer may send: %v, want ErrTooManyJobs", err)
	}
	late := f.RoomLink("late", nopSender{}, "late")
	if err := late.Fetch(fakeMeta(4000)); err != nil {
		t.Fatalf("a new room while the box's places are held by parked files: %v", err)
	}
	if f.Pending() != MaxJobs {
		t.Fatalf("pending %d, want %d", f.Pending(), MaxJobs)
	}
}

// TestFetchSilentPeer: a connected peer that announces files and answers none of the
// fetcher's wants is not asked again after silentStalls asks, so it no longer holds the
// box's few fetches (MaxFetches) for as long as it stays connected: another peer's file
// is fetched meanwhile. When the silent peer sends something it is asked again.
func TestFetchSilentPeer(t *testing.T) {
	f, b, _ := newFetcher(t, t.TempDir(), FetcherOptions{Stall: 20 * time.Millisecond})
	silent := f.Link(nopSender{}, "silent")
	defer silent.Close()
	for i := range 2 * DefaultMaxFetches {
		if err := silent.Fetch(fakeMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	blobs, m, data := holding(t, 3*pieces.PieceSize+5)
	honest := connect(t, f, blobs, "honest", nil)
	if err := honest.link.Fetch(m); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the honest peer's file stored", func() bool { return f.Stats().Fetched == 1 })
	if got := stored(t, b, m); !bytes.Equal(got, data) {
		t.Fatal("stored bytes differ")
	}
	if !silent.silent.Load() {
		t.Fatal("the peer that answered nothing is not marked silent")
	}
	silent.Control(pieces.Control{T: "nope", Root: fakeMeta(0).Root})
	if silent.silent.Load() {
		t.Fatal("a silent peer that spoke is still silent")
	}
}
