package archiver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"runtime"
	"slices"
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

// fakeSys is a settable system clock for Clock tests.
type fakeSys struct{ t time.Time }

func (f *fakeSys) now() time.Time { return f.t }

var sys0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// staleClock is a Clock on a fake system time whose staleness the test sets.
func staleClock(stale *bool) (*Clock, *fakeSys) {
	f := &fakeSys{t: sys0}
	return NewClock(ClockOptions{Sys: f.now, Stale: func() bool { return *stale }}), f
}

func lead(c *Clock, f *fakeSys) time.Duration { return c.Now().Sub(f.t) }

// TestClockOnlyWhileStale: members' reports move the clock only while it is known stale.
func TestClockOnlyWhileStale(t *testing.T) {
	stale := false
	c, f := staleClock(&stale)
	c.Observe("ana", f.t.Add(48*time.Hour))
	c.Observe("bea", f.t.Add(48*time.Hour))
	if got := lead(c, f); got != 0 {
		t.Fatalf("a synchronised clock moved by %v", got)
	}
	stale = true
	c.Observe("ana", f.t.Add(48*time.Hour))
	c.Observe("bea", f.t.Add(48*time.Hour))
	if got := lead(c, f); got != 48*time.Hour {
		t.Fatalf("a stale clock: lead %v, want 48h", got)
	}
}

// TestClockStaleSignals: the system time before NotBefore (the build time) or before the
// newest stored entry is stale whatever the kernel says.
func TestClockStaleSignals(t *testing.T) {
	f := &fakeSys{t: sys0}
	c := NewClock(ClockOptions{Sys: f.now, Stale: func() bool { return false }, NotBefore: sys0.Add(-time.Hour)})
	if c.Stale() {
		t.Fatal("stale after the build time")
	}
	c.RaiseNotBefore(sys0.Add(time.Hour)) // a stored entry newer than the system time
	if !c.Stale() {
		t.Fatal("not stale before the newest stored entry")
	}
	c.RaiseNotBefore(sys0.Add(-2 * time.Hour)) // never lowered
	if !c.Stale() {
		t.Fatal("RaiseNotBefore lowered the floor")
	}
	c = NewClock(ClockOptions{Sys: f.now, Stale: func() bool { return false }, NotBefore: sys0.Add(24 * time.Hour)})
	c.Observe("ana", sys0.Add(25*time.Hour))
	c.Observe("bea", sys0.Add(25*time.Hour))
	if got := lead(c, f); got != 25*time.Hour {
		t.Fatalf("before the build time: lead %v, want 25h", got)
	}
}

// TestClockMedianOfMembers: one member alone never moves the clock, however often it
// reports; two different members move it to the lower median; a liar among three does not
// set it.
func TestClockMedianOfMembers(t *testing.T) {
	stale := true
	c, f := staleClock(&stale)
	for range 5 {
		c.Observe("liar", f.t.Add(300*24*time.Hour))
	}
	if got := lead(c, f); got != 0 {
		t.Fatalf("one member moved the clock by %v", got)
	}
	c.Observe("ana", f.t.Add(48*time.Hour)) // even count: the lower of 48h and 300 days
	if got := lead(c, f); got != 48*time.Hour {
		t.Fatalf("two members: lead %v, want the lower median 48h", got)
	}
	c.Observe("bea", f.t.Add(50*time.Hour)) // 48h, 50h, 300d: the median is 50h
	if got := lead(c, f); got != 50*time.Hour {
		t.Fatalf("three members: lead %v, want the median 50h", got)
	}
	c.Observe("", f.t.Add(300*24*time.Hour)) // no id: not counted
	if got := lead(c, f); got != 50*time.Hour {
		t.Fatalf("an empty id counted: lead %v", got)
	}
}

// TestClockReportsExpire: a report older than ClockReportTTL does not count.
func TestClockReportsExpire(t *testing.T) {
	stale := true
	c, f := staleClock(&stale)
	c.Observe("ana", f.t.Add(48*time.Hour))
	f.t = f.t.Add(ClockReportTTL)
	c.Observe("bea", f.t.Add(48*time.Hour))
	if got := lead(c, f); got != 0 {
		t.Fatalf("an expired report counted: lead %v", got)
	}
	f.t = f.t.Add(ClockReportTTL - time.Second)
	c.Observe("cai", f.t.Add(48*time.Hour))
	if got := lead(c, f); got != 48*time.Hour {
		t.Fatalf("two current reports: lead %v, want 48h", got)
	}
}

