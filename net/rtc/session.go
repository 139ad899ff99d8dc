package rtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store/history"
)

// Errors that end a session.
var (
	ErrWrongRoom   = errors.New("rtc: peer is in another room")
	ErrVersion     = errors.New("rtc: peer speaks another protocol version")
	ErrSessionDone = errors.New("rtc: session is over")
)

// errRemoteClosed is how the receiver reports a clean close by the peer.
var errRemoteClosed = errors.New("rtc: closed by the peer")

// sendGrace is how long a failed send waits for the receiver to see why (a clean close by
// the peer is not an error) before the session ends with the send error.
const sendGrace = 2 * time.Second

// helloAgainMax bounds the hellos a session re-sends while the peer's has not arrived.
const helloAgainMax = 3

// Config wires a Session.
type Config struct {
	Room    string   // this room's id (32 lowercase hex)
	Self    PeerInfo // this device, as stated in hello
	History History
	Conn    MsgConn
	// OnEvent, when set, is told what happens (see EventKind). It is called from the
	// session's goroutines, at times two at once, and must not block.
	OnEvent func(Event)
	// MaxPending caps the received entries held because an earlier entry of their author
	// had not arrived yet (a gap); 0 means 1000. Beyond it they are refused as gaps.
	MaxPending int
	// Files, when set, receives the peer's file messages and frames (PROTOCOL.md §5) once
	// it has said hello; Conn must then be a FrameConn. SendControl and SendFrame answer.
	Files FileHandler
	// Now is this side's clock, stated in hello; nil means time.Now.
	Now func() time.Time
	// HelloRetry is how long the session waits for the peer's hello before sending its
	// own again, asking for it; 0 means 2 s.
	HelloRetry time.Duration
	Logger     *slog.Logger // nil means slog.Default()
}

// FileHandler receives what the peer says about files. Calls come from the session's
// receive goroutine, in order, and must not block.
type FileHandler interface {
	Control(c pieces.Control)
	Frame(frame []byte)
}

// EventKind says what an Event reports.
type EventKind int

// Events.
const (
	EventHello   EventKind = iota + 1 // the peer said hello: Peer
	EventAdded                        // entries received and newly stored: Entries
	EventAcked                        // the peer stored these of ours: IDs
	EventRefused                      // a received entry was refused: ID, Code, Err
	EventSynced                       // everything the peer lacked at hello has been sent
)

// Event is something a UI or the appliance may show.
type Event struct {
	Kind    EventKind
	Peer    PeerInfo
	Entries []history.Entry
	IDs     []string
	ID      string // the refused entry's id as claimed (may be empty or wrong)
	Code    string // the history error code of a refusal ("" for a store failure)
	Err     error
	PeerNow time.Time // EventHello: the peer's clock when it said hello (zero when not stated)
}

// Stats counts what crossed the connection and what became of it.
type Stats struct {
	MessagesSent, MessagesReceived, MessagesDropped int64
	BytesSent, BytesReceived                        int64
	EntriesSent, EntriesReceived                    int64
	Added, Duplicates, Refused, Acked               int64
}

type counters struct {
	messagesSent, messagesReceived, messagesDropped atomic.Int64
	bytesSent, bytesReceived                        atomic.Int64
	entriesSent, entriesReceived                    atomic.Int64
	added, duplicates, refused, acked               atomic.Int64
}

// Session runs the sync protocol (PROTOCOL.md §2) for one room over one connection: hello
// both ways, then each side sends what the other lacks, oldest first per author, in
// batches under the transport's flow control, and acknowledges what it stored; after that
// it carries newly written entries live (Publish) until either side closes.
type Session struct {
	cfg Config
	log *slog.Logger
	st  counters

	pub      chan history.Entry
	hello    chan *Hello // the peer's hello, receiver → sender, once
	gotHello atomic.Bool
	again    chan *Hello   // a later hello asking for ours again, receiver → sender
	nudge    chan struct{} // a message came before the peer's hello, receiver → sender
	peerID   string        // set with gotHello

	ackMu    sync.Mutex
	acks     []string
	ackReady chan struct{}

	peerMu  sync.Mutex
	peerHas map[string]int64 // per author, the last seq the peer is known to hold

	pending  map[string]map[int64]history.Entry // receiver only: entries after a gap
	npending int

	started atomic.Bool
	done    chan struct{}
}

