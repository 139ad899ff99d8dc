package transfer

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"slices"
	"time"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store/blobs"
)

// fetchRun is one run of a job: the peer asked now and what this run learned of its
// peers. It is a small state machine driven by fetch's loop; each event is one named step:
//
//	start   → next: ask the first usable peer (want: the hashes first when not known)
//	frame   → onHashes (all leaves → check the root, resume a partial) or onPiece (verify, write)
//	nope    → next peer                  peer gone → next peer
//	stall   → onStall: ask again, another peer, or mark the peer silent
//	whole   → commit: the file is renamed to its root; the run ends (nil)
//	no peer → errParked; ctx ends → ctx.Err(); the disk fails → that error
//
// Only the goroutine running the job touches a fetchRun (and the job's leaves/have).
type fetchRun struct {
	f     *Fetcher
	j     *job
	part  *blobs.Partial
	log   *slog.Logger
	in    <-chan fetchEvent // this run's own channel (events of an earlier run went with its channel)
	stall *time.Timer

	p      *FetchLink // the peer asked now
	rescan bool       // the partial on disk predates the leaves: verify it once they arrive
	whole  bool       // committed: the run is over

	lies  map[*FetchLink]int
	quiet map[*FetchLink]int // asks of this file a peer left unanswered, in a row

	hashBuf   [][32]byte // leaves arriving, while asked for
	hashGot   []bool
	nhash     int
	lastAsked int  // the last piece of the stream asked for
	roundBad  bool // a bad piece came in this stream
	stalls    int  // stalls of the peer asked now, in a row
	sinceGot  int  // pieces verified since the last got
}

