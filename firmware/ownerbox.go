package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/blobs"
)

// logRing keeps the box's last log lines for the owner's page (GET /api/owner/logs): at
// most logRingLines lines of at most logRingLineBytes each.
type logRing struct {
	mu    sync.Mutex
	lines []string
	next  int
	part  []byte // a line not yet ended
}

const (
	logRingLines     = 200
	logRingLineBytes = 1 << 10
)

func (r *logRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.part = append(r.part, p[:min(len(p), max(0, logRingLineBytes-len(r.part)))]...)
			break
		}
		line := append(r.part, p[:min(i, max(0, logRingLineBytes-len(r.part)))]...)
		r.part, p = nil, p[i+1:]
		s := string(line) + "\n"
		if len(r.lines) < logRingLines {
			r.lines = append(r.lines, s)
		} else {
			r.lines[r.next] = s
			r.next = (r.next + 1) % logRingLines
		}
	}
	return n, nil
}

// Lines returns the kept lines, oldest first.
func (r *logRing) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(append([]string(nil), r.lines[r.next:]...), r.lines[:r.next]...)
}

// factoryResetFile, in the data directory, asks the next start to empty it.
const factoryResetFile = "factory-reset.pending"

// applyFactoryReset empties the data directory when a factory reset is pending: rooms,
// files, the CA and the server certificate, the identity, the owner and its settings,
// staged releases. The marker goes last, so a reset cut by a power loss resumes.
func applyFactoryReset(dataDir string, log *slog.Logger) error {
	marker := filepath.Join(dataDir, factoryResetFile)
	if _, err := os.Stat(marker); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return fmt.Errorf("factory reset: %w", err)
	}
	var removed []string
	for _, e := range ents {
		if e.Name() == factoryResetFile {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dataDir, e.Name())); err != nil {
			return fmt.Errorf("factory reset: %w", err)
		}
		removed = append(removed, e.Name())
	}
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("factory reset: %w", err)
	}
	log.Warn("factory reset: the box forgot everything; a new CA, identity and claim code follow", "removed", removed)
	return nil
}

// ownerBox is the web.OwnerBox of a running box.
type ownerBox struct {
	store    *store.Store
	files    *blobs.Store
	hostname string
	dataDir  string
	upd      *updater
}

type roomUse struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Entries int    `json:"entries"`
}

func (b ownerBox) Storage() (any, error) {
	rooms, err := b.store.Rooms()
	if err != nil {
		return nil, err
	}
	use := make([]roomUse, 0, len(rooms))
	for _, r := range rooms {
		use = append(use, roomUse{ID: r.ID, Name: r.Name, Entries: r.Entries})
	}
	files, err := b.files.Usage()
	if err != nil {
		return nil, err
	}
	return map[string]any{"rooms": use, "store_bytes": b.store.Usage(), "files_bytes": files}, nil
}

func (b ownerBox) Logs() []string {
	if b.upd == nil || b.upd.logs == nil {
		return nil
	}
	return b.upd.logs.Lines()
}

func (b ownerBox) ResetWord() string { return b.hostname }

func (b ownerBox) FactoryReset() error {
	if b.upd == nil || b.upd.restart == nil {
		return errors.New("this box cannot restart itself")
	}
	if err := os.WriteFile(filepath.Join(b.dataDir, factoryResetFile), []byte("requested by the owner\n"), 0o600); err != nil {
		return fmt.Errorf("factory reset: %w", err)
	}
	b.upd.restart()
	return nil
}