// NewSession checks cfg and returns a session; Run starts it.
func NewSession(cfg Config) (*Session, error) {
	switch {
	case !reRoom.MatchString(cfg.Room):
		return nil, errors.New("rtc: session: room wants 32 lowercase hex characters")
	case !rePeerID.MatchString(cfg.Self.ID):
		return nil, errors.New("rtc: session: peer id wants 1..64 of [A-Za-z0-9_-]")
	case cfg.Self.Name == "" || !history.ValidText(cfg.Self.Name, maxPeerField):
		return nil, errors.New("rtc: session: peer name wants 1..64 bytes of text")
	case cfg.History == nil:
		return nil, errors.New("rtc: session: no history")
	case cfg.Conn == nil:
		return nil, errors.New("rtc: session: no connection")
	}
	if _, ok := cfg.Conn.(FrameConn); cfg.Files != nil && !ok {
		return nil, errors.New("rtc: session: files need a connection that carries frames")
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 1000
	}
	if cfg.HelloRetry <= 0 {
		cfg.HelloRetry = 2 * time.Second
	}
	return &Session{
		cfg:      cfg,
		log:      logger(cfg.Logger).With("room", cfg.Room),
		pub:      make(chan history.Entry, 256),
		hello:    make(chan *Hello, 1),
		again:    make(chan *Hello, 1),
		nudge:    make(chan struct{}, 1),
		ackReady: make(chan struct{}, 1),
		peerHas:  make(map[string]int64),
		pending:  make(map[string]map[int64]history.Entry),
		done:     make(chan struct{}),
	}, nil
}

// Stats returns the counters so far.
func (s *Session) Stats() Stats {
	return Stats{
		MessagesSent: s.st.messagesSent.Load(), MessagesReceived: s.st.messagesReceived.Load(),
		MessagesDropped: s.st.messagesDropped.Load(),
		BytesSent:       s.st.bytesSent.Load(), BytesReceived: s.st.bytesReceived.Load(),
		EntriesSent: s.st.entriesSent.Load(), EntriesReceived: s.st.entriesReceived.Load(),
		Added: s.st.added.Load(), Duplicates: s.st.duplicates.Load(),
		Refused: s.st.refused.Load(), Acked: s.st.acked.Load(),
	}
}

// Publish hands the peer a new local entry, already stored in the History. It is sent at
// once, or after the author's earlier entries still queued for the sync; an entry the
// peer holds or will receive with the sync is not sent twice. Safe from any goroutine.
func (s *Session) Publish(ctx context.Context, e history.Entry) error {
	select {
	case <-s.done:
		return ErrSessionDone
	default:
	}
	select {
	case s.pub <- e:
		return nil
	case <-s.done:
		return ErrSessionDone
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run speaks the protocol until ctx ends or the peer closes (both return nil), or a fatal
// error: the peer is in another room (ErrWrongRoom) or speaks another version
// (ErrVersion), or the transport fails. It closes the connection before returning and may
// be called once.
func (s *Session) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("rtc: session: Run called twice")
	}
	defer close(s.done)
	if fc, ok := s.cfg.Conn.(FrameConn); ok && s.cfg.Files != nil {
		fc.HandleFrames(func(b []byte) {
			if !s.gotHello.Load() {
				s.st.messagesDropped.Add(1)
				return
			}
			s.cfg.Files.Frame(b)
		})
	}
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() { cancel(s.sendLoop(rctx)) })
	wg.Go(func() { cancel(s.recvLoop(rctx)) })
	<-rctx.Done()
	if err := s.cfg.Conn.Close(); err != nil {
		s.log.Debug("close", "err", err)
	}
	wg.Wait()
	err := context.Cause(rctx)
	if ctx.Err() != nil || errors.Is(err, errRemoteClosed) {
		return nil
	}
	return err
}

