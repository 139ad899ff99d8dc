package board

import (
	"context"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Button is a push button.
type Button interface {
	// Next blocks until the button is pressed or released (debounced) and reports which, or
	// until ctx ends (then it returns ctx.Err()). Push-to-talk waits for a press, records, and
	// stops at the next event, the release.
	Next(ctx context.Context) (ButtonEvent, error)
}

// ButtonEvent is a debounced change of a button.
type ButtonEvent struct {
	Pressed bool      // true: pressed; false: released
	At      time.Time // when the change settled
}

// WaitPress waits until b reports a press (releases are skipped).
func WaitPress(ctx context.Context, b Button) error {
	for {
		ev, err := b.Next(ctx)
		if err != nil {
			return err
		}
		if ev.Pressed {
			return nil
		}
	}
}

// ButtonOptions configures a GPIOButton. The zero value is the wiring in docs/OPERATIONS.md:
// a button from the pin to GND, the internal pull-up on.
type ButtonOptions struct {
	// ActiveHigh: the button pulls the pin high when pressed (a pull-down is used).
	// Default false: pressed is low, with the internal pull-up.
	ActiveHigh bool
	// Debounce is how long the level must stay unchanged after an edge before it counts.
	// Default 30 ms.
	Debounce time.Duration
	// Poll is how often the level is read when the pin has no edge detection, and how long
	// a single wait for an edge lasts (so ctx is honoured within it). Default 50 ms.
	Poll time.Duration
	// Now is the clock for ButtonEvent.At. Default time.Now.
	Now func() time.Time
}

// GPIOButton is a Button on a periph.io GPIO input pin.
type GPIOButton struct {
	pin   gpio.PinIn
	opts  ButtonOptions
	edges bool // the pin reports edges; else its level is polled

	mu      sync.Mutex // held by Next for its whole wait: one waiter at a time
	pressed bool       // the last reported (or initial) state; guarded by mu
}

// NewGPIOButton configures pin as an input with the pull that opts implies and both edges
// (falling back to polling its level when the pin cannot report edges).
func NewGPIOButton(pin gpio.PinIn, opts ButtonOptions) (*GPIOButton, error) {
	if pin == nil {
		return nil, fmt.Errorf("board: button: no pin")
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 30 * time.Millisecond
	}
	if opts.Poll <= 0 {
		opts.Poll = 50 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	pull := gpio.PullUp
	if opts.ActiveHigh {
		pull = gpio.PullDown
	}
	b := &GPIOButton{pin: pin, opts: opts, edges: true}
	if err := pin.In(pull, gpio.BothEdges); err != nil {
		if err2 := pin.In(pull, gpio.NoEdge); err2 != nil {
			return nil, fmt.Errorf("board: button on %s: set input: %w", pin, err)
		}
		b.edges = false
	}
	b.pressed = b.isPressed(pin.Read())
	return b, nil
}

func (b *GPIOButton) isPressed(l gpio.Level) bool { return l == gpio.Level(b.opts.ActiveHigh) }

// String names the pin.
func (b *GPIOButton) String() string { return b.pin.Name() }

// Pressed reports the last debounced state.
func (b *GPIOButton) Pressed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pressed
}

// Next implements Button.
func (b *GPIOButton) Next(ctx context.Context) (ButtonEvent, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return ButtonEvent{}, err
		}
		if b.edges {
			b.pin.WaitForEdge(b.opts.Poll) // an edge, or a timeout: the level decides either way
		} else if err := sleep(ctx, b.opts.Poll); err != nil {
			return ButtonEvent{}, err
		}
		if b.isPressed(b.pin.Read()) == b.pressed {
			continue
		}
		// Something changed: wait until the contacts stop bouncing, then believe the level.
		if err := b.settle(ctx); err != nil {
			return ButtonEvent{}, err
		}
		if p := b.isPressed(b.pin.Read()); p != b.pressed {
			b.pressed = p
			return ButtonEvent{Pressed: p, At: b.opts.Now()}, nil
		}
	}
}

// settle returns once no edge came for opts.Debounce.
func (b *GPIOButton) settle(ctx context.Context) error {
	if !b.edges {
		return sleep(ctx, b.opts.Debounce)
	}
	for b.pin.WaitForEdge(b.opts.Debounce) {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LED is a light that is on or off.
type LED interface {
	Set(on bool) error
}

// GPIOLED is an LED on a periph.io GPIO output pin.
type GPIOLED struct {
	pin       gpio.PinOut
	activeLow bool
}

// NewGPIOLED drives pin as an output, the LED off. activeLow: the LED is lit when the pin is
// low (wired from 3.3 V to the pin); the default wiring (pin → resistor → LED → GND) is lit
// when high.
func NewGPIOLED(pin gpio.PinOut, activeLow bool) (*GPIOLED, error) {
	if pin == nil {
		return nil, fmt.Errorf("board: LED: no pin")
	}
	l := &GPIOLED{pin: pin, activeLow: activeLow}
	if err := l.Set(false); err != nil {
		return nil, err
	}
	return l, nil
}

// Set implements LED.
func (l *GPIOLED) Set(on bool) error {
	if err := l.pin.Out(gpio.Level(on != l.activeLow)); err != nil {
		return fmt.Errorf("board: LED on %s: %w", l.pin, err)
	}
	return nil
}

// String names the pin.
func (l *GPIOLED) String() string { return l.pin.Name() }
