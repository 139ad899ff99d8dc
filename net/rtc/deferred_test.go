package rtc

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/history"
)

// deferredHistory is a DeferredAdder over a MemHistory that remembers which entries a
// Flush made "durable".
type deferredHistory struct {
	*MemHistory
	mu        sync.Mutex
	unflushed []string
	durable   map[string]bool
	flushes   int
	fail      error  // returned by Flush when set
	onFlush   func() // called at each Flush, before it makes anything durable
	checked   atomic.Int64
}

func newDeferredHistory() *deferredHistory {
	return &deferredHistory{MemHistory: NewMemHistory(history.NewLog(testRoom)), durable: map[string]bool{}}
}

func (d *deferredHistory) AddChecked(e history.Entry) (bool, error) {
	d.checked.Add(1)
	return d.MemHistory.AddChecked(e)
}

func (d *deferredHistory) AddCheckedDeferred(e history.Entry) (bool, error) {
	ok, err := d.MemHistory.AddChecked(e)
	if ok {
		d.mu.Lock()
		d.unflushed = append(d.unflushed, e.ID)
		d.mu.Unlock()
	}
	return ok, err
}

func (d *deferredHistory) Flush() error {
	if d.onFlush != nil {
		d.onFlush()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	for _, id := range d.unflushed {
		d.durable[id] = true
	}
	d.unflushed = nil
	d.flushes++
	return nil
}

func (d *deferredHistory) isDurable(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.durable[id]
}

// TestSessionFlushesBeforeAck: a History that makes entries durable a batch at a time
// (the box's store) gets at most one Flush per received message (one covers all the
// batches stored since the last), and no entry is acknowledged before the Flush that made
// it durable.
func TestSessionFlushesBeforeAck(t *testing.T) {
	hA := NewMemHistory(history.NewLog(testRoom))
	write(t, hA, alice, 1000)
	hB := newDeferredHistory()
	ca, cb := Pipe(4)
	var early, acked atomic.Int64
	wa := newWatcher()
	onA := func(ev Event) {
		if ev.Kind == EventAcked {
			for _, id := range ev.IDs {
				acked.Add(1)
				if !hB.isDurable(id) {
					early.Add(1)
				}
			}
		}
		wa.on(ev)
	}
	sa := newSession(t, hA, ca, alice.id, nil) // B acknowledges alice's entries by id
	sa.cfg.OnEvent = onA
	rb := &recordConn{MsgConn: cb}
	sb := newSession(t, hB, rb, "B", nil)
	// At each Flush, the session has sent acks for no more entries than earlier flushes
	// made durable: none of those this one makes durable.
	var sentEarly atomic.Int64
	hB.onFlush = func() {
		rb.mu.Lock()
		var sent int64
		for _, msg := range rb.sent {
			if m, err := DecodeMessage(msg); err == nil && m.T == TypeAck {
				sent += int64(len(m.IDs)) + m.Others
			}
		}
		rb.mu.Unlock()
		hB.mu.Lock()
		durable := int64(len(hB.durable))
		hB.mu.Unlock()
		if sent > durable {
			sentEarly.Add(sent - durable)
		}
	}
	stopA, stopB := runSession(t, t.Context(), sa), runSession(t, t.Context(), sb)
	defer stopB()
	defer stopA()
	waitFor(t, func() bool { return acked.Load() == 1000 }, wa)
	if n := sentEarly.Load(); n != 0 {
		t.Errorf("%d entries acknowledged (sent) before the Flush that made them durable", n)
	}
	if n := early.Load(); n != 0 {
		t.Errorf("%d entries acknowledged before a Flush made them durable", n)
	}
	msgs := sb.Stats().MessagesReceived
	hB.mu.Lock()
	flushes := hB.flushes
	hB.mu.Unlock()
	if flushes == 0 || int64(flushes) > msgs {
		t.Errorf("%d flushes for %d messages received: want at most one per entries message, not one per entry", flushes, msgs)
	}
	if n := hB.checked.Load(); n != 0 {
		t.Errorf("AddChecked was used %d times: a DeferredAdder gets AddCheckedDeferred", n)
	}
}

// TestSessionFlushFails: a Flush that fails (the card) ends the session, and nothing of
// the batch is acknowledged.
func TestSessionFlushFails(t *testing.T) {
	hA := NewMemHistory(history.NewLog(testRoom))
	write(t, hA, alice, 300)
	hB := newDeferredHistory()
	hB.fail = errors.New("fsync: input/output error")
	ca, cb := Pipe(4)
	wb := newWatcher()
	sa := newSession(t, hA, ca, alice.id, nil)
	sb := newSession(t, hB, cb, "B", wb)
	stopA := runSession(t, t.Context(), sa)
	defer stopA()
	errc := make(chan error, 1)
	go func() { errc <- sb.Run(t.Context()) }()
	err := <-errc
	if err == nil || !strings.Contains(err.Error(), "store a batch") || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("Run = %v, want the failed flush", err)
	}
	if got := sa.Stats().Acked; got != 0 {
		t.Errorf("%d entries acknowledged although their flush failed", got)
	}
	if got := sb.Stats().Added; got == 0 {
		t.Errorf("nothing was added before the flush (the test did not reach it)")
	}
}

