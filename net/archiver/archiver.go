// Package archiver is the appliance as a peer: invited into a room (an offer .torrent,
// answered at once), it joins with its own identity, keeps the room's history in the store
// and serves it to whoever connects later, while the room's creator may be gone.
package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/net/transfer"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/history"
)

// Errors Connect returns.
var (
	ErrNotOffer   = errors.New("archiver: the invitation is not an offer")
	ErrBadOffer   = errors.New("archiver: the offer's SDP is not a DataChannel offer the box can answer")
	ErrBusy       = errors.New("archiver: too many peers connected; try again later")
	ErrTooMany    = errors.New("archiver: this client has too many connections opening; try again later")
	ErrNotRunning = errors.New("archiver: not running")
)

// Limits of Connect (Options' zero values).
const (
	// DefaultMaxPeers caps the peer connections of the whole box.
	DefaultMaxPeers = 32
	// DefaultOpenTimeout is how long an answered offer waits for its DataChannel, and an
	// open channel for the peer's hello; then the connection ends and nothing is kept.
	DefaultOpenTimeout = 30 * time.Second
	// DefaultMaxOpeningPerClient caps the connections of one client address that have not
	// said hello yet (the answered offers it holds the box's places with).
	DefaultMaxOpeningPerClient = 4
	// DefaultMaxPeersPerClient caps all the peer connections of one client address, open
	// or opening: a phone holds one per room it keeps on the box, and one laptop cannot
	// take the places 30 phones need.
	DefaultMaxPeersPerClient = 8
)

// Caller says who asks the box to connect (ConnectFrom).
type Caller struct {
	// Addr is the client's address; the zero Addr (a caller on the box itself, a test) is
	// not counted per client.
	Addr netip.Addr
	// Proven lists the identity keys the request proved (the box's membership proof,
	// web/member.go).
	Proven []string
}

