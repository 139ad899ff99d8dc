package archiver

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/store/testenv"
)

// runArchiver starts an archiver with opts (Store and Identity filled in) until the test ends.
func runArchiver(t *testing.T, opts Options) (*Archiver, *store.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := store.LoadIdentity(dir, "Caja")
	if err != nil {
		t.Fatal(err)
	}
	opts.Store, opts.Identity, opts.RTC = st, id, rtc.Options{IncludeLoopback: true}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for !a.running() {
		runtime.Gosched()
	}
	return a, st
}

// pionOffer is a real pion offer .torrent for room; the caller may never apply the answer.
func pionOffer(t *testing.T, room, author string) (*webrtc.PeerConnection, *webrtc.DataChannel, []byte) {
	t.Helper()
	api, err := rtc.NewAPI(rtc.Options{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	pc, dc, sdp, err := rtc.Offer(t.Context(), api)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	offer, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleOffer, Room: room, RoomName: "Patio", SDP: sdp,
		Session: strings.Repeat("d", 32), Peer: torrent.Peer{ID: author, Name: "Móvil"}})
	if err != nil {
		t.Fatal(err)
	}
	return pc, dc, offer
}

func (a *Archiver) places() (peers int, opening map[netip.Addr]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	opening = make(map[netip.Addr]int, len(a.opening))
	for k, v := range a.opening {
		opening[k] = v
	}
	return a.peers, opening
}

// TestConnectNeverOpens: offers whose answers are never applied leave no room behind, and
// give their places back after OpenTimeout; one client address holds at most
// MaxOpeningPerClient of them, while another address still gets answered.
func TestConnectNeverOpens(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	const timeout = 700 * time.Millisecond
	a, st := runArchiver(t, Options{OpenTimeout: timeout, MaxOpeningPerClient: 2})
	greedy, other := netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("10.0.0.8")
	for i, room := range []string{strings.Repeat("1", 32), strings.Repeat("2", 32)} {
		_, _, offer := pionOffer(t, room, "ghost")
		if _, err := a.ConnectFrom(t.Context(), offer, Caller{Addr: greedy}); err != nil {
			t.Fatalf("offer %d: %v", i, err)
		}
	}
	_, _, offer := pionOffer(t, strings.Repeat("3", 32), "ghost")
	if _, err := a.ConnectFrom(t.Context(), offer, Caller{Addr: greedy}); !errors.Is(err, ErrTooMany) {
		t.Errorf("a third opening offer from one address: %v, want ErrTooMany", err)
	}
	if _, err := a.ConnectFrom(t.Context(), offer, Caller{Addr: other}); err != nil {
		t.Errorf("another address: %v", err)
	}
	if rooms, _ := st.Rooms(); len(rooms) != 0 {
		t.Errorf("answered offers made rooms before any channel opened: %v", rooms)
	}
	testenv.WaitFor(t, "the places given back after the open timeout", func() bool {
		peers, opening := a.places()
		return peers == 0 && len(opening) == 0
	})
	if rooms, _ := st.Rooms(); len(rooms) != 0 {
		t.Errorf("offers that never connected left rooms: %v", rooms)
	}
	if _, err := a.ConnectFrom(t.Context(), offer, Caller{Addr: greedy}); err != nil {
		t.Errorf("after the timeout the address may offer again: %v", err)
	}
}

