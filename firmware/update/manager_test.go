package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newManager(t *testing.T) (*Manager, string) {
	t.Helper()
	dir := t.TempDir()
	installed := filepath.Join(dir, "chattorrent")
	if err := os.WriteFile(installed, []byte("installed"), 0o755); err != nil {
		t.Fatal(err)
	}
	key := testKey(t)
	m := New(filepath.Join(dir, "releases"), key.Public().(ed25519.PublicKey), Current(), installed, slog.New(slog.DiscardHandler))
	m.window = 300 * time.Millisecond
	return m, installed
}

func (m *Manager) stage(t *testing.T, version string) string {
	t.Helper()
	h, err := m.Stage(bytes.NewReader(release(t, testKey(t), header(version), selfBinary(t))))
	if err != nil {
		t.Fatalf("Stage %s: %v", version, err)
	}
	return filepath.Join(m.dir, version+"-"+h.SHA256[:12])
}

func (m *Manager) launch(t *testing.T) string {
	t.Helper()
	p, err := m.Launch()
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	return p
}

func (m *Manager) last(t *testing.T) string {
	st, err := m.Status()
	if err != nil {
		t.Fatal(err)
	}
	return st.Last
}

func healthy(context.Context) error   { return nil }
func unhealthy(context.Context) error { return errors.New("503 from /healthz") }

func TestTrialRollsBackACrash(t *testing.T) {
	m, _ := newManager(t)
	if p := m.launch(t); p != "" {
		t.Fatalf("no release staged, Launch runs %q", p)
	}
	v2 := m.stage(t, "2.0.0")
	if p := m.launch(t); p != v2 {
		t.Fatalf("after Stage, Launch runs %q, want %q", p, v2)
	}
	// v2 crashed before it was healthy: the next start goes back to the installed binary.
	if p := m.launch(t); p != "" {
		t.Fatalf("after a crash on trial, Launch runs %q, want the installed binary", p)
	}
	if last := m.last(t); !strings.Contains(last, "rolled back from 2.0.0 to the installed version") {
		t.Errorf("Last = %q", last)
	}
	if p := m.launch(t); p != "" {
		t.Errorf("rolled back, a later start runs %q", p)
	}
}

func TestTrialConfirmedThenRolledBackToPrevious(t *testing.T) {
	m, _ := newManager(t)
	v2 := m.stage(t, "2.0.0")
	if p := m.launch(t); p != v2 {
		t.Fatalf("Launch runs %q", p)
	}
	if err := m.Watch(t.Context(), v2, healthy); err != nil {
		t.Fatalf("Watch of a healthy release: %v", err)
	}
	if p := m.launch(t); p != v2 {
		t.Fatalf("confirmed, a restart runs %q, want %q", p, v2)
	}
	if p := m.launch(t); p != v2 {
		t.Fatalf("confirmed, a second restart runs %q", p)
	}
	v3 := m.stage(t, "3.0.0")
	if p := m.launch(t); p != v3 {
		t.Fatalf("Launch runs %q, want %q", p, v3)
	}
	// v3 serves but never gets healthy within the window: it gives up and rolls back.
	err := m.Watch(t.Context(), v3, unhealthy)
	if err == nil || !strings.Contains(err.Error(), "rolled back from 3.0.0 to 2.0.0: not healthy within") {
		t.Fatalf("Watch of an unhealthy release: %v", err)
	}
	if p := m.launch(t); p != v2 {
		t.Fatalf("after the rollback Launch runs %q, want the previous %q", p, v2)
	}
	if _, err := os.Stat(v3); err != nil {
		t.Errorf("the failed release's binary is gone: %v (kept until the next Stage)", err)
	}
	// Not on trial: Watch returns at once.
	if err := m.Watch(t.Context(), v2, unhealthy); err != nil {
		t.Errorf("Watch of a confirmed release: %v", err)
	}
}

func TestInstalledBinaryWins(t *testing.T) {
	m, installed := newManager(t)
	v2 := m.stage(t, "2.0.0")
	if p := m.launch(t); p != v2 {
		t.Fatalf("Launch runs %q", p)
	}
	m.Watch(t.Context(), v2, healthy)
	// A newer .deb replaced the installed binary: it runs, the staged release is forgotten.
	if err := os.WriteFile(installed, []byte("a newer package"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p := m.launch(t); p != "" {
		t.Fatalf("after the installed binary changed, Launch runs %q", p)
	}
}

func TestMissingReleaseRunsInstalled(t *testing.T) {
	m, _ := newManager(t)
	v2 := m.stage(t, "2.0.0")
	os.Remove(v2)
	if p := m.launch(t); p != "" {
		t.Fatalf("the release's binary is gone, Launch runs %q", p)
	}
}

func TestPruneKeepsTwo(t *testing.T) {
	m, _ := newManager(t)
	var paths []string
	for _, v := range []string{"2.0.0", "3.0.0", "4.0.0"} {
		p := m.stage(t, v)
		m.launch(t)
		m.Watch(t.Context(), p, healthy)
		paths = append(paths, p)
	}
	if _, err := os.Stat(paths[0]); err == nil {
		t.Errorf("the oldest release is still kept")
	}
	for _, p := range paths[1:] {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("current or previous release gone: %v", err)
		}
	}
}
