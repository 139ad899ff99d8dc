package board

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ArecordOptions configures an ArecordMic.
type ArecordOptions struct {
	// Path of the arecord tool (alsa-utils). Default: "arecord" looked up in PATH.
	Path string
	// Device is arecord's -D: "default", "plughw:1,0" (converts any format), "null" (silence,
	// for tests). Default "default".
	Device string
	// Rate and Channels asked of arecord. Default SampleRate and 1; set 48000 and 2 for a
	// "hw:" device that offers only that (samples are converted in Go).
	Rate, Channels int
	// Limit is arecord's -d: a capture ends by itself after this long even if nobody stops
	// it. Default 10 minutes. Rounded up to whole seconds.
	Limit time.Duration
}

// ArecordMic captures by running `arecord -q -t raw -f S16_LE -c C -r R -d N -D DEVICE`
// and reading its standard output: ALSA's plugins (plughw, dsnoop, PulseAudio/PipeWire
// bridges) are then available.
type ArecordMic struct {
	path string
	opts ArecordOptions
}

// NewArecordMic finds arecord; an *AbsentError if it is not installed.
func NewArecordMic(opts ArecordOptions) (*ArecordMic, error) {
	if opts.Path == "" {
		opts.Path = "arecord"
	}
	if opts.Device == "" {
		opts.Device = "default"
	}
	if opts.Rate <= 0 {
		opts.Rate = SampleRate
	}
	if opts.Channels <= 0 {
		opts.Channels = 1
	}
	if opts.Limit <= 0 {
		opts.Limit = 10 * time.Minute
	}
	path, err := exec.LookPath(opts.Path)
	if err != nil {
		return nil, &AbsentError{Feature: FeatureMic, Code: AbsentNoArecord, Reason: "arecord is not installed (apt install alsa-utils)", Err: err}
	}
	return &ArecordMic{path: path, opts: opts}, nil
}

// String implements Mic.
func (m *ArecordMic) String() string { return "arecord -D " + m.opts.Device }

// Open implements Mic: it starts arecord, which runs until the capture is closed, ctx ends or
// Limit passes.
func (m *ArecordMic) Open(ctx context.Context) (Capture, error) {
	conv, err := NewConverter(m.opts.Rate, m.opts.Channels, SampleRate)
	if err != nil {
		return nil, err
	}
	secs := int((m.opts.Limit + time.Second - 1) / time.Second)
	cmd := exec.CommandContext(ctx, m.path, "-q", "-t", "raw", "-f", "S16_LE",
		"-c", strconv.Itoa(m.opts.Channels), "-r", strconv.Itoa(m.opts.Rate),
		"-d", strconv.Itoa(secs), "-D", m.opts.Device)
	c := &arecordCapture{cmd: cmd, conv: conv, frame: 2 * m.opts.Channels}
	cmd.Stderr = &c.stderr
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("board: arecord: %w", err)
	}
	c.out = out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("board: start arecord: %w", err)
	}
	return c, nil
}

// limitedBuffer keeps the first 4 KiB written to it (arecord's error message).
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 4096 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(bytes.TrimSpace(b.buf.Bytes()))
}

type arecordCapture struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr limitedBuffer
	conv   *Converter
	frame  int    // bytes per input frame
	raw    []byte // bytes read, a partial frame carried over
	pcm    []int16
	ready  []int16 // converted samples not yet returned
	closed bool
	werr   error // arecord's exit, once waited for
}

func (c *arecordCapture) ReadSamples(p []int16) (int, error) {
	for len(c.ready) == 0 {
		if cap(c.raw) == 0 {
			c.raw = make([]byte, 0, 8192)
		}
		n, err := c.out.Read(c.raw[len(c.raw):cap(c.raw)])
		c.raw = c.raw[:len(c.raw)+n]
		whole := len(c.raw) / c.frame * c.frame
		c.pcm = c.pcm[:0]
		for i := 0; i+1 < whole; i += 2 {
			c.pcm = append(c.pcm, int16(binary.LittleEndian.Uint16(c.raw[i:])))
		}
		c.ready = c.conv.Convert(c.ready[:0], c.pcm)
		c.raw = c.raw[:copy(c.raw, c.raw[whole:])]
		if err != nil {
			if len(c.ready) > 0 {
				break // return these first; the next call sees the error again
			}
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.EBADF) || errors.Is(err, io.ErrClosedPipe) {
				if werr := c.wait(); werr != nil {
					return 0, werr
				}
				return 0, io.EOF
			}
			return 0, fmt.Errorf("board: read from arecord: %w", err)
		}
	}
	n := copy(p, c.ready)
	c.ready = c.ready[n:]
	return n, nil
}

// wait reaps arecord once and explains a failed exit with its own message.
func (c *arecordCapture) wait() error {
	if c.closed {
		return c.werr
	}
	c.closed = true
	if err := c.cmd.Wait(); err != nil {
		if msg := c.stderr.String(); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		c.werr = fmt.Errorf("board: arecord: %w", err)
	}
	return c.werr
}

// Close stops arecord (SIGTERM: it ends cleanly) and reaps it.
func (c *arecordCapture) Close() error {
	if c.closed {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	// arecord blocked writing to a full pipe would not get to its exit: closing our end
	// fails that write. One that still lingers is killed.
	_ = c.out.Close()
	kill := time.AfterFunc(2*time.Second, func() { _ = c.cmd.Process.Kill() })
	defer kill.Stop()
	err := c.wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) { // stopped by us: not an error
		return nil
	}
	return err
}
