package rtc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/webrtc/v4"
)

// MsgConn is a message transport: whole text messages, ordered and reliable. Session
// needs nothing more, so the same protocol runs over a pion DataChannel
// (DataChannelConn) or an in-memory pipe (Pipe).
type MsgConn interface {
	// Send queues one text message. It blocks while the transport's send buffer is full
	// (flow control) until there is room, ctx ends or the connection closes.
	Send(ctx context.Context, msg []byte) error
	// Recv returns the next text message. It returns io.EOF when the remote side closed
	// cleanly and an error wrapping ErrTooLarge for a message over MaxMessage (dropped;
	// the next Recv goes on). Not safe for concurrent use.
	Recv(ctx context.Context) ([]byte, error)
	// Close closes the connection; a pending Send or Recv returns.
	Close() error
}

// FrameConn is a MsgConn that also carries the binary frames of file pieces
// (PROTOCOL.md §5). DataChannelConn and Pipe are FrameConns.
type FrameConn interface {
	MsgConn
	// SendFrame queues one binary frame, under the same flow control as Send.
	SendFrame(ctx context.Context, frame []byte) error
	// HandleFrames sets the function Recv hands each received binary frame to (from Recv's
	// goroutine; it must not block). Frames are dropped until it is set.
	HandleFrames(func(frame []byte))
}

// MaxFrameIn is the largest binary frame handed on; larger ones are dropped.
const MaxFrameIn = 1 + 32 + 4 + 4096*32

// Errors of the transports.
var (
	ErrClosed   = errors.New("rtc: connection closed")
	ErrTooLarge = errors.New("rtc: message too large")
)

// Flow control: Send waits while more than sendHigh bytes are queued and resumes when
// the queue drains to sendLow.
const (
	sendHigh = 1 << 20
	sendLow  = 256 << 10
)

// DataChannelConn is a MsgConn over a detached pion DataChannel. Binary frames are
// reserved for file pieces and skipped.
type DataChannelConn struct {
	dc     *webrtc.DataChannel
	rw     datachannel.ReadWriteCloserDeadliner
	low    chan struct{} // a token each time the buffered amount falls to sendLow
	closed chan struct{}
	once   sync.Once
	buf    []byte
	binary atomic.Int64
	peak   atomic.Uint64 // the most bytes seen queued after a send
	frames atomic.Pointer[func([]byte)]
}

// HandleFrames implements FrameConn.
func (c *DataChannelConn) HandleFrames(f func([]byte)) { c.frames.Store(&f) }

func (c *DataChannelConn) frame(b []byte) {
	if f := c.frames.Load(); f != nil && len(b) <= MaxFrameIn {
		(*f)(append([]byte(nil), b...))
		return
	}
	c.binary.Add(1)
}

// Open waits for dc to open, detaches it and returns it as a MsgConn. The API must come
// from NewAPI (detached data channels).
func Open(ctx context.Context, dc *webrtc.DataChannel) (*DataChannelConn, error) {
	type result struct {
		rw  datachannel.ReadWriteCloserDeadliner
		err error
	}
	opened := make(chan result, 1)
	dc.OnOpen(func() {
		rw, err := dc.DetachWithDeadline()
		opened <- result{rw, err}
	})
	var r result
	select {
	case r = <-opened:
	case <-ctx.Done():
		return nil, fmt.Errorf("rtc: open data channel: %w", ctx.Err())
	}
	if r.err != nil {
		return nil, fmt.Errorf("rtc: detach data channel: %w", r.err)
	}
	c := &DataChannelConn{
		dc:     dc,
		rw:     r.rw,
		low:    make(chan struct{}, 1),
		closed: make(chan struct{}),
		buf:    make([]byte, MaxMessage),
	}
	dc.SetBufferedAmountLowThreshold(sendLow)
	dc.OnBufferedAmountLow(func() {
		select {
		case c.low <- struct{}{}:
		default:
		}
	})
	return c, nil
}

// Send writes one text message, waiting first while the channel's buffered amount is
// above the high-water mark.
func (c *DataChannelConn) Send(ctx context.Context, msg []byte) error {
	return c.write(ctx, msg, true)
}

// SendFrame implements FrameConn.
func (c *DataChannelConn) SendFrame(ctx context.Context, frame []byte) error {
	return c.write(ctx, frame, false)
}

func (c *DataChannelConn) write(ctx context.Context, msg []byte, text bool) error {
	for c.dc.BufferedAmount() > sendHigh {
		// Two senders (entries and file pieces) may wait at once and one low-water token
		// wakes one of them: the other re-checks on a short timer.
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-c.low:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-c.closed:
			t.Stop()
			return ErrClosed
		}
		t.Stop()
	}
	select {
	case <-c.closed:
		return ErrClosed
	default:
	}
	if _, err := c.rw.WriteDataChannel(msg, text); err != nil {
		return fmt.Errorf("rtc: send: %w", err)
	}
	if q := c.dc.BufferedAmount(); q > c.peak.Load() {
		c.peak.Store(q) // one sender at a time
	}
	return nil
}