// SendControl sends a file control message (want, nope, got, cancel). Safe from any
// goroutine while Run runs.
func (s *Session) SendControl(ctx context.Context, c pieces.Control) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("rtc: session: %w", err)
	}
	if err := s.send(ctx, b); err != nil {
		return fmt.Errorf("rtc: session: send %s: %w", c.T, err)
	}
	return nil
}

// SendFrame sends a binary frame (a piece or hashes) under the channel's flow control.
// Safe from any goroutine while Run runs.
func (s *Session) SendFrame(ctx context.Context, frame []byte) error {
	fc, ok := s.cfg.Conn.(FrameConn)
	if !ok {
		return errors.New("rtc: session: the connection carries no frames")
	}
	if err := fc.SendFrame(ctx, frame); err != nil {
		return fmt.Errorf("rtc: session: send frame: %w", err)
	}
	s.st.messagesSent.Add(1)
	s.st.bytesSent.Add(int64(len(frame)))
	return nil
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (s *Session) event(ev Event) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(ev)
	}
}

func (s *Session) send(ctx context.Context, msg []byte) error {
	if err := s.cfg.Conn.Send(ctx, msg); err != nil {
		return err
	}
	s.st.messagesSent.Add(1)
	s.st.bytesSent.Add(int64(len(msg)))
	return nil
}

func (s *Session) peerSeq(author string) int64 {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	return s.peerHas[author]
}

func (s *Session) notePeerHas(author string, seq int64) {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	if seq > s.peerHas[author] {
		s.peerHas[author] = seq
	}
}

// ---- sending ----

// sender is the state of the send loop.
type sender struct {
	queue     []history.Entry  // what the peer lacks, in send order
	remaining map[string]int   // queued entries per author
	sent      map[string]int64 // per author, the last seq queued or sent
	snapshot  bool             // the peer's hello was answered with a queue
	synced    bool
	batch     batch
}

func (s *Session) sendLoop(ctx context.Context) error {
	err := s.sendAll(ctx)
	if err == nil || ctx.Err() != nil {
		return ctx.Err()
	}
	// The receiver usually knows better (a clean close): give it a moment.
	t := time.NewTimer(sendGrace)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return err
	}
}

func (s *Session) sendAll(ctx context.Context) error {
	if err := s.sendHello(ctx, false); err != nil {
		return err
	}
	sn := &sender{remaining: make(map[string]int), sent: make(map[string]int64)}
	helloCh := s.hello
	// Until the peer's hello arrives, ours is sent again (asking for theirs) after
	// helloRetry, or at once when the peer's other messages come first; at most helloAgainMax.
	asked := 0
	retry := time.NewTimer(s.cfg.HelloRetry)
	defer retry.Stop()
	retryC, nudgeC := retry.C, s.nudge
	askAgain := func() error {
		if asked >= helloAgainMax || s.gotHello.Load() {
			retryC, nudgeC = nil, nil
			return nil
		}
		asked++
		s.log.Info("no hello from the peer yet: asking again", "ask", asked)
		retry.Reset(s.cfg.HelloRetry)
		return s.sendHello(ctx, true)
	}
	for {
		if err := s.flushAcks(ctx); err != nil {
			return err
		}
		if len(sn.queue) > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case e := <-s.pub:
				if err := s.publish(ctx, sn, e); err != nil {
					return err
				}
			case h := <-s.again:
				if err := s.answerAgain(ctx, sn, h); err != nil {
					return err
				}
			default:
				if err := s.sendBatch(ctx, sn); err != nil {
					return err
				}
			}
			continue
		}
		if sn.snapshot && !sn.synced {
			sn.synced = true
			s.event(Event{Kind: EventSynced})
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case h := <-helloCh:
			helloCh, retryC, nudgeC = nil, nil, nil
			if h.Again {
				if err := s.sendHello(ctx, false); err != nil {
					return err
				}
			}
			if err := s.sendForks(ctx, h); err != nil {
				return err
			}
			s.takeSnapshot(sn, h.Heads)
		case h := <-s.again:
			if err := s.answerAgain(ctx, sn, h); err != nil {
				return err
			}
		case <-retryC:
			if err := askAgain(); err != nil {
				return err
			}
		case <-nudgeC:
			if err := askAgain(); err != nil {
				return err
			}
		case e := <-s.pub:
			if err := s.publish(ctx, sn, e); err != nil {
				return err
			}
		case <-s.ackReady:
		}
	}
}

