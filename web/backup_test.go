package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeBackup is an OwnerBox with a backup: its backup is a fixed text; a restore records
// what it was given and refuses "bad".
type fakeBackup struct {
	dir       string
	restored  *string
	restarted *int
}

func (fakeBackup) Storage() (any, error) { return map[string]any{}, nil }
func (fakeBackup) Logs() []string        { return nil }
func (fakeBackup) ResetWord() string     { return "caja" }
func (fakeBackup) FactoryReset() error   { return nil }

func (fakeBackup) BackupName(time.Time) string { return "chattorrent-caja-backup-x.tar" }
func (fakeBackup) WriteBackup(w io.Writer, _ time.Time) error {
	_, err := io.WriteString(w, "the whole box")
	return err
}
func (fakeBackup) RestoreLimit() int64    { return 64 }
func (f fakeBackup) SpoolDir() string     { return f.dir }
func (f fakeBackup) RestartAfterRestore() { *f.restarted++ }
func (f fakeBackup) Restore(file *os.File) (RestoreResult, error) {
	b, _ := io.ReadAll(file)
	if string(b) == "bad" {
		return RestoreResult{}, &RestoreError{Status: 422, Code: "bad-entry", Err: errors.New("restore: room x: a bad entry")}
	}
	*f.restored = string(b)
	return RestoreResult{Box: "caja", Rooms: 1, Restarting: true}, nil
}

// TestBackupAPI: only the owner downloads the backup (named, as a file) and restores one,
// from the page only; a refused backup answers its code; one past the limit is 413
// too-big; a good one answers what was restored, then the box restarts; the upload's
// spool file is removed either way.
func TestBackupAPI(t *testing.T) {
	dir := t.TempDir()
	own, log, _ := newTestOwner(t, dir, nil)
	var restored string
	restarted := 0
	spool := t.TempDir()
	h := New(Options{Box: fakeBox{}, Owner: own, OwnerBox: fakeBackup{dir: spool, restored: &restored, restarted: &restarted}})
	page := map[string]string{"X-ChatTorrent": "1", "Origin": "https://box.local"}
	do, code := ownerClient(h), errCode
	if w := do("GET", "/api/owner/backup", "", nil, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("a stranger's backup: %d", w.Code)
	}
	if w := do("POST", "/api/owner/restore", "x", page, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("a stranger's restore: %d", w.Code)
	}
	w := do("POST", "/api/owner/claim", `{"code":"`+lastCode(t, log)+`"}`, page, nil)
	ck := w.Result().Cookies()[0]

	w = do("GET", "/api/owner/backup", "", nil, ck)
	if w.Code != 200 || w.Body.String() != "the whole box" || !strings.Contains(w.Header().Get("Content-Disposition"), `filename="chattorrent-caja-backup-x.tar"`) {
		t.Errorf("the owner's backup: %d %q %v", w.Code, w.Body, w.Header())
	}
	if w := do("POST", "/api/owner/restore", "x", map[string]string{"X-ChatTorrent": "1", "Origin": "https://evil.example"}, ck); w.Code != http.StatusForbidden {
		t.Errorf("a cross-site restore: %d", w.Code)
	}
	if w := do("POST", "/api/owner/restore", "bad", page, ck); w.Code != 422 || code(w) != "bad-entry" || !strings.Contains(w.Body.String(), "a bad entry") {
		t.Errorf("a bad backup: %d %s", w.Code, w.Body)
	}
	if w := do("POST", "/api/owner/restore", strings.Repeat("x", 65), page, ck); w.Code != http.StatusRequestEntityTooLarge || code(w) != "too-big" {
		t.Errorf("a backup past the limit: %d %s", w.Code, w.Body)
	}
	if restored != "" || restarted != 0 {
		t.Fatalf("refused backups restored %q, restarted %d", restored, restarted)
	}
	w = do("POST", "/api/owner/restore", "a good backup", page, ck)
	var res RestoreResult
	if json.Unmarshal(w.Body.Bytes(), &res); w.Code != 200 || res.Box != "caja" || !res.Restarting || restored != "a good backup" || restarted != 1 {
		t.Errorf("a good backup: %d %s, restored %q, restarted %d", w.Code, w.Body, restored, restarted)
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("the uploads left %d files in the spool directory", len(left))
	}
}
