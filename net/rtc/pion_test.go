package rtc

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/webrtc/v4"

	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/store/testenv"
)

// loopbackOptions are for two peers in one process inside a loopback-only namespace.
func loopbackOptions() (Options, Options) {
	o := Options{IncludeLoopback: true, UDPReadBuffer: 4 << 20}
	return o, o
}

// vnetOptions put two peers on a pion virtual network: no sockets at all.
func vnetOptions(tb testing.TB) (Options, Options) {
	tb.Helper()
	router, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "10.0.0.0/24", LoggerFactory: logging.NewDefaultLoggerFactory()})
	if err != nil {
		tb.Fatal(err)
	}
	var nets [2]*vnet.Net
	for i, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		if nets[i], err = vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}}); err != nil {
			tb.Fatal(err)
		}
		if err := router.AddNet(nets[i]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := router.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = router.Stop() })
	return Options{Net: nets[0]}, Options{Net: nets[1]}
}

// connect makes two pion peers, non-trickle offer/answer, and returns both ends of the
// chattorrent channel. Everything is closed at cleanup.
func connect(tb testing.TB, oa, ob Options) (*DataChannelConn, *DataChannelConn) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	apiA, err := NewAPI(oa)
	if err != nil {
		tb.Fatal(err)
	}
	apiB, err := NewAPI(ob)
	if err != nil {
		tb.Fatal(err)
	}
	pcA, dcA, offer, err := Offer(ctx, apiA)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = pcA.Close() })
	pcB, incoming, answer, err := Answer(ctx, apiB, offer)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = pcB.Close() })
	if err := Accept(pcA, answer); err != nil {
		tb.Fatal(err)
	}
	ca, err := Open(ctx, dcA)
	if err != nil {
		tb.Fatal(err)
	}
	var dcB *webrtc.DataChannel
	select {
	case dcB = <-incoming:
	case <-ctx.Done():
		tb.Fatal("no data channel on the answering side")
	}
	cb, err := Open(ctx, dcB)
	if err != nil {
		tb.Fatal(err)
	}
	return ca, cb
}

// syncApart runs the same scenario as TestSessionSyncPipe over a pion channel.
func syncApart(t *testing.T, ca, cb MsgConn) {
	bob := newAuthor("bob")
	hA := NewMemHistory(history.NewLog(testRoom))
	hB := NewMemHistory(history.NewLog(testRoom))
	aEntries := write(t, hA, alice, 500)
	for _, e := range aEntries[:100] {
		if _, err := hB.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	write(t, hB, bob, 300)
	wa, wb := newWatcher(), newWatcher()
	sa := newSession(t, hA, ca, "A", wa)
	sb := newSession(t, hB, cb, "B", wb)
	stopA := runSession(t, t.Context(), sa)
	stopB := runSession(t, t.Context(), sb)
	waitFor(t, func() bool {
		return hA.Len() == 800 && hB.Len() == 800 && sa.Stats().Acked == 400 && sb.Stats().Acked == 300
	}, wa, wb)
	if !slices.Equal(ids(hA), ids(hB)) {
		t.Fatal("histories differ after sync")
	}
	a, b := sa.Stats(), sb.Stats()
	t.Logf("A: %+v", a)
	t.Logf("B: %+v", b)
	if a.EntriesSent != 400 || b.EntriesSent != 300 || a.Refused+b.Refused+a.MessagesDropped+b.MessagesDropped != 0 {
		t.Errorf("A sent %d (want 400), B sent %d (want 300)", a.EntriesSent, b.EntriesSent)
	}
	// A leaves; B sees the channel close and ends without error.
	if err := stopA(); err != nil {
		t.Errorf("A: Run = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- stopB() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("B: Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("B did not end")
	}
}

// TestPionLoopback: two real pion peers over 127.0.0.1 (sockets: namespace only).
func TestPionLoopback(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	oa, ob := loopbackOptions()
	ca, cb := connect(t, oa, ob)
	syncApart(t, ca, cb)
}

// TestPionVNet: the same over pion's virtual network, no sockets.
func TestPionVNet(t *testing.T) {
	oa, ob := vnetOptions(t)
	ca, cb := connect(t, oa, ob)
	syncApart(t, ca, cb)
}

// TestPionOversizeAndBinary: a text message over MaxMessage is dropped and a binary frame
// skipped; the next message still arrives.
func TestPionOversizeAndBinary(t *testing.T) {
	oa, ob := vnetOptions(t)
	ca, cb := connect(t, oa, ob)
	ctx := t.Context()
	if _, err := ca.rw.WriteDataChannel(make([]byte, 1000), false); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, MaxMessage+1)
	for i := range big {
		big[i] = ' '
	}
	if err := ca.Send(ctx, big); err != nil {
		t.Fatal(err)
	}
	if err := ca.Send(ctx, []byte(`{"t":"ack","ids":[]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Recv(ctx); err == nil || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Recv = %v, want ErrTooLarge", err)
	}
	got, err := cb.Recv(ctx)
	if err != nil || string(got) != `{"t":"ack","ids":[]}` {
		t.Fatalf("Recv = %q, %v", got, err)
	}
	if cb.Binary() != 1 {
		t.Fatalf("binary frames skipped: %d", cb.Binary())
	}
	// Recv honours its context.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := cb.Recv(cctx); err == nil {
		t.Fatal("Recv returned without a message")
	}
}

// TestPionFlowControl: a sync of ~3 MB never queues more than the high-water mark plus
// one message in the channel.
func TestPionFlowControl(t *testing.T) {
	oa, ob := vnetOptions(t)
	ca, cb := connect(t, oa, ob)
	hA := NewMemHistory(history.NewLog(testRoom))
	hB := NewMemHistory(history.NewLog(testRoom))
	write(t, hA, alice, 6000)
	wb := newWatcher()
	sa := newSession(t, hA, ca, "A", nil)
	sb := newSession(t, hB, cb, "B", wb)
	defer runSession(t, t.Context(), sb)()
	defer runSession(t, t.Context(), sa)()
	waitFor(t, func() bool { return hB.Len() == 6000 }, wb)
	peak := ca.peak.Load()
	t.Logf("sent %d bytes; peak queued %d bytes", sa.Stats().BytesSent, peak)
	if peak > sendHigh+MaxMessage {
		t.Errorf("peak queued %d bytes > %d", peak, sendHigh+MaxMessage)
	}
}