// Recv reads the next text message.
func (c *DataChannelConn) Recv(ctx context.Context) ([]byte, error) {
	if err := c.rw.SetReadDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("rtc: recv: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.rw.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		n, text, err := c.rw.ReadDataChannel(c.buf)
		switch {
		case errors.Is(err, io.ErrShortBuffer):
			// The message stays queued until read whole (pion does not say its size):
			// drain it into ever larger buffers, then drop it.
			n, text, err = c.drain()
			if err != nil {
				return nil, err
			}
			if !text {
				c.binary.Add(1) // over MaxFrameIn anyway
				continue
			}
			return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			select {
			case <-c.closed:
				return nil, ErrClosed
			default:
			}
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // a deadline left over from a cancelled context
			}
			return nil, fmt.Errorf("rtc: recv: %w", err)
		case !text:
			c.frame(c.buf[:n])
			continue
		}
		return append([]byte(nil), c.buf[:n]...), nil
	}
}

// maxDrain is the largest message Recv reads to drop it; a larger one (above the
// a=max-message-size this side advertises) ends the connection.
const maxDrain = 16 << 20

func (c *DataChannelConn) drain() (int, bool, error) {
	for size := 2 * len(c.buf); size <= maxDrain; size *= 2 {
		n, text, err := c.rw.ReadDataChannel(make([]byte, size))
		if errors.Is(err, io.ErrShortBuffer) {
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("rtc: recv: drop large message: %w", err)
		}
		return n, text, nil
	}
	return 0, false, fmt.Errorf("rtc: recv: a message over %d bytes blocks the channel", maxDrain)
}

// Binary is the number of binary frames skipped so far.
func (c *DataChannelConn) Binary() int64 { return c.binary.Load() }

// Close closes the DataChannel (the remote's Recv then returns io.EOF).
func (c *DataChannelConn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.closed)
		err = c.dc.Close()
	})
	if err != nil {
		return fmt.Errorf("rtc: close data channel: %w", err)
	}
	return nil
}

// Pipe returns two connected in-memory MsgConns with a queue of depth messages each way
// (a full queue blocks Send, like flow control). Closing either end closes both: the
// other end's Recv returns what is queued, then io.EOF.
func Pipe(depth int) (FrameConn, FrameConn) {
	ab := &pipeHalf{ch: make(chan pipeMsg, depth), done: make(chan struct{})}
	ba := &pipeHalf{ch: make(chan pipeMsg, depth), done: make(chan struct{})}
	shared := &pipeClose{}
	return &pipeEnd{out: ab, in: ba, c: shared}, &pipeEnd{out: ba, in: ab, c: shared}
}

type pipeMsg struct {
	b     []byte
	frame bool
}

type pipeHalf struct {
	ch   chan pipeMsg
	done chan struct{}
}

type pipeClose struct{ once sync.Once }

type pipeEnd struct {
	out, in *pipeHalf
	c       *pipeClose
	frames  atomic.Pointer[func([]byte)]
}

func (p *pipeEnd) Send(ctx context.Context, msg []byte) error { return p.send(ctx, msg, false) }

// SendFrame implements FrameConn.
func (p *pipeEnd) SendFrame(ctx context.Context, frame []byte) error {
	return p.send(ctx, frame, true)
}

// HandleFrames implements FrameConn.
func (p *pipeEnd) HandleFrames(f func([]byte)) { p.frames.Store(&f) }

func (p *pipeEnd) send(ctx context.Context, msg []byte, frame bool) error {
	select {
	case <-p.out.done:
		return ErrClosed
	default:
	}
	select {
	case p.out.ch <- pipeMsg{append([]byte(nil), msg...), frame}:
		return nil
	case <-p.out.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pipeEnd) Recv(ctx context.Context) ([]byte, error) {
	for {
		m, err := p.recv(ctx)
		if err != nil || !m.frame {
			return m.b, err
		}
		if f := p.frames.Load(); f != nil && len(m.b) <= MaxFrameIn {
			(*f)(m.b)
		}
	}
}

func (p *pipeEnd) recv(ctx context.Context) (pipeMsg, error) {
	select {
	case m := <-p.in.ch:
		return m, nil
	default:
	}
	select {
	case m := <-p.in.ch:
		return m, nil
	case <-p.in.done:
		select {
		case m := <-p.in.ch:
			return m, nil
		default:
			return pipeMsg{}, io.EOF
		}
	case <-ctx.Done():
		return pipeMsg{}, ctx.Err()
	}
}

func (p *pipeEnd) Close() error {
	p.c.once.Do(func() {
		close(p.out.done)
		close(p.in.done)
	})
	return nil
}
