package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func testBoxHost(h string) bool {
	return h == "box.local" || h == "box-2.local" || h == "localhost" || h == "127.0.0.1" || h == "::1" || h == "192.168.1.57"
}

// The API answers only requests addressed to one of the box's names or addresses (DNS
// rebinding); the page, /healthz and the CA stay open to any Host.
func TestAPIRefusesOtherHosts(t *testing.T) {
	opts := testOptions()
	opts.Box = fakeBox{connect: func([]byte) ([]byte, error) { return []byte("d4:infoe"), nil }}
	opts.Drop = NewDropBox(DropOptions{})
	opts.BoxHost = testBoxHost
	h := New(opts)
	req := func(method, host, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "https://box.local"+path, strings.NewReader("offer"))
		r.Host = host
		r.Header.Set("X-ChatTorrent", "1")
		r.Header.Set("Origin", "https://"+host) // a rebinding page's Origin matches its Host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, host := range []string{"box.local", "box.local:8443", "BOX.LOCAL.", "box-2.local", "localhost:8443", "127.0.0.1:8443", "[::1]:8443", "192.168.1.57"} {
		if w := req("GET", host, "/api/rooms"); w.Code != http.StatusOK {
			t.Errorf("GET /api/rooms with Host %q: %d, want 200", host, w.Code)
		}
	}
	for _, host := range []string{"evil.example", "evil.example:8443", "chattorrent.local", "box.local.evil.example", "192.168.1.1", "10.0.0.1:8443", "", "bad host"} {
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/rooms"}, {"POST", "/api/rooms/connect"}, {"GET", "/api/rooms/" + strings.Repeat("a", 32) + "/history.json"},
			{"GET", "/api/drop/offers"}, {"GET", "//api/rooms"}, {"GET", "/api/../api/rooms"},
		} {
			w := req(c.method, host, c.path)
			if w.Code != http.StatusMisdirectedRequest {
				t.Errorf("%s %s with Host %q: %d, want 421", c.method, c.path, host, w.Code)
				continue
			}
			var e apiError
			if err := json.NewDecoder(w.Body).Decode(&e); err != nil || e.Code != "wrong-host" || e.Error == "" {
				t.Errorf("%s %s with Host %q: body %+v, %v", c.method, c.path, host, e, err)
			}
		}
		for _, path := range []string{"/", "/healthz", "/ca.crt", "/app.css"} {
			if w := req("GET", host, path); host != "" && host != "bad host" && w.Code != http.StatusOK {
				t.Errorf("GET %s with Host %q: %d, want 200", path, host, w.Code)
			}
		}
	}
}

// The plain-HTTP side sends a request for a name that is not the box's (the generic
// chattorrent.local several boxes may answer) to the box's unique name, and keeps the box's
// own names and addresses.
func TestRedirectToCanonicalHost(t *testing.T) {
	opts := testOptions()
	opts.BoxHost = testBoxHost
	opts.CanonicalHost = func() string { return "box.local" }
	h := NewRedirect(8443, opts)
	for _, c := range []struct{ host, want string }{
		{"chattorrent.local", "https://box.local:8443/p?q=1"},
		{"chattorrent.local:8080", "https://box.local:8443/p?q=1"},
		{"box-2.local", "https://box-2.local:8443/p?q=1"},
		{"192.168.1.57:8080", "https://192.168.1.57:8443/p?q=1"},
	} {
		r := httptest.NewRequest("GET", "/p?q=1", nil)
		r.Host = c.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != c.want {
			t.Errorf("Host %q: %d %q, want %q", c.host, w.Code, w.Header().Get("Location"), c.want)
		}
	}
	r := httptest.NewRequest("GET", "/trust", nil)
	r.Host = "chattorrent.local"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if !strings.Contains(w.Body.String(), `href="https://box.local:8443/"`) {
		t.Errorf("trust page does not continue to the box's unique name:\n%s", w.Body.String())
	}
}
