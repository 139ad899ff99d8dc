package web

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/store/history"
)

// prove runs the page's proof of key against h and returns the member cookie.
func prove(t *testing.T, h http.Handler, origin string, key ed25519.PrivateKey) *http.Cookie {
	t.Helper()
	w := post(h, origin, "/api/member/challenge", "", nil)
	if w.Code != 200 {
		t.Fatalf("challenge: %d %s", w.Code, w.Body)
	}
	var c struct{ Nonce, Context string }
	json.Unmarshal(w.Body.Bytes(), &c)
	if c.Context != ProofContext || len(c.Nonce) != 64 {
		t.Fatalf("challenge %+v", c)
	}
	w = post(h, origin, "/api/member/proof", proofBody(key, origin, c.Nonce), nil)
	if w.Code != 200 {
		t.Fatalf("proof: %d %s", w.Code, w.Body)
	}
	for _, ck := range w.Result().Cookies() {
		if ck.Name == MemberCookie {
			if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/api/" {
				t.Errorf("member cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/api/", ck)
			}
			return ck
		}
	}
	t.Fatal("no member cookie")
	return nil
}

func proofBody(key ed25519.PrivateKey, origin, nonce string) string {
	sig := ed25519.Sign(key, ProofMessage(origin, nonce))
	b, _ := json.Marshal(proofRequest{Author: history.EncodeKey(key.Public().(ed25519.PublicKey)), Nonce: nonce,
		Sig: base64.RawURLEncoding.EncodeToString(sig)})
	return string(b)
}

func post(h http.Handler, origin, path, body string, cookie *http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "https://box.local"+path, strings.NewReader(body))
	r.Header.Set("X-ChatTorrent", "1")
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func challenge(t *testing.T, h http.Handler) string {
	t.Helper()
	var c struct{ Nonce string }
	json.Unmarshal(post(h, "https://box.local", "/api/member/challenge", "", nil).Body.Bytes(), &c)
	return c.Nonce
}

// testSDP is the least an offer's SDP must hold.
var testSDP = strings.Join([]string{"v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 127.0.0.1",
	"a=ice-ufrag:Fx3k", "a=ice-pwd:m8YtJ0tGp0kq2Xq0VhQX1ZsE",
	"a=fingerprint:sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":"),
	"a=setup:actpass", "a=mid:0", "a=sctp-port:5000"}, "\r\n") + "\r\n"

