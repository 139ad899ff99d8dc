package rtc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

// quotaErr is a store's quota refusal as the session sees it: an error with a code.
type quotaErr struct{ code string }

func (q *quotaErr) Error() string       { return "store: quota " + q.code }
func (q *quotaErr) RefusalCode() string { return q.code }

// quotaHistory is a sink that refuses some entries with a quota error.
type quotaHistory struct {
	*MemHistory
	refuse func(history.Entry) error
}

func (q quotaHistory) Add(e history.Entry) (bool, error) {
	if err := q.refuse(e); err != nil {
		return false, fmt.Errorf("store: append: %w", err)
	}
	return q.MemHistory.Add(e)
}

// AddChecked: the session stores through it (CheckedAdder); the quota applies the same.
func (q quotaHistory) AddChecked(e history.Entry) (bool, error) {
	if err := q.refuse(e); err != nil {
		return false, fmt.Errorf("store: append: %w", err)
	}
	return q.MemHistory.AddChecked(e)
}

// syncBuffer is a log output that tests read while sessions write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// next reads messages until one satisfies pred.
func (f fakePeer) next(pred func(Message) bool) Message {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.t.Context(), 10*time.Second)
	defer cancel()
	for {
		b, err := f.conn.Recv(ctx)
		if err != nil {
			f.t.Fatalf("waiting for a message: %v", err)
		}
		m, err := DecodeMessage(b)
		if err != nil {
			f.t.Fatal(err)
		}
		if pred(m) {
			return m
		}
	}
}

func (f fakePeer) hello(heads map[string]int64, tips map[string]string) {
	f.t.Helper()
	b, err := EncodeHello(Hello{V: Version, Room: testRoom, Peer: PeerInfo{"M", "Mallory"}, Heads: heads, Tips: tips})
	if err != nil {
		f.t.Fatal(err)
	}
	f.send(string(b))
}

// TestSessionQuotaRefusal: the sink refuses bob's entries with a quota code. The session
// tells the peer in a refused message, logs the code once, and goes on: alice's entries
// still land and the peer's session reports the refusal.
func TestSessionQuotaRefusal(t *testing.T) {
	bob := newAuthor("bob")
	hA := NewMemHistory(history.NewLog(testRoom))
	write(t, hA, alice, 2)
	bobs := write(t, hA, bob, 3)
	hB := quotaHistory{NewMemHistory(history.NewLog(testRoom)), func(e history.Entry) error {
		if e.Author == bob.id {
			return &quotaErr{"author-rate"}
		}
		return nil
	}}
	var logs syncBuffer
	ca, cb := Pipe(16)
	wa, wb := newWatcher(), newWatcher()
	sa := newSession(t, hA, ca, "A", wa)
	sb, err := NewSession(Config{Room: testRoom, Self: PeerInfo{ID: "B", Name: "box"}, History: hB, Conn: cb, OnEvent: wb.on,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	stopA, stopB := runSession(t, ctx, sa), runSession(t, ctx, sb)
	peerRefused := func() (ids []string, code string) {
		wa.mu.Lock()
		defer wa.mu.Unlock()
		for _, ev := range wa.events {
			if ev.Kind == EventPeerRefused {
				ids = append(ids, ev.IDs...)
				code = ev.Code
			}
		}
		return ids, code
	}
	waitFor(t, func() bool { ids, _ := peerRefused(); return hB.Len() == 2 && len(ids) == len(bobs) }, wa, wb)
	ids, code := peerRefused()
	if code != "author-rate" || !slices.Equal(ids, []string{bobs[0].ID, bobs[1].ID, bobs[2].ID}) {
		t.Errorf("A heard %q for %v, want author-rate for bob's entries", code, ids)
	}
	waitFor(t, func() bool { return wb.refusedCodes()["author-rate"] == len(bobs) }, wa, wb)

	// Live: alice's new entry is stored; the session stays.
	e := write(t, hA, alice, 1)[0]
	if err := sa.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return hB.Has(e.ID) && sa.Stats().Acked == 3 }, wa, wb)

	// Bob's first entry offered again: refused again, logged once.
	for range 3 {
		msgs, _ := EncodeEntries([]history.Entry{bobs[0]})
		if err := ca.Send(ctx, msgs[0]); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return wb.refusedCodes()["author-rate"] == len(bobs)+3 }, wa, wb)
	waitFor(t, func() bool { ids, _ := peerRefused(); return len(ids) == len(bobs)+3 }, wa, wb)
	if n := strings.Count(logs.String(), "code=author-rate"); n != 1 {
		t.Errorf("B logged author-rate %d times, want once:\n%s", n, logs.String())
	}
	if err := stopB(); err != nil {
		t.Errorf("B: Run = %v", err)
	}
	if err := stopA(); err != nil {
		t.Errorf("A: Run = %v", err)
	}
}

