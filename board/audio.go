package board

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// SampleRate is the rate of every Mic's samples: 16 kHz, plenty for speech.
const SampleRate = 16000

// Mic is a microphone delivering 16-bit mono PCM at SampleRate.
type Mic interface {
	// Open starts a capture. The capture stops when it is closed or ctx ends.
	Open(ctx context.Context) (Capture, error)
	// String names the device for logs.
	String() string
}

// Capture is a running capture.
type Capture interface {
	// ReadSamples fills p with mono samples at SampleRate. It blocks until at least one sample
	// is there (at most about one device period, tens of milliseconds, while the device
	// delivers). io.EOF means the source ended (a fake's file, arecord's -d limit).
	ReadSamples(p []int16) (int, error)
	// Close stops the capture and releases the device.
	Close() error
}

// Recording is mono 16-bit PCM.
type Recording struct {
	SampleRate int     // samples per second; SampleRate for every Mic's recordings
	Samples    []int16 // mono, in order
}

// Duration is how long the recording plays.
func (r *Recording) Duration() time.Duration {
	if r == nil || r.SampleRate <= 0 {
		return 0
	}
	return time.Duration(len(r.Samples)) * time.Second / time.Duration(r.SampleRate)
}

// Record captures from m until stop is closed (the push-to-talk button was released), max of
// audio has been captured, the source ends, or ctx ends. It returns what was captured, with a
// nil error, in the first three cases; when ctx ends it returns ctx.Err() (and what it had).
// A nil stop never fires. max <= 0 means no limit other than the others.
func Record(ctx context.Context, m Mic, stop <-chan struct{}, max time.Duration) (*Recording, error) {
	limit := -1
	if max > 0 {
		limit = int(max * SampleRate / time.Second)
	}
	c, err := m.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("board: record from %s: %w", m, err)
	}
	rec := &Recording{SampleRate: SampleRate}
	buf := make([]int16, SampleRate/20) // 50 ms
	for limit < 0 || len(rec.Samples) < limit {
		select {
		case <-stop:
			return rec, closeCapture(c, m, nil)
		case <-ctx.Done():
			return rec, closeCapture(c, m, ctx.Err())
		default:
		}
		want := buf
		if limit >= 0 && limit-len(rec.Samples) < len(want) {
			want = want[:limit-len(rec.Samples)]
		}
		n, err := c.ReadSamples(want)
		rec.Samples = append(rec.Samples, want[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return rec, closeCapture(c, m, ctx.Err())
			}
			return rec, closeCapture(c, m, fmt.Errorf("board: record from %s: %w", m, err))
		}
	}
	return rec, closeCapture(c, m, nil)
}

func closeCapture(c Capture, m Mic, err error) error {
	if cerr := c.Close(); cerr != nil && err == nil {
		return fmt.Errorf("board: stop recording from %s: %w", m, cerr)
	}
	return err
}

// Converter turns interleaved 16-bit PCM of any rate and channel count into mono at another
// rate: channels are averaged (downmix); for a lower rate each output sample is the mean of the
// input samples it covers (a box filter, enough against aliasing for speech from 44.1 or
// 48 kHz); for a higher rate samples are held. It keeps its state between calls, so a stream
// can be converted in chunks of any size. Not safe for concurrent use.
type Converter struct {
	inRate, outRate, channels int
	phase                     int   // accumulated outRate units since the last output
	acc                       int64 // sum of mono input samples since the last output
	n                         int64 // their count
	last                      int16 // the last mono input sample (for upsampling)
	frame                     []int16
}

// NewConverter converts from inRate Hz with channels interleaved channels to mono outRate Hz.
func NewConverter(inRate, channels, outRate int) (*Converter, error) {
	if inRate <= 0 || outRate <= 0 || channels <= 0 {
		return nil, fmt.Errorf("board: convert %d Hz × %d channels to %d Hz: invalid format", inRate, channels, outRate)
	}
	return &Converter{inRate: inRate, outRate: outRate, channels: channels}, nil
}

// Convert appends to dst the mono output for the interleaved input in, and returns dst.
// A partial frame at the end of in is kept for the next call.
func (c *Converter) Convert(dst, in []int16) []int16 {
	if c.inRate == c.outRate && c.channels == 1 && len(c.frame) == 0 {
		return append(dst, in...)
	}
	for _, s := range in {
		c.frame = append(c.frame, s)
		if len(c.frame) < c.channels {
			continue
		}
		var sum int
		for _, v := range c.frame {
			sum += int(v)
		}
		c.frame = c.frame[:0]
		mono := int16(sum / c.channels)
		c.last = mono
		c.acc += int64(mono)
		c.n++
		c.phase += c.outRate
		for c.phase >= c.inRate {
			c.phase -= c.inRate
			if c.n > 0 {
				dst = append(dst, int16(c.acc/c.n))
				c.acc, c.n = 0, 0
			} else {
				dst = append(dst, c.last)
			}
		}
	}
	return dst
}
