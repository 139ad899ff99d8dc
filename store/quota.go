package store

import (
	"fmt"
	"sync"
	"time"
)

// The store's quotas (issue 14): the box is a Pi Zero 2 W with 512 MB of RAM and an SD
// card, and every stored entry stays on the card forever (in RAM only per room and
// author since issue 15). Each
// default is a field of Limits, set through Options.Limits. docs/OPERATIONS.md ("Limits:
// the store") lists them.
const (
	// DefaultMaxRooms is how many rooms one box keeps (Limits.Rooms). CreateRoom refuses
	// the next one with ErrRoomsFull ("rooms-full").
	DefaultMaxRooms = 256

	// DefaultMaxAuthorsPerRoom is how many authors one room's history may hold
	// (Limits.AuthorsPerRoom): an entry of a new author past it is refused with
	// ErrAuthorsFull ("authors-full"). Every author costs a line in each hello, which must
	// fit in one DataChannel message (net/rtc.MaxMessage, 256 KiB; EncodeHello fails past
	// it and the room could not sync at all): per author a head, `"<43-char key>":<seq>,`,
	// up to ~63 bytes, plus a tip, `"<43-char key>":"<64-hex id>",`, ~112 bytes, so ~175
	// bytes, and 256 KiB carries ~1,490 authors. 256 authors is ~45 KiB: a sixth of the
	// frame, leaving room for the peer fields and for the box's own chain.
	DefaultMaxAuthorsPerRoom = 256

	// DefaultAuthorEntriesPerHour is how many entries of one author (across all rooms) the
	// box takes from peers in a rolling RateWindow (Limits.AuthorEntriesPerHour): one every
	// 6 s on average, far above anyone typing. The next is refused with ErrAuthorRate
	// ("author-rate") until the window moves on.
	DefaultAuthorEntriesPerHour = 600

	// DefaultAuthorHistoryPerHour is how many entries of one author written more than a
	// RateWindow ago (their ts, by the box's clock) the box takes from peers in a rolling
	// RateWindow (Limits.AuthorHistoryPerHour), counted apart from the recent ones: a phone
	// bringing a year of its messages to a new box is not taken 600 an hour. Whoever
	// backdates entries to use it is still held to AuthorBytesPerHour, which counts both.
	// Refused with ErrAuthorRate ("author-rate").
	DefaultAuthorHistoryPerHour = 20000

	// DefaultAuthorBytesPerHour is how many bytes of entries (their stored JSON) of one
	// author the box takes from peers in a rolling RateWindow (Limits.AuthorBytesPerHour).
	// Refused with ErrAuthorRate ("author-rate").
	DefaultAuthorBytesPerHour = 32 << 20

	// DefaultStoreBudget is the most bytes the store may use (Limits.StoreBytes): the sizes
	// of rooms.db and the rooms' segment and index files, plus what Options.Usage reports
	// (the files the box keeps, when the firmware passes it). A write that would pass it is
	// refused with ErrStoreFull ("store-full"; HTTP 507).
	DefaultStoreBudget = 1 << 30

	// RateWindow is the rolling window of the per-author rates, counted by the box's own
	// monotonic clock when entries arrive (not their ts), in memory only: a restart starts
	// every author afresh.
	RateWindow = time.Hour
)

// rateBuckets is how many slices RateWindow is counted in: the window rolls by 5 minutes,
// and an author costs a fixed ~300 bytes of RAM however fast they write.
const rateBuckets = 12

// rateSweepMin is how many authors' rates are kept before idle ones are swept.
const rateSweepMin = 1024

// recordOverhead is what buntdb adds to a key and its value in rooms.db (the RESP framing
// of "set key value": "*3\r\n$3\r\nset\r\n$N\r\n...\r\n$N\r\n...\r\n"), rounded up.
const recordOverhead = 40

// Refusal codes: what QuotaError.RefusalCode returns, short and stable. The DataChannel
// sends them in a refusal frame; the HTTP layer maps CodeStoreFull to 507.
const (
	CodeRoomsFull   = "rooms-full"
	CodeAuthorsFull = "authors-full"
	CodeAuthorRate  = "author-rate"
	CodeStoreFull   = "store-full"
)