// Options configures an Archiver; Store and Identity are required.
type Options struct {
	Store    *store.Store
	Identity *store.Identity
	// RTC configures the pion peer (see rtc.Options).
	RTC rtc.Options
	// MaxPeers caps the connections at once; 0 means DefaultMaxPeers.
	MaxPeers int
	// MaxOpeningPerClient caps one client address's connections that have not said hello
	// yet; 0 means DefaultMaxOpeningPerClient.
	MaxOpeningPerClient int
	// MaxPeersPerClient caps one client address's connections in all; 0 means
	// DefaultMaxPeersPerClient.
	MaxPeersPerClient int
	// OpenTimeout is how long an answered offer waits for its DataChannel, and the open
	// channel for the peer's hello; 0 means DefaultOpenTimeout.
	OpenTimeout time.Duration
	// Blobs, when set, holds the files the box announces itself (voice notes from its
	// microphone) and the files it fetches from the peers of the rooms it keeps (every
	// image, voice and file entry), and serves them to peers (PROTOCOL.md §5).
	Blobs *blobs.Store
	// MaxFetchSize: files announced in a room and larger than this are not fetched; 0
	// means transfer.DefaultMaxFetchSize (256 MiB).
	MaxFetchSize int64
	// FilesBudget caps the bytes of the Blobs directory; a fetch that would pass it is
	// refused with a log and nothing is deleted. 0 means transfer.DefaultDiskBudget (2 GiB).
	FilesBudget int64
	// MaxFetches caps the files fetched at once; 0 means transfer.DefaultMaxFetches.
	MaxFetches int
	// FetchStall is how long a fetch waits for a silent peer before asking again; 0 means
	// transfer.DefaultStall.
	FetchStall time.Duration
	// Subnets returns the networks of the box's interfaces; an offer's ICE candidates
	// outside them are dropped before pion sees the offer (the box runs no checks towards
	// them; logged once a minute). Nil: no filter.
	Subnets func() []netip.Prefix
	// Clock is the time the box writes and checks entries by; nil means a NewClock. Give
	// the store the same Clock's Now. Members' hellos (ids with entries in the room) move
	// it while it is stale (clock.go).
	Clock *Clock
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Archiver answers offers for rooms and runs one sync session per connected peer.
type Archiver struct {
	opts  Options
	api   *webrtc.API
	log   *slog.Logger
	fetch *transfer.Fetcher // nil without Blobs

	mu      sync.Mutex
	runCtx  context.Context // set by Run; the lifetime of every connection
	wg      sync.WaitGroup
	peers   int
	opening map[netip.Addr]int // per client address, connections before the peer's hello
	byAddr  map[netip.Addr]int // per client address, all its connections
	byRoom  map[string]map[*rtc.Session]struct{}
	stopped bool

	recv receipts // when each room last got an entry from a peer (received.go)

	droppedLog   time.Time // when dropped candidates were last logged
	droppedSince int       // candidates dropped since then
}

// droppedLogEvery spaces the logs of ICE candidates dropped from offers.
const droppedLogEvery = time.Minute

// noteDropped counts candidates dropped from an offer of client and logs at most once per
// droppedLogEvery, with the count since the last log and this offer's addresses.
func (a *Archiver) noteDropped(client netip.Addr, addrs []string) {
	a.mu.Lock()
	a.droppedSince += len(addrs)
	now := time.Now()
	if now.Sub(a.droppedLog) < droppedLogEvery {
		a.mu.Unlock()
		return
	}
	n := a.droppedSince
	a.droppedLog, a.droppedSince = now, 0
	a.mu.Unlock()
	a.log.Warn("ICE candidates outside the box's subnets dropped from offers (logged once a minute)",
		"dropped", n, "client", client, "latest", addrs)
}

// New builds an Archiver; Run must be running for Connect to succeed.
func New(opts Options) (*Archiver, error) {
	if opts.Store == nil || opts.Identity == nil {
		return nil, errors.New("archiver: Store and Identity are required")
	}
	if opts.MaxPeers <= 0 {
		opts.MaxPeers = DefaultMaxPeers
	}
	if opts.MaxOpeningPerClient <= 0 {
		opts.MaxOpeningPerClient = DefaultMaxOpeningPerClient
	}
	if opts.MaxPeersPerClient <= 0 {
		opts.MaxPeersPerClient = DefaultMaxPeersPerClient
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = DefaultOpenTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = NewClock(ClockOptions{Logger: opts.Logger})
	}
	if err := raiseClockFloor(opts.Clock, opts.Store); err != nil {
		return nil, fmt.Errorf("archiver: %w", err)
	}
	opts.RTC.Logger = opts.Logger
	api, err := rtc.NewAPI(opts.RTC)
	if err != nil {
		return nil, fmt.Errorf("archiver: %w", err)
	}
	a := &Archiver{opts: opts, api: api, log: opts.Logger.With("component", "archiver"),
		byRoom: make(map[string]map[*rtc.Session]struct{}), opening: make(map[netip.Addr]int), byAddr: make(map[netip.Addr]int)}
	if opts.Blobs != nil {
		a.fetch, err = transfer.NewFetcher(transfer.FetcherOptions{Blobs: opts.Blobs, MaxFileSize: opts.MaxFetchSize,
			DiskBudget: opts.FilesBudget, MaxFetches: opts.MaxFetches, Stall: opts.FetchStall, Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("archiver: %w", err)
		}
	}
	return a, nil
}

// Run lets Connect accept peers until ctx ends, then closes every connection and waits
// for their goroutines. Cancellation is not an error.
func (a *Archiver) Run(ctx context.Context) error {
	a.mu.Lock()
	a.runCtx = ctx
	a.mu.Unlock()
	fetched := make(chan struct{})
	go func() {
		defer close(fetched)
		if a.fetch == nil {
			return
		}
		if err := a.fetch.Run(ctx); err != nil {
			a.log.Error("fetching files stopped", "err", err)
		}
	}()
	<-ctx.Done()
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.wg.Wait()
	<-fetched
	return nil
}

// Rooms lists the rooms the box keeps.
func (a *Archiver) Rooms() ([]store.Room, error) { return a.opts.Store.Rooms() }

// Connect answers an offer .torrent for a room with the answer .torrent (ConnectFrom for
// a caller with no address and no proven keys).
func (a *Archiver) Connect(ctx context.Context, offer []byte) ([]byte, error) {
	return a.ConnectFrom(ctx, offer, Caller{})
}

// ConnectFrom answers an offer .torrent for a room with the answer .torrent; the connection
// then runs in the background under Run's context. Nothing is stored for it until the
// peer's DataChannel opened and its hello named the room: then the room is created if new
// and the box writes its join entry once (a room the box keeps is used as it is). An offer
// whose SDP the box cannot answer is ErrBadOffer; a caller address with
// MaxOpeningPerClient connections not yet past hello is ErrTooMany.
//
// Only a peer whose offer names one of caller.Proven, and whose hello then says the same
// id, may report its time to the clock: an id in a hello alone is a claim, and one peer
// could claim two members' ids.
func (a *Archiver) ConnectFrom(ctx context.Context, offer []byte, caller Caller) ([]byte, error) {
	inv, err := torrent.Decode(offer)
	if err != nil {
		return nil, err
	}
	if inv.Role != torrent.RoleOffer {
		return nil, ErrNotOffer
	}
	if !a.running() { // before the SDP: a stopped box says so whatever it is sent
		return nil, ErrNotRunning
	}
	if err := checkOffer(inv.SDP); err != nil {
		return nil, err
	}
	if a.opts.Subnets != nil {
		var dropped []string
		inv.SDP, dropped = filterCandidates(inv.SDP, a.opts.Subnets())
		if len(dropped) > 0 {
			a.noteDropped(caller.Addr, dropped)
		}
	}
	release, runCtx, err := a.reserve(caller.Addr)
	if err != nil {
		return nil, err
	}
	pc, channels, sdp, err := rtc.Answer(ctx, a.api, inv.SDP)
	if err != nil {
		release.all()
		if isOfferRefused(err) {
			return nil, fmt.Errorf("%w: %w", ErrBadOffer, err)
		}
		return nil, fmt.Errorf("archiver: answer: %w", err)
	}
	id := a.opts.Identity
	answer, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleAnswer, Room: inv.Room, RoomName: inv.RoomName,
		SDP: sdp, Session: inv.Session, Peer: torrent.Peer{ID: id.Author(), Name: id.Name}})
	if err != nil {
		pc.Close()
		release.all()
		return nil, fmt.Errorf("archiver: answer: %w", err)
	}
	// A peer that goes away without closing (a phone out of range, its battery flat)
	// ends the connection when ICE gives up on it (pion: failed after about 30 s of
	// silence): its session ends and its place among MaxPeers is free again.
	connCtx, cancelConn := context.WithCancel(runCtx)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			cancelConn()
		}
	})
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer release.all()
		defer pc.Close()
		defer cancelConn()
		a.serve(connCtx, inv, slices.Contains(caller.Proven, inv.Peer.ID), channels, release.opening)
	}()
	a.log.Info("answered", "room", inv.Room, "name", inv.RoomName, "peer", inv.Peer.Name)
	return answer, nil
}