func (s *Session) sendHello(ctx context.Context, again bool) error {
	hello, err := EncodeHello(Hello{V: Version, Room: s.cfg.Room, Peer: s.cfg.Self, Heads: s.cfg.History.Heads(), Tips: s.cfg.History.Tips(),
		Again: again, Now: s.cfg.now().UnixMilli()})
	if err != nil {
		return fmt.Errorf("rtc: session: %w", err)
	}
	if err := s.send(ctx, hello); err != nil {
		return fmt.Errorf("rtc: session: send hello: %w", err)
	}
	return nil
}

// answerAgain answers a peer that missed this side's hello, after this side got the
// peer's: hello again, and what the peer lacks by the heads it states now (what was
// sent before may have been dropped as arriving before a hello).
func (s *Session) answerAgain(ctx context.Context, sn *sender, h *Hello) error {
	if err := s.sendHello(ctx, false); err != nil {
		return err
	}
	if !sn.snapshot {
		return nil // the first hello is still on its way to the sender; its snapshot comes next
	}
	clear(sn.remaining)
	s.takeSnapshot(sn, h.Heads)
	return nil
}

// sendForks compares the peer's tips with this side's entries at the same seqs. Where they
// differ, the author is forked: it is marked here, and this side's entry at that seq is
// sent so that the peer, which refuses it as a fork, marks the author too.
func (s *Session) sendForks(ctx context.Context, h *Hello) error {
	var forks []history.Entry
	for a, id := range h.Tips {
		if e, ok := s.cfg.History.At(a, h.Heads[a]); ok && e.ID != id {
			s.cfg.History.MarkForked(a)
			forks = append(forks, e)
			s.log.Warn("forked author", "author", a, "seq", e.Seq)
			s.event(Event{Kind: EventRefused, ID: e.ID, Code: history.CodeFork, Err: &history.Error{Code: history.CodeFork, Msg: "the peer holds another entry at this seq"}})
		}
	}
	if len(forks) == 0 {
		return nil
	}
	msgs, err := EncodeEntries(forks)
	if err != nil {
		return fmt.Errorf("rtc: session: %w", err)
	}
	for _, m := range msgs {
		if err := s.send(ctx, m); err != nil {
			return fmt.Errorf("rtc: session: send forks: %w", err)
		}
	}
	return nil
}

// takeSnapshot queues what the peer lacks by its hello.
func (s *Session) takeSnapshot(sn *sender, heads map[string]int64) {
	sn.queue = s.cfg.History.Missing(heads)
	seqOrder(sn.queue)
	for _, e := range sn.queue {
		sn.remaining[e.Author]++
		sn.sent[e.Author] = max(sn.sent[e.Author], e.Seq)
	}
	sn.snapshot = true
	s.log.Debug("sync queued", "entries", len(sn.queue))
}

func (s *Session) publish(ctx context.Context, sn *sender, e history.Entry) error {
	switch {
	case !sn.snapshot:
		return nil // stored before the snapshot is taken, so it will be in it
	case e.Seq <= sn.sent[e.Author] || e.Seq <= s.peerSeq(e.Author):
		return nil // queued, sent, or the peer has it
	case sn.remaining[e.Author] > 0:
		sn.queue = append(sn.queue, e) // after the author's earlier entries
		sn.remaining[e.Author]++
		sn.sent[e.Author] = e.Seq
		return nil
	}
	msgs, err := EncodeEntries([]history.Entry{e})
	if err != nil {
		s.log.Error("entry not sent", "id", e.ID, "err", err)
		return nil
	}
	sn.sent[e.Author] = e.Seq
	if err := s.send(ctx, msgs[0]); err != nil {
		return fmt.Errorf("rtc: session: send entry: %w", err)
	}
	s.st.entriesSent.Add(1)
	return nil
}

