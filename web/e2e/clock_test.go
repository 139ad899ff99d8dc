package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/store/history"
)

// clockLiar is a Go pion peer that says hello with its clock 300 days ahead and signs
// entries stamped that far ahead, against the real binary.
type clockLiar struct {
	t      *testing.T
	key    ed25519.PrivateKey
	author string
	log    *history.Log
	mem    *rtc.MemHistory
	client *http.Client
	base   string
	api    *webrtc.API
}

const liarLead = 300 * 24 * time.Hour

func newClockLiar(t *testing.T, room, base, data string) *clockLiar {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	l := &clockLiar{t: t, key: key, author: history.EncodeKey(key.Public().(ed25519.PublicKey)), log: history.NewLog(room), base: base}
	l.mem = rtc.NewMemHistory(l.log)
	ca, err := os.ReadFile(filepath.Join(data, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	l.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if l.api, err = rtc.NewAPI(rtc.Options{IncludeLoopback: true}); err != nil {
		t.Fatal(err)
	}
	return l
}

// say signs a new entry stamped ts into the liar's log.
func (l *clockLiar) say(kind, body string, ts time.Time) history.Entry {
	e := history.Entry{Author: l.author, Name: "Reloj", Kind: kind, Body: body, TS: ts.UnixMilli()}
	l.log.Next(&e)
	e.Sign(l.key)
	if _, err := l.log.Add(e, ts); err != nil { // checked by its own lying clock
		l.t.Fatal(err)
	}
	return e
}

// join invites the box into room (POST /api/rooms/connect, as the page does) and syncs
// with it, hello stating a clock 300 days ahead, until the box acknowledged the entries
// acked (ids), then a second for what it refuses; it returns the box's author id.
func (l *clockLiar) join(ctx context.Context, room string, acked ...string) string {
	t := l.t
	t.Helper()
	conn, box, hangUp := l.dial(ctx, room)
	defer hangUp()
	want := make(map[string]bool)
	for _, id := range acked {
		want[id] = true
	}
	done := make(chan struct{})
	events := make(chan []string, 64)
	s, err := rtc.NewSession(rtc.Config{Room: room, Self: rtc.PeerInfo{ID: l.author, Name: "Reloj"}, History: l.mem, Conn: conn,
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return time.Now().Add(liarLead) },
		OnEvent: func(ev rtc.Event) {
			if ev.Kind == rtc.EventAcked {
				events <- ev.IDs
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	go func() { defer close(done); s.Run(sctx) }()
	defer func() { stop(); <-done }()
	for len(want) > 0 {
		select {
		case ids := <-events:
			for _, id := range ids {
				delete(want, id)
			}
		case <-ctx.Done():
			t.Fatalf("the box did not acknowledge %d entries of the liar's", len(want))
		}
	}
	time.Sleep(time.Second) // the entries sent after the acknowledged ones reach the box
	return box
}

// dial proves l's key to the box, invites the box into room (POST /api/rooms/connect, as
// the page does) and opens the DataChannel; it returns the channel, the box's author id
// and what closes the peer connection. The caller runs the session over the channel.
func (l *clockLiar) dial(ctx context.Context, room string) (*rtc.DataChannelConn, string, func()) {
	t := l.t
	t.Helper()
	pc, dc, sdp, err := rtc.Offer(ctx, l.api)
	if err != nil {
		t.Fatal(err)
	}
	ok := false
	defer func() {
		if !ok {
			pc.Close()
		}
	}()
	var sess [16]byte
	rand.Read(sess[:])
	offer, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleOffer, Room: room, RoomName: "Reloj", SDP: sdp,
		Session: hex.EncodeToString(sess[:]), Peer: torrent.Peer{ID: l.author, Name: "Reloj"}})
	if err != nil {
		t.Fatal(err)
	}
	mustProve(t, ctx, l.client, l.base, l.key) // a room the box keeps is joined by its members only
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.base+"/api/rooms/connect", bytes.NewReader(offer))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-ChatTorrent", "1")
	req.Header.Set("Content-Type", "application/x-bittorrent")
	resp, err := l.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("connect: %s: %s", resp.Status, answer)
	}
	inv, err := torrent.Decode(answer)
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
	ok = true
	return conn, inv.Peer.ID, func() { pc.Close() }
}

// boxEntries reads a room's history from the box's API (the one place this test reads
// it: adapt here when the API asks for proof of membership).
func (l *clockLiar) boxEntries(ctx context.Context, room string) []history.Entry {
	t := l.t
	t.Helper()
	mustProve(t, ctx, l.client, l.base, l.key) // the box shows a room to its members only
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.base+"/api/rooms/"+room+"/history.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-ChatTorrent", "1")
	resp, err := l.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("history of %s: %s: %s", room, resp.Status, b)
	}
	var x history.Export
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatalf("history of %s: %v", room, err)
	}
	return x.Entries
}

// TestClockLiar: one peer, a member of its room, says hello with its clock 300 days ahead
// (on its second connection, once its join is stored) and sends an entry stamped that far
// ahead. The box (its kernel clock
// unsynchronised here, so it counts as stale) keeps its own time: the far-future entries
// are refused and absent from its history, and the box's join entry in a later room is
// stamped with the real time.
func TestClockLiar(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	base := startBox(t, "relojbox", "--data-dir", data)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	room := strings.Repeat("a1", 16)
	l := newClockLiar(t, room, base, data)

	// The first connection: the liar's join is stored, so it is a member of the room.
	box := l.join(ctx, room, l.say(history.KindJoin, "", time.Now()).ID)
	// The second: a member's hello 300 days ahead, a message stamped now (acknowledged:
	// the hello has been handled by then) and one 300 days ahead.
	now := l.say(history.KindText, "ahora", time.Now())
	future := l.say(history.KindText, "desde el futuro", time.Now().Add(liarLead))
	l.join(ctx, room, now.ID)

	kept := false
	for _, e := range l.boxEntries(ctx, room) {
		kept = kept || e.ID == now.ID
		if e.ID == future.ID || e.TS > time.Now().Add(history.FutureSlack).UnixMilli() {
			t.Errorf("the box kept an entry stamped %v ahead: %q", time.Until(time.UnixMilli(e.TS)).Round(time.Hour), e.Body)
		}
	}
	if !kept {
		t.Error("the box's history lacks the entry it acknowledged")
	}

	later := strings.Repeat("b2", 16)
	l2 := newClockLiar(t, later, base, data)
	l2.join(ctx, later, l2.say(history.KindJoin, "", time.Now()).ID)
	var join *history.Entry
	for _, e := range l2.boxEntries(ctx, later) {
		if e.Author == box && e.Kind == history.KindJoin {
			join = &e
		}
	}
	if join == nil {
		t.Fatal("no join entry of the box's in the later room")
	}
	if d := time.Until(time.UnixMilli(join.TS)); d > time.Minute || d < -time.Minute {
		t.Errorf("the box's join entry in a later room is stamped %v from now", d.Round(time.Second))
	}
}