// places are a connection's reservations: its place among MaxPeers and its client's
// MaxPeersPerClient, and among its client's MaxOpeningPerClient until the peer's hello. Each is given back once.
type places struct {
	opening func() // gives back the client's opening place
	all     func() // gives back both
}

// reserve takes a place for a new connection from client; it returns Run's context, the
// connection's lifetime.
func (a *Archiver) reserve(client netip.Addr) (places, context.Context, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.runCtx == nil || a.stopped:
		return places{}, nil, ErrNotRunning
	case a.peers >= a.opts.MaxPeers:
		return places{}, nil, ErrBusy
	case client.IsValid() && a.opening[client] >= a.opts.MaxOpeningPerClient:
		return places{}, nil, ErrTooMany
	case client.IsValid() && a.byAddr[client] >= a.opts.MaxPeersPerClient:
		return places{}, nil, ErrTooMany
	}
	a.peers++
	if client.IsValid() {
		a.opening[client]++
		a.byAddr[client]++
	}
	opening := sync.OnceFunc(func() {
		if !client.IsValid() {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.opening[client]--; a.opening[client] <= 0 {
			delete(a.opening, client)
		}
	})
	peer := sync.OnceFunc(func() {
		a.mu.Lock()
		a.peers--
		if client.IsValid() {
			if a.byAddr[client]--; a.byAddr[client] <= 0 {
				delete(a.byAddr, client)
			}
		}
		a.mu.Unlock()
	})
	return places{opening: opening, all: func() { opening(); peer() }}, a.runCtx, nil
}

