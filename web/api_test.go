package web

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/store/history"
)

type fakeBox struct {
	connect func([]byte) ([]byte, error)
}

func (f fakeBox) Connect(_ context.Context, offer []byte) ([]byte, error) { return f.connect(offer) }
func (fakeBox) Rooms() ([]BoxRoom, error) {
	return []BoxRoom{{ID: strings.Repeat("a", 32), Name: "Aula", Entries: 3}}, nil
}
func (fakeBox) Export(room string) (string, func(io.Writer) error, error) {
	if room != strings.Repeat("a", 32) {
		return "", nil, ErrNoRoom
	}
	return "Aula 7", func(w io.Writer) error { _, err := io.WriteString(w, `{"format":"chattorrent-history"}`); return err }, nil
}

func (fakeBox) ExportZip(room string) (string, func(io.Writer) error, error) {
	if room != strings.Repeat("a", 32) {
		return "", nil, ErrNoRoom
	}
	return "Aula 7", func(w io.Writer) error { _, err := io.WriteString(w, "PK"); return err }, nil
}

// Member: the fake box keeps room "a…a", written in by memberKey only.
func (fakeBox) Member(room string, authors []string) (bool, error) {
	if room != strings.Repeat("a", 32) {
		return false, ErrNoRoom
	}
	return slices.Contains(authors, history.EncodeKey(memberKey.Public().(ed25519.PublicKey))), nil
}

// memberKey is the identity key of the fake box's room's one author.
var memberKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

func TestAPI(t *testing.T) {
	box := fakeBox{connect: func(b []byte) ([]byte, error) {
		switch string(b) {
		case "busy":
			return nil, ErrBoxBusy
		case "junk sdp":
			return nil, ErrBadSDP
		case "greedy":
			return nil, ErrTooMany
		case "full":
			return nil, ErrStoreFull
		case "answer":
			return nil, ErrNotOffer
		case "offer":
			return []byte("d4:infoe"), nil
		}
		_, err := torrent.Decode(b)
		return nil, err
	}}
	h := New(Options{Box: box})
	member := prove(t, h, "https://box.local", memberKey)
	do := func(method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "https://box.local"+path, strings.NewReader(body))
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		r.AddCookie(member)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	ok := map[string]string{"X-ChatTorrent": "1", "Origin": "https://box.local"}
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		contains                 string
	}{
		{"rooms", "GET", "/api/rooms", "", nil, 200, `"name":"Aula"`},
		{"connect", "POST", "/api/rooms/connect", "offer", ok, 200, "d4:infoe"},
		{"no header", "POST", "/api/rooms/connect", "offer", map[string]string{"Origin": "https://box.local"}, 403, "forbidden"},
		{"other origin", "POST", "/api/rooms/connect", "offer", map[string]string{"X-ChatTorrent": "1", "Origin": "https://evil.example"}, 403, "forbidden"},
		{"plain http origin", "POST", "/api/rooms/connect", "offer", map[string]string{"X-ChatTorrent": "1", "Origin": "http://box.local"}, 403, "forbidden"},
		{"bad torrent", "POST", "/api/rooms/connect", "garbage", ok, 400, `"code":"malformed"`},
		{"an answer", "POST", "/api/rooms/connect", "answer", ok, 400, `"code":"not-offer"`},
		{"busy", "POST", "/api/rooms/connect", "busy", ok, 503, `"code":"busy"`},
		{"junk SDP", "POST", "/api/rooms/connect", "junk sdp", ok, 400, `"code":"bad-sdp"`},
		{"too many opening", "POST", "/api/rooms/connect", "greedy", ok, 429, `"code":"too-many"`},
		{"store full", "POST", "/api/rooms/connect", "full", ok, 507, `"code":"store-full"`},
		{"too large", "POST", "/api/rooms/connect", strings.Repeat("x", torrent.MaxSize+1), ok, 413, `"code":"too-large"`},
		{"export", "GET", "/api/rooms/" + strings.Repeat("a", 32) + "/history.json", "", nil, 200, "chattorrent-history"},
		{"export unknown", "GET", "/api/rooms/" + strings.Repeat("b", 32) + "/history.json", "", nil, 404, "no-room"},
		{"export bad id", "GET", "/api/rooms/..%2f..%2fetc/history.json", "", nil, 400, "bad-room"},
		{"zip", "GET", "/api/rooms/" + strings.Repeat("a", 32) + "/history.zip", "", nil, 200, "PK"},
		{"zip unknown", "GET", "/api/rooms/" + strings.Repeat("b", 32) + "/history.zip", "", nil, 404, "no-room"},
		{"zip bad id", "GET", "/api/rooms/ABC/history.zip", "", nil, 400, "bad-room"},
		{"GET connect", "GET", "/api/rooms/connect", "", nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(tc.method, tc.path, tc.body, tc.hdr)
			if w.Code != tc.status && !(tc.status == 404 && w.Code == 405) {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("body %q lacks %q", w.Body, tc.contains)
			}
			if w.Header().Get("Access-Control-Allow-Origin") != "" {
				t.Error("a CORS header was sent")
			}
		})
	}
	w := do("GET", "/api/rooms/"+strings.Repeat("a", 32)+"/history.json", "", nil)
	if cd := w.Header().Get("Content-Disposition"); cd != `attachment; filename="Aula_7_history.json"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	// Without a box there is no API.
	r := httptest.NewRequest("GET", "https://box.local/api/rooms", nil)
	w = httptest.NewRecorder()
	New(Options{}).ServeHTTP(w, r)
	if w.Code != http.StatusNotFound {
		t.Errorf("no box: %d", w.Code)
	}
}
