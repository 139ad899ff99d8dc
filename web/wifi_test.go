package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNetworkValidators(t *testing.T) {
	for _, c := range []struct {
		what string
		err  error
		f    func(string) error
		good []string
		bad  []string
	}{
		{"SSID", ErrBadSSID, ValidSSID,
			[]string{"a", "ChatTorrent", "Casa de Ana", `say "hi"`, "it's $(reboot)", "a=b;c", "#1 ☕ café", strings.Repeat("x", 32),
				strings.Repeat("é", 16) /* 32 bytes */},
			[]string{"", strings.Repeat("x", 33), strings.Repeat("é", 16) + "x" /* 33 bytes of UTF-8 */, "two\nlines", "cr\r", "tab\t",
				"nul\x00", "del\x7f", "c1\u0085", "bad utf-8 \xff"}},
		{"passphrase", ErrBadPassphrase, ValidPassphrase,
			[]string{"12345678", strings.Repeat("p", 63), `quote" and 'single'`, "$(reboot); `id` \\ ~", "   spaces  "},
			[]string{"", "1234567", strings.Repeat("p", 64), "contraseña1", "emoji 🙂 pass", "new\nline pass", "tab\tpassword", "nul\x00password", "del\x7fpassword"}},
		{"country", ErrBadCountry, ValidCountry,
			[]string{"ES", "GB", "US", "DE"},
			[]string{"", "E", "es", "Es", "ESP", "E1", "E\n", `"E`, "ÉS", " ES"}},
		{"box name", ErrBadBoxName, ValidBoxName,
			[]string{"a", "kitchen", "box-2", "2", "chattorrent-1a2b", strings.Repeat("a", 63)},
			[]string{"", "-box", "box-", "Kitchen", "my box", "box.local", "box_1", `box"`, "box'", "box\n", "box\x00", "caña",
				strings.Repeat("a", 64), "chattorrent", "localhost", "box;reboot", "$(id)"}},
	} {
		for _, s := range c.good {
			if err := c.f(s); err != nil {
				t.Errorf("%s %q refused: %v", c.what, s, err)
			}
		}
		for _, s := range c.bad {
			if err := c.f(s); !errors.Is(err, c.err) {
				t.Errorf("%s %q: %v, want %v", c.what, s, err, c.err)
			}
		}
	}
}

func TestWiFiFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if w, err := ReadWiFi(dir); err != nil || w != (WiFi{}) {
		t.Fatalf("no file: %+v %v", w, err)
	}
	want := WiFi{SSID: `Ana's "box" = #1 ☕`, Passphrase: "$(reboot) `id` 'x'", Country: "ES"}
	if err := WriteWiFi(dir, want); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, WiFiFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "SSID=Ana's \"box\" = #1 ☕\nPASSPHRASE=$(reboot) `id` 'x'\nCOUNTRY=ES\n" {
		t.Errorf("%s = %q", WiFiFile, got)
	}
	if fi, err := os.Stat(filepath.Join(dir, WiFiFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode: %v %v", WiFiFile, fi.Mode(), err)
	}
	if got, err := ReadWiFi(dir); err != nil || got != want {
		t.Errorf("read back %+v %v", got, err)
	}
	if err := WriteWiFi(dir, WiFi{SSID: "x\ny", Passphrase: "12345678", Country: "ES"}); !errors.Is(err, ErrBadSSID) {
		t.Errorf("a newline in the SSID written: %v", err)
	}
	if err := WriteBoxName(dir, "box\nPASSPHRASE=x"); !errors.Is(err, ErrBadBoxName) {
		t.Errorf("a newline in the name written: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, BoxNameFile), []byte("Bad Name\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBoxName(dir); !errors.Is(err, ErrBadBoxName) {
		t.Errorf("a bad name read back: %v", err)
	}
}

// The network API: owner only (401 without the cookie, 403 cross-site), a body limit,
// every field validated with its own code before anything is written, the passphrase
// never shown, a new name restarts the box once.
func TestNetworkAPI(t *testing.T) {
	dir := t.TempDir()
	own, log, _ := newTestOwner(t, dir, nil)
	restarts := 0
	own.SetBox("chattorrent-abc123", func() { restarts++ })
	h := New(Options{Box: fakeBox{}, Owner: own})
	token, err := own.Claim(lastCode(t, log))
	if err != nil {
		t.Fatal(err)
	}
	owner := &http.Cookie{Name: OwnerCookie, Value: token}
	page := map[string]string{"X-ChatTorrent": "1", "Origin": "https://box.local"}
	do := func(method, body string, hdr map[string]string, c *http.Cookie) (int, string, networkView) {
		w := ownerClient(h)(method, "/api/owner/network", body, hdr, c)
		var e apiError
		var v networkView
		json.Unmarshal(w.Body.Bytes(), &e)
		json.Unmarshal(w.Body.Bytes(), &v)
		if strings.Contains(w.Body.String(), "PASSPHRASE") || strings.Contains(w.Body.String(), "secret-pass") {
			t.Errorf("the answer shows the passphrase: %s", w.Body)
		}
		return w.Code, e.Code, v
	}
	files := func() string {
		a, _ := os.ReadFile(filepath.Join(dir, WiFiFile))
		b, _ := os.ReadFile(filepath.Join(dir, BoxNameFile))
		return string(a) + "|" + string(b)
	}

	if c, code, _ := do("GET", "", nil, nil); c != http.StatusUnauthorized || code != "not-owner" {
		t.Errorf("a stranger reads: %d %s", c, code)
	}
	good := `{"ssid":"Casa","passphrase":"secret-pass","country":"ES"}`
	if c, code, _ := do("PUT", good, page, nil); c != http.StatusUnauthorized || code != "not-owner" {
		t.Errorf("a stranger writes: %d %s", c, code)
	}
	if c, _, _ := do("PUT", good, map[string]string{"X-ChatTorrent": "1", "Origin": "https://evil.example"}, owner); c != http.StatusForbidden {
		t.Errorf("cross-site with the owner's cookie: %d", c)
	}
	if c, _, v := do("GET", "", nil, owner); c != http.StatusOK || v.BoxName != "chattorrent-abc123" || v.PassphraseSet || v.SSID != "" {
		t.Errorf("a new box: %d %+v", c, v)
	}
	for _, b := range []struct{ body, code string }{
		{`{"ssid":"Casa","country":"ES"}`, "need-passphrase"},
		{`{"ssid":"","passphrase":"secret-pass","country":"ES"}`, "bad-ssid"},
		{`{"ssid":"Casa\nSSID=x","passphrase":"secret-pass","country":"ES"}`, "bad-ssid"},
		{`{"ssid":"` + strings.Repeat("é", 16) + `x","passphrase":"secret-pass","country":"ES"}`, "bad-ssid"},
		{`{"ssid":"Casa","passphrase":"short","country":"ES"}`, "bad-passphrase"},
		{`{"ssid":"Casa","passphrase":"secret-pass\nCOUNTRY=US","country":"ES"}`, "bad-passphrase"},
		{`{"ssid":"Casa","passphrase":"secret-pass","country":"es"}`, "bad-country"},
		{`{"box_name":"My Box"}`, "bad-box-name"},
		{`{"box_name":"box\n"}`, "bad-box-name"},
		{`{"box_name":"kitchen","ssid":"Casa","passphrase":"short","country":"ES"}`, "bad-passphrase"},
		{`{"box_name":"kitchen","extra":1}`, "bad-request"},
		{`{"ssid":"` + strings.Repeat("x", maxNetworkRequest) + `"}`, "too-big"},
	} {
		if c, code, _ := do("PUT", b.body, page, owner); code != b.code || c/100 != 4 {
			t.Errorf("%.60s: %d %s, want %s", b.body, c, code, b.code)
		}
	}
	if f := files(); f != "|" || restarts != 0 {
		t.Fatalf("refused requests wrote %q, restarted %d", f, restarts)
	}

	// The Wi-Fi alone: written exactly, no restart; then the same name again changes nothing.
	if c, _, v := do("PUT", good, page, owner); c != http.StatusOK || v.SSID != "Casa" || v.Country != "ES" || !v.PassphraseSet || v.Restarting {
		t.Errorf("set the Wi-Fi: %d %+v", c, v)
	}
	if f := files(); f != "SSID=Casa\nPASSPHRASE=secret-pass\nCOUNTRY=ES\n|" {
		t.Errorf("files %q", f)
	}
	// A new SSID keeps the passphrase when none is sent.
	do("PUT", `{"box_name":"chattorrent-abc123","ssid":"Casa 2","country":"PT"}`, page, owner)
	if f := files(); f != "SSID=Casa 2\nPASSPHRASE=secret-pass\nCOUNTRY=PT\n|" || restarts != 0 {
		t.Errorf("files %q, restarts %d", f, restarts)
	}
	// A new name: written, the box restarts to take it.
	if c, _, v := do("PUT", `{"box_name":"kitchen"}`, page, owner); c != http.StatusOK || !v.Restarting || v.BoxNameNext != "kitchen" {
		t.Errorf("rename: %d %+v", c, v)
	}
	if f := files(); f != "SSID=Casa 2\nPASSPHRASE=secret-pass\nCOUNTRY=PT\n|kitchen\n" || restarts != 1 {
		t.Errorf("files %q, restarts %d", f, restarts)
	}
	if got, err := ReadBoxName(dir); got != "kitchen" || err != nil {
		t.Errorf("ReadBoxName: %q %v", got, err)
	}
}
