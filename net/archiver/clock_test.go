package archiver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/history"
)

func TestClockObserve(t *testing.T) {
	sys := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(nil)
	c.sys = func() time.Time { return sys }
	c.Observe(sys.Add(30 * time.Second)) // a little ahead: ignored
	if !c.Now().Equal(sys) {
		t.Errorf("moved by a 30 s lead: %v", c.Now())
	}
	c.Observe(sys.Add(48 * time.Hour))
	c.Observe(sys.Add(time.Hour)) // never back
	if got := c.Now().Sub(sys); got != 48*time.Hour {
		t.Errorf("lead %v, want 48h", got)
	}
	c.Observe(sys.Add(10 * 366 * 24 * time.Hour))
	if got := c.Now().Sub(sys); got != MaxClockLead {
		t.Errorf("lead %v, want the cap %v", got, MaxClockLead)
	}
}

func onlyLoopback() bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
}

// TestStaleClock: a box whose clock is two days behind still keeps a phone's entries, as
// soon as the phone's hello shows the time; without that they would be refused as future.
func TestStaleClock(t *testing.T) {
	if !onlyLoopback() {
		if os.Getenv("CI") == "true" {
			t.Fatal("opens sockets: run inside `unshare -n` (loopback only)")
		}
		t.Skip("opens sockets: run inside `unshare -n sh -c 'ip link set lo up && go test ./net/archiver/'`")
	}
	dir := t.TempDir()
	clock := NewClock(nil)
	clock.sys = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	st, err := store.Open(dir, store.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id, err := store.LoadIdentity(dir, "Caja")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Store: st, Identity: id, Clock: clock, RTC: rtc.Options{IncludeLoopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !a.running() {
		runtime.Gosched()
	}

	// The phone: entries stamped with the real time.
	room := strings.Repeat("c", 32)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	author := history.EncodeKey(pub)
	plog := history.NewLog(room)
	phone := rtc.NewMemHistory(plog)
	for _, body := range []string{"", "hola desde el móvil"} {
		e := history.Entry{Author: author, Name: "Móvil", Kind: history.KindText, Body: body, TS: time.Now().UnixMilli()}
		if body == "" {
			e.Kind = history.KindJoin
		}
		plog.Next(&e)
		e.Sign(key)
		if _, err := phone.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Append(room, plog.Entries()[0]); err == nil {
		t.Fatal("control: the stale store took a phone entry before any hello")
	}

	api, err := rtc.NewAPI(rtc.Options{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	pc, dc, sdp, err := rtc.Offer(ctx, api)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	offer, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleOffer, Room: room, RoomName: "Patio", SDP: sdp,
		Session: strings.Repeat("d", 32), Peer: torrent.Peer{ID: author, Name: "Móvil"}})
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
	s, err := rtc.NewSession(rtc.Config{Room: room, Self: rtc.PeerInfo{ID: author, Name: "Móvil"}, History: phone, Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go s.Run(sctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		es, _ := st.Entries(room)
		n := 0
		for _, e := range es {
			if e.Author == author {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the box kept %d of the phone's 2 entries", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lead := clock.Now().Sub(time.Now()); lead < -time.Minute {
		t.Errorf("the box's clock still lags by %v", -lead)
	}
}
