package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var reClaimCode = regexp.MustCompile(`claim_code=(\d{5}-\d{5})`)

// syncBuf is a log sink the test reads while the owner writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lastCode is the claim code the owner last printed in its log.
func lastCode(t *testing.T, log *syncBuf) string {
	t.Helper()
	m := reClaimCode.FindAllStringSubmatch(log.String(), -1)
	if len(m) == 0 {
		t.Fatalf("no claim code in the log:\n%s", log.String())
	}
	return m[len(m)-1][1]
}

func newTestOwner(t *testing.T, dir string, now func() time.Time) (*Owner, *syncBuf, *bytes.Buffer) {
	t.Helper()
	var log syncBuf
	var console bytes.Buffer
	o, err := NewOwner(OwnerOptions{Dir: dir, Logger: slog.New(slog.NewTextHandler(&log, nil)), Console: &console, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return o, &log, &console
}

type fakeHW struct{ recorded int }

func (*fakeHW) Status() []BoxFeature { return []BoxFeature{{Feature: "microphone", OK: true}} }
func (f *fakeHW) RecordVoice(context.Context, string, time.Duration) error {
	f.recorded++
	return nil
}

// The claim: an unclaimed box prints a code (log at Warn, console); a wrong code is refused,
// the right one makes the caller the owner with a strict cookie; the box then refuses any
// further claim (409); only the owner reads and changes the settings; with the microphone
// off the page's voice request is refused with mic-off.
func TestOwnerClaimAndSettings(t *testing.T) {
	dir := t.TempDir()
	own, log, console := newTestOwner(t, dir, nil)
	hw := &fakeHW{}
	h := New(Options{Box: fakeBox{}, Hardware: hw, Owner: own})
	room := strings.Repeat("a", 32)
	page := map[string]string{"X-ChatTorrent": "1", "Origin": "https://box.local"}
	do, code := ownerClient(h), errCode
	state := func(c *http.Cookie) ownerState {
		var s ownerState
		if err := json.Unmarshal(do("GET", "/api/owner", "", nil, c).Body.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "CLAIM THIS BOX") {
		t.Errorf("the claim code is not logged at Warn level:\n%s", log.String())
	}
	c := lastCode(t, log)
	if !strings.Contains(console.String(), c) {
		t.Errorf("the console does not show the code %s: %q", c, console.String())
	}
	if s := state(nil); s.Claimed || s.Owner {
		t.Fatalf("a new box: %+v, want unclaimed", s)
	}
	// Owner-only before any claim too.
	if w := do("GET", "/api/owner/settings", "", nil, nil); w.Code != http.StatusUnauthorized || code(w) != "not-owner" {
		t.Errorf("settings of an unclaimed box: %d %s", w.Code, code(w))
	}
	if w := do("POST", "/api/owner/claim", `{"code":"`+c+`"}`, nil, nil); w.Code != http.StatusForbidden {
		t.Errorf("claim without the page's header: %d", w.Code)
	}
	if w := do("POST", "/api/owner/claim", `{"code":"`+c+`"}`, map[string]string{"X-ChatTorrent": "1", "Origin": "https://evil.example"}, nil); w.Code != http.StatusForbidden {
		t.Errorf("claim from another origin: %d", w.Code)
	}
	if w := do("POST", "/api/owner/claim", `{"code":"0000000000"}`, page, nil); w.Code != http.StatusForbidden || code(w) != "bad-code" {
		t.Errorf("a wrong code: %d %s", w.Code, code(w))
	}
	w := do("POST", "/api/owner/claim", `{"code":"`+c+`"}`, page, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("claim: %d %s", w.Code, w.Body)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != OwnerCookie {
		t.Fatalf("cookies %v", cookies)
	}
	ck := cookies[0]
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/api" || ck.MaxAge <= 0 || len(ck.Value) < 40 {
		t.Errorf("owner cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/api, persistent, a long token", ck)
	}
	if strings.Contains(log.String(), ck.Value) {
		t.Error("the token is in the log")
	}
	if s := state(ck); !s.Claimed || !s.Owner {
		t.Errorf("the owner sees %+v", s)
	}
	if s := state(nil); !s.Claimed || s.Owner {
		t.Errorf("a stranger sees %+v", s)
	}
	// Nobody claims again, not even with the old code.
	if w := do("POST", "/api/owner/claim", `{"code":"`+c+`"}`, page, nil); w.Code != http.StatusConflict || code(w) != "claimed" {
		t.Errorf("a second claim: %d %s", w.Code, code(w))
	}

	stranger := &http.Cookie{Name: OwnerCookie, Value: strings.Repeat("x", 43)}
	for _, c := range []*http.Cookie{nil, stranger} {
		if w := do("GET", "/api/owner/settings", "", nil, c); w.Code != http.StatusUnauthorized {
			t.Errorf("settings read by a stranger (%v): %d", c, w.Code)
		}
		if w := do("PUT", "/api/owner/settings", `{"mic_off":true}`, page, c); w.Code != http.StatusUnauthorized {
			t.Errorf("settings changed by a stranger (%v): %d", c, w.Code)
		}
	}
	if w := do("PUT", "/api/owner/settings", `{"mic_off":true}`, nil, ck); w.Code != http.StatusForbidden {
		t.Errorf("the owner's cookie without the page's header: %d", w.Code)
	}
	if own.MicOff() {
		t.Fatal("the mic went off by a refused request")
	}
	var v settingsView
	if w := do("GET", "/api/owner/settings", "", nil, ck); w.Code != http.StatusOK {
		t.Fatalf("the owner's settings: %d", w.Code)
	} else if json.Unmarshal(w.Body.Bytes(), &v); v.MicOff || v.PTTRoom != "" || len(v.Rooms) != 1 || v.Rooms[0].ID != room {
		t.Errorf("default settings %+v", v)
	}
	if w := do("PUT", "/api/owner/settings", `{"ptt_room":"`+strings.Repeat("b", 32)+`"}`, page, ck); w.Code != http.StatusBadRequest || code(w) != "no-room" {
		t.Errorf("a room the box does not keep: %d %s", w.Code, code(w))
	}

	// The microphone: on, the page records; off, refused with mic-off, before anything else.
	member := prove(t, h, "https://box.local", memberKey) // the room's member asks
	if w := do("POST", "/api/rooms/"+room+"/voice?seconds=3", "", page, member); w.Code != http.StatusNoContent || hw.recorded != 1 {
		t.Fatalf("voice with the mic on: %d %s", w.Code, w.Body)
	}
	if w := do("PUT", "/api/owner/settings", `{"mic_off":true,"ptt_room":"`+room+`"}`, page, ck); w.Code != http.StatusOK {
		t.Fatalf("switch the mic off: %d %s", w.Code, w.Body)
	}
	if w := do("POST", "/api/rooms/"+room+"/voice?seconds=3", "", page, member); w.Code != http.StatusForbidden || code(w) != "mic-off" || hw.recorded != 1 {
		t.Errorf("voice with the mic off: %d %s (recorded %d)", w.Code, w.Body, hw.recorded)
	}
	if s := own.Settings(); !s.MicOff || s.PTTRoom != room {
		t.Errorf("settings %+v", s)
	}

	// A restart: the owner, the settings and the refusal of claims are kept; the files are 0600.
	again, log2, _ := newTestOwner(t, dir, nil)
	if !again.IsOwner(ck.Value) || !again.Claimed() || again.Settings() != own.Settings() {
		t.Errorf("after a restart: owner %v, settings %+v", again.IsOwner(ck.Value), again.Settings())
	}
	if strings.Contains(log2.String(), "claim_code") {
		t.Error("a claimed box printed a claim code")
	}
	if _, err := again.Claim(c); !errors.Is(err, ErrClaimed) {
		t.Errorf("claim after a restart: %v", err)
	}
	for _, f := range []string{OwnerFile, SettingsFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, OwnerFile)); bytes.Contains(b, []byte(ck.Value)) {
		t.Error("the token itself is stored")
	}

	// Forget (the reset): a new code, the old cookie is worthless, the settings stay.
	if err := again.Forget(); err != nil {
		t.Fatal(err)
	}
	if again.Claimed() || again.IsOwner(ck.Value) || lastCode(t, log2) == c || !again.MicOff() {
		t.Errorf("after a reset: claimed %v, owner %v, mic off %v", again.Claimed(), again.IsOwner(ck.Value), again.MicOff())
	}
}

// Guessing is bounded: after MaxClaimFailures wrong codes the code is replaced (and printed
// again) and claims are refused for ClaimLockout; the old code never works again.
func TestClaimGuessingBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	own, log, console := newTestOwner(t, t.TempDir(), func() time.Time { return now })
	first := lastCode(t, log)
	for i := range MaxClaimFailures {
		_, err := own.Claim("12345-67890")
		want := ErrBadCode
		if i == MaxClaimFailures-1 {
			want = ErrCodeChanged
		}
		if !errors.Is(err, want) {
			t.Fatalf("wrong code %d: %v, want %v", i+1, err, want)
		}
	}
	second := lastCode(t, log)
	if second == first || strings.Count(console.String(), "type the claim code") != 2 {
		t.Fatalf("no new code after %d failures (console %q)", MaxClaimFailures, console.String())
	}
	if _, err := own.Claim(second); !errors.Is(err, ErrClaimLocked) {
		t.Errorf("right after the failures: %v, want the lockout", err)
	}
	now = now.Add(ClaimLockout)
	if _, err := own.Claim(first); !errors.Is(err, ErrBadCode) {
		t.Errorf("the replaced code: %v, want refused", err)
	}
	if tok, err := own.Claim(" " + strings.ReplaceAll(second, "-", " ") + " "); err != nil || !own.IsOwner(tok) {
		t.Errorf("the new code: %v", err)
	}
}

// ownerClient sends requests to h as https://box.local (the page's own origin when hdr
// says so), with the owner's cookie when c is not nil.
func ownerClient(h http.Handler) func(method, path, body string, hdr map[string]string, c *http.Cookie) *httptest.ResponseRecorder {
	return func(method, path, body string, hdr map[string]string, c *http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "https://box.local"+path, strings.NewReader(body))
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		if c != nil {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
}

// errCode is the code of the box's JSON error in w ("" when none).
func errCode(w *httptest.ResponseRecorder) string {
	var e apiError
	json.Unmarshal(w.Body.Bytes(), &e)
	return e.Code
}