// offerFor is an offer .torrent for room.
func offerFor(t *testing.T, room string) string {
	t.Helper()
	b, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleOffer, Room: room, RoomName: "Aula",
		SDP: testSDP, Session: strings.Repeat("1", 32), Peer: torrent.Peer{ID: history.EncodeKey(make(ed25519.PublicKey, 32)), Name: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStrangerSeesNoRoom: a client that never proved a member's key (no cookie, or a
// cookie for a key that never wrote in the room) gets an empty list and the same 404 for
// every room-scoped endpoint, whether the box keeps the room or not.
func TestStrangerSeesNoRoom(t *testing.T) {
	kept, other := strings.Repeat("a", 32), strings.Repeat("b", 32)
	connected := 0
	box := fakeBox{connect: func([]byte) ([]byte, error) { connected++; return []byte("d4:infoe"), nil }}
	rec := &fakeHardware{}
	h := New(Options{Box: box, Hardware: rec})
	strangerKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	for _, who := range []struct {
		name   string
		cookie *http.Cookie
	}{{"no proof", nil}, {"another key", prove(t, h, "https://box.local", strangerKey)}} {
		t.Run(who.name, func(t *testing.T) {
			get := func(path string) *httptest.ResponseRecorder {
				r := httptest.NewRequest("GET", "https://box.local"+path, nil)
				r.Header.Set("X-ChatTorrent", "1")
				if who.cookie != nil {
					r.AddCookie(who.cookie)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			if w := get("/api/rooms"); w.Code != 200 || strings.TrimSpace(w.Body.String()) != "[]" {
				t.Errorf("rooms: %d %s", w.Code, w.Body)
			}
			for _, p := range []string{"/history.json", "/history.zip"} {
				a, b := get("/api/rooms/"+kept+p), get("/api/rooms/"+other+p)
				if a.Code != 404 || a.Code != b.Code || a.Body.String() != b.Body.String() {
					t.Errorf("%s: kept room %d %s, unknown room %d %s", p, a.Code, a.Body, b.Code, b.Body)
				}
			}
			a := post(h, "https://box.local", "/api/rooms/"+kept+"/voice?seconds=3", "", who.cookie)
			b := post(h, "https://box.local", "/api/rooms/"+other+"/voice?seconds=3", "", who.cookie)
			if a.Code != 404 || a.Code != b.Code || a.Body.String() != b.Body.String() || rec.recorded != 0 {
				t.Errorf("voice: kept room %d %s, unknown room %d %s, recorded %d", a.Code, a.Body, b.Code, b.Body, rec.recorded)
			}
			// Joining the kept room would hand over its history; a new room is made.
			if w := post(h, "https://box.local", "/api/rooms/connect", offerFor(t, kept), who.cookie); w.Code != 404 || connected != 0 {
				t.Errorf("connect to a kept room: %d %s (connected %d)", w.Code, w.Body, connected)
			}
			if w := post(h, "https://box.local", "/api/rooms/connect", offerFor(t, other), who.cookie); w.Code != 200 || connected != 1 {
				t.Errorf("connect to a new room: %d %s", w.Code, w.Body)
			}
			connected = 0
			if who.cookie == nil {
				if w := get("/api/member/events"); w.Code != 401 {
					t.Errorf("events without a proof: %d", w.Code)
				}
			}
		})
	}
	// The member gets all of it.
	m := prove(t, h, "https://box.local", memberKey)
	if w := post(h, "https://box.local", "/api/rooms/"+kept+"/voice?seconds=3", "", m); w.Code != 204 || rec.recorded != 1 {
		t.Errorf("member's voice: %d %s", w.Code, w.Body)
	}
	if w := post(h, "https://box.local", "/api/rooms/connect", offerFor(t, kept), m); w.Code != 200 || connected != 1 {
		t.Errorf("member's connect: %d %s", w.Code, w.Body)
	}
}

type fakeHardware struct{ recorded int }

func (f *fakeHardware) Status() []BoxFeature { return nil }
func (f *fakeHardware) RecordVoice(_ context.Context, room string, d time.Duration) error {
	f.recorded++
	return nil
}

// TestProofRefused: every way a proof can be wrong gets the same 401 and no cookie.
func TestProofRefused(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := NewMembers(func() time.Time { return now })
	h := New(Options{Box: fakeBox{}, Members: m})
	const origin = "https://box.local"
	refused := func(name string, w *httptest.ResponseRecorder) {
		t.Helper()
		if w.Code != 401 && w.Code != 400 && w.Code != 403 {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
		if len(w.Result().Cookies()) != 0 {
			t.Errorf("%s: a cookie was set", name)
		}
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
	n := challenge(t, h)
	body := proofBody(memberKey, origin, n)
	var req proofRequest
	json.Unmarshal([]byte(body), &req)
	req.Author = history.EncodeKey(other.Public().(ed25519.PublicKey)) // signed by another key
	b, _ := json.Marshal(req)
	refused("another key's signature", post(h, origin, "/api/member/proof", string(b), nil))
	refused("nonce used up by a failed proof", post(h, origin, "/api/member/proof", body, nil))

	n = challenge(t, h)
	refused("signed for another box's page", post(h, origin, "/api/member/proof", proofBody(memberKey, "https://evil.local", n), nil))
	n = challenge(t, h)
	refused("no Origin", post(h, "", "/api/member/proof", proofBody(memberKey, origin, n), nil))
	refused("a nonce the box never gave", post(h, origin, "/api/member/proof", proofBody(memberKey, origin, strings.Repeat("0", 64)), nil))
	n = challenge(t, h)
	now = now.Add(ChallengeTTL + time.Second)
	refused("an expired nonce", post(h, origin, "/api/member/proof", proofBody(memberKey, origin, n), nil))
	refused("garbage", post(h, origin, "/api/member/proof", "{", nil))

	n = challenge(t, h)
	ok := post(h, origin, "/api/member/proof", proofBody(memberKey, origin, n), nil)
	if ok.Code != 200 {
		t.Fatalf("a good proof: %d %s", ok.Code, ok.Body)
	}
	refused("a replayed proof", post(h, origin, "/api/member/proof", proofBody(memberKey, origin, n), nil))
	// The session ends after MemberSessionTTL.
	ck := ok.Result().Cookies()[0]
	r := httptest.NewRequest("GET", "https://box.local/api/rooms", nil)
	r.AddCookie(ck)
	if len(m.Authors(r)) != 1 {
		t.Fatal("the proven key is not in the session")
	}
	now = now.Add(MemberSessionTTL + time.Second)
	if len(m.Authors(r)) != 0 {
		t.Error("the session outlived MemberSessionTTL")
	}
}

// TestMembersBounded: challenges and sessions are capped; the oldest go first.
func TestMembersBounded(t *testing.T) {
	m := NewMembers(nil)
	first := m.challenge()
	for range MaxChallenges {
		m.challenge()
	}
	if len(m.challenges) > MaxChallenges {
		t.Errorf("%d challenges held", len(m.challenges))
	}
	if _, ok := m.challenges[first]; ok {
		t.Error("the oldest challenge was kept")
	}
	for i := range MaxMemberSessions + 10 {
		key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i)}, 32))
		n := m.challenge()
		sig := base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, ProofMessage("o", n)))
		if _, _, err := m.prove("", "o", history.EncodeKey(key.Public().(ed25519.PublicKey)), n, sig); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.sessions) > MaxMemberSessions {
		t.Errorf("%d sessions held", len(m.sessions))
	}
}

