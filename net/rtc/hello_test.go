package rtc

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

// lossy loses the first n messages it sends, as some WebRTC stacks lose the first message
// of a fresh channel, and counts the hellos it was asked to send.
type lossy struct {
	MsgConn
	lose   atomic.Int64
	hellos atomic.Int64
	agains atomic.Int64
}

func (l *lossy) Send(ctx context.Context, msg []byte) error {
	if m, err := DecodeMessage(msg); err == nil && m.T == TypeHello {
		l.hellos.Add(1)
		if m.Hello.Again {
			l.agains.Add(1)
		}
	}
	if l.lose.Add(-1) >= 0 {
		return nil
	}
	return l.MsgConn.Send(ctx, msg)
}

func newSessionRetry(t *testing.T, h History, conn MsgConn, id string, w *watcher, retry time.Duration) *Session {
	t.Helper()
	s, err := NewSession(Config{Room: testRoom, Self: PeerInfo{ID: id, Name: "device " + id}, History: h, Conn: conn,
		OnEvent: w.on, HelloRetry: retry,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSessionLostHelloAskedAgain: B's hello is lost; A learns it from B's entries arriving
// first, asks again once, and both histories end equal.
func TestSessionLostHelloAskedAgain(t *testing.T) {
	bob := newAuthor("bob")
	hA := NewMemHistory(history.NewLog(testRoom))
	hB := NewMemHistory(history.NewLog(testRoom))
	write(t, hA, alice, 5)
	write(t, hB, bob, 3)
	ca, cb := Pipe(4)
	la, lb := &lossy{MsgConn: ca}, &lossy{MsgConn: cb}
	lb.lose.Store(1)
	wa, wb := newWatcher(), newWatcher()
	ctx := t.Context()
	stopA := runSession(t, ctx, newSessionRetry(t, hA, la, "A", wa, time.Hour))
	stopB := runSession(t, ctx, newSessionRetry(t, hB, lb, "B", wb, time.Hour))
	defer stopB()
	defer stopA()
	waitFor(t, func() bool { return hA.Len() == 8 && hB.Len() == 8 }, wa, wb)
	if !slices.Equal(ids(hA), ids(hB)) {
		t.Fatal("histories differ")
	}
	if got := la.agains.Load(); got != 1 {
		t.Errorf("A asked %d times, want 1", got)
	}
	if got, again := lb.hellos.Load(), lb.agains.Load(); got != 2 || again != 0 {
		t.Errorf("B sent %d hellos (%d asking); want 2, none asking", got, again)
	}
}

// TestSessionLostHelloRetry: B's hello is lost and B has nothing to send; A asks again
// after HelloRetry and gets it.
func TestSessionLostHelloRetry(t *testing.T) {
	hA := NewMemHistory(history.NewLog(testRoom))
	hB := NewMemHistory(history.NewLog(testRoom))
	write(t, hA, alice, 2)
	ca, cb := Pipe(4)
	lb := &lossy{MsgConn: cb}
	lb.lose.Store(1)
	wa, wb := newWatcher(), newWatcher()
	ctx := t.Context()
	stopA := runSession(t, ctx, newSessionRetry(t, hA, ca, "A", wa, 20*time.Millisecond))
	stopB := runSession(t, ctx, newSessionRetry(t, hB, lb, "B", wb, 20*time.Millisecond))
	defer stopB()
	defer stopA()
	waitFor(t, func() bool { return hB.Len() == 2 && wa.count(EventHello) == 1 }, wa, wb)
}

// TestSessionHelloAskBounded: a peer that never answers is asked helloAgainMax times, no
// more; a plain repeated hello is dropped, an asking one is answered without asking back.
func TestSessionHelloAskBounded(t *testing.T) {
	ca, cb := Pipe(16)
	w := newWatcher()
	ctx := t.Context()
	s := newSessionRetry(t, NewMemHistory(history.NewLog(testRoom)), ca, "A", w, 5*time.Millisecond)
	stop := runSession(t, ctx, s)
	defer stop()
	peer := fakePeer{t: t, conn: cb}
	next := func() Message {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		b, err := cb.Recv(rctx)
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for i := range 1 + helloAgainMax {
		m := next()
		if m.T != TypeHello || m.Hello.Again != (i > 0) {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	b, err := cb.Recv(rctx)
	cancel()
	if err == nil {
		t.Fatalf("asked beyond the bound: %s", b)
	}

	hello := `{"t":"hello","v":1,"room":"` + testRoom + `","peer":{"id":"x","name":"X"},"heads":{}`
	peer.send(hello + `}`)
	peer.send(hello + `}`)
	waitFor(t, func() bool { return s.Stats().MessagesDropped == 1 }, w)
	peer.send(hello + `,"again":true}`)
	if m := next(); m.T != TypeHello || m.Hello.Again {
		t.Fatalf("answer to an ask: %+v", m)
	}
	waitFor(t, func() bool { return w.count(EventHello) == 1 }, w)
	if _, err := DecodeMessage([]byte(hello + `,"again":1}`)); err == nil {
		t.Error("again: 1 accepted")
	}
}

// TestHelloNow: hello states the sender's clock; the peer's arrives with EventHello.
func TestHelloNow(t *testing.T) {
	base := `{"t":"hello","v":1,"room":"` + testRoom + `","peer":{"id":"x","name":"X"},"heads":{}`
	m, err := DecodeMessage([]byte(base + `,"now":1764000000000}`))
	if err != nil || m.Hello.Now != 1764000000000 {
		t.Fatalf("now: %+v %v", m.Hello, err)
	}
	for _, bad := range []string{`,"now":-1}`, `,"now":"1"}`, `,"now":1.5}`} {
		if _, err := DecodeMessage([]byte(base + bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	ca, cb := Pipe(4)
	w := newWatcher()
	var got time.Time
	s := newSessionRetry(t, NewMemHistory(history.NewLog(testRoom)), ca, "A", w, time.Hour)
	s.cfg.OnEvent = func(ev Event) {
		if ev.Kind == EventHello {
			got = ev.PeerNow
		}
		w.on(ev)
	}
	stop := runSession(t, t.Context(), s)
	defer stop()
	fakePeer{t: t, conn: cb}.send(base + `,"now":1764000000000}`)
	waitFor(t, func() bool { return w.count(EventHello) == 1 }, w)
	if !got.Equal(time.UnixMilli(1764000000000)) {
		t.Errorf("PeerNow %v", got)
	}
}
