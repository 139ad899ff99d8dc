package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	id, err := LoadIdentity(dir, "Caja del aula")
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadIdentity(dir, "other")
	if err != nil || again.Author() != id.Author() || again.Name != "Caja del aula" {
		t.Fatalf("reload: %v %+v", err, again)
	}
	if fi, _ := os.Stat(filepath.Join(dir, IdentityFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if len(id.Fingerprint()) != 9 {
		t.Errorf("fingerprint %q", id.Fingerprint())
	}

	// A browser's backup (same format, from web/static/js/app.js) restores here.
	browser := `{"format":"chattorrent-identity","v":1,"name":"Ana","jwk":{"kty":"OKP","crv":"Ed25519","d":"YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE","x":"rwaj4ykXFOTzVsGcmxXNGVHsbmZiqne-B1R_KJODNB0","key_ops":["sign"],"ext":true}}`
	got, err := ParseIdentity([]byte(browser))
	if err != nil || got.Name != "Ana" || got.Author() != "rwaj4ykXFOTzVsGcmxXNGVHsbmZiqne-B1R_KJODNB0" {
		t.Fatalf("browser backup: %v %+v", err, got)
	}

	// Damaged files are errors, never silently replaced.
	for _, bad := range []string{`{}`, `not json`, strings.Replace(browser, `"x":"rwaj`, `"x":"xwaj`, 1), strings.Replace(browser, `"d":"YWFh`, `"d":"!!`, 1)} {
		if _, err := ParseIdentity([]byte(bad)); err == nil {
			t.Errorf("accepted %.40q", bad)
		}
	}
	os.WriteFile(filepath.Join(dir, IdentityFile), []byte(`{"format":"chattorrent-identity","v":1}`), 0o600)
	if _, err := LoadIdentity(dir, "x"); err == nil || !strings.Contains(err.Error(), IdentityFile) {
		t.Errorf("damaged file: %v", err)
	}
}
