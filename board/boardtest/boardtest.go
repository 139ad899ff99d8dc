// Package boardtest has fakes of board's hardware for tests: buttons and an LED on periph's
// gpiotest pins (driven through board's real GPIOButton and GPIOLED code), a microphone that
// plays a WAV file or a tone, and a temp-dir Volumes.
package boardtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/chattorrent/chattorrent/board"
)

// Button is a push button on a fake pin, wired like the real one (to GND, pull-up):
// pressing drives the pin low. It is a board.Button through board.GPIOButton.
type Button struct {
	*board.GPIOButton
	Pin *gpiotest.Pin
}

// NewButton returns a released button with a 1 ms debounce.
func NewButton(tb testing.TB, name string) *Button {
	tb.Helper()
	pin := &gpiotest.Pin{N: name, Clock: clockwork.NewRealClock(), EdgesChan: make(chan gpio.Level, 64)}
	b, err := board.NewGPIOButton(pin, board.ButtonOptions{Debounce: time.Millisecond, Poll: 5 * time.Millisecond})
	if err != nil {
		tb.Fatalf("boardtest: %v", err)
	}
	return &Button{GPIOButton: b, Pin: pin}
}

// Press drives the pin low (one clean edge).
func (b *Button) Press() { b.Pin.EdgesChan <- gpio.Low }

// Release lets the pin go high.
func (b *Button) Release() { b.Pin.EdgesChan <- gpio.High }

// Bounce sends the edges of bouncing contacts that settle at the pressed (or released) level.
func (b *Button) Bounce(pressed bool) {
	final := gpio.Level(!pressed)
	for range 3 {
		b.Pin.EdgesChan <- final
		b.Pin.EdgesChan <- !final
	}
	b.Pin.EdgesChan <- final
}

// LED records every level a board.GPIOLED drives on its fake pin.
type LED struct {
	*board.GPIOLED
	Pin *gpiotest.Pin

	mu      sync.Mutex
	changes []bool // each Out that changed the level; guarded by mu
}

// NewLED returns a dark LED.
func NewLED(tb testing.TB, name string) *LED {
	tb.Helper()
	l := &LED{Pin: &gpiotest.Pin{N: name, Clock: clockwork.NewRealClock()}}
	led, err := board.NewGPIOLED(&recordingPin{Pin: l.Pin, led: l}, false)
	if err != nil {
		tb.Fatalf("boardtest: %v", err)
	}
	l.GPIOLED = led
	l.mu.Lock()
	l.changes = nil // the initial "off" is not a change
	l.mu.Unlock()
	return l
}

// Changes are the levels the LED went to, in order (consecutive equal levels merged).
func (l *LED) Changes() []bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]bool(nil), l.changes...)
}

// On reports whether the LED is lit now.
func (l *LED) On() bool { return bool(l.Pin.Read()) }

type recordingPin struct {
	*gpiotest.Pin
	led *LED
}

func (p *recordingPin) Out(level gpio.Level) error {
	if err := p.Pin.Out(level); err != nil {
		return err
	}
	p.led.mu.Lock()
	defer p.led.mu.Unlock()
	if n := len(p.led.changes); n == 0 || p.led.changes[n-1] != bool(level) {
		p.led.changes = append(p.led.changes, bool(level))
	}
	return nil
}

// Mic plays PCM as a board.Mic: a WAV file's (converted to 16 kHz mono) or a tone.
type Mic struct {
	// Samples played, at board.SampleRate.
	Samples []int16
	// Loop: start over at the end instead of ending (io.EOF).
	Loop bool
	// Realtime: deliver samples no faster than they would come from a microphone
	// (20 ms chunks); otherwise as fast as they are read.
	Realtime bool
	// Opened is closed at the first Open.
	Opened chan struct{}

	once sync.Once
}

// NewToneMic plays a sine of freq Hz for d.
func NewToneMic(freq float64, d time.Duration) *Mic {
	n := int(d * board.SampleRate / time.Second)
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(8000 * math.Sin(2*math.Pi*freq*float64(i)/board.SampleRate))
	}
	return &Mic{Samples: s, Opened: make(chan struct{})}
}

// NewWAVMic plays a PCM 16-bit WAV file (any rate, mono or stereo).
func NewWAVMic(path string) (*Mic, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("boardtest: %w", err)
	}
	rec, err := board.ReadWAV(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if rec, err = rec.Resample(board.SampleRate); err != nil {
		return nil, err
	}
	return &Mic{Samples: rec.Samples, Opened: make(chan struct{})}, nil
}

// String implements board.Mic.
func (m *Mic) String() string { return "boardtest mic" }

// Open implements board.Mic.
func (m *Mic) Open(ctx context.Context) (board.Capture, error) {
	m.once.Do(func() {
		if m.Opened != nil {
			close(m.Opened)
		}
	})
	return &capture{ctx: ctx, m: m, start: time.Now()}, nil
}

type capture struct {
	ctx   context.Context
	m     *Mic
	pos   int // next sample
	sent  int // samples delivered
	start time.Time
}

func (c *capture) ReadSamples(p []int16) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.pos >= len(c.m.Samples) {
		if !c.m.Loop || len(c.m.Samples) == 0 {
			return 0, io.EOF
		}
		c.pos = 0
	}
	if c.m.Realtime {
		p = p[:min(len(p), board.SampleRate/50)]
		due := c.start.Add(time.Duration(c.sent+len(p)) * time.Second / board.SampleRate)
		t := time.NewTimer(time.Until(due))
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return 0, c.ctx.Err()
		}
	}
	n := copy(p, c.m.Samples[c.pos:])
	c.pos += n
	c.sent += n
	return n, nil
}

func (c *capture) Close() error { return nil }

// Volumes is a board.GlobVolumes on a temp dir: Insert makes a "stick" appear.
type Volumes struct {
	*board.GlobVolumes
	Root string // sticks are its subdirectories
}

// NewVolumes watches Root/* every 5 ms.
func NewVolumes(tb testing.TB) *Volumes {
	tb.Helper()
	root := tb.TempDir()
	v, err := board.NewGlobVolumes(board.VolumeOptions{
		Globs: []string{filepath.Join(root, "*")}, Interval: 5 * time.Millisecond})
	if err != nil {
		tb.Fatalf("boardtest: %v", err)
	}
	return &Volumes{GlobVolumes: v, Root: root}
}

// Insert "mounts" a stick named name and returns its path.
func (v *Volumes) Insert(tb testing.TB, name string) string {
	tb.Helper()
	dir := filepath.Join(v.Root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatalf("boardtest: %v", err)
	}
	return dir
}

// Remove "unmounts" it.
func (v *Volumes) Remove(tb testing.TB, name string) {
	tb.Helper()
	if err := os.RemoveAll(filepath.Join(v.Root, name)); err != nil {
		tb.Fatalf("boardtest: %v", err)
	}
}
