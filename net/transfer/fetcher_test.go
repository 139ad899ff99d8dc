package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/testenv"
)

// toSeeder is the box's Sender to a phone: its want and cancel reach the phone's Seeder.
type toSeeder struct{ s *Seeder }

func (t toSeeder) SendControl(_ context.Context, c pieces.Control) error { t.s.Control(c); return nil }
func (t toSeeder) SendFrame(context.Context, []byte) error               { return nil }

// toLink is a phone's Sender to the box: its frames and nope reach the box's FetchLink.
type toLink struct{ l *FetchLink }

func (t toLink) SendControl(_ context.Context, c pieces.Control) error { t.l.Control(c); return nil }
func (t toLink) SendFrame(_ context.Context, b []byte) error           { t.l.Frame(b); return nil }

// phone is a peer holding files in its own store and serving them with a Seeder.
type phone struct {
	seeder *Seeder
	link   *FetchLink
}

// connect joins a phone serving blobs to the fetcher, as one session would.
func connect(t *testing.T, f *Fetcher, blobs *blobs.Store, name string, corrupt func(string, int) bool) *phone {
	t.Helper()
	s := NewSeeder(SeederOptions{Blobs: blobs, Announced: func(string) bool { return true }, Corrupt: corrupt})
	l := f.Link(toSeeder{s}, name)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, toLink{l}) }()
	t.Cleanup(func() { cancel(); <-done; l.Close() })
	return &phone{seeder: s, link: l}
}

// holding returns a phone-side store with a random file of size bytes.
func holding(t *testing.T, size int) (*blobs.Store, pieces.Meta, []byte) {
	t.Helper()
	b, err := blobs.New(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	rand.Read(data)
	root, err := b.Put(bytes.NewReader(data), int64(size))
	if err != nil {
		t.Fatal(err)
	}
	return b, pieces.Meta{Kind: "file", Root: pieces.RootHex(root), Size: int64(size), Name: "datos.bin", Duration: -1}, data
}

func newFetcher(t *testing.T, dir string, opts FetcherOptions) (*Fetcher, *blobs.Store, func()) {
	t.Helper()
	b, err := blobs.New(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	opts.Blobs = b
	f, err := NewFetcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return f, b, stop
}

func stored(t *testing.T, b *blobs.Store, m pieces.Meta) []byte {
	t.Helper()
	var root [32]byte
	copy(root[:], mustHex(t, m.Root))
	f, size, leaves, err := b.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if size != m.Size || pieces.Root(leaves) != root {
		t.Fatalf("stored %d bytes, leaves make %x", size, pieces.Root(leaves))
	}
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func noParts(t *testing.T, dir string) {
	t.Helper()
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if strings.HasSuffix(e.Name(), ".part") || strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestFetchVerifies: the box fetches a file from a phone, hashes first, then every piece,
// and stores it whole under its root; a Seeder of the box then serves it.
func TestFetchVerifies(t *testing.T) {
	pb, m, data := holding(t, 5*pieces.PieceSize+123)
	dir := t.TempDir()
	f, box, _ := newFetcher(t, dir, FetcherOptions{})
	ph := connect(t, f, pb, "Móvil", nil)
	if err := ph.link.Fetch(m); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the file is stored", func() bool { return f.Stats().Fetched == 1 })
	if got := stored(t, box, m); !bytes.Equal(got, data) {
		t.Fatal("the stored file differs")
	}
	if st := f.Stats(); st.Pieces != 6 || st.BadPieces != 0 || f.Pending() != 0 {
		t.Errorf("stats %+v, pending %d", st, f.Pending())
	}
	noParts(t, dir)
	// Asked again (another session announces it): nothing to do.
	if err := ph.link.Fetch(m); err != nil || f.Pending() != 0 {
		t.Errorf("a held file queued again: %v, %d", err, f.Pending())
	}
}

// TestFetchLiar: a bad piece is dropped and asked again, from the same peer when it is
// the only one, from another when there is one; a peer that keeps lying is no longer asked;
// the file always ends byte-identical, and a box restarted mid-fetch resumes from the
// pieces it had verified.
func TestFetchLiar(t *testing.T) {
	pb, m, data := holding(t, 9*pieces.PieceSize+7)

	t.Run("once", func(t *testing.T) {
		var mu sync.Mutex
		lied := map[int]bool{}
		f, box, _ := newFetcher(t, t.TempDir(), FetcherOptions{})
		ph := connect(t, f, pb, "Mentiroso", func(_ string, i int) bool {
			mu.Lock()
			defer mu.Unlock()
			if i == 4 && !lied[i] {
				lied[i] = true
				return true
			}
			return false
		})
		if err := ph.link.Fetch(m); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, "the file is stored", func() bool { return f.Stats().Fetched == 1 })
		if got := stored(t, box, m); !bytes.Equal(got, data) {
			t.Fatal("the stored file differs")
		}
		if st := f.Stats(); st.BadPieces != 1 || st.DroppedPeers != 0 || ph.seeder.Served() != 11 {
			t.Errorf("stats %+v, served %d (want 10 + the bad piece again)", st, ph.seeder.Served())
		}
	})

	t.Run("another peer", func(t *testing.T) {
		f, box, _ := newFetcher(t, t.TempDir(), FetcherOptions{})
		liar := connect(t, f, pb, "Mentiroso", func(_ string, i int) bool { return i == 4 })
		honest := connect(t, f, pb, "Honesta", nil)
		if err := liar.link.Fetch(m); err != nil {
			t.Fatal(err)
		}
		if err := honest.link.Fetch(m); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, "the file is stored", func() bool { return f.Stats().Fetched == 1 })
		if got := stored(t, box, m); !bytes.Equal(got, data) {
			t.Fatal("the stored file differs")
		}
		if honest.seeder.Served() != 1 {
			t.Errorf("the honest peer sent %d pieces; want only the bad one", honest.seeder.Served())
		}
	})

	t.Run("dropped, then resumed after a restart", func(t *testing.T) {
		dir := t.TempDir()
		f, box, stop := newFetcher(t, dir, FetcherOptions{MaxLies: 3})
		liar := connect(t, f, pb, "Mentiroso", func(_ string, i int) bool { return i == 4 })
		if err := liar.link.Fetch(m); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, "the liar is dropped", func() bool { return f.Stats().DroppedPeers == 1 })
		if st := f.Stats(); st.BadPieces != 3 || st.Fetched != 0 || st.Pieces != 9 {
			t.Errorf("stats %+v", st)
		}
		var root [32]byte
		copy(root[:], mustHex(t, m.Root))
		if box.Has(root) {
			t.Fatal("a file with a bad piece was stored")
		}
		if _, _, _, err := box.Open(root); !errors.Is(err, blobs.ErrNoBlob) {
			t.Fatalf("the partial file is served: %v", err)
		}
		stop()

		f2, box2, _ := newFetcher(t, dir, FetcherOptions{})
		honest := connect(t, f2, pb, "Honesta", nil)
		if err := honest.link.Fetch(m); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, "the file is stored", func() bool { return f2.Stats().Fetched == 1 })
		if got := stored(t, box2, m); !bytes.Equal(got, data) {
			t.Fatal("the stored file differs")
		}
		// The leaves, then piece 0 asked with them and the missing piece 4.
		if honest.seeder.Served() != 2 {
			t.Errorf("after the restart the honest peer sent %d pieces; want 2", honest.seeder.Served())
		}
		noParts(t, dir)
	})
}