// room opens (creating if new) the stored room and writes the box's join entry once.
func (a *Archiver) room(id, name string) (*store.RoomHistory, error) {
	if err := a.opts.Store.CreateRoom(id, name); err != nil && !errors.Is(err, store.ErrExists) {
		return nil, fmt.Errorf("archiver: %w", err)
	}
	rh, err := a.opts.Store.RoomHistory(id)
	if err != nil {
		return nil, fmt.Errorf("archiver: %w", err)
	}
	me := a.opts.Identity
	if _, ok := rh.At(me.Author(), 1); !ok {
		join := history.Entry{Author: me.Author(), Name: me.Name, Kind: history.KindJoin, TS: a.opts.Clock.Now().UnixMilli()}
		if _, err := rh.Write(join, me.Sign); err != nil {
			return nil, fmt.Errorf("archiver: join: %w", err)
		}
	}
	return rh, nil
}

// raiseClockFloor tells the clock the newest entry ts the store holds: a system clock
// behind it is stale.
func raiseClockFloor(c *Clock, st *store.Store) error {
	rooms, err := st.Rooms()
	if err != nil {
		return err
	}
	var newest int64
	for _, r := range rooms {
		newest = max(newest, r.LastTS)
	}
	if newest > 0 {
		c.RaiseNotBefore(time.UnixMilli(newest))
	}
	return nil
}

// observeClock passes a peer's stated time to the clock when the peer is a member of the
// room: its id is an author with entries in the room's stored history (not the box's own).
// A peer's first connection, before its join entry is stored, does not count.
func (a *Archiver) observeClock(rh *store.RoomHistory, peer string, stated time.Time) {
	if stated.IsZero() || peer == a.opts.Identity.Author() {
		return
	}
	if _, member := rh.At(peer, 1); member {
		a.opts.Clock.Observe(peer, stated)
	}
}

