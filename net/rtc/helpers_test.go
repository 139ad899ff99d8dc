package rtc

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/store/testenv"
)

const (
	testRoom  = "0123456789abcdef0123456789abcdef"
	otherRoom = "fedcba9876543210fedcba9876543210"
)

type author struct {
	priv ed25519.PrivateKey
	id   string
	name string
}

func newAuthor(name string) author {
	seed := sha256.Sum256([]byte("chattorrent test author " + name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	return author{priv: priv, id: history.EncodeKey(priv.Public().(ed25519.PublicKey)), name: name}
}

// baseTS is a fixed time an hour back: entries are never "future".
var baseTS = time.Now().Add(-time.Hour).UnixMilli()

// write appends n signed entries by a to h.
func write(t testing.TB, h *MemHistory, a author, n int) []history.Entry {
	t.Helper()
	out := make([]history.Entry, 0, n)
	for i := range n {
		e := history.Entry{Name: a.name, Kind: history.KindText, Author: a.id,
			Body: fmt.Sprintf("message %d from %s", i, a.name), TS: baseTS + int64(h.Len())}
		e, err := h.Write(e, func(e *history.Entry) { e.Sign(a.priv) })
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// entry makes a signed entry outside any log.
func entry(a author, room string, seq int64, prev, body string) history.Entry {
	e := history.Entry{Room: room, Author: a.id, Name: a.name, Seq: seq, Prev: prev,
		TS: baseTS + seq, Kind: history.KindText, Body: body}
	e.Sign(a.priv)
	return e
}

func ids(h *MemHistory) []string {
	var out []string
	for _, e := range h.Entries() {
		out = append(out, e.ID)
	}
	slices.Sort(out)
	return out
}

// watcher collects a session's events and lets a test wait on a condition without
// sleeping.
type watcher struct {
	mu     sync.Mutex
	events []Event
	kick   chan struct{}
}

func newWatcher() *watcher { return &watcher{kick: make(chan struct{}, 1)} }

func (w *watcher) on(ev Event) {
	w.mu.Lock()
	w.events = append(w.events, ev)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *watcher) count(k EventKind) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, ev := range w.events {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func (w *watcher) refusedCodes() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[string]int{}
	for _, ev := range w.events {
		if ev.Kind == EventRefused {
			m[ev.Code]++
		}
	}
	return m
}

// waitFor waits until cond holds, re-checking on every event of any watcher. It gives up
// after testenv.WaitTimeout, only so that a broken test fails instead of hanging: no test
// depends on how long it takes (under qemu-user on armv6 a 5,000-entry sync took 40 s).
func waitFor(t testing.TB, cond func() bool, ws ...*watcher) {
	t.Helper()
	waitForWithin(t, testenv.WaitTimeout, cond, ws...)
}

// waitForWithin is waitFor with its own give-up time (a benchmark's long sync).
func waitForWithin(t testing.TB, timeout time.Duration, cond func() bool, ws ...*watcher) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond) // cond may depend on counters without events
	defer tick.Stop()
	kicks := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, w := range ws {
		go func() {
			for {
				select {
				case <-w.kick:
					select {
					case kicks <- struct{}{}:
					default:
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	for !cond() {
		select {
		case <-kicks:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("condition not met within %v", timeout)
		}
	}
}

// runSession starts s and returns a function that stops it and returns Run's error.
func runSession(t testing.TB, ctx context.Context, s *Session) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	return sync.OnceValue(func() error {
		cancel()
		return <-errc
	})
}
