package transfer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store/blobs"
)

// Defaults of FetcherOptions.
const (
	DefaultMaxFetchSize = 256 << 20
	DefaultDiskBudget   = 2 << 30
	DefaultMaxFetches   = 2
	DefaultMaxLies      = 3
	DefaultStall        = 10 * time.Second
	maxBadHashes        = 3
	silentStalls        = 3   // unanswered asks of one want before the peer counts as silent
	gotEvery            = 64  // a got message every 64 pieces verified (1 MiB)
	fetchQueue          = 512 // frames queued per fetch before the excess is dropped (asked again)

	// MaxJobs caps the files queued or being fetched, in all rooms: announcements past it
	// are refused (ErrTooManyJobs) until jobs finish or expire.
	MaxJobs = 256
	// MaxJobsPerRoom caps them per room, so one room's announcements cannot take them all.
	MaxJobsPerRoom = 64
	// ParkedJobTTL: a job not running (no peer holds the file, or it was refused) that no
	// peer announced again for this long is dropped; its partial file stays (PartialTTL).
	ParkedJobTTL = time.Hour
	// PartialTTL: a file being fetched that gained no verified piece for this long is
	// deleted, so parts of files nobody sends do not keep the disk budget.
	PartialTTL = 24 * time.Hour
	// pruneEvery is how often Run drops expired jobs and partial files.
	pruneEvery = time.Minute
)

// Errors of Fetch.
var (
	ErrTooLarge = errors.New("transfer: fetch: the file is over the size limit")
	// ErrTooManyJobs: MaxJobs (or MaxJobsPerRoom for the link's room) files are queued.
	ErrTooManyJobs = errors.New("transfer: fetch: too many files queued")
	errParked      = errors.New("transfer: fetch: no peer to ask")
)

// FetcherOptions configure a Fetcher.
type FetcherOptions struct {
	Blobs *blobs.Store // where fetched files end up; required
	// MaxFileSize refuses larger files; 0 means DefaultMaxFetchSize (256 MiB).
	MaxFileSize int64
	// DiskBudget caps the bytes of the Blobs directory (the box's own files, fetched files
	// and files being fetched, counted at their full size); a fetch that would pass it is
	// refused with a log. Nothing is ever deleted to make room. 0 means DefaultDiskBudget.
	DiskBudget int64
	// MaxFetches caps the files fetched at once; 0 means DefaultMaxFetches.
	MaxFetches int
	// MaxLies is how many bad pieces (or hashes) a peer may send for one file before it is
	// no longer asked for that file; 0 means DefaultMaxLies.
	MaxLies int
	// Stall is how long a fetch waits for the asked peer's next frame before asking again
	// (and, the second time, asking another peer if there is one); 0 means DefaultStall.
	Stall time.Duration
	// MaxJobs and MaxJobsPerRoom cap the files queued or being fetched (in all, and per
	// room of the link that announced them first); 0 means the constants of those names.
	MaxJobs, MaxJobsPerRoom int
	// ParkedJobTTL and PartialTTL: 0 means the constants of those names.
	ParkedJobTTL, PartialTTL time.Duration
	// OnComplete, when set, is called (from the fetch's goroutine) with the root (hex) of
	// each file stored whole.
	OnComplete func(root string)
	Logger     *slog.Logger
	Now        func() time.Time // the clock for the TTLs; nil means time.Now
}

// FetcherStats counts what the fetcher did.
type FetcherStats struct {
	Fetched      int64 // files stored whole
	Pieces       int64 // pieces verified and written
	BadPieces    int64 // pieces (or hash lists) that did not match
	DroppedPeers int64 // peers no longer asked for a file because they lied
	Refused      int64 // fetches refused: over the size limit or the disk budget
	TooMany      int64 // announcements refused: too many jobs (in all or in the room)
	Expired      int64 // parked jobs dropped after ParkedJobTTL
	MadeWay      int64 // jobs no peer could be asked for, dropped for a file a peer offers
	PartsExpired int64 // partial files deleted after PartialTTL without progress
}

