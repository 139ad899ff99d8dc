package board

import (
	"context"
	"log/slog"
	"time"
)

// Step is one part of a Pattern: the LED on or off for a while.
type Step struct {
	On  bool
	For time.Duration // <= 0: hold until the pattern is changed
}

// Pattern is a named status pattern for the LED: a sequence of steps played in a loop until
// another pattern is set. The names are constants, so no pattern can be changed by accident.
type Pattern string

// The status patterns. Each is distinct at a glance: steady, slow, fast, or a number of short
// flashes every few seconds.
const (
	LEDOff           Pattern = "off"            // dark
	LEDStarting      Pattern = "starting"       // slow even blink, 1 Hz
	LEDServing       Pattern = "serving"        // one short flash every 3 s: up, nobody connected
	LEDPeerConnected Pattern = "peer-connected" // two short flashes every 3 s
	LEDRecording     Pattern = "recording"      // steady on while the microphone records
	LEDExporting     Pattern = "exporting"      // fast blink, 5 Hz, while writing to a stick
	LEDDone          Pattern = "done"           // long pulses (1.5 s on, 0.5 s off): pull the stick
	LEDError         Pattern = "error"          // three short flashes and a pause
)

// Patterns lists the named status patterns, for documentation and status pages.
func Patterns() []Pattern {
	return []Pattern{LEDOff, LEDStarting, LEDServing, LEDPeerConnected, LEDRecording, LEDExporting, LEDDone, LEDError}
}

// Steps is the pattern's sequence, starting with the LED on (a fresh slice on each call).
// An unknown name has the steps of LEDOff.
func (p Pattern) Steps() []Step {
	const ms = time.Millisecond
	switch p {
	case LEDStarting:
		return blink(500*ms, 500*ms)
	case LEDServing:
		return blink(100*ms, 2900*ms)
	case LEDPeerConnected:
		return blink(100*ms, 200*ms, 100*ms, 2600*ms)
	case LEDRecording:
		return []Step{{On: true}}
	case LEDExporting:
		return blink(100*ms, 100*ms)
	case LEDDone:
		return blink(1500*ms, 500*ms)
	case LEDError:
		return blink(100*ms, 150*ms, 100*ms, 150*ms, 100*ms, 1400*ms)
	default:
		return []Step{{On: false}}
	}
}

// blink alternates on and off, starting on, for the durations given.
func blink(d ...time.Duration) []Step {
	steps := make([]Step, len(d))
	for i, v := range d {
		steps[i] = Step{On: i%2 == 0, For: v}
	}
	return steps
}

// BlinkerOptions configures a Blinker.
type BlinkerOptions struct {
	// Logger gets LED errors (the first of each run of failures). Default slog.Default().
	Logger *slog.Logger
	// After is the clock: a channel that delivers once d has passed. Default time.After;
	// tests pass a fake to step through a pattern.
	After func(d time.Duration) <-chan time.Time
}

// Blinker plays Patterns on an LED. Set may be called from any goroutine; Run plays them.
type Blinker struct {
	led   LED
	opts  BlinkerOptions
	set   chan Pattern // capacity 1: the latest pattern not yet picked up by Run
	state chan Pattern // capacity 1: holds the current pattern (a lock that can be selected)
}

// NewBlinker returns a Blinker for led (nil: patterns are tracked but nothing lights) that
// starts with LEDOff.
func NewBlinker(led LED, opts BlinkerOptions) *Blinker {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.After == nil {
		opts.After = time.After
	}
	b := &Blinker{led: led, opts: opts, set: make(chan Pattern, 1), state: make(chan Pattern, 1)}
	b.state <- LEDOff
	return b
}

// Set switches to p (from its first step), replacing the current pattern. It never blocks.
func (b *Blinker) Set(p Pattern) {
	<-b.state
	b.state <- p
	select {
	case <-b.set:
	default:
	}
	b.set <- p
}

// Current is the pattern last set.
func (b *Blinker) Current() Pattern {
	p := <-b.state
	b.state <- p
	return p
}

// Run plays the current pattern, switching when Set is called, until ctx ends; then it turns
// the LED off and returns nil. Run it in one goroutine the caller owns.
func (b *Blinker) Run(ctx context.Context) error {
	failing := false
	light := func(on bool) {
		if b.led == nil {
			return
		}
		err := b.led.Set(on)
		if err != nil && !failing {
			b.opts.Logger.Warn("board: LED failed", "component", "board", "err", err)
		}
		failing = err != nil
	}
	defer light(false)
	p := b.Current()
	select {
	case p = <-b.set: // the same, or a newer one set meanwhile
	default:
	}
	for {
		steps := p.Steps()
	play:
		for i := 0; ; i = (i + 1) % len(steps) {
			s := steps[i]
			light(s.On)
			var tick <-chan time.Time // nil: hold
			if s.For > 0 {
				tick = b.opts.After(s.For)
			}
			select {
			case <-ctx.Done():
				return nil
			case p = <-b.set:
				break play // the new pattern starts from its first step
			case <-tick:
			}
		}
	}
}
