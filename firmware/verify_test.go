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