// Fetcher is the receiving side of PROTOCOL.md §5 for the box (files.js FileLink's, in
// Go): it fetches files announced in a room from the peers that may hold them, checks the
// hashes against the root and every piece against its leaf, writes verified pieces to a
// temporary file in the Blobs directory and renames it to its root when whole, after
// which a Seeder serves it. One Fetcher serves the whole box; each session gets a
// FetchLink (Link). A fetch cut by a peer leaving resumes from the verified pieces with
// the next peer, and after a restart of the box from the temporary file, whose pieces are
// verified again against the leaves.
type Fetcher struct {
	opts FetcherOptions
	log  *slog.Logger
	kick chan struct{}

	mu        sync.Mutex
	jobs      map[string]*job
	order     []*job         // queued first, fetched first
	perRoom   map[string]int // jobs per room
	running   int
	started   bool
	warnedBig map[string]bool
	warnedJob map[string]bool // rooms told (in the log) they have too many jobs
	wg        sync.WaitGroup

	fetched, pieces, bad, dropped, refused, tooMany, expired, partsExpired, madeWay atomic.Int64
}

type job struct {
	meta  pieces.Meta
	root  [32]byte
	n     int
	room  string              // of the link that announced it first: what it counts against
	seen  time.Time           // created, last announced or last stopped running: parked since
	in    chan fetchEvent     // made when a run starts, dropped when it ends
	peers []*FetchLink        // who may hold the file, in the order they are asked
	skip  map[*FetchLink]bool // said nope, cancelled or lied too often: not asked again
	maybe map[*FetchLink]bool // peers only asked in case they hold it (FetchKept), not its announcers
	cur   *FetchLink          // the peer asked now; frames from others are dropped

	running bool
	refused bool // by the budget or a disk error, until Fetch is called again

	// Owned by the goroutine fetching (one at a time); kept between runs for a resume.
	// have is made by the first run (a job only announced holds no per-piece memory).
	leaves [][32]byte
	have   []bool
	nhave  int
}

type fetchEvent struct {
	from  *FetchLink
	frame pieces.Frame
	ctl   string // "nope" or "cancel"; "" for a frame
}

// NewFetcher checks opts; Run fetches.
func NewFetcher(opts FetcherOptions) (*Fetcher, error) {
	if opts.Blobs == nil {
		return nil, errors.New("transfer: fetcher: no Blobs")
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFetchSize
	}
	if opts.DiskBudget <= 0 {
		opts.DiskBudget = DefaultDiskBudget
	}
	if opts.MaxFetches <= 0 {
		opts.MaxFetches = DefaultMaxFetches
	}
	if opts.MaxLies <= 0 {
		opts.MaxLies = DefaultMaxLies
	}
	if opts.Stall <= 0 {
		opts.Stall = DefaultStall
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = MaxJobs
	}
	if opts.MaxJobsPerRoom <= 0 {
		opts.MaxJobsPerRoom = MaxJobsPerRoom
	}
	if opts.ParkedJobTTL <= 0 {
		opts.ParkedJobTTL = ParkedJobTTL
	}
	if opts.PartialTTL <= 0 {
		opts.PartialTTL = PartialTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Fetcher{opts: opts, log: opts.Logger.With("component", "fetcher"), kick: make(chan struct{}, 1),
		jobs: make(map[string]*job), perRoom: make(map[string]int), warnedBig: make(map[string]bool),
		warnedJob: make(map[string]bool)}, nil
}

// Stats returns the counters so far.
func (f *Fetcher) Stats() FetcherStats {
	return FetcherStats{Fetched: f.fetched.Load(), Pieces: f.pieces.Load(), BadPieces: f.bad.Load(),
		DroppedPeers: f.dropped.Load(), Refused: f.refused.Load(), TooMany: f.tooMany.Load(),
		Expired: f.expired.Load(), PartsExpired: f.partsExpired.Load(), MadeWay: f.madeWay.Load()}
}

// Pending is the number of files queued or being fetched.
func (f *Fetcher) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.order)
}