// TestRefusedMessage: the refused message's format (PROTOCOL.md §2).
func TestRefusedMessage(t *testing.T) {
	id := strings.Repeat("ab", 32)
	b, err := EncodeRefused("store-full", []string{id})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"t":"refused","code":"store-full","ids":["` + id + `"]}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	if b, _ := EncodeRefused("held-full", nil); string(b) != `{"t":"refused","code":"held-full","ids":[]}` {
		t.Fatalf("no ids: got %s", b)
	}
	if _, err := EncodeRefused("Bad Code", nil); err == nil {
		t.Error("a code out of its rule was encoded")
	}
	many := make([]string, ackIDs+1)
	for i := range many {
		many[i] = id
	}
	if b, _ := json.Marshal(map[string]any{"t": TypeRefused, "code": "x", "ids": many}); !isMalformed(b) {
		t.Errorf("%d ids decoded", len(many))
	}
}

func isMalformed(b []byte) bool {
	_, err := DecodeMessage(b)
	return errors.Is(err, ErrMalformed)
}

// TestMessageVectors: the shared vectors of the refused and heads messages
// (testdata/messages.json, also read by web/jstest/session.test.mjs).
func TestMessageVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/messages.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Refused struct {
			Valid []struct {
				Frame, Code string
				IDs         []string
			}
			Invalid []string
		}
		Heads struct {
			Valid []struct {
				Frame string
				Heads map[string]int64
				Tips  map[string]string
				More  bool
			}
			Invalid []string
		}
		Ack struct {
			Valid []struct {
				Frame string
				IDs   []string
				N     int64
			}
			Invalid []string
		}
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Refused.Valid {
		m, err := DecodeMessage([]byte(c.Frame))
		if err != nil || m.T != TypeRefused || m.Code != c.Code || !slices.Equal(m.IDs, c.IDs) {
			t.Errorf("%s: %+v, %v", c.Frame, m, err)
		}
		if b, err := EncodeRefused(c.Code, c.IDs); err != nil || !strings.Contains(c.Frame, string(b[:len(b)-1])) {
			t.Errorf("EncodeRefused(%s) = %s, %v; want the start of %s", c.Code, b, err, c.Frame)
		}
	}
	for _, c := range v.Heads.Valid {
		m, err := DecodeMessage([]byte(c.Frame))
		if err != nil {
			t.Errorf("%s: %v", c.Frame, err)
			continue
		}
		if !maps.Equal(m.Hello.Heads, c.Heads) || len(m.Hello.Tips) != len(c.Tips) || m.Hello.More != c.More {
			t.Errorf("%s: %+v", c.Frame, m.Hello)
		}
		for a, id := range c.Tips {
			if m.Hello.Tips[a] != id {
				t.Errorf("%s: tips %v", c.Frame, m.Hello.Tips)
			}
		}
	}
	for _, c := range v.Ack.Valid {
		m, err := DecodeMessage([]byte(c.Frame))
		if err != nil || m.T != TypeAck || !slices.Equal(m.IDs, c.IDs) || m.Others != c.N {
			t.Errorf("%s: %+v, %v", c.Frame, m, err)
		}
		if b, err := EncodeAck(c.IDs, c.N); err != nil || !strings.HasPrefix(c.Frame, string(b[:len(b)-1])) {
			t.Errorf("EncodeAck(%d ids, %d) = %s, %v; want the start of %s", len(c.IDs), c.N, b, err, c.Frame)
		}
	}
	for _, f := range slices.Concat(v.Refused.Invalid, v.Heads.Invalid, v.Ack.Invalid) {
		if !isMalformed([]byte(f)) {
			t.Errorf("%s decoded", f)
		}
	}
	if len(v.Refused.Valid) == 0 || len(v.Refused.Invalid) == 0 || len(v.Heads.Valid) == 0 || len(v.Heads.Invalid) == 0 ||
		len(v.Ack.Valid) == 0 || len(v.Ack.Invalid) == 0 {
		t.Fatal("no vectors")
	}
}

