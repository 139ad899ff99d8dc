package archiver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/net/transfer"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/store/testenv"
)

// goPhone is a Go peer connected to the archiver over a real pion connection.
type goPhone struct {
	s    *rtc.Session
	pc   *webrtc.PeerConnection
	stop func()
}

// dialBox connects a phone to the archiver as a browser would: an offer .torrent, the
// box's answer, the DataChannel, a sync session with files.
func dialBox(t *testing.T, ctx context.Context, a *Archiver, room, author, name string, h rtc.History,
	files rtc.FileHandler, onEvent func(rtc.Event), setup func(*rtc.Session)) *goPhone {
	t.Helper()
	api, err := rtc.NewAPI(rtc.Options{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	pc, dc, sdp, err := rtc.Offer(ctx, api)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleOffer, Room: room, RoomName: "Patio", SDP: sdp,
		Session: strings.Repeat("e", 32), Peer: torrent.Peer{ID: author, Name: name}})
	if err != nil {
		t.Fatal(err)
	}
	ans, err := a.Connect(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := torrent.Decode(ans)
	if err != nil {
		t.Fatal(err)
	}
	if err := rtc.Accept(pc, inv.SDP); err != nil {
		t.Fatal(err)
	}
	conn, err := rtc.Open(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rtc.NewSession(rtc.Config{Room: room, Self: rtc.PeerInfo{ID: author, Name: name}, History: h, Conn: conn,
		Files: files, OnEvent: onEvent})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s) // before Run: frames and events may come at once
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(sctx)
	}()
	p := &goPhone{s: s, pc: pc}
	p.stop = func() {
		cancel()
		<-done
		pc.Close()
	}
	t.Cleanup(func() { p.stop() })
	return p
}

// TestBoxFetchesAndSeeds: a phone announces a file in a room the box keeps; the box
// fetches it from the phone, verifies and stores it; the phone leaves; a second phone
// that joins later gets the entry and the whole file from the box alone.
func TestBoxFetchesAndSeeds(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id, err := store.LoadIdentity(dir, "Caja")
	if err != nil {
		t.Fatal(err)
	}
	boxBlobs, err := blobs.New(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Store: st, Identity: id, Blobs: boxBlobs, RTC: rtc.Options{IncludeLoopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !a.running() {
		runtime.Gosched()
	}

	// Phone 1 holds a file of 40 pieces and a half, and announces it.
	room := strings.Repeat("f", 32)
	data := make([]byte, 40*pieces.PieceSize+pieces.PieceSize/2)
	rand.Read(data)
	b1, err := blobs.New(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	rootB, err := b1.Put(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	meta := pieces.Meta{Kind: "image", Root: pieces.RootHex(rootB), Size: int64(len(data)), Name: "foto.png", Type: "image/png", Duration: -1}
	body, err := meta.Body()
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	author := history.EncodeKey(pub)
	plog := history.NewLog(room)
	h1 := rtc.NewMemHistory(plog)
	for _, e := range []history.Entry{
		{Author: author, Name: "Ana", Kind: history.KindJoin, TS: time.Now().UnixMilli()},
		{Author: author, Name: "Ana", Kind: meta.Kind, Body: body, TS: time.Now().UnixMilli()},
	} {
		plog.Next(&e)
		e.Sign(key)
		if _, err := h1.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	seeder := transfer.NewSeeder(transfer.SeederOptions{Blobs: b1, Announced: func(r string) bool { return r == meta.Root }})
	p1 := dialBox(t, ctx, a, room, author, "Ana", h1, seeder, nil, nil)
	sctx, stopSeeder := context.WithCancel(ctx)
	seeded := make(chan struct{})
	go func() { defer close(seeded); seeder.Run(sctx, p1.s) }()
	testenv.WaitFor(t, "the box stores the file", func() bool { return boxBlobs.Has(rootB) })
	if seeder.Served() < 41 {
		t.Errorf("phone 1 served %d pieces", seeder.Served())
	}
	f, size, _, err := boxBlobs.Open(rootB)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if size != int64(len(data)) || !bytes.Equal(got, data) {
		t.Fatal("the box's copy differs")
	}

	// Phone 1 leaves.
	stopSeeder()
	<-seeded
	p1.stop()

	// Phone 2 joins with nothing: it fetches the file it learns of, from the box alone.
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	author2 := history.EncodeKey(pub2)
	b2, err := blobs.New(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	fetcher, err := transfer.NewFetcher(transfer.FetcherOptions{Blobs: b2})
	if err != nil {
		t.Fatal(err)
	}
	fctx, stopFetcher := context.WithCancel(ctx)
	fetched := make(chan struct{})
	go func() { defer close(fetched); fetcher.Run(fctx) }()
	defer func() { stopFetcher(); <-fetched }()
	router := &fileRouter{seed: transfer.NewSeeder(transfer.SeederOptions{Blobs: b2})}
	onEvent := func(ev rtc.Event) {
		if ev.Kind == rtc.EventAdded {
			for _, e := range ev.Entries {
				if m, err := pieces.ParseMeta(e.Kind, e.Body); err == nil {
					if err := router.fetch.Fetch(m); err != nil {
						t.Error(err)
					}
				}
			}
		}
	}
	// The box noted when it received phone 1's entries, by its own clock (push-to-talk ranks
	// rooms by that, never by an entry's ts).
	if at, ok := a.LastReceived()[room]; !ok || time.Since(at) > time.Minute {
		t.Errorf("LastReceived()[room] = %v, %v: want the receipt of phone 1's entries", at, ok)
	}
	h2 := rtc.NewMemHistory(history.NewLog(room))
	dialBox(t, ctx, a, room, author2, "Bruno", h2, router, onEvent, func(s *rtc.Session) { router.fetch = fetcher.Link(s, "Caja") })
	// The fetcher counts a file after it is stored: wait for both (under qemu-user the test
	// once read the count in between).
	testenv.WaitFor(t, "phone 2 stores the file from the box", func() bool { return b2.Has(rootB) && fetcher.Stats().Fetched > 0 })
	f2, _, _, err := b2.Open(rootB)
	if err != nil {
		t.Fatal(err)
	}
	got2, _ := io.ReadAll(f2)
	f2.Close()
	if !bytes.Equal(got2, data) {
		t.Fatal("phone 2's copy differs")
	}
	if st := fetcher.Stats(); st.BadPieces != 0 || st.Fetched != 1 {
		t.Errorf("phone 2: %+v", st)
	}
}