// runCounter is the box's store as a session's History, counting what it stored as runs.
type runCounter struct {
	*store.RoomHistory
	runs, inRuns atomic.Int64
}

func (c *runCounter) AddRunDeferred(es []history.Entry) (int, error) {
	n, err := c.RoomHistory.AddRunDeferred(es)
	if n > 0 {
		c.runs.Add(1)
		c.inRuns.Add(int64(n))
	}
	return n, err
}

// TestSessionStoresRuns: with the box's store (a RunAdder), what a peer sends in order is
// stored as runs, and every other case still goes one entry at a time with its usual
// outcome: entries held after a gap and released, a run with a forged link refused, a batch
// sent twice counted as duplicates, two authors' entries interleaved.
func TestSessionStoresRuns(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{Limits: store.Limits{
		AuthorEntriesPerHour: -1, AuthorHistoryPerHour: -1, AuthorBytesPerHour: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateRoom(testRoom, "runs"); err != nil {
		t.Fatal(err)
	}
	rh, err := st.RoomHistory(testRoom)
	if err != nil {
		t.Fatal(err)
	}
	h := &runCounter{RoomHistory: rh}
	mallory, ana, bob := chainOf(newAuthor("mallory"), 400), chainOf(newAuthor("ana"), 30), chainOf(newAuthor("bob"), 30)
	ca, cm := Pipe(64)
	wa := newWatcher()
	sa := newSession(t, h, ca, "A", wa)
	stop := runSession(t, t.Context(), sa)
	f := fakePeer{t, cm}
	f.hello(nil, nil)
	heads := func() map[string]int64 { return h.Heads() }
	m := mallory[0].Author

	f.entries(mallory[1:50]...) // a gap: held
	f.entries(mallory[0])       // closes it: stored, the held ones released
	waitFor(t, func() bool { return heads()[m] == 50 }, wa)
	f.entries(mallory[50:250]...) // in order: runs
	waitFor(t, func() bool { return heads()[m] == 250 }, wa)
	if h.inRuns.Load() < 150 {
		t.Fatalf("%d entries stored as runs of 200 sent in order, want nearly all", h.inRuns.Load())
	}
	forged := slices.Clone(mallory[250:300])
	forged[20].Body = "not what mallory wrote"
	forged[20].ID = forged[20].ComputeID()
	f.entries(forged...)           // the run is refused whole: nothing stored
	f.entries(mallory[200:250]...) // sent twice: duplicates
	f.entries(mallory[250:400]...)
	var mixed []history.Entry
	for i := range 30 {
		mixed = append(mixed, ana[i], bob[i])
	}
	f.entries(mixed...)
	waitFor(t, func() bool { return heads()[m] == 400 && heads()[ana[0].Author] == 30 && heads()[bob[0].Author] == 30 }, wa)
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	st2 := sa.Stats()
	if st2.Added != 460 || st2.Duplicates != 50 {
		t.Errorf("added %d, duplicates %d: want 460 and 50", st2.Added, st2.Duplicates)
	}
	if codes := wa.refusedCodes(); codes[history.CodeBrokenChain]+codes[history.CodeBadSignature] != len(forged) {
		t.Errorf("refused %v, want the %d entries of the forged run", codes, len(forged))
	}
	for _, e := range append(append(slices.Clone(mallory), ana...), bob...) {
		if got, ok := h.At(e.Author, e.Seq); !ok || got.ID != e.ID {
			t.Fatalf("%s %d does not read back", e.Name, e.Seq)
		}
	}
	t.Logf("%d runs stored %d of %d entries", h.runs.Load(), h.inRuns.Load(), st2.Added)
}
