package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/atomicfile"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/web"
)

// restoreMargin is what an uploaded backup may take beyond twice the store's budget (the
// history at most the budget, the files as much again): the tar's headers, the CA, the
// identity and the settings.
const restoreMargin = 64 << 20

// maxRestore is the largest backup the box takes for a store budget of budget bytes:
// twice the budget plus restoreMargin (2 GiB + 64 MiB by default).
func maxRestore(budget int64) int64 {
	if budget <= 0 {
		budget = store.DefaultStoreBudget
	}
	return 2*budget + restoreMargin
}

// The running box's web.Backup (ownerBox is its web.OwnerBox).

func (b ownerBox) BackupName(now time.Time) string { return backupFileName(b.hostname, now) }

func (b ownerBox) WriteBackup(w io.Writer, now time.Time) error {
	return writeBackup(w, backupSource{dataDir: b.dataDir, box: b.hostname, st: b.store, files: b.files}, now)
}

func (b ownerBox) RestoreLimit() int64 { return maxRestore(b.store.Limits().StoreBytes) }

func (b ownerBox) SpoolDir() string { return b.dataDir }

func (b ownerBox) Restore(f *os.File) (web.RestoreResult, error) {
	res, err := restoreFile(f, b.store, b.files, b.dataDir, time.Now())
	res.Restarting = err == nil && b.upd != nil && b.upd.restart != nil
	return res, err
}

func (b ownerBox) RestartAfterRestore() {
	if b.upd != nil && b.upd.restart != nil {
		b.upd.restart()
	}
}

// offlineStore opens the store and the files of a stopped box.
func offlineStore(dataDir string, budget int64, log *slog.Logger) (*store.Store, *blobs.Store, error) {
	st, err := store.Open(filepath.Join(dataDir, "store"), store.Options{Logger: log, Limits: store.Limits{StoreBytes: budget}})
	if errors.Is(err, store.ErrLocked) {
		return nil, nil, fmt.Errorf("the box is running and holds %s: stop it first (systemctl stop chattorrent), or use the owner's page", dataDir)
	}
	if err != nil {
		return nil, nil, err
	}
	files, err := blobs.New(filepath.Join(dataDir, "files"), 0)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, files, nil
}

// backupCmd runs "chattorrent backup [-data-dir D] [-o FILE]" with the box stopped: the
// same file as the owner's download.
func backupCmd(args []string, stdout, stderr io.Writer) error {
	fs := newEnvFlags("chattorrent backup", os.LookupEnv, stderr)
	var dataDir, out string
	fs.dataDir(&dataDir)
	fs.String(&out, "o", "CHATTORRENT_BACKUP_FILE", "",
		"the backup file to write (env CHATTORRENT_BACKUP_FILE; default chattorrent-<box>-backup-<time>.tar here)")
	if err := fs.parse(args); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 0 {
		return usageError{err: errors.New("usage: chattorrent backup [-data-dir DIR] [-o FILE]")}
	}
	b, err := os.ReadFile(filepath.Join(dataDir, store.IdentityFile))
	if err != nil {
		return fmt.Errorf("backup: %s holds no box (%w)", dataDir, err)
	}
	id, err := store.ParseIdentity(b)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, files, err := offlineStore(dataDir, 0, log)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer st.Close()
	box := uniqueHostname(id.Key.Public().(ed25519.PublicKey))
	now := time.Now()
	if out == "" {
		out = backupFileName(box, now)
	}
	err = atomicfile.WriteFile(out, 0o600, func(w io.Writer) error {
		return writeBackup(w, backupSource{dataDir: dataDir, box: box, st: st, files: files}, now)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: the backup of %s; it holds the box's CA key and identity: keep it as safe as the box\n", out, box)
	return nil
}

// restoreCmd runs "chattorrent restore [-data-dir D] FILE" with the box stopped: the
// owner's restore, applied at once.
func restoreCmd(args []string, stdout, stderr io.Writer) error {
	fs := newEnvFlags("chattorrent restore", os.LookupEnv, stderr)
	var dataDir string
	var budget int64
	fs.dataDir(&dataDir)
	fs.Int64(&budget, "store-budget", "CHATTORRENT_STORE_BUDGET", int64(store.DefaultStoreBudget),
		"the store's budget the restored history must fit in, as serve's -store-budget (env CHATTORRENT_STORE_BUDGET)")
	pos, err := fs.parseMixed(args)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{err: errors.New("usage: chattorrent restore [-data-dir DIR] FILE")}
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxRestore(budget) {
		return fmt.Errorf("restore: %s has %d bytes, more than a box with this budget takes (%d)", pos[0], fi.Size(), maxRestore(budget))
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, files, err := offlineStore(dataDir, budget, log)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	res, err := restoreFile(f, st, files, dataDir, time.Now())
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := applyRestore(dataDir, log); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s: %d rooms, %d new entries, %d new files; the box starts with its identity and CA\n",
		res.Box, res.Rooms, res.Entries, res.Files)
	return nil
}
