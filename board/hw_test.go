package board_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/board"
)

// The tests below need a Raspberry Pi wired as docs/OPERATIONS.md ("Board") shows and a
// person beside it; they run only with -hw:
//
//	go test ./board/ -hw -v -run HW
//
// (as a user in the gpio and audio groups, with the service stopped so the pins are free).
// Each says on the terminal what to do and waits up to a minute.

// hwBoard opens the board with the default wiring, or skips without -hw.
func hwBoard(t *testing.T) (*board.Board, context.Context) {
	t.Helper()
	if !*hw {
		t.Skip("hardware test: run with -hw on a wired Pi (docs/OPERATIONS.md)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	b, err := board.Open(ctx, board.Config{MountGlobs: []string{"none"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for _, st := range b.Status {
		t.Logf("%s: ok=%v %s", st.Feature, st.OK, st.Detail)
	}
	return b, ctx
}

func say(t *testing.T, s string) {
	t.Helper()
	t.Log(s)
	os.Stderr.WriteString(">>> " + s + "\n")
}

// TestHWButtons: each button is pressed and released once, and seen as such.
func TestHWButtons(t *testing.T) {
	b, ctx := hwBoard(t)
	for _, c := range []struct {
		name string
		btn  board.Button
	}{{"push-to-talk (GPIO17, pin 11)", b.PushToTalk}, {"export (GPIO22, pin 15)", b.ExportButton}} {
		if c.btn == nil {
			t.Errorf("%s: not found", c.name)
			continue
		}
		say(t, "press and release the "+c.name+" button")
		if err := board.WaitPress(ctx, c.btn); err != nil {
			t.Fatalf("%s: no press: %v", c.name, err)
		}
		for {
			ev, err := c.btn.Next(ctx)
			if err != nil {
				t.Fatalf("%s: no release: %v", c.name, err)
			}
			if !ev.Pressed {
				break
			}
		}
		t.Logf("%s: pressed and released", c.name)
	}
}

// TestHWLED plays every status pattern for 4 s in order; the person checks that each
// looks as OPERATIONS.md describes (the test can only check that the pin takes them).
func TestHWLED(t *testing.T) {
	b, ctx := hwBoard(t)
	if b.LED == nil {
		t.Fatal("no status LED (GPIO27, pin 13)")
	}
	bl := board.NewBlinker(b.LED, board.BlinkerOptions{})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bl.Run(runCtx) }()
	for _, p := range board.Patterns() {
		say(t, "the LED now shows: "+string(p))
		bl.Set(p)
		select {
		case <-time.After(4 * time.Second):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestHWMicrophone records 3 s from the USB microphone while the person speaks, checks
// that it is not silence, and leaves the WAV in the test's output directory to listen to.
func TestHWMicrophone(t *testing.T) {
	b, ctx := hwBoard(t)
	if b.Mic == nil {
		t.Fatal("no microphone")
	}
	say(t, "speak into the microphone for 3 seconds, now")
	rec, err := board.Record(ctx, b.Mic, nil, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Duration() < 2900*time.Millisecond {
		t.Errorf("recorded %v, want 3 s", rec.Duration())
	}
	var sum float64
	for _, s := range rec.Samples {
		sum += float64(s) * float64(s)
	}
	rms := math.Sqrt(sum / float64(max(1, len(rec.Samples))))
	t.Logf("%s: %v, RMS %.0f of 32767", b.Mic, rec.Duration(), rms)
	if rms < 30 {
		t.Errorf("RMS %.0f: silence (muted or the wrong device? try --mic-device)", rms)
	}
	f, err := os.Create(filepath.Join(t.ArtifactDir(), "hw-mic.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := board.WriteWAV(f, rec, 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("listen to it: %s", f.Name())
}