// Sentinel quota errors, for errors.Is: every refusal by a quota matches the sentinel of
// its code, and satisfies interface{ RefusalCode() string } (errors.As).
var (
	ErrRoomsFull   error = &QuotaError{Code: CodeRoomsFull, Msg: "the box keeps as many rooms as it may"}
	ErrAuthorsFull error = &QuotaError{Code: CodeAuthorsFull, Msg: "the room holds as many authors as it may"}
	ErrAuthorRate  error = &QuotaError{Code: CodeAuthorRate, Msg: "this author sent more than the box takes in an hour"}
	ErrStoreFull   error = &QuotaError{Code: CodeStoreFull, Msg: "the box is full"}
)

// QuotaError is a write refused by one of the store's limits. Nothing was written.
type QuotaError struct {
	Code  string // one of the Code* constants
	Msg   string // for people: what was refused
	Limit int64  // the limit that refused it; 0 in the sentinels
}

func (e *QuotaError) Error() string {
	if e.Limit > 0 {
		return fmt.Sprintf("%s (limit %d): %s", e.Msg, e.Limit, e.Code)
	}
	return e.Msg + ": " + e.Code
}

// RefusalCode is the short, stable code of the refusal (CodeRoomsFull, ...).
func (e *QuotaError) RefusalCode() string { return e.Code }

// Is matches any QuotaError of the same code, so errors.Is(err, ErrStoreFull) holds.
func (e *QuotaError) Is(target error) bool {
	t, ok := target.(*QuotaError)
	return ok && t.Code == e.Code
}

// Limits are the store's quotas. A zero field is its default (the Default* constants); a
// negative one turns that limit off (for tools and tests). What is stored already is
// always kept and loaded, even past a lowered limit: the limits only refuse new writes.
type Limits struct {
	Rooms                int   // rooms per box; DefaultMaxRooms
	AuthorsPerRoom       int   // authors in one room's history; DefaultMaxAuthorsPerRoom
	AuthorEntriesPerHour int   // entries from peers per author per RateWindow; DefaultAuthorEntriesPerHour
	AuthorHistoryPerHour int   // the same for entries older than RateWindow; DefaultAuthorHistoryPerHour
	AuthorBytesPerHour   int64 // bytes from peers per author per RateWindow; DefaultAuthorBytesPerHour
	StoreBytes           int64 // rooms.db, segments and index files, plus Options.Usage; DefaultStoreBudget
}

// withDefaults fills in the zero fields.
func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defInt(&l.Rooms, DefaultMaxRooms)
	defInt(&l.AuthorsPerRoom, DefaultMaxAuthorsPerRoom)
	defInt(&l.AuthorEntriesPerHour, DefaultAuthorEntriesPerHour)
	defInt(&l.AuthorHistoryPerHour, DefaultAuthorHistoryPerHour)
	def(&l.AuthorBytesPerHour, DefaultAuthorBytesPerHour)
	def(&l.StoreBytes, DefaultStoreBudget)
	return l
}

// Limits are the limits the store enforces (Options.Limits with the defaults filled in).
func (s *Store) Limits() Limits { return s.limits }

// quotaError is a refusal by limit; logged once per key (see logRefusal).
func (s *Store) quotaError(sentinel error, limit int64, key string, attrs ...any) error {
	q := *sentinel.(*QuotaError)
	q.Limit = limit
	s.logRefusal(q.Code, key, append(attrs, "limit", limit)...)
	return &q
}

// maxRefusalLogs bounds the set of refusals logged already; it starts afresh when full.
const maxRefusalLogs = 4096

// logRefusal logs a refusal the first time it happens for this code and key (a room, an
// author), not at every entry of a flood.
func (s *Store) logRefusal(code, key string, attrs ...any) {
	s.refusedMu.Lock()
	k := code + " " + key
	seen := s.refused[k]
	if !seen {
		if len(s.refused) >= maxRefusalLogs {
			clear(s.refused)
		}
		s.refused[k] = true
	}
	s.refusedMu.Unlock()
	if !seen {
		s.log.Warn("refused by a store limit (logged once)", append([]any{"code", code, "on", key}, attrs...)...)
	}
}

