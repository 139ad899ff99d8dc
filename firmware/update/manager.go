package update

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/chattorrent/chattorrent/store/atomicfile"
)

// HealthWindow is how long a new release has to become healthy before it is rolled back.
const HealthWindow = time.Minute

// EnvLaunched is set in the environment of a release the launcher started: that process
// must not launch again. EnvLauncher names the installed binary to re-execute on restart.
const (
	EnvLaunched = "CHATTORRENT_RELEASE"
	EnvLauncher = "CHATTORRENT_LAUNCHER"
)

// StateFile is the switch's state, in the releases directory.
const StateFile = "state.json"

// Release is a staged release: its header and where its binary is.
type Release struct {
	Header
	Path string `json:"path"`
}

// State is what the box runs. A nil Current runs the installed binary.
type State struct {
	Current  *Release `json:"current,omitempty"`
	Previous *Release `json:"previous,omitempty"`
	// Trial: Current has not yet been healthy; Boots counts its starts.
	Trial bool `json:"trial,omitempty"`
	Boots int  `json:"boots,omitempty"`
	// Installed is the installed binary's size and modification time when Current was
	// staged: when it changed (a newer .deb), the installed binary wins.
	Installed string `json:"installed,omitempty"`
	// Last is the last outcome, for the owner: "running 1.3.0", "rolled back from ...".
	Last string `json:"last,omitempty"`
}

// Manager switches between releases in its directory (the data dir's "releases").
type Manager struct {
	dir      string
	pub      ed25519.PublicKey
	platform Platform
	self     string // the installed binary (the launcher)
	log      *slog.Logger
	window   time.Duration

	mu sync.Mutex // one Stage, Confirm or rollback at a time
}

// New returns the Manager of dir for the installed binary self; pub may be nil (a build
// without a release key: Stage refuses everything).
func New(dir string, pub ed25519.PublicKey, p Platform, self string, log *slog.Logger) *Manager {
	return &Manager{dir: dir, pub: pub, platform: p, self: self, log: log, window: HealthWindow}
}

// Status returns the state (zero when the box never staged a release).
func (m *Manager) Status() (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.load()
}

