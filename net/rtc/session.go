package rtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"slices"
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
	// ErrBadPeer ends a session whose peer sent more than MaxBadEntries entries no honest
	// peer relays (it checks every entry before storing it).
	ErrBadPeer = errors.New("rtc: the peer sent too many bad entries")
)

// Limits of one session (docs/OPERATIONS.md, "Limits: the sync session").
const (
	// MaxNewAuthorsPerSession caps the authors unknown to the room whose first entry one
	// session stores; the first entries of further new authors are refused with
	// CodeAuthorsSession. An honest phone brings its own key and those of the people it
	// met since it last saw the box.
	MaxNewAuthorsPerSession = 32
	// MaxHeld caps, per session, the received entries held because an earlier entry of
	// their author had not arrived yet (the default of Config.MaxPending).
	MaxHeld = 1000
	// MaxHeldBytes caps the bytes of those entries per session (as received, JSON).
	MaxHeldBytes = 2 << 20
	// MaxHeldBytesTotal caps them over all the sessions of this process.
	MaxHeldBytesTotal = 16 << 20
	// MaxBadEntries is how many bad entries (badCodes: a forged signature or id, a field
	// out of its rule, another room's) a session takes; one more ends it with ErrBadPeer.
	MaxBadEntries = 64
)

// Refusal codes the session itself sends in refused messages (PROTOCOL.md §2), beside
// the History's quota codes.
const (
	CodeAuthorsSession = "authors-session" // more than MaxNewAuthorsPerSession new authors
	CodeHeldFull       = "held-full"       // out of order and the session holds enough already
)

// badCodes are the refusals an honest peer never causes: it relays only entries it checked.
var badCodes = map[string]bool{
	history.CodeBadSignature: true, history.CodeBadID: true, history.CodeBadField: true,
	history.CodeTooLarge: true, history.CodeWrongRoom: true,
}

// heldTotal is the bytes held by all sessions (MaxHeldBytesTotal).
var heldTotal atomic.Int64

// refusalCoder is an error that refuses an entry for a reason the peer should hear (a
// quota): the session sends a refused message with the code and goes on.
type refusalCoder interface{ RefusalCode() string }

// refusal is a refusal decided by the session.
type refusal struct{ code, msg string }

func (r *refusal) Error() string       { return "rtc: session: " + r.msg }
func (r *refusal) RefusalCode() string { return r.code }

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
	// had not arrived yet (a gap); 0 means MaxHeld. MaxHeldBytes caps their bytes; 0
	// means MaxHeldBytes. Beyond either they are refused (CodeHeldFull).
	MaxPending   int
	MaxHeldBytes int
	// MaxNewAuthors caps the authors new to the room one session may bring (the box sets
	// MaxNewAuthorsPerSession: its store is shared by everyone); 0 means no cap (a phone
	// joining a room wants every author's history at once). Beyond it the first entries of
	// more are refused (CodeAuthorsSession).
	MaxNewAuthors int
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
	EventHello       EventKind = iota + 1 // the peer said hello: Peer
	EventAdded                            // entries received and newly stored: Entries
	EventAcked                            // the peer stored these of ours: IDs
	EventRefused                          // a received entry was refused: ID, Code, Err
	EventSynced                           // everything the peer lacked at hello has been sent
	EventPeerRefused                      // the peer refused entries of ours: IDs, Code (PROTOCOL.md §2)
)

// Event is something a UI or the appliance may show.
type Event struct {
	Kind    EventKind
	Peer    PeerInfo
	Entries []history.Entry
	IDs     []string
	ID      string // the refused entry's id as claimed (may be empty or wrong)
	Code    string // the history error code or refusal code of a refusal ("" for a store failure)
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
	// helloTaken is set once the hello was taken whole, its event included (the archiver
	// moves a stale clock there): readLoop checks batches ahead only from then on.
	helloTaken atomic.Bool
	again      chan *Hello   // a later hello asking for ours again, receiver → sender
	nudge      chan struct{} // a message came before the peer's hello, receiver → sender
	peerID     string        // set with gotHello

	ackMu     sync.Mutex          // guards the outbox: acks, refusals, proofs, proofSent
	acks      []string            // ids of stored entries the peer wrote (its hello's peer id)
	ackOthers int64               // and how many others were stored: counted, not listed
	ackOwed   bool                // entries added deferred since the last Flush (DeferredAdder)
	refusals  map[string][]string // code → ids refused for it, to tell the peer
	proofs    []history.Entry     // this side's entries at seqs where the peer holds another
	proofSent map[forkAt]bool     // proofs queued or sent, once per (author, seq)
	ackReady  chan struct{}

	peerMu  sync.Mutex
	peerHas map[string]int64 // per author, the last seq the peer is known to hold

	// receiver only
	pending    map[string]map[int64]heldEntry // entries after a gap
	npending   int
	heldBytes  int
	newAuthors int             // authors this session brought to the room
	owed       bool            // entries added deferred since the last Flush (DeferredAdder)
	bad        int             // entries refused with a badCodes code
	logged     map[string]bool // refusal codes logged already (once per code per session)
	paging     *Hello          // a hello whose heads messages are still coming

	started atomic.Bool
	done    chan struct{}
}

