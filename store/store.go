// Package store is the appliance's room archive: every room's metadata and signed history
// entries, in the data dir.
//
// Layout (docs/ARCHITECTURE.md, "store"):
//
//	rooms.db                   buntdb: small keys only
//	  v                        → "2", the layout's version (absent in version 1)
//	  r:<room>                 → room metadata JSON {"id","name","created"}
//	  a:<room>:<author>        → the author's number in the room
//	rooms/<room>/seg-NNNNNN    the room's entries, append-only frames (len, CRC32C, JSON)
//	rooms/<room>/a-NNNNN.idx   per author, a 64-byte record per seq: id, ts, where the frame is
//
// Nothing is held in RAM per entry: per room its metadata and per author its head. Entries
// are read from the segments when they are sent or exported, as streams.
//
// Durability: power can be pulled at any moment. With the default SyncPolicy (SyncAlways)
// Append returns only after the entry's frame and then its index record have been fsynced,
// so an entry acknowledged to a peer survives a power cut. Open checks each author's last
// record and each room's segment tail and cuts what a crash tore (load.go). A version-1
// store (entries as buntdb keys) is migrated at Open (migrate.go).
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/buntdb"
)

// FileName is the database file's name inside the store's dir.
const FileName = "rooms.db"

// MaxRoomName is the longest room name in bytes (the same as an invitation's room name).
const MaxRoomName = 80

// Errors, for errors.Is. Refused entries are *history.Error values (history.ErrFork, ...).
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrClosed   = errors.New("store: closed")
	ErrLocked   = errors.New("store: the database is in use by another process")
)

// SyncPolicy is when appended records are forced to stable storage. The zero value is
// SyncAlways.
type SyncPolicy int

const (
	// SyncAlways fsyncs after every write, before Append returns: an entry is acknowledged
	// to peers only once its frame and then its index record are durable. The default.
	// buntdb's own Always ignores fsync's error, so for rooms.db the store does this fsync
	// itself (buntdb runs with Never) and reports it.
	SyncAlways SyncPolicy = iota
	// SyncEverySecond leaves fsync to a loop the store runs each second (and buntdb's,
	// buntdb.EverySecond, for rooms.db): up to about a second of acknowledged entries can be
	// lost on a power cut.
	SyncEverySecond
	// SyncNever never fsyncs: the kernel writes back when it likes (~30 s). For tests and
	// benchmarks.
	SyncNever
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncEverySecond:
		return "every-second"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// Options configure Open. The zero value is the production setting.
type Options struct {
	// Sync is when writes reach stable storage. Default SyncAlways. Measured (x86 VM,
	// ext4 on virtio, BenchmarkSyncPolicies) it appends ~2,700-3,100 entries/s against
	// ~7,300-8,400 for SyncNever (~2.7x); on an SD card an fsync takes milliseconds, still
	// far more entries per second than people type (see docs/ARCHITECTURE.md).
	Sync SyncPolicy
	// Logger receives recovery and skipped-entry reports. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock entries' ts are checked against on Append. Default time.Now.
	Now func() time.Time
	// Limits are the store's quotas; the zero value is the defaults (see Limits).
	Limits Limits
	// Usage, if set, is how many bytes the box uses outside the store that count against
	// Limits.StoreBytes (the files it keeps). It is called at every write: keep it cheap
	// (a counter, not a walk of a directory).
	Usage func() int64
	// Busy, if set, is called every 1,024 entries of long work inside Open (a migration
	// of the layout), so a supervisor's start timeout can be pushed back (systemd's
	// EXTEND_TIMEOUT_USEC). It must be quick.
	Busy func()

	// migrateHook, set by tests, runs at stages of a migration ("entries" every 1,024
	// entries, "built", "moved"); an error it returns fails the migration there.
	migrateHook func(stage string) error
}

// Store is an open store (rooms.db and the rooms' files). It is safe for concurrent use.
type Store struct {
	path   string
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	limits Limits

	dbBytes   atomic.Int64 // rooms.db's size, as of the last write
	dataBytes atomic.Int64 // the segments' and index files' sizes
	rates     *rates       // per-author entries and bytes in the last RateWindow
	refusedMu sync.Mutex
	refused   map[string]bool // refusals logged already (logRefusal)
	damaged   sync.Map        // entry key → true: records read (index.go) and found damaged

	mu     sync.RWMutex // guards rooms and closed; held for reading by every operation
	closed bool
	rooms  map[string]*room

	db   *buntdb.DB
	sync *os.File // a second descriptor on rooms.db, for our own checked fsync (SyncAlways)
	lock *os.File // holds the advisory lock on rooms.db.lock

	stop    chan struct{}  // closed by Close: ends the SyncEverySecond loop
	syncing sync.WaitGroup // the SyncEverySecond loop
}

type roomMeta struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Created int64  `json:"created"` // ms since 1970
}

