package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/board"
	"github.com/chattorrent/chattorrent/board/boardtest"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/store/testenv"
	"github.com/chattorrent/chattorrent/web"
)

// Push-to-talk's room: never the room a peer's timestamp puts last. A stranger's entry
// stamped 9 minutes ahead makes its room the newest by ts; the box still records into the
// room a member wrote to last by the box's own receive time, and into the owner's pick
// once there is one (while the box keeps it).
func TestPushToTalkRoomByReceipt(t *testing.T) {
	r := newHWRig(t)
	other := strings.Repeat("b", 32)
	if err := r.st.CreateRoom(other, "Trampa"); err != nil {
		t.Fatal(err)
	}
	mallory, err := store.LoadIdentity(t.TempDir(), "Mallory")
	if err != nil {
		t.Fatal(err)
	}
	rh, err := r.st.RoomHistory(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rh.Write(history.Entry{Author: mallory.Author(), Name: mallory.Name, Kind: "text", Body: "aquí",
		TS: time.Now().Add(9 * time.Minute).UnixMilli()}, mallory.Sign); err != nil {
		t.Fatal(err)
	}
	received := map[string]time.Time{r.room: time.Now()} // a member's entry in Patio, received now
	r.h.received = func() map[string]time.Time { return received }
	if got, err := r.h.voiceRoom(); err != nil || got != r.room {
		t.Errorf("push-to-talk room %q (%v), want %q: the room a member wrote to last, not the one stamped last", got, err, r.room)
	}
	// Received later in the other room: that one.
	received[other] = time.Now().Add(time.Millisecond)
	if got, _ := r.h.voiceRoom(); got != other {
		t.Errorf("push-to-talk room %q, want %q (received last)", got, other)
	}
	// Nothing received since the start and two rooms: no guess.
	r.h.received = func() map[string]time.Time { return nil }
	if got, err := r.h.voiceRoom(); err == nil {
		t.Errorf("with nothing received and two rooms, push-to-talk chose %q", got)
	}
	// The owner's pick wins; a pick the box no longer keeps is ignored.
	own, err := web.NewOwner(web.OwnerOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r.h.owner = own
	if err := own.SetSettings(web.Settings{PTTRoom: other}); err != nil {
		t.Fatal(err)
	}
	r.h.received = func() map[string]time.Time { return map[string]time.Time{r.room: time.Now()} }
	if got, _ := r.h.voiceRoom(); got != other {
		t.Errorf("push-to-talk room %q, want the owner's pick %q", got, other)
	}
	own.SetSettings(web.Settings{PTTRoom: strings.Repeat("c", 32)})
	if got, _ := r.h.voiceRoom(); got != r.room {
		t.Errorf("push-to-talk room %q with a pick the box does not keep, want %q", got, r.room)
	}
}

// With the microphone switched off by the owner, the button does not open the microphone
// (the LED says error) and the page's RecordVoice is refused.
func TestPushToTalkMicOff(t *testing.T) {
	r := newHWRig(t)
	own, err := web.NewOwner(web.OwnerOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := own.SetSettings(web.Settings{MicOff: true}); err != nil {
		t.Fatal(err)
	}
	r.h.owner = own
	r.ptt.Press()
	testenv.WaitFor(t, "the error pattern", func() bool { return r.h.blink.Current() == board.LEDError })
	r.ptt.Release()
	time.Sleep(200 * time.Millisecond)
	select {
	case <-r.mic.Opened:
		t.Error("the microphone was opened while the owner switched it off")
	default:
	}
	if _, err := r.h.RecordVoice(t.Context(), r.room, nil, time.Second); !errors.Is(err, errMicOff) {
		t.Errorf("RecordVoice with the mic off: %v", err)
	}
	if n := len(r.voiceEntries(t)); n != 0 {
		t.Errorf("%d voice notes with the mic off", n)
	}
}

// The reset: the file on the boot partition makes the box forget its owner at start (and
// is deleted, so the next start keeps the new owner); the settings stay. The export button
// held at start does the same.
func TestOwnerReset(t *testing.T) {
	dir := t.TempDir()
	resetFile := filepath.Join(t.TempDir(), "chattorrent-reset-owner")
	cfg := Config{DataDir: dir, OwnerResetFile: resetFile}
	log := slog.New(slog.DiscardHandler)
	claim := func() string {
		t.Helper()
		var console strings.Builder
		own, err := openOwner(cfg, &board.Board{}, &console, log)
		if err != nil {
			t.Fatal(err)
		}
		code := console.String()
		i := strings.Index(code, "claim code ")
		if i < 0 {
			t.Fatalf("no claim code on the console: %q", code)
		}
		tok, err := own.Claim(code[i+len("claim code ") : i+len("claim code ")+11])
		if err != nil {
			t.Fatal(err)
		}
		if err := own.SetSettings(web.Settings{MicOff: true}); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	reopen := func(b *board.Board) (*web.Owner, string) {
		t.Helper()
		var console strings.Builder
		own, err := openOwner(cfg, b, &console, log)
		if err != nil {
			t.Fatal(err)
		}
		return own, console.String()
	}

	tok := claim()
	if own, console := reopen(&board.Board{}); !own.IsOwner(tok) || console != "" {
		t.Fatalf("a plain restart lost the owner (console %q)", console)
	}
	if err := os.WriteFile(resetFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	own, console := reopen(&board.Board{})
	if own.Claimed() || own.IsOwner(tok) || !strings.Contains(console, "claim code") {
		t.Errorf("after the reset file: claimed %v, console %q", own.Claimed(), console)
	}
	if !own.MicOff() {
		t.Error("the reset lost the settings")
	}
	if _, err := os.Stat(resetFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the reset file is still there: %v", err)
	}

	// A reset file the service cannot delete (read-only /boot; here a non-empty directory,
	// which not even root removes): it resets once, not at every start.
	claim() // an owner again, for the reset to forget (its token is not needed)
	if err := os.MkdirAll(filepath.Join(resetFile, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	own, console = reopen(&board.Board{})
	if own.Claimed() {
		t.Fatal("an undeletable reset file did not reset the owner")
	}
	i := strings.Index(console, "claim code ")
	tok, err := own.Claim(console[i+len("claim code ") : i+len("claim code ")+11])
	if err != nil {
		t.Fatal(err)
	}
	if own, _ := reopen(&board.Board{}); !own.IsOwner(tok) {
		t.Error("an undeletable reset file reset the owner a second time")
	}
	os.RemoveAll(resetFile)
	os.Remove(filepath.Join(dir, web.OwnerFile)) // unclaimed again for the button

	// The export button held at start.
	tok = claim()
	btn := boardtest.NewButton(t, "export")
	if own, _ := reopen(&board.Board{ExportButton: btn}); !own.IsOwner(tok) {
		t.Fatal("a released export button reset the owner")
	}
	btn.Press()
	testenv.WaitFor(t, "the press", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		btn.Next(ctx)
		return btn.Pressed()
	})
	if own, _ := reopen(&board.Board{ExportButton: btn}); own.Claimed() {
		t.Error("the export button held at start did not reset the owner")
	}
}