func (m *Manager) load() (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(m.dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("update: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("update: %s: %w", StateFile, err)
	}
	return st, nil
}

// save replaces the state file atomically (store/atomicfile).
func (m *Manager) save(st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if err := atomicfile.WriteBytes(filepath.Join(m.dir, StateFile), 0o600, b); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return nil
}

// fingerprint identifies the installed binary's file (a .deb upgrade changes it).
func fingerprint(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return strconv.FormatInt(fi.Size(), 10) + "@" + strconv.FormatInt(fi.ModTime().UnixNano(), 10)
}

// Stage verifies the release r and makes it the binary the next start runs, on trial.
// Anything wrong (signature, platform, truncation, size) changes nothing: the binary is
// written to a temporary file that becomes a release only once every check passed.
func (m *Manager) Stage(r io.Reader) (Header, error) {
	if len(m.pub) != ed25519.PublicKeySize {
		return Header{}, ErrNoKey
	}
	if err := os.MkdirAll(m.dir, 0o750); err != nil {
		return Header{}, fmt.Errorf("update: %w", err)
	}
	tmp, err := os.CreateTemp(m.dir, ".incoming-*")
	if err != nil {
		return Header{}, fmt.Errorf("update: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone unless renamed
	h, err := Verify(r, m.pub, m.platform, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = checkELF(tmp.Name(), m.platform)
	}
	if err != nil {
		return h, err
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return h, fmt.Errorf("update: %w", err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.load()
	if err != nil {
		return h, err
	}
	path := filepath.Join(m.dir, h.Version+"-"+h.SHA256[:12])
	if err := os.Rename(tmp.Name(), path); err != nil {
		return h, fmt.Errorf("update: %w", err)
	}
	prev := st.Current
	if st.Trial || prev != nil && prev.Path == path {
		prev = st.Previous // an unconfirmed or the same release is nobody's fallback
	}
	m.prune(path, prev)
	st = State{
		Current: &Release{Header: h, Path: path}, Previous: prev, Trial: true,
		Installed: fingerprint(m.self), Last: "staged " + h.Version,
	}
	if err := m.save(st); err != nil {
		return h, err
	}
	m.log.Info("update: release staged; it runs on trial at the next start", "version", h.Version, "path", path)
	if err := atomicfile.SyncDir(m.dir); err != nil {
		return h, fmt.Errorf("update: %w", err)
	}
	return h, nil
}

// prune removes release binaries other than keep and prev: the box holds two at most.
func (m *Manager) prune(keep string, prev *Release) {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(m.dir, e.Name())
		if e.Name() == StateFile || e.Name()[0] == '.' || p == keep || prev != nil && p == prev.Path {
			continue
		}
		os.Remove(p)
	}
}

// Launch decides, at the start of the installed binary, which program runs: it returns
// the path of a release to execute instead, or "" to run on. A release on trial that
// started once and never became healthy is rolled back here (it crashed, hung until the
// watchdog killed it, or gave up after HealthWindow).
func (m *Manager) Launch() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.load()
	if err != nil || st.Current == nil {
		return "", err
	}
	if st.Installed != "" && st.Installed != fingerprint(m.self) {
		m.log.Warn("update: the installed binary changed since the release was staged: running it", "release", st.Current.Version)
		return "", m.save(State{Last: "the installed binary replaced release " + st.Current.Version})
	}
	if st.Trial && st.Boots >= 1 {
		st = m.rollback(st, "it stopped before it was healthy")
		if err := m.save(st); err != nil {
			return "", err
		}
		if st.Current == nil {
			return "", nil
		}
	}
	if fi, err := os.Stat(st.Current.Path); err != nil || !fi.Mode().IsRegular() {
		m.log.Error("update: the release's binary is gone: running the installed one", "path", st.Current.Path)
		return "", m.save(State{Last: "release " + st.Current.Version + " was missing"})
	}
	if st.Trial {
		st.Boots++
		if err := m.save(st); err != nil {
			return "", err
		}
	}
	return st.Current.Path, nil
}

// rollback returns st with Previous as the current release, confirmed.
func (m *Manager) rollback(st State, why string) State {
	failed := st.Current.Version
	m.log.Error("update: rolling back", "release", failed, "reason", why)
	back := "the installed version"
	if st.Previous != nil {
		back = st.Previous.Version
	}
	return State{
		Current: st.Previous, Installed: st.Installed,
		Last: fmt.Sprintf("rolled back from %s to %s: %s", failed, back, why),
	}
}

// OnTrial reports whether self (the running binary) is a release on trial.
func (m *Manager) OnTrial(self string) bool {
	st, err := m.Status()
	return err == nil && st.Trial && st.Current != nil && st.Current.Path == self
}

// Watch runs while a release on trial serves: it asks healthy every few seconds; the
// first success confirms the release; if none comes within HealthWindow, the release is
// rolled back and Watch returns an error, so that the process ends and its supervisor
// starts the previous version. It returns nil at once when self is not on trial.
func (m *Manager) Watch(ctx context.Context, self string, healthy func(context.Context) error) error {
	if !m.OnTrial(self) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.window)
	defer cancel()
	tick := time.NewTicker(m.window / 30)
	defer tick.Stop()
	var last error
	for {
		if last = healthy(ctx); last == nil {
			return m.confirm()
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil // stopped before the verdict: the next start decides
			}
			return m.giveUp(fmt.Sprintf("not healthy within %v: %v", m.window, last))
		}
	}
}

func (m *Manager) confirm() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.load()
	if err != nil || !st.Trial {
		return err
	}
	st.Trial, st.Boots, st.Last = false, 0, "running "+st.Current.Version
	m.log.Info("update: the new release is healthy", "version", st.Current.Version)
	return m.save(st)
}

func (m *Manager) giveUp(why string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.load()
	if err != nil {
		return err
	}
	if !st.Trial || st.Current == nil {
		return nil
	}
	st = m.rollback(st, why)
	if err := m.save(st); err != nil {
		return err
	}
	return fmt.Errorf("update: %s", st.Last)
}