// TestConnectKeepsRoomAtHello: a real pion peer connects to a room the box does not keep;
// the room exists only once the peer's channel opened and it said hello, then it is kept
// with the box's join entry, which reaches the peer.
func TestConnectKeepsRoomAtHello(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	a, st := runArchiver(t, Options{})
	room := strings.Repeat("4", 32)
	m := newTestMember(t, room)
	m.say(t, history.KindJoin, "", time.Now())
	pc, dc, offer := pionOffer(t, room, m.author)
	ans, err := a.ConnectFrom(t.Context(), offer, Caller{Addr: netip.MustParseAddr("10.0.0.7")})
	if err != nil {
		t.Fatal(err)
	}
	if rooms, _ := st.Rooms(); len(rooms) != 0 {
		t.Fatalf("a room before the peer's channel opened: %v", rooms)
	}
	inv, err := torrent.Decode(ans)
	if err != nil {
		t.Fatal(err)
	}
	if err := rtc.Accept(pc, inv.SDP); err != nil {
		t.Fatal(err)
	}
	conn, err := rtc.Open(t.Context(), dc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rtc.NewSession(rtc.Config{Room: room, Self: rtc.PeerInfo{ID: m.author, Name: "Móvil"}, History: m.mem, Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	box := a.opts.Identity.Author()
	testenv.WaitFor(t, "the box's join entry at the phone", func() bool { _, ok := m.mem.At(box, 1); return ok })
	testenv.WaitFor(t, "the phone's entry kept on the box", func() bool {
		es, err := st.Entries(room)
		return err == nil && len(es) == 2
	})
	rooms, err := st.Rooms()
	if err != nil || len(rooms) != 1 || rooms[0].ID != room || rooms[0].Name != "Patio" {
		t.Errorf("rooms: %v, %v", rooms, err)
	}
	if _, opening := a.places(); len(opening) != 0 {
		t.Errorf("a peer past hello still counts as opening: %v", opening)
	}
}

// TestConnectKeptRoom: a room the box keeps is used as it is (its name stays), and the box
// writes its own join entry there once, at the peer's hello.
func TestConnectKeptRoom(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	a, st := runArchiver(t, Options{})
	room := strings.Repeat("5", 32)
	if err := st.CreateRoom(room, "Aula de antes"); err != nil {
		t.Fatal(err)
	}
	m := newTestMember(t, room)
	if _, err := st.Append(room, m.say(t, history.KindJoin, "", time.Now())); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	connectPhone(t, ctx, a, room, m)
	box := a.opts.Identity.Author()
	testenv.WaitFor(t, "the box's join entry at the phone", func() bool { _, ok := m.mem.At(box, 1); return ok })
	rooms, err := st.Rooms()
	if err != nil || len(rooms) != 1 || rooms[0].Name != "Aula de antes" || rooms[0].Entries != 2 {
		t.Errorf("rooms: %+v, %v", rooms, err)
	}
}

// TestConnectPeersPerClient: one address holds at most MaxPeersPerClient connections in
// all, also once they are past hello (no longer opening); another address still gets in,
// and a place is given back when a connection ends.
func TestConnectPeersPerClient(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	a, _ := runArchiver(t, Options{MaxPeersPerClient: 2, MaxOpeningPerClient: 4})
	laptop, phone := netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("10.0.0.8")
	var stops []func()
	for _, digit := range []string{"6", "7"} {
		room := strings.Repeat(digit, 32)
		m := newTestMember(t, room)
		m.say(t, history.KindJoin, "", time.Now())
		pc, dc, offer := pionOffer(t, room, m.author)
		ctx, cancel := context.WithCancel(t.Context())
		connectPhoneFrom(t, ctx, a, room, m, pc, dc, offer, Caller{Addr: laptop})
		stops = append(stops, func() { cancel(); pc.Close() })
		box := a.opts.Identity.Author()
		testenv.WaitFor(t, "the box's join entry", func() bool { _, ok := m.mem.At(box, 1); return ok })
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	if _, opening := a.places(); len(opening) != 0 {
		t.Fatalf("connections past hello still count as opening: %v", opening)
	}
	_, _, offer := pionOffer(t, strings.Repeat("8", 32), "laptop")
	if _, err := a.ConnectFrom(t.Context(), offer, Caller{Addr: laptop}); !errors.Is(err, ErrTooMany) {
		t.Errorf("a third connection of one address: %v, want ErrTooMany", err)
	}
	if _, err := a.ConnectFrom(t.Context(), offer, Caller{Addr: phone}); err != nil {
		t.Errorf("another address: %v", err)
	}
	stops[0]()
	stops = stops[1:]
	testenv.WaitFor(t, "the ended connection's place given back", func() bool {
		_, _, offer := pionOffer(t, strings.Repeat("9", 32), "laptop")
		_, err := a.ConnectFrom(t.Context(), offer, Caller{Addr: laptop})
		return err == nil
	})
}