// sendBatch sends the next entries message from the queue.
func (s *Session) sendBatch(ctx context.Context, sn *sender) error {
	b := &sn.batch
	b.reset()
	k := 0
	for ; k < len(sn.queue); k++ {
		e := sn.queue[k]
		if e.Seq <= s.peerSeq(e.Author) {
			sn.remaining[e.Author]--
			continue // the peer got it meanwhile (from us live, or from elsewhere)
		}
		raw, err := json.Marshal(e)
		if err != nil {
			s.log.Error("entry not sent", "id", e.ID, "err", err)
			sn.remaining[e.Author]--
			continue
		}
		if !b.fits(raw) {
			if b.n > 0 {
				break
			}
			s.log.Error("entry not sent", "id", e.ID, "err", ErrTooLarge, "bytes", len(raw))
			sn.remaining[e.Author]--
			continue
		}
		b.add(raw)
		sn.remaining[e.Author]--
	}
	clear(sn.queue[:k]) // let the sent entries go
	sn.queue = sn.queue[k:]
	if b.n == 0 {
		return nil
	}
	if err := s.send(ctx, b.bytes()); err != nil {
		return fmt.Errorf("rtc: session: send entries: %w", err)
	}
	s.st.entriesSent.Add(int64(b.n))
	return nil
}

