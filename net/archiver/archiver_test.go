package archiver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/store"
)

func newArchiver(t *testing.T) (*Archiver, *store.Store) {
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
	a, err := New(Options{Store: st, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	return a, st
}

// Bad invitations are refused with a clear error, and nothing is created.
func TestConnectRefuses(t *testing.T) {
	a, st := newArchiver(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for !a.running() {
		runtime.Gosched()
	}
	answer, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleAnswer, Room: strings.Repeat("a", 32), RoomName: "Aula",
		SDP: "v=0\r\na=fingerprint:sha-256 AB:CD\r\n", Session: strings.Repeat("b", 32), Peer: torrent.Peer{ID: "x", Name: "X"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		offer []byte
		want  error
	}{
		{"garbage", []byte("not a torrent"), torrent.ErrMalformed},
		{"empty", nil, torrent.ErrEmpty},
		{"too large", make([]byte, torrent.MaxSize+1), torrent.ErrTooLarge},
		{"an answer", answer, ErrNotOffer},
	} {
		if _, err := a.Connect(t.Context(), tc.offer); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if rooms, _ := st.Rooms(); len(rooms) != 0 {
		t.Errorf("refused offers created rooms: %v", rooms)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := a.Connect(t.Context(), answer); !errors.Is(err, ErrNotRunning) && !errors.Is(err, ErrNotOffer) {
		t.Errorf("after Run: %v", err)
	}
}

func TestConnectBeforeRun(t *testing.T) {
	a, _ := newArchiver(t)
	offer, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleOffer, Room: strings.Repeat("a", 32), RoomName: "Aula",
		SDP: "v=0\r\na=fingerprint:sha-256 AB:CD\r\n", Session: strings.Repeat("b", 32), Peer: torrent.Peer{ID: "x", Name: "X"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Connect(t.Context(), offer); !errors.Is(err, ErrNotRunning) {
		t.Errorf("got %v", err)
	}
}

// A junk SDP is ErrBadOffer before anything is made for it: no room, no place taken.
func TestConnectBadSDP(t *testing.T) {
	a, st := newArchiver(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !a.running() {
		runtime.Gosched()
	}
	const base = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	const media = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
	const creds = "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
	const fp = "a=fingerprint:sha-256 " + "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89" + "\r\n"
	many := ""
	for i := range MaxOfferCandidates + 1 {
		many += fmt.Sprintf("a=candidate:%d 1 udp 2130706431 10.0.0.%d 5000 typ host\r\n", i, i%250+1)
	}
	for _, tc := range []struct{ name, sdp string }{
		{"not SDP", "v=0\r\na=fingerprint:sha-256 AB:CD\r\n"},
		{"garbage", "v=0\r\nhello world\r\na=fingerprint:sha-256 AB:CD\r\n"},
		{"no DataChannel", base + creds + fp},
		{"no ICE credentials", base + media + fp},
		{"too many candidates", base + media + creds + fp + many},
	} {
		offer, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleOffer, Room: strings.Repeat("a", 32), RoomName: "Aula",
			SDP: tc.sdp, Session: strings.Repeat("b", 32), Peer: torrent.Peer{ID: "x", Name: "X"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.ConnectFrom(t.Context(), offer, Caller{Addr: netip.MustParseAddr("10.0.0.9")}); !errors.Is(err, ErrBadOffer) {
			t.Errorf("%s: %v, want ErrBadOffer", tc.name, err)
		}
	}
	if rooms, _ := st.Rooms(); len(rooms) != 0 {
		t.Errorf("junk offers created rooms: %v", rooms)
	}
	a.mu.Lock()
	peers, opening := a.peers, len(a.opening)
	a.mu.Unlock()
	if peers != 0 || opening != 0 {
		t.Errorf("junk offers hold places: %d peers, %d clients", peers, opening)
	}
}
