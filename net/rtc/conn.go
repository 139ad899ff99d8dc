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
	for c.dc.BufferedAmount() > sendHigh {
		select {
		case <-c.low:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			return ErrClosed
		}
	}
	select {
	case <-c.closed:
		return ErrClosed
	default:
	}
	if _, err := c.rw.WriteDataChannel(msg, true); err != nil {
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
				c.binary.Add(1)
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
			c.binary.Add(1)
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
func Pipe(depth int) (MsgConn, MsgConn) {
	ab := &pipeHalf{ch: make(chan []byte, depth), done: make(chan struct{})}
	ba := &pipeHalf{ch: make(chan []byte, depth), done: make(chan struct{})}
	shared := &pipeClose{}
	return &pipeEnd{out: ab, in: ba, c: shared}, &pipeEnd{out: ba, in: ab, c: shared}
}

type pipeHalf struct {
	ch   chan []byte
	done chan struct{}
}

type pipeClose struct{ once sync.Once }

type pipeEnd struct {
	out, in *pipeHalf
	c       *pipeClose
}

func (p *pipeEnd) Send(ctx context.Context, msg []byte) error {
	select {
	case <-p.out.done:
		return ErrClosed
	default:
	}
	select {
	case p.out.ch <- append([]byte(nil), msg...):
		return nil
	case <-p.out.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pipeEnd) Recv(ctx context.Context) ([]byte, error) {
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
			return nil, io.EOF
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *pipeEnd) Close() error {
	p.c.once.Do(func() {
		close(p.out.done)
		close(p.in.done)
	})
	return nil
}