// serve waits for the peer's DataChannel and runs the sync session until either side
// leaves. Entries one peer brings are passed on to the room's other peers.
func (a *Archiver) serve(ctx context.Context, inv *torrent.Invitation, proven bool, channels <-chan *webrtc.DataChannel, opened func()) {
	log := a.log.With("room", inv.Room, "peer", inv.Peer.Name)
	// The channel must open, and the peer say hello, within OpenTimeout of the answer.
	openCtx, cancelOpen := context.WithTimeout(ctx, a.opts.OpenTimeout)
	defer cancelOpen()
	conn := a.openChannel(ctx, openCtx, channels, log)
	if conn == nil {
		return
	}
	defer conn.Close()
	room := &sessionRoom{open: func() (*store.RoomHistory, error) { return a.room(inv.Room, inv.RoomName) }}
	room.bind(a.opts.Store, inv.Room)
	sctx, endSession := context.WithCancel(ctx)
	var watch sync.WaitGroup
	defer watch.Wait()
	defer endSession()
	hello := make(chan struct{})
	p := &peerSession{a: a, ctx: ctx, inv: inv, proven: proven, log: log, room: room, router: &fileRouter{},
		saidHello: sync.OnceFunc(func() { close(hello); opened() }), end: endSession}
	watch.Go(func() { // ends a session whose peer never says hello
		select {
		case <-hello:
		case <-sctx.Done():
		case <-openCtx.Done():
			log.Warn("the peer never said hello: nothing kept", "after", a.opts.OpenTimeout)
			endSession()
		}
	})
	var seeder *transfer.Seeder
	var files rtc.FileHandler
	if a.opts.Blobs != nil {
		seeder = transfer.NewSeeder(transfer.SeederOptions{Blobs: a.opts.Blobs, Logger: log,
			Announced: func(root string) bool { return a.announced(inv.Room, root) }})
		p.router.seed = seeder
		files = p.router
	}
	s, err := rtc.NewSession(rtc.Config{Files: files,
		Room: inv.Room, History: room, Conn: conn, Logger: a.opts.Logger, MaxNewAuthors: rtc.MaxNewAuthorsPerSession,
		Self: rtc.PeerInfo{ID: a.opts.Identity.Author(), Name: a.opts.Identity.Name}, Now: a.opts.Clock.Now,
		OnEvent: p.onEvent,
	})
	if err != nil {
		log.Error("session", "err", err)
		return
	}
	p.s = s // before Run: the session's events read it
	if a.fetch != nil {
		// Set before Run: the session's events and frames read it.
		p.router.fetch = a.fetch.RoomLink(inv.Room, s, inv.Peer.Name)
		defer p.router.fetch.Close()
	}
	defer a.join(inv.Room, s)()
	log.Info("peer connected")
	if seeder != nil {
		defer seedWhile(sctx, seeder, s, log)()
	}
	a.logEnd(log, s, s.Run(sctx))
}

// openChannel waits for the peer's DataChannel and opens it; nil when it does not open
// within openCtx (logged, unless ctx ended).
func (a *Archiver) openChannel(ctx, openCtx context.Context, channels <-chan *webrtc.DataChannel, log *slog.Logger) *rtc.DataChannelConn {
	var dc *webrtc.DataChannel
	select {
	case dc = <-channels:
	case <-openCtx.Done():
		if ctx.Err() == nil {
			log.Warn("the peer never opened the channel: nothing kept", "after", a.opts.OpenTimeout)
		}
		return nil
	}
	conn, err := rtc.Open(openCtx, dc)
	if err != nil {
		log.Warn("channel did not open: nothing kept", "err", err)
		return nil
	}
	return conn
}

// join lists s among the room's sessions (relay's targets); the func returned leaves.
func (a *Archiver) join(room string, s *rtc.Session) (leave func()) {
	a.mu.Lock()
	if a.byRoom[room] == nil {
		a.byRoom[room] = make(map[*rtc.Session]struct{})
	}
	a.byRoom[room][s] = struct{}{}
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		delete(a.byRoom[room], s)
		a.mu.Unlock()
	}
}