// TestClockBounds: a step is at most MaxClockStep, the total at most MaxClockLead, never
// back; small leads are ignored.
func TestClockBounds(t *testing.T) {
	if MaxClockStep > 31*24*time.Hour || MaxClockLead > 93*24*time.Hour || MaxClockLead < MaxClockStep {
		t.Fatalf("bounds %v, %v: the documented values are 31 and 93 days", MaxClockStep, MaxClockLead)
	}
	stale := true
	c, f := staleClock(&stale)
	c.Observe("ana", f.t.Add(30*time.Second))
	c.Observe("bea", f.t.Add(30*time.Second))
	if got := lead(c, f); got != 0 {
		t.Fatalf("moved by a 30 s lead: %v", got)
	}
	far := 300 * 24 * time.Hour
	c.Observe("ana", f.t.Add(far))
	c.Observe("bea", f.t.Add(far))
	if got := lead(c, f); got != MaxClockStep {
		t.Fatalf("one step: lead %v, want MaxClockStep %v", got, MaxClockStep)
	}
	for range 10 {
		c.Observe("ana", f.t.Add(far))
	}
	if got := lead(c, f); got != MaxClockLead {
		t.Fatalf("many steps: lead %v, want MaxClockLead %v", got, MaxClockLead)
	}
	c.Observe("ana", f.t.Add(time.Hour))
	c.Observe("bea", f.t.Add(time.Hour))
	if got := lead(c, f); got != MaxClockLead {
		t.Fatalf("moved back: lead %v", got)
	}
}

// testMember is a phone's identity and its log of a room.
type testMember struct {
	author string
	key    ed25519.PrivateKey
	log    *history.Log
	mem    *rtc.MemHistory
}

func newTestMember(t *testing.T, room string) *testMember {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	l := history.NewLog(room)
	return &testMember{author: history.EncodeKey(pub), key: key, log: l, mem: rtc.NewMemHistory(l)}
}

// say signs and keeps a new entry of m's, stamped ts.
func (m *testMember) say(t *testing.T, kind, body string, ts time.Time) history.Entry {
	t.Helper()
	e := history.Entry{Author: m.author, Name: "Móvil", Kind: kind, Body: body, TS: ts.UnixMilli()}
	m.log.Next(&e)
	e.Sign(m.key)
	if _, err := m.mem.Add(e); err != nil {
		t.Fatal(err)
	}
	return e
}