type heldEntry struct {
	e    history.Entry
	size int
}

// forkAt is one (author, seq).
type forkAt struct {
	author string
	seq    int64
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
		cfg.MaxPending = MaxHeld
	}
	if cfg.MaxHeldBytes <= 0 {
		cfg.MaxHeldBytes = MaxHeldBytes
	}
	if cfg.HelloRetry <= 0 {
		cfg.HelloRetry = 2 * time.Second
	}
	return &Session{
		cfg:       cfg,
		log:       logger(cfg.Logger).With("room", cfg.Room),
		pub:       make(chan history.Entry, 256),
		hello:     make(chan *Hello, 1),
		again:     make(chan *Hello, 1),
		nudge:     make(chan struct{}, 1),
		ackReady:  make(chan struct{}, 1),
		peerHas:   make(map[string]int64),
		pending:   make(map[string]map[int64]heldEntry),
		refusals:  make(map[string][]string),
		proofSent: make(map[forkAt]bool),
		logged:    make(map[string]bool),
		done:      make(chan struct{}),
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
	heldTotal.Add(-int64(s.heldBytes)) // what was held dies with the session
	s.heldBytes = 0
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
	return s.sendEntries(ctx, msg, 0)
}

// sendEntries sends one message carrying n entries. It is counted before the channel has
// it, so Stats never shows the peer holding more than this side sent; a failed send is
// taken back.
func (s *Session) sendEntries(ctx context.Context, msg []byte, n int) error {
	s.st.messagesSent.Add(1)
	s.st.bytesSent.Add(int64(len(msg)))
	s.st.entriesSent.Add(int64(n))
	if err := s.cfg.Conn.Send(ctx, msg); err != nil {
		s.st.messagesSent.Add(-1)
		s.st.bytesSent.Add(-int64(len(msg)))
		s.st.entriesSent.Add(-int64(n))
		return err
	}
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
	// The snapshot: what the peer lacks by its hello, pulled from the History a chunk at a
	// time (head) so a first sync of a large room is never held whole.
	next  func() (history.Entry, bool) // nil once the snapshot is sent
	stop  func()
	head  []history.Entry  // pulled, not sent yet
	until map[string]int64 // per author, the head before the snapshot: the snapshot holds up to it
	// Live entries that must wait for the snapshot (their author's earlier entries are in it).
	queue     []history.Entry
	remaining map[string]int   // queued entries per author
	sent      map[string]int64 // per author, the last seq queued or sent
	pulled    int              // entries pulled from the snapshot, for the log
	snapshot  bool             // the peer's hello was answered with a snapshot
	synced    bool
	batch     batch
}

// snapshotChunk is how many entries of a snapshot are pulled from the History at a time.
const snapshotChunk = 256

// busy reports whether anything is left to send.
func (sn *sender) busy() bool { return sn.snapshotting() || len(sn.queue) > 0 }

// endSnapshot drops what is left of the snapshot.
func (sn *sender) endSnapshot() {
	sn.endSnapshotStream()
	clear(sn.head)
	sn.head = sn.head[:0]
}

// snapshotting reports whether part of the snapshot is still to be sent.
func (sn *sender) snapshotting() bool { return sn.next != nil || len(sn.head) > 0 }

// waits reports whether a live entry of author must wait behind the snapshot or the queue.
func (sn *sender) waits(author string) bool {
	return sn.remaining[author] > 0 || sn.snapshotting() && sn.sent[author] < sn.until[author]
}

// pull refills head from the snapshot; false when the snapshot is over.
func (sn *sender) pull() bool {
	for len(sn.head) < snapshotChunk && sn.next != nil {
		e, ok := sn.next()
		if !ok {
			sn.endSnapshotStream()
			break
		}
		sn.head = append(sn.head, e)
		sn.pulled++
	}
	return len(sn.head) > 0
}