// seedWhile serves the box's files to the session's peer until ctx ends or the func
// returned is called (which waits for the seeder to stop).
func seedWhile(ctx context.Context, seeder *transfer.Seeder, s *rtc.Session, log *slog.Logger) (stop func()) {
	seedCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := seeder.Run(seedCtx, s); err != nil {
			log.Warn("serving files stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}

// logEnd logs how a session ended, with what it moved.
func (a *Archiver) logEnd(log *slog.Logger, s *rtc.Session, err error) {
	st := s.Stats()
	attrs := []any{"received", st.Added, "sent", st.EntriesSent, "refused", st.Refused}
	if a.fetch != nil {
		// What the peer leaves queued: the files announced wait for a peer that has them.
		attrs = append(attrs, "files queued", a.fetch.Pending())
	}
	if err != nil {
		log.Warn("session ended", append([]any{"err", err}, attrs...)...)
		return
	}
	log.Info("peer left", attrs...)
}

// peerSession is one peer's session on the box: the box's reactions to what the session
// reports (a hello, entries added) are its methods.
type peerSession struct {
	a         *Archiver
	ctx       context.Context // the archiver's run: relays outlive the session
	inv       *torrent.Invitation
	proven    bool // the peer proved the key of inv.Peer.ID
	log       *slog.Logger
	room      *sessionRoom
	router    *fileRouter
	s         *rtc.Session // set before the session runs
	saidHello func()
	end       func() // ends the session
}

// onEvent is the session's OnEvent.
func (p *peerSession) onEvent(ev rtc.Event) {
	switch ev.Kind {
	case rtc.EventHello:
		p.onHello(ev)
	case rtc.EventAdded:
		p.a.recv.note(p.inv.Room, time.Now())
		p.a.relay(p.ctx, p.inv.Room, p.s, ev.Entries)
		p.a.fetchFiles(p.router.fetch, ev.Entries, false, "")
	}
}

// onHello: the peer's hello named the room (the session checked it): the room is kept on
// the box from now on, the clock hears a member's time and the files kept are asked for.
func (p *peerSession) onHello(ev rtc.Event) {
	p.saidHello()
	rh, err := p.room.ensure()
	if err != nil {
		p.log.Error("room not kept", "err", err)
		p.end()
		return
	}
	// The peer's own files (by a key it proved) are asked of it as announced by it.
	own := ""
	if p.proven && ev.Peer.ID == p.inv.Peer.ID { // a key the peer proved, not a claim
		p.a.observeClock(rh, ev.Peer.ID, ev.PeerNow) // before the peer's entries are checked
		own = ev.Peer.ID
	}
	p.a.fetchKept(p.inv.Room, p.router.fetch, own)
}

// relay publishes entries that one session stored to the room's other sessions. It must
// not block (it runs in a session's goroutine): each publish runs on its own goroutine,
// owned by the archiver's wait group.
func (a *Archiver) relay(ctx context.Context, room string, from *rtc.Session, entries []history.Entry) {
	a.mu.Lock()
	var others []*rtc.Session
	for s := range a.byRoom[room] {
		if s != from {
			others = append(others, s)
		}
	}
	if a.stopped {
		others = nil
	}
	if len(others) > 0 {
		a.wg.Add(1)
	}
	a.mu.Unlock()
	if len(others) == 0 {
		return
	}
	go func() {
		defer a.wg.Done()
		for _, s := range others {
			for _, e := range entries {
				if err := s.Publish(ctx, e); err != nil {
					return
				}
			}
		}
	}()
}

// fileRouter is a session's FileHandler: the peer's wants (and cancels) go to the Seeder,
// the answers to the box's own wants (frames, nope, cancel) to the Fetcher's link.
type fileRouter struct {
	seed  *transfer.Seeder
	fetch *transfer.FetchLink // nil without a fetcher
}

func (r *fileRouter) Control(c pieces.Control) {
	switch c.T {
	case "want":
		r.seed.Control(c)
	case "cancel":
		r.seed.Control(c)
		if r.fetch != nil {
			r.fetch.Control(c)
		}
	case "nope":
		if r.fetch != nil {
			r.fetch.Control(c)
		}
	}
}

func (r *fileRouter) Frame(b []byte) {
	if r.fetch != nil {
		r.fetch.Frame(b)
	}
}

// fetchKept queues, once the peer said hello, the files of every entry the box already
// keeps for the room: the peer may hold some the box lacks. It must not block (it runs in
// the session's goroutine): the store is read on a goroutine of the archiver's wait group.
func (a *Archiver) fetchKept(room string, link *transfer.FetchLink, own string) {
	if link == nil {
		return
	}
	a.wg.Add(1) // the calling session is counted in wg: this never races Run's Wait
	go func() {
		defer a.wg.Done()
		es, err := a.opts.Store.Entries(room)
		if err != nil {
			a.log.Warn("files not fetched: the room's entries", "room", room, "err", err)
			return
		}
		a.fetchFiles(link, es, true, own)
	}()
}

// fetchFiles queues the files the entries announce to be fetched from the link's peer
// (among others); files the box holds, or over the size limit, are skipped by the Fetcher.
// kept: the entries are the room's stored ones, the peer asked only in case it holds them
// (FetchKept), not entries it brought, except those by own (the key it proved): its own
// files, which it announced.
func (a *Archiver) fetchFiles(link *transfer.FetchLink, es []history.Entry, kept bool, own string) {
	if link == nil {
		return
	}
	for _, e := range es {
		if !pieces.IsFileKind(e.Kind) {
			continue
		}
		m, err := pieces.ParseMeta(e.Kind, e.Body)
		if err != nil {
			continue // shown as unsupported; never fetched (§5)
		}
		fetch := link.Fetch
		if kept && (own == "" || e.Author != own) {
			fetch = link.FetchKept
		}
		if err := fetch(m); err != nil && !errors.Is(err, transfer.ErrTooLarge) && !errors.Is(err, transfer.ErrTooManyJobs) {
			a.log.Warn("file not fetched", "root", m.Root, "err", err)
		}
	}
}

// announced says whether an entry of the room announces the file root (hex).
func (a *Archiver) announced(room, root string) bool {
	es, err := a.opts.Store.Entries(room)
	if err != nil {
		return false
	}
	for _, e := range es {
		if pieces.IsFileKind(e.Kind) && strings.Contains(e.Body, root) {
			if m, err := pieces.ParseMeta(e.Kind, e.Body); err == nil && m.Root == root {
				return true
			}
		}
	}
	return false
}

// PostFile stores a file the box made (a voice note from its microphone), announces it
// in the room with an entry of the box's own, and sends that entry to the room's peers,
// which then fetch the file from the box.
func (a *Archiver) PostFile(ctx context.Context, room string, meta pieces.Meta, r io.Reader) (history.Entry, error) {
	if a.opts.Blobs == nil {
		return history.Entry{}, errors.New("archiver: post file: no blob store")
	}
	rh, err := a.opts.Store.RoomHistory(room)
	if err != nil {
		return history.Entry{}, fmt.Errorf("archiver: post file: %w", err)
	}
	root, err := a.opts.Blobs.Put(r, meta.Size)
	if err != nil {
		return history.Entry{}, fmt.Errorf("archiver: post file: %w", err)
	}
	meta.Root = pieces.RootHex(root)
	body, err := meta.Body()
	if err != nil {
		return history.Entry{}, fmt.Errorf("archiver: post file: %w", err)
	}
	me := a.opts.Identity
	e, err := rh.Write(history.Entry{Author: me.Author(), Name: me.Name, Kind: meta.Kind, Body: body, TS: a.opts.Clock.Now().UnixMilli()}, me.Sign)
	if err != nil {
		return history.Entry{}, fmt.Errorf("archiver: post file: %w", err)
	}
	a.log.Info("file posted", "room", room, "kind", meta.Kind, "name", meta.Name, "bytes", meta.Size)
	a.mu.Lock()
	run := a.runCtx // the sessions' lifetime, not the caller's (an HTTP request ends first)
	a.mu.Unlock()
	if run != nil {
		a.relay(run, room, nil, []history.Entry{e})
	}
	return e, nil
}

// Peers is the number of peer connections open now, over every room.
func (a *Archiver) Peers() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, ss := range a.byRoom {
		n += len(ss)
	}
	return n
}

// running reports whether Run has started and not stopped.
func (a *Archiver) running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runCtx != nil && !a.stopped
}