// TestFetchCaps: a file over the size limit is never asked for; one that would pass the
// disk budget is refused, and nothing already stored is touched.
func TestFetchCaps(t *testing.T) {
	pb, m, _ := holding(t, 3*pieces.PieceSize)
	var root [32]byte
	copy(root[:], mustHex(t, m.Root))

	t.Run("oversize", func(t *testing.T) {
		dir := t.TempDir()
		f, box, _ := newFetcher(t, dir, FetcherOptions{MaxFileSize: 2 * pieces.PieceSize})
		ph := connect(t, f, pb, "Móvil", nil)
		if err := ph.link.Fetch(m); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Fetch: %v, want ErrTooLarge", err)
		}
		if f.Pending() != 0 || f.Stats().Refused != 1 || box.Has(root) {
			t.Errorf("pending %d, stats %+v", f.Pending(), f.Stats())
		}
		noParts(t, dir)
	})

	t.Run("disk budget", func(t *testing.T) {
		dir := t.TempDir()
		own := bytes.Repeat([]byte("voz"), 10000)
		pre, err := blobs.New(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		ownRoot, err := pre.Put(bytes.NewReader(own), int64(len(own)))
		if err != nil {
			t.Fatal(err)
		}
		used, err := pre.Usage()
		if err != nil {
			t.Fatal(err)
		}
		f, box, _ := newFetcher(t, dir, FetcherOptions{DiskBudget: used + m.Size})
		ph := connect(t, f, pb, "Móvil", nil)
		if err := ph.link.Fetch(m); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, "the fetch is refused", func() bool { return f.Stats().Refused == 1 })
		if box.Has(root) || f.Stats().Pieces != 0 || ph.seeder.Served() != 0 {
			t.Errorf("fetched over the budget: %+v", f.Stats())
		}
		noParts(t, dir)
		if _, _, _, err := box.Open(ownRoot); err != nil {
			t.Errorf("the box's own file: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, pieces.RootHex(ownRoot))); err != nil {
			t.Error(err)
		}
	})
}