// endSnapshotStream stops pulling the snapshot (what head holds is still sent).
func (sn *sender) endSnapshotStream() {
	if sn.stop != nil {
		sn.stop()
	}
	sn.next, sn.stop = nil, nil
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
	defer sn.endSnapshot()
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
		if err := s.flushOutbox(ctx); err != nil {
			return err
		}
		if sn.busy() {
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
	pages, err := EncodeHelloPages(Hello{V: Version, Room: s.cfg.Room, Peer: s.cfg.Self, Heads: s.cfg.History.Heads(), Tips: s.cfg.History.Tips(),
		Again: again, Now: s.cfg.now().UnixMilli()})
	if err != nil {
		return fmt.Errorf("rtc: session: %w", err)
	}
	for _, p := range pages {
		if err := s.send(ctx, p); err != nil {
			return fmt.Errorf("rtc: session: send hello: %w", err)
		}
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
	s.takeSnapshot(sn, h.Heads)
	return nil
}

// sendForks compares the peer's tips with this side's entries at the same seqs. Where they
// differ, the peer says it holds another entry there: its word is no proof, so nothing is
// marked here. This side's entry at that seq is sent instead: the peer checks its
// signature and, holding another valid entry there, refuses it as a fork, marks the author
// and sends its own entry back (queueProof), with which this side marks the author too.
func (s *Session) sendForks(ctx context.Context, h *Hello) error {
	var forks []history.Entry
	for a, id := range h.Tips {
		if e, ok := s.cfg.History.At(a, h.Heads[a]); ok && e.ID != id && s.claimProof(e) {
			forks = append(forks, e)
			s.log.Info("the peer states another entry at a seq of this side's: sending ours", "author", a, "seq", e.Seq)
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

// takeSnapshot starts sending what the peer lacks by its hello (again, after a hello
// again: what was queued is in the new snapshot). A MissingStreamer's entries are pulled
// as they are sent; another History's Missing is taken whole.
func (s *Session) takeSnapshot(sn *sender, heads map[string]int64) {
	sn.endSnapshot()
	clear(sn.queue)
	sn.queue = sn.queue[:0]
	clear(sn.remaining)
	// The heads before the snapshot: every entry up to them is in it (entries stored
	// meanwhile may be too, and may also be published: the peer ignores the second copy).
	sn.until = s.cfg.History.Heads()
	var seq iter.Seq[history.Entry]
	if ms, ok := s.cfg.History.(MissingStreamer); ok {
		seq = ms.MissingSeq(heads)
	} else {
		es := s.cfg.History.Missing(heads)
		seqOrder(es)
		for _, e := range es {
			sn.until[e.Author] = max(sn.until[e.Author], e.Seq) // exact: nothing published twice
		}
		seq = slices.Values(es)
	}
	sn.next, sn.stop = iter.Pull(seq)
	sn.pulled = 0
	sn.snapshot = true
	s.log.Debug("sync snapshot started")
}

func (s *Session) publish(ctx context.Context, sn *sender, e history.Entry) error {
	switch {
	case !sn.snapshot:
		return nil // stored before the snapshot is taken, so it will be in it
	case e.Seq <= sn.sent[e.Author] || e.Seq <= s.peerSeq(e.Author):
		return nil // queued, sent, or the peer has it
	case sn.snapshotting() && e.Seq <= sn.until[e.Author]:
		return nil // the snapshot has it
	case sn.waits(e.Author):
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
	if err := s.sendEntries(ctx, msgs[0], 1); err != nil {
		return fmt.Errorf("rtc: session: send entry: %w", err)
	}
	return nil
}

// sendBatch sends the next entries message: the snapshot's first, then the queue.
func (s *Session) sendBatch(ctx context.Context, sn *sender) error {
	b := &sn.batch
	b.reset()
	if sn.pull() {
		k := s.fillBatch(b, sn.head, func(e history.Entry) { sn.sent[e.Author] = max(sn.sent[e.Author], e.Seq) })
		clear(sn.head[:k]) // let the sent entries go
		sn.head = append(sn.head[:0], sn.head[k:]...)
		if !sn.busy() {
			s.log.Debug("sync snapshot sent", "entries", sn.pulled)
		}
	} else {
		k := s.fillBatch(b, sn.queue, func(e history.Entry) { sn.remaining[e.Author]-- })
		clear(sn.queue[:k])
		sn.queue = sn.queue[k:]
	}
	if b.n == 0 {
		return nil
	}
	if err := s.sendEntries(ctx, b.bytes(), b.n); err != nil {
		return fmt.Errorf("rtc: session: send entries: %w", err)
	}
	return nil
}

// fillBatch adds entries from the front of list to b while they fit, calling done for
// each entry taken (added or skipped), and returns how many were taken.
func (s *Session) fillBatch(b *batch, list []history.Entry, done func(history.Entry)) int {
	k := 0
	for ; k < len(list); k++ {
		e := list[k]
		if e.Seq <= s.peerSeq(e.Author) {
			done(e)
			continue // the peer got it meanwhile (from us live, or from elsewhere)
		}
		raw, err := history.AppendJSON(b.scratch[:0], e)
		if err != nil {
			s.log.Error("entry not sent", "id", e.ID, "err", err)
			done(e)
			continue
		}
		b.scratch = raw
		if !b.fits(raw) {
			if b.n > 0 {
				break
			}
			s.log.Error("entry not sent", "id", e.ID, "err", ErrTooLarge, "bytes", len(raw))
			done(e)
			continue
		}
		b.add(raw)
		done(e)
	}
	return k
}

func (s *Session) nudgeSender() {
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

func (s *Session) queueAcks(ids []string, others int64, owed bool) {
	if len(ids) == 0 && others == 0 && !owed {
		return
	}
	s.ackMu.Lock()
	s.acks = append(s.acks, ids...)
	s.ackOthers += others
	s.ackOwed = s.ackOwed || owed
	s.ackMu.Unlock()
	s.kickSender()
}

// claimProof reports whether e is yet to be sent as this side's entry at its (author,
// seq) and records that it is: a proof goes once per session, so two sides never trade
// theirs forever.
func (s *Session) claimProof(e history.Entry) bool {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	k := forkAt{e.Author, e.Seq}
	if s.proofSent[k] {
		return false
	}
	s.proofSent[k] = true
	return true
}

// queueProof answers an entry refused as a fork with this side's own entry at that seq,
// which the peer can verify (PROTOCOL.md §2).
func (s *Session) queueProof(theirs history.Entry) {
	mine, ok := s.cfg.History.At(theirs.Author, theirs.Seq)
	if !ok || mine.ID == theirs.ID || !s.claimProof(mine) {
		return
	}
	s.ackMu.Lock()
	s.proofs = append(s.proofs, mine)
	s.ackMu.Unlock()
	s.kickSender()
}

// queueRefusal tells the peer, in the next refused message, that the entry id was
// refused for code.
func (s *Session) queueRefusal(code, id string) {
	s.ackMu.Lock()
	ids, ok := s.refusals[code]
	if !ok {
		ids = []string{} // the message goes even when no id was valid
	}
	if history.IsID(id) && len(ids) < ackIDs { // the code is said; the peer resends the rest
		ids = append(ids, id)
	}
	s.refusals[code] = ids
	s.ackMu.Unlock()
	s.kickSender()
}

func (s *Session) kickSender() {
	select {
	case s.ackReady <- struct{}{}:
	default:
	}
}

// flushOutbox sends what the receiver queued for the peer: acks, refusals, fork proofs.
func (s *Session) flushOutbox(ctx context.Context) error {
	if err := s.flushAcks(ctx); err != nil {
		return err
	}
	s.ackMu.Lock()
	var refusals map[string][]string // taken whole: the receiver fills a new one meanwhile
	if len(s.refusals) > 0 {
		refusals = s.refusals
		s.refusals = make(map[string][]string)
	}
	proofs := s.proofs
	s.proofs = nil
	s.ackMu.Unlock()
	for code, ids := range refusals {
		for first := true; first || len(ids) > 0; first = false {
			n := min(len(ids), ackIDs)
			msg, err := EncodeRefused(code, ids[:n])
			if err != nil {
				return fmt.Errorf("rtc: session: %w", err)
			}
			if err := s.send(ctx, msg); err != nil {
				return fmt.Errorf("rtc: session: send refused: %w", err)
			}
			ids = ids[n:]
		}
	}
	if len(proofs) == 0 {
		return nil
	}
	msgs, err := EncodeEntries(proofs)
	if err != nil {
		return fmt.Errorf("rtc: session: %w", err)
	}
	s.st.entriesSent.Add(int64(len(proofs))) // before the peer may have them, as in sendEntries
	for _, m := range msgs {
		if err := s.send(ctx, m); err != nil {
			return fmt.Errorf("rtc: session: send fork proofs: %w", err)
		}
	}
	return nil
}

// flushAcks sends the queued acks, once the entries they acknowledge are durable: with a
// DeferredAdder, one Flush covers every batch stored since the last (a group commit: the
// slower the card, the more batches one fsync covers), while the receiver stores the next.
func (s *Session) flushAcks(ctx context.Context) error {
	s.ackMu.Lock()
	ids, others, owed := s.acks, s.ackOthers, s.ackOwed
	s.acks, s.ackOthers, s.ackOwed = nil, 0, false
	s.ackMu.Unlock()
	if owed {
		if err := s.cfg.History.(DeferredAdder).Flush(); err != nil {
			return fmt.Errorf("rtc: session: store a batch: %w", err)
		}
	}
	for len(ids) > 0 || others > 0 {
		n := min(len(ids), ackIDs)
		k := min(others, MaxAckOthers)
		msg, err := EncodeAck(ids[:n], k)
		if err != nil {
			return fmt.Errorf("rtc: session: %w", err)
		}
		if err := s.send(ctx, msg); err != nil {
			return fmt.Errorf("rtc: session: send ack: %w", err)
		}
		ids, others = ids[n:], others-k
	}
	return nil
}

// ---- receiving ----

// received is one message read and decoded by readLoop, or the error that ended reading.
type received struct {
	m     Message
	batch entryBatch // TypeEntries: the entries decoded
	err   error
}

// recvLoop takes the messages readLoop decodes, in order, until reading ends or a message
// ends the session. readLoop reads and decodes the next message while one is taken
// (checked and stored), so the transport keeps being drained instead of stalling the
// sender's window; the channel is unbuffered, so a session holds at most two received
// messages (MaxMessage bytes each) and their decoded entries (docs/OPERATIONS.md).
func (s *Session) recvLoop(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	in := make(chan received)
	var wg sync.WaitGroup
	wg.Go(func() { s.readLoop(ctx, in) })
	defer func() {
		cancel()
		wg.Wait()
	}()
	for r := range in {
		if r.err != nil {
			return r.err
		}
		if err := s.take(r); err != nil {
			return err
		}
	}
	return ctx.Err() // readLoop ends with an error; only a cancelled ctx ends it without
}

// readLoop reads and decodes messages into in until the connection or ctx ends; its last
// item carries why. It closes in.
func (s *Session) readLoop(ctx context.Context, in chan<- received) {
	defer close(in)
	put := func(r received) bool {
		select {
		case in <- r:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		msg, err := s.cfg.Conn.Recv(ctx)
		switch {
		case errors.Is(err, ErrTooLarge):
			s.st.messagesDropped.Add(1)
			s.log.Warn("message dropped", "err", err)
			continue
		case errors.Is(err, io.EOF):
			put(received{err: errRemoteClosed})
			return
		case ctx.Err() != nil:
			return
		case err != nil:
			put(received{err: fmt.Errorf("rtc: session: receive: %w", err)})
			return
		}
		s.st.messagesReceived.Add(1)
		s.st.bytesReceived.Add(int64(len(msg)))
		m, batch, ok := splitDecodeEntries(msg) // a first sync's messages, in one pass
		if !ok {
			m, err = DecodeMessage(msg)
			if err != nil {
				s.st.messagesDropped.Add(1)
				s.log.Warn("message dropped", "bytes", len(msg), "err", err)
				continue
			}
			if m.T == TypeEntries {
				batch = decodeEntries(m.Entries)
			}
		}
		r := received{m: m, batch: batch}
		if m.T == TypeEntries {
			// Checked here, while the batch before it is stored, once the peer's hello was
			// taken whole (before it, onEntries drops entries unchecked: no signature is
			// spent on them; and the hello's event may move a stale clock, which decides
			// what is "future"). A batch checked before the one it follows is stored is as
			// safe: the link into the stored chain and a fork against it are the store's
			// checks when it adds each entry (AddChecked), as in the page (session.js).
			if s.helloTaken.Load() && len(r.batch.es) > 0 {
				r.batch.verdicts = s.check(r.batch.es)
			}
		}
		if !put(r) {
			return
		}
	}
}

// take acts on one received message.
func (s *Session) take(r received) error {
	m := r.m
	switch m.T {
	case TypeHello:
		return s.onHelloPage(m.Hello)
	case TypeHeads:
		return s.onHeads(m.Hello)
	case TypeEntries:
		return s.onEntries(r.batch)
	case TypeRefused:
		if !s.gotHello.Load() {
			s.nudgeSender()
		}
		s.onRefused(m.Code, m.IDs)
	case "want", "nope", "got", "cancel":
		if !s.gotHello.Load() || s.cfg.Files == nil {
			s.st.messagesDropped.Add(1)
			return nil
		}
		s.cfg.Files.Control(*m.Control)
	case TypeAck:
		if !s.gotHello.Load() {
			s.nudgeSender()
		}
		s.st.acked.Add(int64(len(m.IDs)) + m.Others)
		s.event(Event{Kind: EventAcked, IDs: m.IDs})
	}
	return nil
}

// onHelloPage takes a hello that may be the first of several pages (More): its checks are
// made at once, the rest waits for the last heads message.
func (s *Session) onHelloPage(h *Hello) error {
	if !h.More {
		s.paging = nil
		return s.onHello(h)
	}
	if !s.gotHello.Load() {
		if err := s.checkHello(h); err != nil {
			return err
		}
	}
	s.paging = h
	return nil
}

// onHeads adds a page of heads to the hello being received.
func (s *Session) onHeads(page *Hello) error {
	h := s.paging
	if h == nil {
		s.st.messagesDropped.Add(1)
		s.log.Warn("message dropped", "err", "heads without a hello")
		s.nudgeSender()
		return nil
	}
	for a, seq := range page.Heads {
		if len(h.Heads) >= MaxHelloHeads {
			break
		}
		if _, dup := h.Heads[a]; dup {
			continue
		}
		h.Heads[a] = seq
		if id, ok := page.Tips[a]; ok {
			if h.Tips == nil {
				h.Tips = make(map[string]string)
			}
			h.Tips[a] = id
		}
	}
	if page.More {
		return nil
	}
	s.paging = nil
	h.More = false
	return s.onHello(h)
}

// checkHello ends the session for a first hello of another version or room.
func (s *Session) checkHello(h *Hello) error {
	if h.V != Version {
		return fmt.Errorf("%w: peer %s speaks v%d, this side v%d", ErrVersion, h.Peer.ID, h.V, Version)
	}
	if h.Room != s.cfg.Room {
		return fmt.Errorf("%w: peer %s is in room %s, this session is room %s", ErrWrongRoom, h.Peer.ID, h.Room, s.cfg.Room)
	}
	return nil
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
	if err := s.checkHello(h); err != nil {
		return err
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
	s.helloTaken.Store(true)
	return nil
}

// onRefused reports that the peer refused entries of ours for a reason it names.
func (s *Session) onRefused(code string, ids []string) {
	if k := "peer " + code; !s.logged[k] {
		s.logged[k] = true
		s.log.Warn("the peer refused entries (logged once per code)", "code", code, "entries", len(ids))
	}
	s.event(Event{Kind: EventPeerRefused, Code: code, IDs: ids})
}

// entryBatch is an entries message's entries decoded (by readLoop, ahead of onEntries):
// es with the size of each on the wire, and the errors of those that did not decode.
type entryBatch struct {
	es       []history.Entry
	sizes    []int
	bad      []error
	verdicts []error // history.CheckBatch's, when readLoop checked the batch already
}

func decodeEntries(raws []json.RawMessage) entryBatch {
	b := entryBatch{es: make([]history.Entry, 0, len(raws)), sizes: make([]int, 0, len(raws))}
	for _, raw := range raws {
		e, err := decodeEntry(raw)
		if err != nil {
			b.bad = append(b.bad, err)
			continue
		}
		b.es = append(b.es, e)
		b.sizes = append(b.sizes, len(raw))
	}
	return b
}

// check is history.CheckBatch of a received batch against the room's History.
func (s *Session) check(es []history.Entry) []error {
	return history.CheckBatch(s.cfg.Room, es, s.cfg.now(), s.cfg.History.At)
}

// onEntries stores a batch and acknowledges what is stored. Refused entries are
// reported and skipped; the session goes on, unless the peer has now sent more than
// MaxBadEntries bad ones (ErrBadPeer).
func (s *Session) onEntries(b entryBatch) error {
	if !s.gotHello.Load() {
		s.st.messagesDropped.Add(1)
		s.log.Warn("message dropped", "err", "entries before hello")
		s.nudgeSender()
		return nil
	}
	added := make([]history.Entry, 0, len(b.es)) // one allocation a batch, for the event
	var stored storedAcks
	for _, err := range b.bad {
		s.st.entriesReceived.Add(1)
		s.refuse(history.Entry{}, &history.Error{Code: history.CodeBadField, Msg: "not an entry: " + err.Error()})
	}
	es, sizes := b.es, b.sizes
	// One signature per run of an author's linked entries (PROTOCOL.md §3): a batch costs
	// at most MaxBatch signatures, however bad, so a peer past MaxBadEntries is cut after at
	// most two batches more (this one, and the next that readLoop checks meanwhile).
	verdicts := b.verdicts
	if verdicts == nil {
		verdicts = s.check(es)
	}
	ra, runs := s.cfg.History.(RunAdder)
	for i := 0; i < len(es); i++ {
		if s.bad > MaxBadEntries {
			break // nothing more taken from this peer
		}
		if runs && verdicts[i] == nil {
			if n := s.storeRun(ra, es[i:runEnd(es, verdicts, i)], &added, &stored); n > 0 {
				i += n - 1
				continue
			}
		}
		e := es[i]
		s.st.entriesReceived.Add(1)
		if verdicts[i] != nil {
			s.refuse(e, verdicts[i])
			continue
		}
		added = s.store(e, sizes[i], added, &stored)
	}
	s.queueAcks(stored.ids, stored.others, s.owed) // sent once a Flush made them durable
	s.owed = false
	if len(added) > 0 {
		s.event(Event{Kind: EventAdded, Entries: added})
	}
	if s.bad > MaxBadEntries {
		s.log.Warn("ending the session: the peer sent too many bad entries", "bad", s.bad, "max", MaxBadEntries)
		return fmt.Errorf("%w: %d entries refused as forged or malformed, at most %d", ErrBadPeer, s.bad, MaxBadEntries)
	}
	return nil
}

// storedAcks is what a batch stored, to acknowledge: the ids of the peer's own entries and
// how many others (PROTOCOL.md §2).
type storedAcks struct {
	ids    []string
	others int64
}

// runEnd is the end of the run of es that starts at i: entries that passed the batch's
// checks, of one author, each at the seq after the one before.
func runEnd(es []history.Entry, verdicts []error, i int) int {
	j := i + 1
	for j < len(es) && verdicts[j] == nil && es[j].Author == es[i].Author && es[j].Seq == es[j-1].Seq+1 {
		j++
	}
	return j
}

// storeRun stores a run of one author's consecutive entries through a RunAdder, and counts,
// acknowledges and tells what it stored as store does. It returns how many it stored; 0
// when it stored none (the caller then takes es[0] on its own, which says why), or when the
// run is a single entry or the author has entries held after a gap (store releases those).
func (s *Session) storeRun(ra RunAdder, es []history.Entry, added *[]history.Entry, stored *storedAcks) int {
	if len(es) < 2 || len(s.pending[es[0].Author]) > 0 {
		return 0
	}
	n, err := ra.AddRunDeferred(es)
	if n > 0 || err != nil {
		s.owed = true // a failed write may have left bytes the next Flush syncs
	}
	if n == 0 {
		return 0
	}
	for _, e := range es[:n] {
		s.st.entriesReceived.Add(1)
		if e.Author == s.peerID {
			stored.ids = append(stored.ids, e.ID)
		} else {
			stored.others++
		}
	}
	s.st.added.Add(int64(n))
	*added = append(*added, es[:n]...)
	s.notePeerHas(es[0].Author, es[n-1].Seq)
	return n
}

func (s *Session) store(e history.Entry, size int, added []history.Entry, stored *storedAcks) []history.Entry {
	for {
		if err := s.admitAuthor(e); err != nil {
			s.refuse(e, err)
			return added
		}
		ok, err := s.add(e)
		switch {
		case err == nil:
			// Only the author marks an entry delivered (PROTOCOL.md §2): the others are
			// acknowledged by count, not by id.
			if e.Author == s.peerID {
				stored.ids = append(stored.ids, e.ID)
			} else {
				stored.others++
			}
			s.notePeerHas(e.Author, e.Seq)
			if !ok {
				s.st.duplicates.Add(1)
				return added
			}
			if e.Seq == 1 {
				s.newAuthors++ // a new seq 1 is a new author (a known one's would be a fork)
			}
			s.st.added.Add(1)
			added = append(added, e)
		case errors.Is(err, history.ErrGap):
			if herr := s.hold(e, size); herr != nil {
				s.refuse(e, herr)
			}
			return added
		default:
			s.refuse(e, err)
			return added
		}
		// The author's next entry may have come early: store it now.
		next, held := s.pending[e.Author][e.Seq+1]
		if !held {
			return added
		}
		s.release(e.Author, e.Seq+1, next.size)
		e, size = next.e, next.size
	}
}

// add stores an entry that passed history.CheckBatch: without verifying it again where the
// History can (CheckedAdder), and leaving its durability to the batch's flush where the
// History can (DeferredAdder).
func (s *Session) add(e history.Entry) (bool, error) {
	if da, ok := s.cfg.History.(DeferredAdder); ok {
		added, err := da.AddCheckedDeferred(e)
		s.owed = true // also after an error: something may have been written
		return added, err
	}
	if ca, ok := s.cfg.History.(CheckedAdder); ok {
		return ca.AddChecked(e)
	}
	return s.cfg.History.Add(e)
}

// admitAuthor refuses the first entry of an author unknown to the room once this session
// brought MaxNewAuthorsPerSession new authors.
func (s *Session) admitAuthor(e history.Entry) error {
	if s.cfg.MaxNewAuthors <= 0 || e.Seq != 1 || s.newAuthors < s.cfg.MaxNewAuthors {
		return nil
	}
	if _, known := s.cfg.History.At(e.Author, 1); known {
		return nil // a duplicate, or a fork to detect
	}
	return &refusal{code: CodeAuthorsSession,
		msg: fmt.Sprintf("this session brought %d new authors already, at most %d", s.newAuthors, s.cfg.MaxNewAuthors)}
}

// hold keeps an entry that came before its author's previous one, within the session's
// and the process's limits.
func (s *Session) hold(e history.Entry, size int) error {
	m := s.pending[e.Author]
	if _, dup := m[e.Seq]; dup {
		return nil // the first one held is the one tried
	}
	if s.npending >= s.cfg.MaxPending || s.heldBytes+size > s.cfg.MaxHeldBytes {
		return &refusal{code: CodeHeldFull, msg: fmt.Sprintf("out of order, and this session holds %d entries (%d bytes) already", s.npending, s.heldBytes)}
	}
	if heldTotal.Add(int64(size)) > MaxHeldBytesTotal {
		heldTotal.Add(-int64(size))
		return &refusal{code: CodeHeldFull, msg: "out of order, and all sessions hold enough already"}
	}
	if m == nil {
		m = make(map[int64]heldEntry)
		s.pending[e.Author] = m
	}
	m[e.Seq] = heldEntry{e: e, size: size}
	s.npending++
	s.heldBytes += size
	return nil
}

// release forgets a held entry.
func (s *Session) release(author string, seq int64, size int) {
	delete(s.pending[author], seq)
	if len(s.pending[author]) == 0 {
		delete(s.pending, author)
	}
	s.npending--
	s.heldBytes -= size
	heldTotal.Add(-int64(size))
}

func (s *Session) refuse(e history.Entry, err error) {
	s.st.refused.Add(1)
	var he *history.Error
	var rc refusalCoder
	code := ""
	switch {
	case errors.As(err, &rc):
		code = rc.RefusalCode()
		s.queueRefusal(code, e.ID)
		if !s.logged[code] {
			s.logged[code] = true
			s.log.Warn("entry refused, the peer is told (logged once per code)", "id", e.ID, "author", e.Author, "seq", e.Seq, "code", code, "err", err)
		}
	case errors.As(err, &he):
		code = he.Code
		if badCodes[code] && he.By == "" {
			s.bad++ // an entry refused only with its run is not counted: the one at fault is
		}
		if code == history.CodeFork {
			s.queueProof(e)
		}
		switch {
		case he.By != "":
			s.log.Debug("entry refused with its run", "id", e.ID, "author", e.Author, "seq", e.Seq, "code", code, "by", he.By)
		case s.logged[code]:
			s.log.Debug("entry refused", "id", e.ID, "author", e.Author, "seq", e.Seq, "code", code, "err", err)
		default:
			// Once per code and session: a peer's flood of bad entries is not a flood of
			// log lines (the session's end counts what it refused).
			s.logged[code] = true
			s.log.Warn("entry refused (logged once per code)", "id", e.ID, "author", e.Author, "seq", e.Seq, "code", code, "err", err)
		}
	default:
		s.log.Error("entry not stored", "id", e.ID, "err", err)
	}
	s.event(Event{Kind: EventRefused, ID: e.ID, Code: code, Err: err})
}
