package rtc

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

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
	sb := newSession(t, hB, cb, "B", nil)
	// At each Flush, the session has sent acks for no more entries than earlier flushes
	// made durable: none of those this one makes durable.
	var sentEarly atomic.Int64
	hB.onFlush = func() {
		sb.ackMu.Lock()
		sent := sb.ackSent
		sb.ackMu.Unlock()
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
