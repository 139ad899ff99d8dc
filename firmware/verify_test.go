package main

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

func writeExport(t *testing.T, tamper func(x *history.Export)) string {
	t.Helper()
	now := time.Now()
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	l := history.NewLog(strings.Repeat("ab", 16))
	for i, body := range []string{"", "hola", "adiós"} {
		e := history.Entry{Author: history.EncodeKey(key.Public().(ed25519.PublicKey)), Name: "Ana", Kind: history.KindText, Body: body, TS: now.UnixMilli() - int64(3-i)}
		if i == 0 {
			e.Kind = history.KindJoin
		}
		l.Next(&e)
		e.Sign(key)
		if _, err := l.Add(e, now); err != nil {
			t.Fatal(err)
		}
	}
	x := history.NewExport(l, "Aula 7", now)
	if tamper != nil {
		tamper(x)
	}
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "Aula_7_history.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerify(t *testing.T) {
	out, stderr, code := runMain(t, "verify", writeExport(t, nil))
	if code != 0 || !strings.Contains(out, "3 entries, 3 passed, 0 failed") || stderr != "" {
		t.Fatalf("good export: exit %d, out %q, stderr %q", code, out, stderr)
	}

	out, stderr, code = runMain(t, "verify", writeExport(t, func(x *history.Export) { x.Entries[1].Body = "edited" }))
	if code != 1 || !strings.Contains(out, "FAIL entry 1 ") || !strings.Contains(out, "bad-id") ||
		!strings.Contains(out, "FAIL entry 2 ") || !strings.Contains(out, "1 passed, 2 failed") {
		t.Fatalf("tampered export: exit %d, out %q, stderr %q", code, out, stderr)
	}

	if _, stderr, code = runMain(t, "verify", filepath.Join(t.TempDir(), "missing.json")); code != 1 || !strings.HasPrefix(stderr, "chattorrent: verify:") {
		t.Fatalf("missing file: exit %d, stderr %q", code, stderr)
	}
	if _, _, code = runMain(t, "verify"); code != 2 {
		t.Fatalf("no argument: exit %d", code)
	}
}

func TestIdentityCommand(t *testing.T) {
	dir := t.TempDir()
	out, stderr, code := runMain(t, "identity", "-data-dir", dir)
	if code != 0 || !strings.Contains(out, "fingerprint:") {
		t.Fatalf("show: exit %d, %q %q", code, out, stderr)
	}
	backup, _, code := runMain(t, "identity", "export", "-data-dir", dir)
	if code != 0 || !strings.Contains(backup, `"chattorrent-identity"`) {
		t.Fatalf("export: exit %d, %q", code, backup)
	}
	// Restore into another box: same key.
	other := t.TempDir()
	runMain(t, "identity", "-data-dir", other) // makes a different one first
	file := filepath.Join(t.TempDir(), "backup.json")
	os.WriteFile(file, []byte(backup), 0o600)
	out, stderr, code = runMain(t, "identity", "import", file, "-data-dir", other)
	if code != 0 || !strings.Contains(out, "previous identity is kept") {
		t.Fatalf("import: exit %d, %q %q", code, out, stderr)
	}
	a, _, _ := runMain(t, "identity", "-data-dir", dir)
	b, _, _ := runMain(t, "identity", "-data-dir", other)
	if strings.Split(a, "\n")[1] != strings.Split(b, "\n")[1] {
		t.Errorf("restored key differs:\n%s\n%s", a, b)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"format":"chattorrent-identity","v":1}`), 0o600)
	if _, stderr, code := runMain(t, "identity", "import", bad, "-data-dir", other); code != 1 || !strings.HasPrefix(stderr, "chattorrent: identity import") {
		t.Errorf("bad import: exit %d, %q", code, stderr)
	}
}