// TestProofVectors: the page (web/jstest/member.test.mjs) and the box sign and check the
// same bytes.
func TestProofVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/member_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		Seed, Author, Origin, Nonce, Message, Sig string
	}
	if err := json.Unmarshal(b, &vs); err != nil || len(vs) == 0 {
		t.Fatal(err, len(vs))
	}
	for _, v := range vs {
		seed, _ := hex.DecodeString(v.Seed)
		key := ed25519.NewKeyFromSeed(seed)
		if got := history.EncodeKey(key.Public().(ed25519.PublicKey)); got != v.Author {
			t.Errorf("author %s, want %s", got, v.Author)
		}
		if got := string(ProofMessage(v.Origin, v.Nonce)); got != v.Message {
			t.Errorf("message %q, want %q", got, v.Message)
		}
		if got := base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(v.Message))); got != v.Sig {
			t.Errorf("sig %s, want %s", got, v.Sig)
		}
	}
}

// TestRecordingEvents: while the box records into a room, the members of that room are
// told so on their event stream; a member of no such room hears only that nothing of
// theirs is recorded.
func TestRecordingEvents(t *testing.T) {
	act := NewActivity()
	h := New(Options{Box: fakeBox{}, Activity: act})
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	kept := strings.Repeat("a", 32)
	stream := func(cookie *http.Cookie) (<-chan string, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/member/events", nil)
		req.AddCookie(cookie)
		resp, err := srv.Client().Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("events: %v %v", err, resp)
		}
		lines := make(chan string, 16)
		go func() {
			defer resp.Body.Close()
			buf := make([]byte, 4096)
			for {
				n, err := resp.Body.Read(buf)
				for _, l := range strings.Split(string(buf[:n]), "\n") {
					if strings.HasPrefix(l, "data: ") {
						lines <- strings.TrimPrefix(l, "data: ")
					}
				}
				if err != nil {
					close(lines)
					return
				}
			}
		}()
		return lines, cancel
	}
	next := func(c <-chan string) string {
		select {
		case l := <-c:
			return l
		case <-time.After(10 * time.Second): // only keeps a broken test from hanging
			t.Fatal("no event")
			return ""
		}
	}
	member, stop1 := stream(prove(t, h, "https://box.local", memberKey))
	defer stop1()
	stranger, stop2 := stream(prove(t, h, "https://box.local", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))))
	defer stop2()
	if a, b := next(member), next(stranger); a != `{"room":""}` || b != `{"room":""}` {
		t.Fatalf("at first: %s, %s", a, b)
	}
	act.SetRecording(kept)
	if got := next(member); got != `{"room":"`+kept+`"}` {
		t.Errorf("the member hears %s", got)
	}
	act.SetRecording("")
	if got := next(member); got != `{"room":""}` {
		t.Errorf("the member hears %s after the recording", got)
	}
	select {
	case l := <-stranger:
		t.Errorf("the stranger heard %s", l)
	default:
	}
}

// TestLocalToken: the token the box writes into its data directory shows every room to
// a command on the box; any other value (or none) is a stranger.
func TestLocalToken(t *testing.T) {
	h := New(Options{Box: fakeBox{}, LocalToken: "s3cret"})
	for _, tc := range []struct{ token, rooms, zip string }{
		{"s3cret", `"name":"Aula"`, "200"}, {"wrong", "[]", "404"}, {"", "[]", "404"},
	} {
		get := func(path string) *httptest.ResponseRecorder {
			r := httptest.NewRequest("GET", "https://box.local"+path, nil)
			if tc.token != "" {
				r.Header.Set(LocalHeader, tc.token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
		if w := get("/api/rooms"); !strings.Contains(w.Body.String(), tc.rooms) {
			t.Errorf("token %q: rooms %s", tc.token, w.Body)
		}
		if w := get("/api/rooms/" + strings.Repeat("a", 32) + "/history.zip"); strconv.Itoa(w.Code) != tc.zip {
			t.Errorf("token %q: zip %d", tc.token, w.Code)
		}
	}
}