// TestSessionNewAuthorsCap: a session may bring MaxNewAuthorsPerSession authors new to the
// room; the first entries of more are refused (authors-session) and the session goes on.
func TestSessionNewAuthorsCap(t *testing.T) {
	hA := NewMemHistory(history.NewLog(testRoom))
	known := write(t, hA, alice, 1)
	ca, cm := Pipe(64)
	wa := newWatcher()
	sA := newSession(t, hA, ca, "A", wa)
	sA.cfg.MaxNewAuthors = MaxNewAuthorsPerSession // as the box sets it
	stop := runSession(t, t.Context(), sA)
	f := fakePeer{t, cm}
	f.hello(map[string]int64{alice.id: 1}, nil)
	const extra = 8
	var firsts []history.Entry
	for i := range MaxNewAuthorsPerSession + extra {
		firsts = append(firsts, entry(newAuthor(fmt.Sprintf("throwaway %d", i)), testRoom, 1, "", "hi"))
	}
	f.entries(firsts...)
	var refused []string
	for len(refused) < extra {
		m := f.next(func(m Message) bool { return m.T == TypeRefused })
		if m.Code != CodeAuthorsSession {
			t.Fatalf("refused %q, want %s", m.Code, CodeAuthorsSession)
		}
		refused = append(refused, m.IDs...)
	}
	for i, id := range refused {
		if id != firsts[MaxNewAuthorsPerSession+i].ID {
			t.Errorf("refused %s, want the %d-th new author's", id, MaxNewAuthorsPerSession+i)
		}
	}
	// Authors this session brought, and those the room knew, go on.
	a2 := entry(alice, testRoom, 2, known[0].ID, "two")
	first := newAuthor("throwaway 0")
	f2 := entry(first, testRoom, 2, firsts[0].ID, "again")
	f.entries(a2, f2)
	waitFor(t, func() bool { return hA.Has(a2.ID) && hA.Has(f2.ID) }, wa)
	if got := hA.Len(); got != 1+MaxNewAuthorsPerSession+2 {
		t.Errorf("A holds %d entries, want %d", got, 1+MaxNewAuthorsPerSession+2)
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
	// The cap is per session: the next one may bring the refused authors.
	cb, cn := Pipe(64)
	stop = runSession(t, t.Context(), newSession(t, hA, cb, "A", wa))
	g := fakePeer{t, cn}
	g.hello(hA.Heads(), nil)
	g.entries(firsts[MaxNewAuthorsPerSession:]...)
	waitFor(t, func() bool { return hA.Len() == 1+MaxNewAuthorsPerSession+2+extra }, wa)
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSessionHeldBytes: a peer sending an author's seq 2.. and never seq 1 fills at most
// MaxHeldBytes of this side's memory; the rest is refused (held-full). When seq 1 comes,
// what was held is stored.
func TestSessionHeldBytes(t *testing.T) {
	mallory := newAuthor("mallory")
	body := strings.Repeat("x", history.MaxBody)
	const n = 200 // ~16.6 KB each: ~3.3 MB, above MaxHeldBytes, below MaxHeld entries
	chain := make([]history.Entry, 0, n)
	prev := ""
	for i := range n {
		e := entry(mallory, testRoom, int64(i+1), prev, body)
		chain = append(chain, e)
		prev = e.ID
	}
	hA := NewMemHistory(history.NewLog(testRoom))
	ca, cm := Pipe(64)
	wa := newWatcher()
	sa := newSession(t, hA, ca, "A", wa)
	stop := runSession(t, t.Context(), sa)
	f := fakePeer{t, cm}
	f.hello(nil, nil)
	f.entries(chain[1:]...)
	f.send(`{"t":"ack","ids":[]}`) // handled after the entries
	waitFor(t, func() bool { return wa.count(EventAcked) == 1 }, wa)
	held := heldTotal.Load()
	if held == 0 || held > MaxHeldBytes {
		t.Errorf("held %d bytes, want 1..%d", held, MaxHeldBytes)
	}
	full := wa.refusedCodes()[CodeHeldFull]
	if full == 0 {
		t.Fatalf("nothing refused as %s: %d entries held", CodeHeldFull, n-1)
	}
	m := f.next(func(m Message) bool { return m.T == TypeRefused })
	if m.Code != CodeHeldFull {
		t.Errorf("refused %q, want %s", m.Code, CodeHeldFull)
	}
	f.entries(chain[0])
	stored := n - full
	waitFor(t, func() bool { return hA.Len() == stored }, wa)
	if got := heldTotal.Load(); got != 0 {
		t.Errorf("still held after the gap closed: %d bytes", got)
	}
	t.Logf("held %d bytes: %d entries of %d stored, %d refused", held, stored, n, full)
	// What stays held when the session ends is let go.
	f.entries(entry(newAuthor("other"), testRoom, 2, strings.Repeat("0", 64), "never"))
	waitFor(t, func() bool { return heldTotal.Load() > 0 }, wa)
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
	if got := heldTotal.Load(); got != 0 {
		t.Errorf("held after the session ended: %d bytes", got)
	}
}

// TestSessionBadEntries: a peer sending entries with forged signatures is cut once it sent
// more than MaxBadEntries, with ErrBadPeer; nothing more is taken from it (signatures are
// checked per batch: at most MaxBatch of them in the batch that ends it).
func TestSessionBadEntries(t *testing.T) {
	mallory := newAuthor("mallory")
	var forged []history.Entry
	for i := range 3 * MaxBadEntries {
		e := entry(mallory, testRoom, 1, "", fmt.Sprintf("forged %d", i))
		e.Sig = strings.Repeat("A", 86)
		e.ID = e.ComputeID()
		forged = append(forged, e)
	}
	hA := NewMemHistory(history.NewLog(testRoom))
	ca, cm := Pipe(64)
	wa := newWatcher()
	sa := newSession(t, hA, ca, "A", wa)
	errc := make(chan error, 1)
	go func() { errc <- sa.Run(t.Context()) }()
	f := fakePeer{t, cm}
	f.hello(nil, nil)
	msgs, err := EncodeEntries(forged)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if cm.Send(t.Context(), m) != nil {
			break // A hung up
		}
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrBadPeer) {
			t.Fatalf("Run = %v, want ErrBadPeer", err)
		}
		t.Log(err)
	case <-time.After(10 * time.Second):
		t.Fatal("the session went on after many forged entries")
	}
	if got := sa.Stats().EntriesReceived; got != MaxBadEntries+1 {
		t.Errorf("checked %d entries, want %d", got, MaxBadEntries+1)
	}
}