// Open opens (or creates) the store in dir: it recovers a torn or garbage tail of rooms.db,
// reads its keys, and checks each room's and author's tail (load.go); a version-1 store
// is migrated first (migrate.go). Stored entries were checked in full when they were
// appended and are not checked again. What fails is logged and cut or skipped, never fatal.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sync < SyncAlways || opts.Sync > SyncNever {
		return nil, fmt.Errorf("store: open: unknown sync policy %d", int(opts.Sync))
	}
	s := newStore(dir, opts)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	lock, err := lockFile(s.path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", s.path, err)
	}
	s.lock = lock
	if err := s.open(); err != nil {
		s.release()
		return nil, fmt.Errorf("store: open %s: %w", s.path, err)
	}
	if opts.Sync == SyncEverySecond {
		s.syncing.Go(s.syncLoop)
	}
	return s, nil
}

// newStore is a Store on dir, not opened yet.
func newStore(dir string, opts Options) *Store {
	return &Store{
		path:  filepath.Join(dir, FileName),
		opts:  opts,
		log:   opts.Logger.With("component", "store"),
		now:   opts.Now,
		rooms: make(map[string]*room),

		limits:  opts.Limits.withDefaults(),
		rates:   newRates(time.Now),
		refused: make(map[string]bool),
		stop:    make(chan struct{}),
	}
}

// dir is the store's directory.
func (s *Store) dir() string { return filepath.Dir(s.path) }

// syncLoop fsyncs, each second, what the rooms wrote since (SyncEverySecond).
func (s *Store) syncLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.RLock()
		for _, r := range s.rooms {
			r.mu.Lock()
			if err := r.sync(); err != nil {
				s.log.Error("fsync of a room's files failed", "room", r.meta.ID, "err", err)
			}
			r.mu.Unlock()
		}
		s.mu.RUnlock()
	}
}

func (s *Store) open() error {
	if err := s.openDB(); err != nil {
		return err
	}
	migrate, wrote, err := s.needsMigration()
	if err != nil {
		return err
	}
	if migrate {
		if err := s.migrate(); err != nil {
			return fmt.Errorf("migrate to version %s: %w", layoutVersion, err)
		}
		if err := s.openDB(); err != nil {
			return err
		}
	}
	if s.opts.Sync == SyncAlways {
		f, err := os.Open(s.path)
		if err != nil {
			return err
		}
		s.sync = f
	}
	if wrote {
		if err := s.durable(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(s.dir(), roomsDir), 0o700); err != nil {
		return err
	}
	if err := s.load(); err != nil {
		return err
	}
	return s.statDB()
}

// openDB recovers and opens rooms.db.
func (s *Store) openDB() error {
	if err := recoverFile(s.path, s.log); err != nil {
		return err
	}
	db, err := buntdb.Open(s.path)
	if err != nil {
		return fmt.Errorf("buntdb: %w", err)
	}
	s.db = db
	var cfg buntdb.Config
	if err := db.ReadConfig(&cfg); err != nil {
		return fmt.Errorf("buntdb config: %w", err)
	}
	// Shrinking rewrites the whole file to rooms.db.tmp and renames it over rooms.db, without
	// fsyncing the new file first (and panics if the rename fails): a power cut at the wrong
	// moment could leave an empty or partial file. Nothing is ever overwritten or deleted
	// here, so there is nothing to shrink away anyway.
	cfg.AutoShrinkDisabled = true
	cfg.SyncPolicy = buntdb.Never
	if s.opts.Sync == SyncEverySecond {
		cfg.SyncPolicy = buntdb.EverySecond
	}
	if err := db.SetConfig(cfg); err != nil {
		return fmt.Errorf("buntdb config: %w", err)
	}
	return nil
}

// statDB records rooms.db's size, which Limits.StoreBytes counts.
func (s *Store) statDB() error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	s.dbBytes.Store(fi.Size())
	return nil
}

// release closes whatever Open got so far.
func (s *Store) release() {
	for _, r := range s.rooms {
		_ = r.closeFiles(true)
	}
	if s.db != nil {
		_ = s.db.Close()
	}
	if s.sync != nil {
		_ = s.sync.Close()
	}
	if s.lock != nil {
		_ = s.lock.Close() // closing the descriptor drops the lock
	}
}

// Close flushes and closes the file. Operations after Close return ErrClosed; a second
// Close does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.syncing.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, r := range s.rooms {
		r.mu.Lock()
		errs = append(errs, r.closeFiles(s.opts.Sync == SyncNever))
		r.mu.Unlock()
	}
	if s.sync != nil {
		errs = append(errs, s.sync.Sync(), s.sync.Close())
	}
	if err := s.db.Close(); err != nil { // buntdb fsyncs (ignoring the error) and closes
		errs = append(errs, err)
	}
	errs = append(errs, s.lock.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// durable makes the last committed write durable under SyncAlways.
func (s *Store) durable() error {
	if s.sync == nil {
		return nil
	}
	if err := s.sync.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	return nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }
