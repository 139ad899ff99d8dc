package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Limits of one client (a source address) and of the whole box: no client can take the
// box's places from the others, and nothing is held open forever. docs/OPERATIONS.md
// ("Limits: connections and requests") lists them all.
const (
	// MaxStreamsPerClient caps the event streams one address holds open (GET
	// /api/drop/events, the drop box's answer and verdict streams, /api/member/events).
	MaxStreamsPerClient = 8
	// MaxStreams caps the event streams of the whole box.
	MaxStreams = 64
	// MaxDropOffersPerClient caps the open drop-box offers one address published.
	MaxDropOffersPerClient = 8
	// MaxDropAnswersPerClient caps the answers one address posted that still wait for a
	// verdict, over every offer.
	MaxDropAnswersPerClient = 8
	// MaxConcurrentExports caps the history.json and history.zip downloads the box serves
	// at once (the box's own and every client's together): each is a pass over a whole
	// room, streamed, on a CPU that is also the peers'. One more is refused with 503 busy.
	MaxConcurrentExports = 2
	// DefaultBodyReadTimeout is how long a request may take to send its body (Options.
	// BodyReadTimeout); a slower one is cut with 408 slow-body.
	DefaultBodyReadTimeout = 30 * time.Second
	// DefaultWriteTimeout is how long one write of an event stream or an export may wait
	// for a client that does not read (Options.WriteTimeout); then the response is cut.
	DefaultWriteTimeout = 30 * time.Second
	// refusalLogEvery: a refused client is logged once per this, not once per request.
	refusalLogEvery = time.Minute
	// maxRefusalsLogged bounds the clients and limits remembered for that.
	maxRefusalsLogged = 1024
)

// Error codes of the limits (docs/PROTOCOL.md §8).
const (
	CodeTooMany   = "too-many"   // 429: this client holds its share already
	CodeSlowBody  = "slow-body"  // 408: the body did not arrive in time
	CodeStoreFull = "store-full" // 507: the box's store refuses to grow
	CodeBadSDP    = "bad-sdp"    // 400: the offer holds no connection the box can answer
)

// Errors a Box returns that the API reports with the codes above.
var (
	ErrBadSDP    = errors.New("web: the offer's SDP is not one the box can answer")
	ErrTooMany   = errors.New("web: this client holds too many of the box's places")
	ErrStoreFull = errors.New("web: the box's store is full")
)

// clientAddr is the request's source address (IPv4-mapped addresses as IPv4); the zero
// Addr when RemoteAddr is not an address.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

type clientKey struct{}

func withClient(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, clientKey{}, a)
}

// ClientAddr returns, inside Box.Connect, the inviting request's source address (the zero
// Addr when unknown): the box counts a client's connections by it.
func ClientAddr(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(clientKey{}).(netip.Addr)
	return a
}

// streamSlots counts the open event streams per client and in all.
type streamSlots struct {
	mu        sync.Mutex
	perClient map[netip.Addr]int
	total     int
}

func newStreamSlots() *streamSlots { return &streamSlots{perClient: make(map[netip.Addr]int)} }

// take reserves a stream for client; full says whose limit refused it ("" when taken).
func (s *streamSlots) take(client netip.Addr) (release func(), full string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.perClient[client] >= MaxStreamsPerClient:
		return nil, "client"
	case s.total >= MaxStreams:
		return nil, "box"
	}
	s.perClient[client]++
	s.total++
	return sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.total--
		if s.perClient[client]--; s.perClient[client] <= 0 {
			delete(s.perClient, client)
		}
	}), ""
}

// exportSlots counts the exports running (MaxConcurrentExports).
type exportSlots chan struct{}

func newExportSlots() exportSlots { return make(exportSlots, MaxConcurrentExports) }

// take reserves an export; false when MaxConcurrentExports run already.
func (s exportSlots) take() (release func(), ok bool) {
	select {
	case s <- struct{}{}:
		return sync.OnceFunc(func() { <-s }), true
	default:
		return nil, false
	}
}

// refusals logs a refused client once per refusalLogEvery and kind, so a client hammering
// a limit does not flood the log.
type refusals struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func newRefusals() *refusals { return &refusals{last: make(map[string]time.Time)} }

func (f *refusals) note(log *slog.Logger, what string, client netip.Addr) {
	key := what + " " + client.String()
	now := time.Now()
	f.mu.Lock()
	if now.Sub(f.last[key]) < refusalLogEvery {
		f.mu.Unlock()
		return
	}
	if len(f.last) >= maxRefusalsLogged { // forget the old ones; the map stays small
		for k, t := range f.last {
			if now.Sub(t) >= refusalLogEvery {
				delete(f.last, k)
			}
		}
		if len(f.last) >= maxRefusalsLogged { // that many clients refused this minute: enough said
			f.mu.Unlock()
			return
		}
	}
	f.last[key] = now
	f.mu.Unlock()
	log.Warn("refused: over a limit (logged once a minute per client)", "limit", what, "client", client)
}

// tooMany answers 429 too-many and logs the refusal once in a while.
func (o Options) tooMany(w http.ResponseWriter, r *http.Request, what, msg string) {
	o.refused.note(o.Logger, what, clientAddr(r))
	fail(w, http.StatusTooManyRequests, CodeTooMany, msg)
}

// openStream reserves an event stream for r's client, or answers 429 (this client's share
// is taken) or 503 busy (the box's) and returns false.
func (o Options) openStream(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	release, full := o.streams.take(clientAddr(r))
	switch full {
	case "client":
		o.tooMany(w, r, "event streams per client", "this device has too many event streams open; close a tab")
		return nil, false
	case "box":
		o.refused.note(o.Logger, "event streams", netip.Addr{})
		fail(w, http.StatusServiceUnavailable, "busy", "the box has too many event streams open; try again later")
		return nil, false
	}
	return release, true
}

// readBody reads r's body, at most limit bytes and within BodyReadTimeout: a client that
// trickles its body does not hold the connection. A read deadline per handler, not the
// server's ReadTimeout, which would cut the event streams too. The deadline is lifted
// once the body is read: a handler may take longer to answer.
func (o Options) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(o.BodyReadTimeout)); err == nil {
		defer rc.SetReadDeadline(time.Time{})
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

// slowBody answers 408 slow-body when err is readBody's deadline, and says whether it did.
func (o Options) slowBody(w http.ResponseWriter, r *http.Request, err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	o.refused.note(o.Logger, "slow request body", clientAddr(r))
	w.Header().Set("Connection", "close")
	fail(w, http.StatusRequestTimeout, CodeSlowBody, "the request's body did not arrive in time")
	return true
}

// deadlineWriter bounds each write of a long response (an export) by a write deadline, so
// a client that stops reading does not hold the box's goroutine and buffers. The deadline
// is lifted between writes: on HTTP/2 a deadline that passes resets the stream even when
// nothing is being written.
type deadlineWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	if err := d.rc.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return d.w.Write(p) // a writer without deadlines (a test's recorder)
	}
	defer d.rc.SetWriteDeadline(time.Time{})
	return d.w.Write(p)
}