// Run starts fetches (at most MaxFetches at once) until ctx ends, then waits for them.
// Cancellation is not an error. Run may be called once.
func (f *Fetcher) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.started {
		f.mu.Unlock()
		return errors.New("transfer: fetcher: Run called twice")
	}
	f.started = true
	f.mu.Unlock()
	defer f.wg.Wait()
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	f.Prune()
	for {
		f.schedule(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-f.kick:
		case <-prune.C:
			f.Prune()
		}
	}
}

// Prune drops the jobs parked for ParkedJobTTL and deletes the partial files that gained
// no piece for PartialTTL (except those of running jobs). Run calls it every minute.
func (f *Fetcher) Prune() {
	now := f.opts.Now()
	f.mu.Lock()
	f.pruneJobs(now)
	running := make(map[[32]byte]bool)
	for _, j := range f.jobs {
		if j.running {
			running[j.root] = true
		}
	}
	f.mu.Unlock()
	n, err := f.opts.Blobs.ExpirePartials(now.Add(-f.opts.PartialTTL), func(root [32]byte) bool { return running[root] })
	if n > 0 {
		f.partsExpired.Add(int64(n))
		f.log.Info("partial files of fetches without progress deleted", "files", n, "after", f.opts.PartialTTL)
	}
	if err != nil {
		f.log.Warn("partial files not pruned", "err", err)
	}
}

// pruneJobs drops the jobs not running whose last sign of life is older than
// ParkedJobTTL; f.mu held.
func (f *Fetcher) pruneJobs(now time.Time) {
	for _, j := range slices.Clone(f.order) {
		if !j.running && now.Sub(j.seen) >= f.opts.ParkedJobTTL {
			f.forget(j)
			f.expired.Add(1)
			f.log.Info("parked file fetch dropped: no peer sent it for a while", "root", j.meta.Root, "name", j.meta.Name, "after", f.opts.ParkedJobTTL)
		}
	}
}

// makeWay drops the oldest job not running that no announcer of it can be asked for (they
// left, said nope or lied; peers asked only in case, FetchKept, do not count), in room
// (any room for ""), so a file a connected peer announces now takes its place: otherwise
// files announced by a peer that never sends them hold the room's places (and the box's)
// for ParkedJobTTL after it left, and longer while it keeps coming back, and nobody
// else's file is fetched meanwhile. The dropped job's partial file stays; a later
// announcement queues it again. f.mu held.
func (f *Fetcher) makeWay(room string) {
	var oldest *job
	for _, j := range f.order {
		if j.running || (room != "" && j.room != room) || f.announcer(j) {
			continue
		}
		if oldest == nil || j.seen.Before(oldest.seen) {
			oldest = j
		}
	}
	if oldest == nil {
		return
	}
	f.forget(oldest)
	f.madeWay.Add(1)
	f.log.Debug("file fetch dropped from the queue: no peer to ask, and a peer offers another file", "root", oldest.meta.Root, "name", oldest.meta.Name)
}

func (f *Fetcher) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// schedule starts the queued fetches that have a peer to ask, within the caps.
func (f *Fetcher) schedule(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	for _, j := range slices.Clone(f.order) {
		if f.running >= f.opts.MaxFetches {
			return
		}
		if j.running || j.refused || f.usable(j, nil) == nil {
			continue
		}
		if f.opts.Blobs.Has(j.root) { // stored meanwhile (the box posted it itself)
			f.forget(j)
			continue
		}
		if !f.opts.Blobs.PartialExists(j.root) {
			// Partials count by the blocks they take, so the running fetches' full sizes
			// are reserved on top (their blocks so far are counted twice: on the safe side).
			used, err := f.opts.Blobs.Usage()
			need := j.meta.Size + 32*int64(j.n)
			for _, o := range f.jobs {
				if o.running {
					need += o.meta.Size + 32*int64(o.n)
				}
			}
			if err != nil || used+need > f.opts.DiskBudget {
				j.refused = true
				f.refused.Add(1)
				f.log.Warn("file not fetched: the disk budget for the box's files is full (nothing is deleted to make room)",
					"root", j.meta.Root, "name", j.meta.Name, "bytes", j.meta.Size, "used", used, "budget", f.opts.DiskBudget, "err", err)
				continue
			}
		}
		part, err := f.opts.Blobs.OpenPartial(j.root, j.meta.Size)
		if err != nil {
			j.refused = true
			f.log.Error("file not fetched", "root", j.meta.Root, "err", err)
			continue
		}
		j.running = true
		j.in = make(chan fetchEvent, fetchQueue)
		f.running++
		f.wg.Go(func() { f.run(ctx, j, part) })
	}
}

