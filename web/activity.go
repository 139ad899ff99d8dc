package web

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// ActivityStreamLife ends a stream after a while; the page's EventSource opens a new
// one by itself (and proves its membership again if it has to). The streams count among
// every client's event streams (MaxStreamsPerClient, MaxStreams).
const ActivityStreamLife = 10 * time.Minute

// Activity tells members' pages what the box itself is doing in their rooms: that its
// microphone is recording into one of them. The hardware sets it; GET /api/member/events
// streams it to members of that room only.
type Activity struct {
	mu        sync.Mutex
	recording string        // the room the box records into, "" when it does not
	changed   chan struct{} // closed and replaced at every change
}

// NewActivity returns an Activity with nothing going on.
func NewActivity() *Activity { return &Activity{changed: make(chan struct{})} }

// SetRecording says the box's microphone records into room; "" says it stopped.
func (a *Activity) SetRecording(room string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.recording == room {
		return
	}
	a.recording = room
	close(a.changed)
	a.changed = make(chan struct{})
}

// Recording returns the room the box records into ("" when none) and a channel closed
// at the next change.
func (a *Activity) Recording() (string, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.recording, a.changed
}

// memberEvents: GET /api/member/events streams a "recording" event ({"room": id} or
// {"room": ""}) now and at every change, for a member session only; the room is named
// only to a member of it.
func (o Options) memberEvents(w http.ResponseWriter, r *http.Request) {
	if len(o.Members.Authors(r)) == 0 {
		fail(w, http.StatusUnauthorized, "not-member", "prove your identity first (POST /api/member/proof)")
		return
	}
	release, ok := o.openStream(w, r)
	if !ok {
		return
	}
	defer release()
	send, ok := o.sse(w)
	if !ok {
		return
	}
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	end := time.NewTimer(ActivityStreamLife)
	defer end.Stop()
	last := "-"
	for {
		room, changed := o.Activity.Recording()
		if room != "" && !o.memberOf(r, room) {
			room = ""
		}
		if room != last {
			b, _ := json.Marshal(struct {
				Room string `json:"room"`
			}{room})
			if !send("recording", b) {
				return
			}
			last = room
		}
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			return
		case <-changed:
		case <-keep.C:
			if !send("", nil) {
				return
			}
		}
	}
}
