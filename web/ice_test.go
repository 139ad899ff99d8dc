package web

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

type fakeICE struct{ local, client netip.Addr }

func (f *fakeICE) ICEServers(local, client netip.Addr) []ICEServer {
	f.local, f.client = local, client
	if local != netip.MustParseAddr("10.0.0.1") {
		return nil
	}
	s := make([]ICEServer, 6) // more than the cap
	for i := range s {
		s[i] = ICEServer{URLs: []string{"turn:10.0.0.1:3478"}, Username: "1:" + client.String(), Credential: "x"}
	}
	return s
}

func TestAPIICE(t *testing.T) {
	ice := &fakeICE{}
	h := New(Options{ICE: ice})
	get := func(local string, hdr map[string]string) (*httptest.ResponseRecorder, []ICEServer) {
		r := httptest.NewRequest("GET", "https://box.local/api/ice", nil)
		r.RemoteAddr = "10.0.0.9:5555"
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey,
			&net.TCPAddr{IP: net.ParseIP(local), Port: 443}))
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var body struct{ IceServers []ICEServer }
		if w.Code == http.StatusOK {
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.IceServers == nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
		}
		return w, body.IceServers
	}
	ok := map[string]string{"X-ChatTorrent": "1"}
	w, s := get("10.0.0.1", ok)
	if w.Code != http.StatusOK || len(s) != maxICEServers || s[0].Username != "1:10.0.0.9" {
		t.Fatalf("%d %+v", w.Code, s)
	}
	if ice.local != netip.MustParseAddr("10.0.0.1") || ice.client != netip.MustParseAddr("10.0.0.9") {
		t.Errorf("asked for local %v client %v", ice.local, ice.client)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	if a := w.Header().Get("Access-Control-Allow-Origin"); a != "" {
		t.Errorf("CORS header %q", a)
	}
	// Another interface of the box with no TURN: an empty list, not an error.
	if w, s := get("192.168.9.1", ok); w.Code != http.StatusOK || len(s) != 0 {
		t.Errorf("%d %+v", w.Code, s)
	}
	// Cross-site: no custom header, or a foreign Origin.
	for _, hdr := range []map[string]string{nil, {"X-ChatTorrent": "1", "Origin": "https://evil.example"}} {
		if w, _ := get("10.0.0.1", hdr); w.Code != http.StatusForbidden || strings.Contains(w.Body.String(), "turn:") {
			t.Errorf("%v: %d %s", hdr, w.Code, w.Body)
		}
	}
	// Without ICE (no STUN/TURN on the box) the route still answers: an empty list, 200,
	// never a 404 that a page would log as an error for every offer.
	for _, opts := range []Options{{}, {Box: nil, Drop: nil}} {
		r := httptest.NewRequest("GET", "https://box.local/api/ice", nil)
		r.RemoteAddr = "10.0.0.9:5555"
		r.Header.Set("X-ChatTorrent", "1")
		w2 := httptest.NewRecorder()
		New(opts).ServeHTTP(w2, r)
		if w2.Code != http.StatusOK || strings.TrimSpace(w2.Body.String()) != `{"iceServers":[]}` {
			t.Errorf("no ICE: %d %q", w2.Code, w2.Body)
		}
		if cc := w2.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("no ICE: Cache-Control %q", cc)
		}
	}
}