// fetch asks the job's peers in turn until the file is whole (nil), no peer is left
// (errParked), ctx ends or the disk fails.
func (f *Fetcher) fetch(ctx context.Context, j *job, part *blobs.Partial, log *slog.Logger) error {
	r := f.newRun(j, part, log)
	defer r.stall.Stop()
	if err := r.next(ctx, nil, false); err != nil {
		return err
	}
	for !r.whole {
		var err error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.p.done:
			err = r.next(ctx, nil, false)
		case <-r.stall.C:
			err = r.onStall(ctx)
		case ev := <-r.in:
			err = r.onEvent(ctx, ev)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// newRun starts a run of j: what a resume keeps (leaves, verified pieces) stays in j.
func (f *Fetcher) newRun(j *job, part *blobs.Partial, log *slog.Logger) *fetchRun {
	f.mu.Lock()
	in := j.in
	f.mu.Unlock()
	if j.have == nil {
		j.have = make([]bool, j.n)
	}
	if !part.Existed && j.nhave > 0 { // the temporary file went away: start again
		j.have, j.nhave = make([]bool, j.n), 0
	}
	return &fetchRun{
		f: f, j: j, part: part, log: log, in: in,
		stall:  time.NewTimer(f.opts.Stall),
		rescan: j.leaves == nil && part.Existed,
		lies:   make(map[*FetchLink]int),
		quiet:  make(map[*FetchLink]int),
	}
}

// ask sends p a want for what is missing (the hashes first when they are not known).
func (r *fetchRun) ask(ctx context.Context) error {
	j := r.j
	c := pieces.Control{T: "want", Root: j.meta.Root, Hashes: j.leaves == nil, Multi: true}
	if c.Hashes && r.rescan {
		c.Ranges = [][2]int64{{0, 1}} // the leaves first: the file on disk may hold the rest
	} else {
		c.Ranges = missing(j.have)
	}
	if c.Hashes {
		r.hashBuf, r.hashGot, r.nhash = make([][32]byte, j.n), make([]bool, j.n), 0
	}
	r.lastAsked = int(c.Ranges[len(c.Ranges)-1][1]) - 1
	r.roundBad = false
	r.stall.Reset(r.f.opts.Stall)
	return r.p.send.SendControl(ctx, c)
}

// next asks the first usable peer other than `not`, or else `not` again (when orSame
// allows); a peer that cannot be asked is skipped and the next one tried.
func (r *fetchRun) next(ctx context.Context, not *FetchLink, orSame bool) error {
	for {
		q := r.pick(not, orSame)
		if q == nil {
			return errParked
		}
		if q != r.p {
			r.stalls = 0
			if r.p != nil {
				r.log.Info("asking another peer for the file", "peer", q.name, "verified", r.j.nhave, "pieces", r.j.n)
			}
		}
		r.p = q
		err := r.ask(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.log.Info("a peer could not be asked", "peer", r.p.name, "err", err)
		r.f.skip(r.j, r.p)
		not, orSame = nil, false
	}
}

// pick chooses the peer to ask and makes it the job's current one.
func (r *fetchRun) pick(not *FetchLink, orSame bool) *FetchLink {
	f, j := r.f, r.j
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.usable(j, not)
	if q == nil && orSame && not != nil && !j.skip[not] && !not.isClosed() {
		q = not
	}
	if q != nil && not != nil && q != not {
		// The peer passed over goes to the back of the line.
		if i := slices.Index(j.peers, not); i >= 0 {
			j.peers = append(slices.Delete(j.peers, i, i+1), not)
		}
	}
	j.cur = q
	return q
}

// drop stops asking q for this file (it lied too often), tells it so and asks the next.
func (r *fetchRun) drop(ctx context.Context, q *FetchLink, why string) error {
	r.f.skip(r.j, q)
	r.f.dropped.Add(1)
	r.log.Warn("peer no longer asked for this file", "peer", q.name, "why", why)
	if err := q.send.SendControl(ctx, pieces.Control{T: "cancel", Root: r.j.meta.Root}); err != nil && ctx.Err() == nil {
		r.log.Debug("cancel not sent", "peer", q.name, "err", err)
	}
	return r.next(ctx, nil, false)
}

// onStall: the peer asked sent nothing for Stall. It is asked again (another peer after
// two stalls in a row); a peer that answers no want at all is not asked again.
func (r *fetchRun) onStall(ctx context.Context) error {
	p := r.p
	r.stalls++
	r.quiet[p]++
	if r.quiet[p] >= silentStalls {
		// A peer that sends nothing at all would hold this fetch's place (and the
		// box's few) for as long as it stays connected: it is not asked again.
		p.silent.Store(true)
		r.log.Info("the peer answers no want: not asked for files until it sends something", "peer", p.name, "asked", r.quiet[p])
		return r.next(ctx, p, false)
	}
	r.log.Info("no frame from the peer: asking again", "peer", p.name, "stalls", r.stalls)
	not := (*FetchLink)(nil)
	if r.stalls >= 2 {
		not = p // another peer, when there is one
	}
	return r.next(ctx, not, true)
}

// onEvent takes a frame, a nope or a cancel; those of a peer asked before are dropped.
func (r *fetchRun) onEvent(ctx context.Context, ev fetchEvent) error {
	p := r.p
	if ev.from != p {
		return nil
	}
	r.stalls = 0
	delete(r.quiet, p)
	if ev.ctl != "" {
		r.log.Info("the peer does not send the file", "peer", p.name, "says", ev.ctl)
		r.f.skip(r.j, p)
		return r.next(ctx, nil, false)
	}
	r.stall.Reset(r.f.opts.Stall)
	if ev.frame.Type == pieces.FrameHashes {
		return r.onHashes(ctx, ev.frame)
	}
	return r.onPiece(ctx, ev.frame)
}

// onHashes collects the leaves; once all arrived they must make the root, or the peer
// counts a lie and another is asked.
func (r *fetchRun) onHashes(ctx context.Context, fr pieces.Frame) error {
	j, p := r.j, r.p
	if j.leaves != nil || r.hashBuf == nil {
		r.log.Debug("frame dropped: hashes not asked for", "peer", p.name)
		return nil
	}
	if int(fr.Index)+fr.Leaves > j.n {
		r.log.Warn("frame dropped: hashes out of range", "peer", p.name)
		return nil
	}
	for k := range fr.Leaves {
		i := int(fr.Index) + k
		copy(r.hashBuf[i][:], fr.Data[32*k:])
		if !r.hashGot[i] {
			r.hashGot[i] = true
			r.nhash++
		}
	}
	if r.nhash < j.n {
		return nil
	}
	if pieces.Root(r.hashBuf) != j.root {
		r.hashBuf = nil
		r.f.bad.Add(1)
		r.lies[p]++
		r.log.Warn("the peer's hashes do not match the root", "peer", p.name, "times", r.lies[p])
		if r.lies[p] >= min(r.f.opts.MaxLies, maxBadHashes) {
			return r.drop(ctx, p, "hashes that do not match the root")
		}
		return r.next(ctx, nil, false)
	}
	j.leaves, r.hashBuf = r.hashBuf, nil
	if r.rescan {
		return r.resume(ctx)
	}
	return nil
}

// resume verifies the partial left by an earlier run or boot against the leaves just
// received: its good pieces are not asked again.
func (r *fetchRun) resume(ctx context.Context) error {
	j := r.j
	r.rescan = false
	have, err := r.part.Verified(j.leaves)
	if err != nil {
		return err
	}
	j.have, j.nhave = have, 0
	for _, h := range have {
		if h {
			j.nhave++
		}
	}
	r.log.Info("resuming a file fetched before", "verified", j.nhave, "pieces", j.n)
	if j.nhave == j.n {
		return r.commit(ctx)
	}
	return nil
}

// onPiece verifies a piece against its leaf and writes it; a bad one counts a lie. At the
// end of the stream asked for, what is still missing is asked for.
func (r *fetchRun) onPiece(ctx context.Context, fr pieces.Frame) error {
	j, p := r.j, r.p
	i := int(fr.Index)
	switch {
	case j.leaves == nil:
		r.log.Debug("frame dropped: a piece before the hashes", "peer", p.name)
	case i >= j.n:
		r.log.Warn("frame dropped: piece index out of range", "peer", p.name, "index", i)
	case j.have[i]:
		r.log.Debug("frame dropped: a piece already held", "peer", p.name, "index", i)
	case len(fr.Data) != pieces.PieceLen(j.meta.Size, i) || sha256.Sum256(fr.Data) != j.leaves[i]:
		r.f.bad.Add(1)
		r.lies[p]++
		r.roundBad = true
		r.log.Warn("bad piece dropped: it does not match its hash", "peer", p.name, "index", i, "times", r.lies[p])
		if r.lies[p] >= r.f.opts.MaxLies {
			return r.drop(ctx, p, "pieces that do not match their hashes")
		}
	default:
		if err := r.store(ctx, i, fr.Data); err != nil {
			return err
		}
	}
	if j.nhave == j.n {
		return r.commit(ctx)
	}
	if i == r.lastAsked { // the stream asked for is over: ask for what is still missing
		not := (*FetchLink)(nil)
		if r.roundBad {
			not = p // a bad piece is asked from another peer, when there is one
		}
		return r.next(ctx, not, true)
	}
	return nil
}

// store writes verified piece i and tells the peer every gotEvery pieces.
func (r *fetchRun) store(ctx context.Context, i int, data []byte) error {
	j := r.j
	if err := r.part.WritePiece(i, data); err != nil {
		return err
	}
	j.have[i] = true
	j.nhave++
	r.f.pieces.Add(1)
	if r.sinceGot++; r.sinceGot >= gotEvery && j.nhave < j.n {
		r.sinceGot = 0
		if err := r.p.send.SendControl(ctx, pieces.Control{T: "got", Root: j.meta.Root, Pieces: int64(j.nhave)}); err != nil {
			r.log.Debug("got not sent", "err", err)
		}
	}
	return nil
}

// commit renames the whole file to its root: the run is over.
func (r *fetchRun) commit(ctx context.Context) error {
	r.whole = true
	return r.f.commit(ctx, r.j, r.part, r.p)
}
