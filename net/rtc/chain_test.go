package rtc

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

// chainOf makes n linked entries of a from seq 1, outside any log.
func chainOf(a author, n int) []history.Entry {
	var out []history.Entry
	prev := ""
	for i := 1; i <= n; i++ {
		e := entry(a, testRoom, int64(i), prev, fmt.Sprintf("%s %d", a.name, i))
		out = append(out, e)
		prev = e.ID
	}
	return out
}

// TestSessionForgedLink: a batch whose run of one author holds a forged link is refused for
// that run (every entry of it, one counted bad at most), the other author's run in the same
// batch is stored, and the session goes on: the author's genuine run, sent again, is stored.
func TestSessionForgedLink(t *testing.T) {
	mallory := newAuthor("mallory")
	run := chainOf(mallory, 100)
	bob := chainOf(newAuthor("bob"), 5)
	forged := run[50]
	forged.Body = "not what mallory wrote"
	forged.ID = forged.ComputeID() // the signature no longer matches; seq 52's prev neither
	batch := append(append([]history.Entry(nil), run[:50]...), forged)
	batch = append(batch, run[51:]...)
	batch = append(batch, bob...)

	hA := NewMemHistory(history.NewLog(testRoom))
	ca, cm := Pipe(64)
	wa := newWatcher()
	sa := newSession(t, hA, ca, "A", wa)
	stop := runSession(t, t.Context(), sa)
	f := fakePeer{t, cm}
	f.hello(nil, nil)
	f.entries(batch...)
	waitFor(t, func() bool { return hA.Len() == len(bob) && wa.refusedCodes()[history.CodeBrokenChain] == len(run) }, wa)
	if codes := wa.refusedCodes(); codes[history.CodeBrokenChain] != len(run) {
		t.Errorf("refused %v, want %d broken-chain", codes, len(run))
	}
	// A bad signature on the last entry of a long run: refused whole, counted once.
	badLast := chainOf(mallory, 100)
	badLast[99].Sig = badLast[98].Sig
	badLast[99].ID = badLast[99].ComputeID()
	f.entries(badLast...)
	waitFor(t, func() bool { return wa.refusedCodes()[history.CodeBadSignature] == len(run) }, wa)
	if codes := wa.refusedCodes(); codes[history.CodeBadSignature] != len(run) {
		t.Errorf("refused %v, want %d bad-signature", codes, len(run))
	}
	f.entries(run...)
	waitFor(t, func() bool { return hA.Len() == len(bob)+len(run) }, wa)
	if err := stop(); err != nil {
		t.Errorf("Run = %v, want the session to survive", err)
	}
	if sa.bad != 1 {
		t.Errorf("%d counted bad for a forged link and a bad last signature, want 1 (the signature)", sa.bad)
	}
}

// TestSessionRunsOutOfOrder: a batch of two authors' runs in reverse order is all stored.
func TestSessionRunsOutOfOrder(t *testing.T) {
	a, b := chainOf(newAuthor("ana"), 30), chainOf(newAuthor("bob"), 30)
	var batch []history.Entry
	for i := 29; i >= 0; i-- {
		batch = append(batch, a[i], b[i])
	}
	hA := NewMemHistory(history.NewLog(testRoom))
	ca, cm := Pipe(64)
	wa := newWatcher()
	sa := newSession(t, hA, ca, "A", wa)
	stop := runSession(t, t.Context(), sa)
	f := fakePeer{t, cm}
	f.hello(nil, nil)
	f.entries(batch...)
	waitFor(t, func() bool { return hA.Len() == 60 }, wa)
	if st := sa.Stats(); st.Refused != 0 {
		t.Errorf("refused %d", st.Refused)
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSessionBadRunsEndSession: many runs, each with a bad last signature, still end the
// session with ErrBadPeer once more than MaxBadEntries are counted.
func TestSessionBadRunsEndSession(t *testing.T) {
	var forged []history.Entry
	for i := range MaxBadEntries + 1 {
		c := chainOf(newAuthor(fmt.Sprintf("m%d", i)), 2)
		c[1].Sig = strings.Repeat("A", 86)
		c[1].ID = c[1].ComputeID()
		forged = append(forged, c...)
	}
	hA := NewMemHistory(history.NewLog(testRoom))
	ca, cm := Pipe(64)
	sa := newSession(t, hA, ca, "A", nil)
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
			break
		}
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrBadPeer) {
			t.Fatalf("Run = %v, want ErrBadPeer", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session went on")
	}
	if hA.Len() != 0 {
		t.Errorf("stored %d", hA.Len())
	}
}