func (s *Session) nudgeSender() {
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

func (s *Session) queueAcks(ids []string) {
	if len(ids) == 0 {
		return
	}
	s.ackMu.Lock()
	s.acks = append(s.acks, ids...)
	s.ackMu.Unlock()
	select {
	case s.ackReady <- struct{}{}:
	default:
	}
}

func (s *Session) flushAcks(ctx context.Context) error {
	s.ackMu.Lock()
	ids := s.acks
	s.acks = nil
	s.ackMu.Unlock()
	for len(ids) > 0 {
		n := min(len(ids), ackIDs)
		msg, err := EncodeAck(ids[:n])
		if err != nil {
			return fmt.Errorf("rtc: session: %w", err)
		}
		if err := s.send(ctx, msg); err != nil {
			return fmt.Errorf("rtc: session: send ack: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

// ---- receiving ----

func (s *Session) recvLoop(ctx context.Context) error {
	for {
		msg, err := s.cfg.Conn.Recv(ctx)
		switch {
		case errors.Is(err, ErrTooLarge):
			s.st.messagesDropped.Add(1)
			s.log.Warn("message dropped", "err", err)
			continue
		case errors.Is(err, io.EOF):
			return errRemoteClosed
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return fmt.Errorf("rtc: session: receive: %w", err)
		}
		s.st.messagesReceived.Add(1)
		s.st.bytesReceived.Add(int64(len(msg)))
		m, err := DecodeMessage(msg)
		if err != nil {
			s.st.messagesDropped.Add(1)
			s.log.Warn("message dropped", "bytes", len(msg), "err", err)
			continue
		}
		switch m.T {
		case TypeHello:
			if err := s.onHello(m.Hello); err != nil {
				return err
			}
		case TypeEntries:
			s.onEntries(m.Entries)
		case "want", "nope", "got", "cancel":
			if !s.gotHello.Load() || s.cfg.Files == nil {
				s.st.messagesDropped.Add(1)
				continue
			}
			s.cfg.Files.Control(*m.Control)
		case TypeAck:
			if !s.gotHello.Load() {
				s.nudgeSender()
			}
			s.st.acked.Add(int64(len(m.IDs)))
			s.event(Event{Kind: EventAcked, IDs: m.IDs})
		}
	}
}

func (s *Session) onHello(h *Hello) error {
	if s.gotHello.Load() {
		if !h.Again || h.Peer.ID != s.peerID || h.Room != s.cfg.Room {
			s.st.messagesDropped.Add(1)
			s.log.Warn("message dropped", "err", "a second hello")
			return nil
		}
		select { // a newer ask replaces one not yet answered
		case <-s.again:
		default:
		}
		s.again <- h
		return nil
	}
	if h.V != Version {
		return fmt.Errorf("%w: peer %s speaks v%d, this side v%d", ErrVersion, h.Peer.ID, h.V, Version)
	}
	if h.Room != s.cfg.Room {
		return fmt.Errorf("%w: peer %s is in room %s, this session is room %s", ErrWrongRoom, h.Peer.ID, h.Room, s.cfg.Room)
	}
	s.peerMu.Lock()
	for a, seq := range h.Heads {
		s.peerHas[a] = max(s.peerHas[a], seq)
	}
	s.peerMu.Unlock()
	s.peerID = h.Peer.ID
	s.gotHello.Store(true)
	s.hello <- h
	s.log.Info("peer hello", "peer", h.Peer.ID, "name", h.Peer.Name, "authors", len(h.Heads))
	ev := Event{Kind: EventHello, Peer: h.Peer}
	if h.Now > 0 {
		ev.PeerNow = time.UnixMilli(h.Now)
	}
	s.event(ev)
	return nil
}

// onEntries stores a batch and acknowledges what is stored. Refused entries are
// reported and skipped; the session goes on.
func (s *Session) onEntries(raws []json.RawMessage) {
	if !s.gotHello.Load() {
		s.st.messagesDropped.Add(1)
		s.log.Warn("message dropped", "err", "entries before hello")
		s.nudgeSender()
		return
	}
	var added []history.Entry
	var stored []string
	for _, raw := range raws {
		s.st.entriesReceived.Add(1)
		var e history.Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			s.refuse(e, &history.Error{Code: history.CodeBadField, Msg: "not an entry: " + err.Error()})
			continue
		}
		added, stored = s.store(e, added, stored)
	}
	s.queueAcks(stored)
	if len(added) > 0 {
		s.event(Event{Kind: EventAdded, Entries: added})
	}
}

func (s *Session) store(e history.Entry, added []history.Entry, stored []string) ([]history.Entry, []string) {
	for {
		ok, err := s.cfg.History.Add(e)
		switch {
		case err == nil:
			stored = append(stored, e.ID)
			s.notePeerHas(e.Author, e.Seq)
			if !ok {
				s.st.duplicates.Add(1)
				return added, stored
			}
			s.st.added.Add(1)
			added = append(added, e)
		case errors.Is(err, history.ErrGap) && s.hold(e):
			return added, stored
		default:
			s.refuse(e, err)
			return added, stored
		}
		// The author's next entry may have come early: store it now.
		next, held := s.pending[e.Author][e.Seq+1]
		if !held {
			return added, stored
		}
		delete(s.pending[e.Author], e.Seq+1)
		if len(s.pending[e.Author]) == 0 {
			delete(s.pending, e.Author)
		}
		s.npending--
		e = next
	}
}

// hold keeps an entry that came before its author's previous one.
func (s *Session) hold(e history.Entry) bool {
	if s.npending >= s.cfg.MaxPending {
		return false
	}
	m := s.pending[e.Author]
	if m == nil {
		m = make(map[int64]history.Entry)
		s.pending[e.Author] = m
	}
	if _, dup := m[e.Seq]; dup {
		return true // the first one held is the one tried
	}
	m[e.Seq] = e
	s.npending++
	return true
}

func (s *Session) refuse(e history.Entry, err error) {
	s.st.refused.Add(1)
	var he *history.Error
	code := ""
	if errors.As(err, &he) {
		code = he.Code
		s.log.Warn("entry refused", "id", e.ID, "author", e.Author, "seq", e.Seq, "code", code, "err", err)
	} else {
		s.log.Error("entry not stored", "id", e.ID, "err", err)
	}
	s.event(Event{Kind: EventRefused, ID: e.ID, Code: code, Err: err})
}
