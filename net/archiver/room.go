package archiver

import (
	"errors"
	"fmt"
	"iter"
	"sync"

	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/history"
)

// errNoRoomYet is what a session's History answers when an entry arrives for a room the
// box could not create (it is reported as a store failure, and the session ends).
var errNoRoomYet = errors.New("archiver: the room is not kept on the box")

// sessionRoom is a session's History. A room the box keeps is the stored room from the
// start. A room the box does not keep yet exists only once the peer's DataChannel opened
// and its hello named the room (PROTOCOL.md §7): until then it is an empty history that
// stores nothing, so an offer that never connects, or a peer that never says hello,
// leaves nothing behind.
//
// The room is made (with the box's join entry) at the peer's hello (the archiver's
// EventHello handler calls open), or at the first Missing, Add or MarkForked, whichever
// comes first: rtc.Session calls those only after the peer's hello arrived and named this
// room, and its sender may take its snapshot before the hello event is handled.
type sessionRoom struct {
	open func() (*store.RoomHistory, error) // creates the room if new and writes the box's join once

	mu     sync.Mutex
	rh     *store.RoomHistory // nil until the room exists
	opened bool               // open was called (once: its error is kept)
	err    error              // why open failed
}

// bind uses the room as stored when the box keeps it already (its join entry is still
// written at the peer's hello if it lacks one).
func (r *sessionRoom) bind(st *store.Store, id string) {
	rh, err := st.RoomHistory(id)
	if err != nil {
		return // not kept (yet): made at the peer's hello
	}
	r.mu.Lock()
	r.rh = rh
	r.mu.Unlock()
}

// ensure returns the stored room, making it if it does not exist yet, with the box's
// join entry.
func (r *sessionRoom) ensure() (*store.RoomHistory, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.opened {
		r.opened = true
		rh, err := r.open()
		if err != nil {
			r.err = err
		} else {
			r.rh = rh
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.rh, nil
}

// stored returns the room if it exists on the box now, nil if not.
func (r *sessionRoom) stored() *store.RoomHistory {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rh
}

// Heads implements rtc.History; empty while the room does not exist.
func (r *sessionRoom) Heads() map[string]int64 {
	if rh := r.stored(); rh != nil {
		return rh.Heads()
	}
	return map[string]int64{}
}

// Tips implements rtc.History; empty while the room does not exist.
func (r *sessionRoom) Tips() map[string]string {
	if rh := r.stored(); rh != nil {
		return rh.Tips()
	}
	return map[string]string{}
}

// At implements rtc.History.
func (r *sessionRoom) At(author string, seq int64) (history.Entry, bool) {
	if rh := r.stored(); rh != nil {
		return rh.At(author, seq)
	}
	return history.Entry{}, false
}

// Missing implements rtc.History: called after the peer's hello, it makes the room.
func (r *sessionRoom) Missing(heads map[string]int64) []history.Entry {
	rh, err := r.ensure()
	if err != nil {
		return nil
	}
	return rh.Missing(heads)
}

// The box's sessions stream a first sync from the store instead of holding it.
var _ rtc.MissingStreamer = (*sessionRoom)(nil)

// MissingSeq implements rtc.MissingStreamer: Missing as a stream; it makes the room too.
func (r *sessionRoom) MissingSeq(heads map[string]int64) iter.Seq[history.Entry] {
	rh, err := r.ensure()
	if err != nil {
		return func(func(history.Entry) bool) {}
	}
	return rh.MissingSeq(heads)
}

// MarkForked implements rtc.History: called after the peer's hello, it makes the room.
func (r *sessionRoom) MarkForked(author string) {
	if rh, err := r.ensure(); err == nil {
		rh.MarkForked(author)
	}
}

// AddChecked implements rtc.CheckedAdder: as Add, for an entry history.CheckBatch passed.
func (r *sessionRoom) AddChecked(e history.Entry) (bool, error) {
	rh, err := r.ensure()
	if err != nil {
		return false, fmt.Errorf("%w: %w", errNoRoomYet, err)
	}
	return rh.AddChecked(e)
}

// AddCheckedDeferred implements rtc.DeferredAdder: as AddChecked, durable once Flush returns.
func (r *sessionRoom) AddCheckedDeferred(e history.Entry) (bool, error) {
	rh, err := r.ensure()
	if err != nil {
		return false, fmt.Errorf("%w: %w", errNoRoomYet, err)
	}
	return rh.AddCheckedDeferred(e)
}

// AddRunDeferred implements rtc.RunAdder: as AddCheckedDeferred, for a run of one author.
func (r *sessionRoom) AddRunDeferred(es []history.Entry) (int, error) {
	rh, err := r.ensure()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errNoRoomYet, err)
	}
	return rh.AddRunDeferred(es)
}

// Flush implements rtc.DeferredAdder; nothing is owed while the room does not exist.
func (r *sessionRoom) Flush() error {
	if rh := r.stored(); rh != nil {
		return rh.Flush()
	}
	return nil
}

// Add implements rtc.History: called after the peer's hello, it makes the room.
func (r *sessionRoom) Add(e history.Entry) (bool, error) {
	rh, err := r.ensure()
	if err != nil {
		return false, fmt.Errorf("%w: %w", errNoRoomYet, err)
	}
	return rh.Add(e)
}