// forget removes a finished or expired job; f.mu held.
func (f *Fetcher) forget(j *job) {
	if f.jobs[j.meta.Root] != j {
		return
	}
	delete(f.jobs, j.meta.Root)
	f.order = slices.DeleteFunc(f.order, func(o *job) bool { return o == j })
	if f.perRoom[j.room]--; f.perRoom[j.room] <= 0 {
		delete(f.perRoom, j.room)
		delete(f.warnedJob, j.room)
	}
}

// announcer reports whether a peer that announced j (not only asked in case) may still be
// asked for it; f.mu held.
func (f *Fetcher) announcer(j *job) bool {
	for _, p := range j.peers {
		if !j.skip[p] && !j.maybe[p] && !p.isClosed() && !p.silent.Load() {
			return true
		}
	}
	return false
}

// usable returns the first peer of j that may be asked, other than not (nil: any); f.mu held.
func (f *Fetcher) usable(j *job, not *FetchLink) *FetchLink {
	for _, p := range j.peers {
		if p != not && !j.skip[p] && !p.isClosed() && !p.silent.Load() {
			return p
		}
	}
	return nil
}

func (f *Fetcher) run(ctx context.Context, j *job, part *blobs.Partial) {
	log := f.log.With("root", j.meta.Root, "name", j.meta.Name)
	err := f.fetch(ctx, j, part, log)
	if cerr := part.Close(); cerr != nil && err == nil {
		err = cerr
	}
	f.mu.Lock()
	j.running = false
	j.cur = nil
	j.in = nil // frames still routed to the old channel are dropped with it
	j.seen = f.opts.Now()
	f.running--
	switch {
	case err == nil:
		f.forget(j)
	case errors.Is(err, errParked), ctx.Err() != nil:
	default:
		j.refused = true // until a session announces it again
	}
	f.mu.Unlock()
	switch {
	case err == nil:
		f.fetched.Add(1)
		log.Info("file fetched and stored", "bytes", j.meta.Size)
		if f.opts.OnComplete != nil {
			f.opts.OnComplete(j.meta.Root)
		}
	case errors.Is(err, errParked):
		log.Info("file fetch waits for a peer that holds it", "verified", j.nhave, "pieces", j.n)
	case ctx.Err() != nil:
	default:
		log.Warn("file fetch stopped", "err", err)
	}
	f.wake()
}

func (f *Fetcher) commit(ctx context.Context, j *job, part *blobs.Partial, p *FetchLink) error {
	if err := part.Commit(j.leaves); err != nil {
		return err
	}
	if err := p.send.SendControl(ctx, pieces.Control{T: "got", Root: j.meta.Root, Pieces: int64(j.n)}); err != nil {
		f.log.Debug("got not sent", "err", err)
	}
	return nil
}

func (f *Fetcher) skip(j *job, p *FetchLink) {
	f.mu.Lock()
	j.skip[p] = true
	if j.cur == p {
		j.cur = nil
	}
	f.mu.Unlock()
}

// missing returns the ranges of pieces not held, at most MaxRanges (the rest is asked for
// later).
func missing(have []bool) [][2]int64 {
	var out [][2]int64
	for i := 0; i < len(have) && len(out) < pieces.MaxRanges; {
		for i < len(have) && have[i] {
			i++
		}
		if i >= len(have) {
			break
		}
		from := i
		for i < len(have) && !have[i] {
			i++
		}
		out = append(out, [2]int64{int64(from), int64(i)})
	}
	return out
}

