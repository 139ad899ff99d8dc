package board_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/board"
	"github.com/chattorrent/chattorrent/board/boardtest"
)

// script logs, in order, what the Blinker does: lights the LED (through a boardtest.LED) and
// asks the clock for a timer, which fires only when the test says so.
type script struct {
	led *boardtest.LED
	ev  chan event // roomy: the Blinker never waits for the test
}

type event struct {
	on   bool
	wait time.Duration    // 0: an LED event
	fire chan<- time.Time // for a wait
}

func (s *script) Set(on bool) error {
	err := s.led.Set(on)
	s.ev <- event{on: on}
	return err
}

func (s *script) after(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	s.ev <- event{wait: d, fire: ch}
	return ch
}

// The LED goes through each pattern's steps in order, switches at Set (from the new pattern's
// first step), holds a steady pattern with no timer, and is dark after Run.
func TestBlinkerPatterns(t *testing.T) {
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	sc := &script{led: boardtest.NewLED(t, "GPIO27"), ev: make(chan event, 1000)}
	bl := board.NewBlinker(sc, board.BlinkerOptions{After: sc.after})
	bl.Set(board.LEDStarting)
	done := make(chan error, 1)
	go func() { done <- bl.Run(ctx) }() // owned: ends when ctx is cancelled below

	// play expects the LED and timer events of steps, firing the timers of all but the last
	// (which stays pending, so that a Set is taken while the step is under way).
	play := func(name string, steps []board.Step) {
		t.Helper()
		for i, st := range steps {
			if ev := <-sc.ev; ev.wait != 0 || ev.on != st.On {
				t.Fatalf("%s step %d: LED event %+v, want on=%v", name, i, ev, st.On)
			}
			if st.For <= 0 {
				continue
			}
			ev := <-sc.ev
			if ev.wait != st.For {
				t.Fatalf("%s step %d: waits %v, want %v", name, i, ev.wait, st.For)
			}
			if i < len(steps)-1 {
				ev.fire <- time.Time{}
			}
		}
	}
	starting := board.LEDStarting.Steps()
	play("starting", append(starting, starting...)) // two periods: it loops
	bl.Set(board.LEDError)
	play("error", board.LEDError.Steps())
	bl.Set(board.LEDRecording)
	play("recording", board.LEDRecording.Steps())
	select {
	case ev := <-sc.ev:
		t.Fatalf("recording holds, yet %+v", ev)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ev := <-sc.ev; ev.on || ev.wait != 0 {
		t.Fatalf("after Run: %+v, want the LED off", ev)
	}
	if sc.led.On() {
		t.Fatal("LED on after Run returned")
	}
	// The fake pin saw strictly alternating levels: 4 of Starting, 6 of Error, on, off.
	ch := sc.led.Changes()
	if len(ch) != 12 || !ch[0] || ch[len(ch)-1] {
		t.Fatalf("pin levels %v", ch)
	}
	for i := 1; i < len(ch); i++ {
		if ch[i] == ch[i-1] {
			t.Fatalf("pin levels %v not alternating", ch)
		}
	}
}

func TestPatternsDistinct(t *testing.T) {
	seen := map[string]board.Pattern{}
	for _, p := range board.Patterns() {
		steps := p.Steps()
		if len(steps) == 0 || (p != board.LEDOff && !steps[0].On) {
			t.Errorf("%s: %v", p, steps)
		}
		key := ""
		for _, s := range steps {
			key += s.For.String() + map[bool]string{true: "+", false: "-"}[s.On]
		}
		if q, dup := seen[key]; dup {
			t.Errorf("%s looks like %s", p, q)
		}
		seen[key] = p
	}
}

// A failing LED is logged, not fatal: Run still ends cleanly.
func TestBlinkerFailingLED(t *testing.T) {
	ctx, cancel := context.WithCancel(testContext(t))
	bl := board.NewBlinker(failingLED{}, board.BlinkerOptions{})
	bl.Set(board.LEDExporting)
	cancel()
	if err := bl.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

type failingLED struct{}

func (failingLED) Set(bool) error { return errors.New("broken") }