// checkSpace refuses with ErrStoreFull when n more bytes would take the store past
// Limits.StoreBytes.
func (s *Store) checkSpace(n int64, key string) error {
	if s.limits.StoreBytes < 0 {
		return nil
	}
	used := s.dbBytes.Load() + s.dataBytes.Load()
	if s.opts.Usage != nil {
		used += s.opts.Usage()
	}
	if used+n > s.limits.StoreBytes {
		return s.quotaError(ErrStoreFull, s.limits.StoreBytes, key, "used", used, "more", n)
	}
	return nil
}

// CheckSpace is nil when n more bytes (a file, say) fit in the store's budget, and an
// error matching ErrStoreFull ("store-full") when they do not.
func (s *Store) CheckSpace(n int64) error {
	if err := s.checkSpace(n, "files"); err != nil {
		return fmt.Errorf("store: check space: %w", err)
	}
	return nil
}

// Usage is the bytes counted against Limits.StoreBytes: rooms.db, the rooms' segments and
// index files, plus Options.Usage.
func (s *Store) Usage() int64 {
	used := s.dbBytes.Load() + s.dataBytes.Load()
	if s.opts.Usage != nil {
		used += s.opts.Usage()
	}
	return used
}

// rates counts, per author, the entries and bytes taken from peers in the last RateWindow.
type rates struct {
	mu      sync.Mutex
	base    time.Time        // bucket 0 starts here (carries the monotonic clock)
	now     func() time.Time // time.Now; tests move it
	authors map[string]*authorRate
	sweepAt int
}

type rateSlot struct{ bucket, n, old, bytes int64 } // old: entries written before the window

// authorRate is one author's counts in rateBuckets slots; slot b%rateBuckets holds bucket b.
type authorRate struct{ slots [rateBuckets]rateSlot }

func newRates(now func() time.Time) *rates {
	return &rates{base: now(), now: now, authors: make(map[string]*authorRate), sweepAt: rateSweepMin}
}

func (r *rates) bucket() int64 {
	return int64(r.now().Sub(r.base) / (RateWindow / rateBuckets))
}

// sum is the author's counts in the window ending with bucket b.
func (a *authorRate) sum(b int64) rateSlot {
	var t rateSlot
	for _, sl := range a.slots {
		if sl.bucket > b-rateBuckets && sl.bucket <= b {
			t.n, t.old, t.bytes = t.n+sl.n, t.old+sl.old, t.bytes+sl.bytes
		}
	}
	return t
}

func (a *authorRate) add(b int64, d rateSlot) {
	sl := &a.slots[b%rateBuckets]
	if sl.bucket != b {
		*sl = rateSlot{bucket: b}
	}
	sl.n, sl.old, sl.bytes = sl.n+d.n, sl.old+d.old, sl.bytes+d.bytes
}

// reserve counts one entry of size bytes for author (old: written before the window, by
// its ts) and returns undo, which takes it back (the write failed); or, when the entry
// would pass Limits.AuthorEntriesPerHour (Limits.AuthorHistoryPerHour when old) or
// Limits.AuthorBytesPerHour, counts nothing and returns that limit with over set.
func (r *rates) reserve(author string, size int64, old bool, l Limits) (undo func(), limit int64, over bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bucket()
	a := r.authors[author]
	if a == nil {
		if len(r.authors) >= r.sweepAt {
			for k, v := range r.authors {
				if v.sum(b) == (rateSlot{}) {
					delete(r.authors, k)
				}
			}
			r.sweepAt = max(rateSweepMin, 2*len(r.authors))
		}
		a = &authorRate{}
		for i := range a.slots {
			a.slots[i].bucket = -rateBuckets // empty, outside any window
		}
		r.authors[author] = a
	}
	t := a.sum(b)
	d := rateSlot{n: 1, bytes: size}
	count, lim := t.n, l.AuthorEntriesPerHour
	if old {
		d = rateSlot{old: 1, bytes: size}
		count, lim = t.old, l.AuthorHistoryPerHour
	}
	if lim >= 0 && count+1 > int64(lim) {
		return nil, int64(lim), true
	}
	if l.AuthorBytesPerHour >= 0 && t.bytes+size > l.AuthorBytesPerHour {
		return nil, l.AuthorBytesPerHour, true
	}
	a.add(b, d)
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if sl := &a.slots[b%rateBuckets]; sl.bucket == b {
			sl.n, sl.old, sl.bytes = sl.n-d.n, sl.old-d.old, sl.bytes-d.bytes
		}
	}, 0, false
}