// FetchLink is a Fetcher's side of one session: Fetch queues files the peer may hold;
// Control and Frame take the peer's answers (it is the receiving half of an
// rtc.FileHandler); Close when the session ends.
type FetchLink struct {
	f      *Fetcher
	send   Sender
	name   string
	room   string // the session's room: what its announcements count against
	done   chan struct{}
	closed atomic.Bool
	// silent: the peer answered none of a want asked silentStalls times; it is not asked
	// for any file again until it sends the fetcher something (a frame, nope or cancel).
	silent atomic.Bool
}

// Link returns the fetcher's side of a session whose peer is called name, in no room
// (its jobs count against the room ""); RoomLink says the room.
func (f *Fetcher) Link(send Sender, name string) *FetchLink {
	return f.RoomLink("", send, name)
}

// RoomLink returns the fetcher's side of a session in room whose peer is called name:
// the files it announces first count against room's MaxJobsPerRoom.
func (f *Fetcher) RoomLink(room string, send Sender, name string) *FetchLink {
	return &FetchLink{f: f, send: send, name: name, room: room, done: make(chan struct{})}
}

func (l *FetchLink) isClosed() bool { return l.closed.Load() }

// heard notes that the peer sent the fetcher something: a silent peer may be asked again.
func (l *FetchLink) heard() {
	if l.silent.CompareAndSwap(true, false) {
		l.f.wake()
	}
}

// Fetch queues the file m (announced in the session's room) to be fetched, from this
// peer among others, unless the store holds it already. A file over the size limit is
// refused (ErrTooLarge), and so is a new file when MaxJobs files are queued in all or
// MaxJobsPerRoom in the link's room (ErrTooManyJobs: announced again later, it is
// queued then), unless a queued job that no peer can be asked for makes way (makeWay);
// the disk budget is checked when the fetch starts.
func (l *FetchLink) Fetch(m pieces.Meta) error { return l.fetch(m, false) }

// FetchKept is Fetch for a file announced in the room earlier, which this peer may hold
// (the box asks each peer that connects for the room's files it lacks): the peer is asked
// for it like any other, but it is not the file's announcer, so a job that only such
// peers could send makes way for a file a peer announces (makeWay), and a new job here
// never makes way for itself.
func (l *FetchLink) FetchKept(m pieces.Meta) error { return l.fetch(m, true) }

func (l *FetchLink) fetch(m pieces.Meta, maybe bool) error {
	f := l.f
	raw, err := hex.DecodeString(m.Root)
	if err != nil || len(raw) != 32 || m.Size < 1 {
		return fmt.Errorf("transfer: fetch: bad meta %.16q", m.Root)
	}
	root := [32]byte(raw)
	if m.Size > f.opts.MaxFileSize {
		f.mu.Lock()
		warned := f.warnedBig[m.Root]
		f.warnedBig[m.Root] = true
		f.mu.Unlock()
		if !warned {
			f.refused.Add(1)
			f.log.Warn("file not fetched: over the size limit", "root", m.Root, "name", m.Name, "bytes", m.Size, "limit", f.opts.MaxFileSize)
		}
		return ErrTooLarge
	}
	if f.opts.Blobs.Has(root) {
		return nil
	}
	f.mu.Lock()
	if l.isClosed() {
		f.mu.Unlock()
		return nil
	}
	now := f.opts.Now()
	j := f.jobs[m.Root]
	if j == nil {
		if len(f.jobs) >= f.opts.MaxJobs || f.perRoom[l.room] >= f.opts.MaxJobsPerRoom {
			f.pruneJobs(now)
		}
		if !maybe && f.perRoom[l.room] >= f.opts.MaxJobsPerRoom {
			f.makeWay(l.room)
		}
		if !maybe && f.perRoom[l.room] < f.opts.MaxJobsPerRoom && len(f.jobs) >= f.opts.MaxJobs {
			f.makeWay("")
		}
		if len(f.jobs) >= f.opts.MaxJobs || f.perRoom[l.room] >= f.opts.MaxJobsPerRoom {
			warned := f.warnedJob[l.room]
			f.warnedJob[l.room] = true
			total, inRoom := len(f.jobs), f.perRoom[l.room]
			f.mu.Unlock()
			f.tooMany.Add(1)
			if !warned {
				f.log.Warn("file not queued: too many files waiting to be fetched", "room", l.room, "root", m.Root,
					"jobs", total, "max", f.opts.MaxJobs, "in room", inRoom, "max per room", f.opts.MaxJobsPerRoom)
			}
			return ErrTooManyJobs
		}
		// No per-piece memory yet: the event channel and the bitmap are made when it runs.
		j = &job{meta: m, root: root, n: pieces.NumPieces(m.Size), room: l.room, skip: make(map[*FetchLink]bool)}
		f.jobs[m.Root] = j
		f.order = append(f.order, j)
		f.perRoom[l.room]++
	}
	if !slices.Contains(j.peers, l) {
		j.peers = append(j.peers, l)
		if maybe {
			if j.maybe == nil {
				j.maybe = make(map[*FetchLink]bool)
			}
			j.maybe[l] = true
		}
	}
	if !maybe {
		delete(j.maybe, l)
	}
	j.refused = false
	j.seen = now
	f.mu.Unlock()
	f.wake()
	return nil
}