// TestSessionForkNeedsProof: a hello whose tip differs from this side's entry marks
// nothing (the peer's word is no proof); this side sends its entry instead. A valid signed
// entry at the same (author, seq) marks the author, and is answered with this side's entry
// once.
func TestSessionForkNeedsProof(t *testing.T) {
	hA := NewMemHistory(history.NewLog(testRoom))
	mine := write(t, hA, alice, 3)
	ca, cm := Pipe(64)
	wa := newWatcher()
	stop := runSession(t, t.Context(), newSession(t, hA, ca, "A", wa))
	f := fakePeer{t, cm}
	f.hello(map[string]int64{alice.id: 3}, map[string]string{alice.id: strings.Repeat("e", 64)})
	m := f.next(func(m Message) bool { return m.T == TypeEntries })
	if len(m.Entries) != 1 || !bytes.Contains(m.Entries[0], []byte(mine[2].ID)) {
		t.Fatalf("A sent %d entries, want its own at seq 3", len(m.Entries))
	}
	// A message after it shows A handled the hello fully.
	f.send(`{"t":"ack","ids":[]}`)
	waitFor(t, func() bool { return wa.count(EventAcked) == 1 }, wa)
	if hA.Forked(alice.id) || wa.refusedCodes()[history.CodeFork] != 0 {
		t.Fatal("alice marked forked on the peer's word")
	}
	// The proof: alice's key signed another entry at 2.
	other := entry(alice, testRoom, 2, mine[0].ID, "from another device")
	f.entries(other)
	m = f.next(func(m Message) bool { return m.T == TypeEntries })
	if len(m.Entries) != 1 || !bytes.Contains(m.Entries[0], []byte(mine[1].ID)) {
		t.Fatalf("A answered the fork with %d entries, want its own at seq 2", len(m.Entries))
	}
	if !hA.Forked(alice.id) {
		t.Fatal("alice not marked forked on a signed second entry")
	}
	waitFor(t, func() bool { return wa.refusedCodes()[history.CodeFork] == 1 }, wa)
	// The same fork again is not answered again; a forged one proves nothing.
	forged := entry(alice, testRoom, 1, "", "forged")
	forged.Sig = strings.Repeat("A", 86)
	forged.ID = forged.ComputeID()
	f.entries(other, forged)
	f.send(`{"t":"ack","ids":[]}`)
	waitFor(t, func() bool { return wa.count(EventAcked) == 2 }, wa)
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
	for {
		b, err := cm.Recv(t.Context())
		if err != nil {
			break
		}
		if m, _ := DecodeMessage(b); m.T == TypeEntries {
			t.Errorf("A sent entries again: %s", b)
		}
	}
}

