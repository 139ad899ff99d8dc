//go:build linux

package board

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/gen2brain/alsa"
)

// Open implements Mic.
func (m *ALSAMic) Open(ctx context.Context) (Capture, error) {
	// Formats tried in order until the device accepts one.
	formats := [...]struct{ rate, channels uint32 }{
		{SampleRate, 1}, {48000, 1}, {44100, 1}, {SampleRate, 2}, {48000, 2}, {44100, 2},
	}
	var errs []error
	for _, f := range formats {
		pcm, err := alsa.PcmOpen(m.card, m.device, alsa.PCM_IN|alsa.PCM_NONBLOCK, &alsa.Config{
			Channels:    f.channels,
			Rate:        f.rate,
			PeriodSize:  f.rate / 50, // 20 ms
			PeriodCount: 8,
			Format:      alsa.SNDRV_PCM_FORMAT_S16_LE,
		})
		if err != nil {
			errs = append(errs, err)
			if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EACCES) {
				break // no such device, or in use, or not ours: no format will help
			}
			continue
		}
		conv, err := NewConverter(int(pcm.Rate()), int(pcm.Channels()), SampleRate)
		if err != nil {
			pcm.Close()
			return nil, err
		}
		if err := pcm.Start(); err != nil {
			pcm.Close()
			return nil, fmt.Errorf("board: start capture on %s: %w", m, err)
		}
		return &alsaCapture{ctx: ctx, pcm: pcm, conv: conv,
			raw: make([]int16, pcm.PeriodSize()*pcm.Channels())}, nil
	}
	return nil, fmt.Errorf("board: open %s for 16-bit capture: %w", m, errors.Join(errs...))
}

type alsaCapture struct {
	ctx  context.Context
	pcm  *alsa.PCM
	conv *Converter
	raw  []int16 // one period as the device delivers it
	out  []int16 // converted samples not yet returned
}

func (c *alsaCapture) ReadSamples(p []int16) (int, error) {
	for len(c.out) == 0 {
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
		ready, err := c.pcm.Wait(100)
		if err != nil && !errors.Is(err, syscall.EPIPE) { // an overrun is recovered by Read
			return 0, fmt.Errorf("board: capture: %w", err)
		}
		if !ready && err == nil {
			continue
		}
		frames, err := c.pcm.Read(c.raw)
		if err != nil && !errors.Is(err, syscall.EAGAIN) {
			return 0, fmt.Errorf("board: capture: %w", err)
		}
		c.out = c.conv.Convert(c.out[:0], c.raw[:frames*int(c.pcm.Channels())])
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

func (c *alsaCapture) Close() error {
	_ = c.pcm.Stop()
	return c.pcm.Close()
}

// firstCaptureDevice finds the first card with a capture device, or an *AbsentError.
func firstCaptureDevice() (card, dev uint, err error) {
	cards, err := alsa.EnumerateCards()
	if err != nil {
		return 0, 0, &AbsentError{Feature: FeatureMic, Code: AbsentNoSound, Reason: "no sound cards (no /proc/asound)", Err: err}
	}
	for _, c := range cards {
		for _, d := range c.Devices {
			if !d.IsPlayback {
				return uint(c.ID), uint(d.ID), nil
			}
		}
	}
	return 0, 0, &AbsentError{Feature: FeatureMic, Code: AbsentNoSound, Reason: "no sound card with a capture device (plug in a USB microphone)"}
}