// Close says the session ended: its fetches go on with other peers or wait for one.
func (l *FetchLink) Close() {
	if !l.closed.CompareAndSwap(false, true) {
		return
	}
	close(l.done)
	f := l.f
	f.mu.Lock()
	for _, j := range f.jobs {
		j.peers = slices.DeleteFunc(j.peers, func(p *FetchLink) bool { return p == l })
		delete(j.skip, l)
		delete(j.maybe, l)
	}
	f.mu.Unlock()
}

// route hands an event to the fetch of root if it is asking this peer; it never blocks.
func (l *FetchLink) route(root string, ev fetchEvent) bool {
	f := l.f
	f.mu.Lock()
	j := f.jobs[root]
	var in chan fetchEvent
	if j != nil && j.running && j.cur == l {
		in = j.in
	}
	f.mu.Unlock()
	if in == nil {
		return false
	}
	select {
	case in <- ev:
		return true
	default:
		f.log.Debug("file frame dropped: the fetch is behind (asked again later)", "root", root)
		return false
	}
}

// Control takes the peer's nope and cancel (a want is a Seeder's, got is ignored).
func (l *FetchLink) Control(c pieces.Control) {
	l.heard()
	if c.T == "nope" || c.T == "cancel" {
		l.route(c.Root, fetchEvent{from: l, ctl: c.T})
	}
}

// Frame takes a binary frame from the peer: hashes or a piece of a file asked for.
func (l *FetchLink) Frame(b []byte) {
	l.heard()
	fr, err := pieces.DecodeFrame(b)
	if err != nil {
		l.f.log.Warn("file frame dropped", "peer", l.name, "err", err)
		return
	}
	frames := []pieces.Frame{fr}
	if fr.Type == pieces.FramePieces {
		// A pieces frame is its pieces one after another, cut every PieceSize bytes.
		frames = frames[:0]
		for k := 0; k*pieces.PieceSize < len(fr.Data); k++ {
			if fr.Index > math.MaxUint32-uint32(k) {
				l.f.log.Warn("file frame dropped: piece index out of range", "peer", l.name)
				return
			}
			frames = append(frames, pieces.Frame{Type: pieces.FramePiece, Root: fr.Root, Index: fr.Index + uint32(k), Data: fr.Data[k*pieces.PieceSize : min(len(fr.Data), (k+1)*pieces.PieceSize)]})
		}
	}
	for _, p := range frames {
		if !l.route(pieces.RootHex(fr.Root), fetchEvent{from: l, frame: p}) {
			l.f.log.Debug("file frame dropped: not asked for", "peer", l.name, "root", pieces.RootHex(fr.Root))
			return
		}
	}
}