// TestSessionHelloPaging: a room with more authors than one hello can state (review
// finding 4: past ~1,600 authors the single hello outgrew MaxMessage and the room could
// never sync again). The heads go in pages; both sides learn all of them, so only the
// entry one side lacks crosses.
func TestSessionHelloPaging(t *testing.T) {
	const authors = 2*HeadsPerPage + 500 // three pages; one hello would be ~440 KB
	hA := NewMemHistory(history.NewLog(testRoom))
	hB := NewMemHistory(history.NewLog(testRoom))
	for i := range authors {
		e := entry(newAuthor(fmt.Sprintf("member %d", i)), testRoom, 1, "", "hello")
		for _, h := range []*MemHistory{hA, hB} {
			if _, err := h.Add(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := EncodeHello(Hello{V: Version, Room: testRoom, Peer: PeerInfo{"A", "A"}, Heads: hA.Heads(), Tips: hA.Tips()}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one hello for %d authors: %v, want too large", authors, err)
	}
	pages, err := EncodeHelloPages(Hello{V: Version, Room: testRoom, Peer: PeerInfo{"A", "A"}, Heads: hA.Heads(), Tips: hA.Tips()})
	if err != nil || len(pages) != 3 {
		t.Fatalf("%d pages, %v; want 3", len(pages), err)
	}
	for i, p := range pages {
		m, err := DecodeMessage(p)
		if err != nil || len(p) > MaxMessage {
			t.Fatalf("page %d: %d bytes, %v", i, len(p), err)
		}
		if want := map[bool]string{true: TypeHello, false: TypeHeads}[i == 0]; m.T != want || m.Hello.More != (i < 2) {
			t.Errorf("page %d: %s more=%v", i, m.T, m.Hello.More)
		}
	}
	e := write(t, hB, alice, 1)[0]
	ca, cb := Pipe(16)
	wa, wb := newWatcher(), newWatcher()
	sa, sb := newSession(t, hA, ca, "A", wa), newSession(t, hB, cb, "B", wb)
	stopA, stopB := runSession(t, t.Context(), sa), runSession(t, t.Context(), sb)
	waitFor(t, func() bool { return wa.count(EventSynced) == 1 && wb.count(EventSynced) == 1 && hA.Has(e.ID) }, wa, wb)
	if a, b := sa.Stats(), sb.Stats(); a.EntriesReceived != 1 || b.EntriesReceived != 0 || a.MessagesDropped+b.MessagesDropped != 0 {
		t.Errorf("A received %d entries, B %d (want 1, 0: the heads were all heard); dropped %d, %d",
			a.EntriesReceived, b.EntriesReceived, a.MessagesDropped, b.MessagesDropped)
	}
	if err := stopA(); err != nil {
		t.Errorf("A: Run = %v", err)
	}
	if err := stopB(); err != nil {
		t.Errorf("B: Run = %v", err)
	}
}
