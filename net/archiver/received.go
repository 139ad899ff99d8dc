package archiver

import (
	"maps"
	"sync"
	"time"
)

// receipts remember, per room, when the box last stored an entry a peer brought, by the
// box's own monotonic clock: an entry's ts is the author's to choose (and the box's Clock
// may be led by peers), so neither may rank rooms for push-to-talk.
type receipts struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *receipts) note(room string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = make(map[string]time.Time)
	}
	r.last[room] = at
}

// LastReceived returns, per room, when the box last stored an entry received from a peer
// since it started (time.Now at receipt, with its monotonic reading: compare with After).
// The box's own entries (voice notes, joins) do not count.
func (a *Archiver) LastReceived() map[string]time.Time {
	a.recv.mu.Lock()
	defer a.recv.mu.Unlock()
	return maps.Clone(a.recv.last)
}