// testArchiver is an Archiver on a fresh store in a temporary directory, not running.
func testArchiver(t *testing.T, clock *Clock) (*Archiver, *store.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := store.LoadIdentity(dir, "Caja")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Store: st, Identity: id, Clock: clock, RTC: rtc.Options{IncludeLoopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	return a, st
}

// TestClockMembersOnly: only ids with entries in the room's stored history count, and
// the box's own id never does.
func TestClockMembersOnly(t *testing.T) {
	stale := true
	clock, f := staleClock(&stale)
	a, st := testArchiver(t, clock)
	room := strings.Repeat("c", 32)
	rh, err := a.room(room, "Patio") // the box's join entry: the box is an author of the room
	if err != nil {
		t.Fatal(err)
	}
	ana, bea := newTestMember(t, room), newTestMember(t, room)
	if _, err := st.Append(room, ana.say(t, history.KindJoin, "", f.t.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	ahead := f.t.Add(48 * time.Hour)
	a.observeClock(rh, ana.author, ahead)
	a.observeClock(rh, bea.author, ahead)               // not (yet) a member
	a.observeClock(rh, a.opts.Identity.Author(), ahead) // the box itself
	a.observeClock(rh, strings.Repeat("x", 43), ahead)  // a made-up id
	if got := lead(clock, f); got != 0 {
		t.Fatalf("non-members moved the clock by %v", got)
	}
	if _, err := st.Append(room, bea.say(t, history.KindJoin, "", f.t.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	a.observeClock(rh, bea.author, ahead)
	if got := lead(clock, f); got != 48*time.Hour {
		t.Fatalf("two members: lead %v, want 48h", got)
	}
}

// TestOwnEntriesNotAhead: whatever one peer says, the box stamps its own entries (join
// entries, voice notes) by its own clock, not the peer's.
func TestOwnEntriesNotAhead(t *testing.T) {
	stale := true
	clock, f := staleClock(&stale)
	a, st := testArchiver(t, clock)
	room := strings.Repeat("c", 32)
	rh, err := a.room(room, "Patio")
	if err != nil {
		t.Fatal(err)
	}
	liar := newTestMember(t, room)
	if _, err := st.Append(room, liar.say(t, history.KindJoin, "", f.t)); err != nil {
		t.Fatal(err)
	}
	a.observeClock(rh, liar.author, f.t.Add(300*24*time.Hour))
	a.observeClock(rh, strings.Repeat("y", 43), f.t.Add(300*24*time.Hour))
	if _, err := a.room(strings.Repeat("e", 32), "Later"); err != nil {
		t.Fatal(err)
	}
	es, err := st.Entries(strings.Repeat("e", 32))
	if err != nil || len(es) != 1 {
		t.Fatalf("the later room: %v, %v", es, err)
	}
	if got := time.UnixMilli(es[0].TS).Sub(f.t); got != 0 {
		t.Fatalf("the box's join entry is stamped %v ahead of its clock", got)
	}
	if _, err := st.Append(room, liar.say(t, history.KindText, "del futuro", f.t.Add(300*24*time.Hour))); err == nil {
		t.Fatal("the box kept an entry 300 days ahead")
	}
}

// TestStaleClock: a box whose clock is two days behind still keeps its members' entries,
// once two members' hellos showed the time; without that they would be refused as future.
func TestStaleClock(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	behind := func() time.Time { return time.Now().Add(-48 * time.Hour) }
	clock := NewClock(ClockOptions{Sys: behind, Stale: func() bool { return true }})
	a, st := testArchiver(t, clock)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !a.running() {
		runtime.Gosched()
	}

	// Two members: their join entries are stored from earlier (by the box's time then),
	// their new messages are stamped with the real time.
	room := strings.Repeat("c", 32)
	if err := st.CreateRoom(room, "Patio"); err != nil {
		t.Fatal(err)
	}
	phones := []*testMember{newTestMember(t, room), newTestMember(t, room)}
	var said []history.Entry
	for _, p := range phones {
		if _, err := st.Append(room, p.say(t, history.KindJoin, "", behind().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		said = append(said, p.say(t, history.KindText, "hola desde el móvil", time.Now()))
	}
	if _, err := st.Append(room, said[0]); err == nil {
		t.Fatal("control: the stale store took a phone entry before any hello")
	}
	for _, p := range phones {
		connectPhone(t, ctx, a, room, p)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		es, _ := st.Entries(room)
		if slices.ContainsFunc(es, func(e history.Entry) bool { return e.ID == said[0].ID || e.ID == said[1].ID }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the box kept none of the members' messages")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lead := time.Until(clock.Now()); lead < -time.Minute {
		t.Errorf("the box's clock still lags by %v", -lead)
	}
}

// TestClockUnprovenPeer: two members say hello with the real time to a stale box, but one
// of them never proved its key (its hello's id is a claim: one peer could claim another
// member's id): the clock does not move.
func TestClockUnprovenPeer(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	behind := func() time.Time { return time.Now().Add(-48 * time.Hour) }
	clock := NewClock(ClockOptions{Sys: behind, Stale: func() bool { return true }})
	a, st := testArchiver(t, clock)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !a.running() {
		runtime.Gosched()
	}
	room := strings.Repeat("c", 32)
	if err := st.CreateRoom(room, "Patio"); err != nil {
		t.Fatal(err)
	}
	phones := []*testMember{newTestMember(t, room), newTestMember(t, room)}
	for _, p := range phones {
		if _, err := st.Append(room, p.say(t, history.KindJoin, "", behind().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	connectPhone(t, ctx, a, room, phones[0])
	connectPhone(t, ctx, a, room, phones[1], true)
	for a.Peers() < 2 {
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // both hellos reach the box
	if lead := clock.Now().Sub(behind()); lead > time.Minute {
		t.Errorf("an unproven peer's hello moved the clock by %v", lead)
	}
}

// connectPhone connects m to the archiver over pion (an offer, the box's answer) and runs
// its sync session until ctx ends.
func connectPhone(t *testing.T, ctx context.Context, a *Archiver, room string, m *testMember, unproven ...bool) {
	t.Helper()
	api, err := rtc.NewAPI(rtc.Options{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	pc, dc, sdp, err := rtc.Offer(ctx, api)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	offer, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleOffer, Room: room, RoomName: "Patio", SDP: sdp,
		Session: strings.Repeat("d", 32), Peer: torrent.Peer{ID: m.author, Name: "Móvil"}})
	if err != nil {
		t.Fatal(err)
	}
	proven := []string{m.author} // the phone proved its key
	if len(unproven) > 0 && unproven[0] {
		proven = nil
	}
	connectPhoneFrom(t, ctx, a, room, m, pc, dc, offer, Caller{Proven: proven})
}

// connectPhoneFrom connects the phone's offer through ConnectFrom as caller and runs its
// session until ctx ends.
func connectPhoneFrom(t *testing.T, ctx context.Context, a *Archiver, room string, m *testMember, pc *webrtc.PeerConnection, dc *webrtc.DataChannel, offer []byte, caller Caller) {
	t.Helper()
	ans, err := a.ConnectFrom(ctx, offer, caller)
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
	s, err := rtc.NewSession(rtc.Config{Room: room, Self: rtc.PeerInfo{ID: m.author, Name: "Móvil"}, History: m.mem, Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	go s.Run(ctx)
}
