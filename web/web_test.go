package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

var testFS = fstest.MapFS{
	"index.html":           {Data: []byte("<!doctype html><title>t</title>")},
	"app.css":              {Data: []byte("body{}")},
	"js/app.js":            {Data: []byte("export {};")},
	"js/x.mjs":             {Data: []byte("export {};")},
	"manifest.webmanifest": {Data: []byte("{}")},
	"icon.svg":             {Data: []byte("<svg/>")},
	".secret":              {Data: []byte("no")},
	"js/.hidden.js":        {Data: []byte("no")},
	"sub/other.txt":        {Data: []byte("x")},
}

const testCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func testOptions() Options {
	return Options{Static: testFS, Version: "1.2.3", CAPEM: []byte(testCA), CAFingerprint: "AB:CD:EF"}
}

func do(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func checkSecurityHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Permissions-Policy":      "microphone=(self), camera=(), geolocation=()",
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if w.Header().Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent")
	}
}

func TestStatic(t *testing.T) {
	h := New(testOptions())
	tests := []struct {
		path, ctype string
	}{
		{"/", "text/html; charset=utf-8"},
		{"/app.css", "text/css; charset=utf-8"},
		{"/js/app.js", "text/javascript; charset=utf-8"},
		{"/js/x.mjs", "text/javascript; charset=utf-8"},
		{"/manifest.webmanifest", "application/manifest+json"},
		{"/icon.svg", "image/svg+xml"},
	}
	for _, tt := range tests {
		w := do(t, h, "GET", tt.path)
		if w.Code != 200 {
			t.Errorf("GET %s: %d", tt.path, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != tt.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tt.path, got, tt.ctype)
		}
		if got := w.Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", tt.path, got)
		}
		checkSecurityHeaders(t, w)
	}
	if body := do(t, h, "GET", "/").Body.String(); !strings.Contains(body, "<title>t</title>") {
		t.Errorf("/ body = %q", body)
	}
	if w := do(t, h, "HEAD", "/js/app.js"); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", w.Code, w.Body.Len())
	}
}

func TestStaticRevalidation(t *testing.T) {
	h := New(testOptions())
	etag := do(t, h, "GET", "/js/app.js").Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if w := do(t, h, "GET", "/js/app.js", "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", w.Code)
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	h := New(testOptions())
	for _, p := range []string{"/nope", "/js/", "/js", "/sub/", "/.secret", "/js/.hidden.js", "/index.html/"} {
		w := do(t, h, "GET", p)
		if w.Code != 404 {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
		checkSecurityHeaders(t, w)
	}
	for _, p := range []string{"/", "/healthz", "/ca.crt", "/trust", "/js/app.js"} {
		w := do(t, h, "POST", p)
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d, want 405", p, w.Code)
		}
		checkSecurityHeaders(t, w)
	}
}

func TestHealthz(t *testing.T) {
	w := do(t, New(testOptions()), "GET", "/healthz")
	var got struct{ Status, Version string }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
		t.Fatalf("%d %q: %v", w.Code, w.Body, err)
	}
	if got.Status != "ok" || got.Version != "1.2.3" {
		t.Errorf("healthz = %+v", got)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestCACert(t *testing.T) {
	for name, h := range map[string]http.Handler{"https": New(testOptions()), "http": NewRedirect(8443, testOptions())} {
		w := do(t, h, "GET", "http://box.local/ca.crt")
		if w.Code != 200 || w.Body.String() != testCA {
			t.Errorf("%s: %d %q", name, w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/x-x509-ca-cert" {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		if cd := w.Header().Get("Content-Disposition"); !strings.Contains(cd, `filename="chattorrent-ca.crt"`) {
			t.Errorf("%s: Content-Disposition %q", name, cd)
		}
		checkSecurityHeaders(t, w)
	}
	if w := do(t, New(Options{Static: testFS}), "GET", "/ca.crt"); w.Code != 404 {
		t.Errorf("no CA: %d", w.Code)
	}
}

func TestTrustPage(t *testing.T) {
	opts := testOptions()
	opts.CAFingerprint = "AB:CD<script>"
	for name, h := range map[string]http.Handler{"https": New(opts), "http": NewRedirect(8443, opts)} {
		w := do(t, h, "GET", "http://box.local:8080/trust")
		body := w.Body.String()
		if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("%s: %d %q", name, w.Code, w.Header().Get("Content-Type"))
		}
		for _, want := range []string{"AB:CD&lt;script&gt;", `href="/ca.crt"`, "Confiar", "Trust this", "Android", "iPhone", "this box only", "solo sirve para esta caja"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: trust page lacks %q", name, want)
			}
		}
		if strings.Contains(body, "<script") || strings.Contains(body, "style=") {
			t.Errorf("%s: inline script or style in trust page", name)
		}
		checkSecurityHeaders(t, w)
	}
	body := do(t, NewRedirect(8443, opts), "GET", "http://box.local:8080/trust").Body.String()
	if !strings.Contains(body, `href="https://box.local:8443/"`) {
		t.Errorf("http trust page does not link to the HTTPS side: %s", body)
	}
}

func TestRedirect(t *testing.T) {
	h := NewRedirect(8443, testOptions())
	tests := []struct{ target, host, want string }{
		{"/", "box.local", "https://box.local:8443/"},
		{"/js/app.js?x=1&y=%20", "box.local:8080", "https://box.local:8443/js/app.js?x=1&y=%20"},
		{"/a%2Fb", "192.168.4.1:80", "https://192.168.4.1:8443/a%2Fb"},
		{"/", "[fd00::1]:8080", "https://[fd00::1]:8443/"},
		{"/", "CHATTORRENT.LOCAL.", "https://chattorrent.local:8443/"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.target, nil)
		r.Host = tt.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != tt.want {
			t.Errorf("%s %s: %d %q, want 308 %q", tt.host, tt.target, w.Code, w.Header().Get("Location"), tt.want)
		}
		checkSecurityHeaders(t, w)
	}
	r := httptest.NewRequest("POST", "/x", io.NopCloser(strings.NewReader("")))
	r.Host = "box.local"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusPermanentRedirect {
		t.Errorf("POST: %d", w.Code)
	}

	// Port 443 is left out of the URL.
	r = httptest.NewRequest("GET", "/x", nil)
	r.Host = "box.local"
	w = httptest.NewRecorder()
	NewRedirect(443, testOptions()).ServeHTTP(w, r)
	if got := w.Header().Get("Location"); got != "https://box.local/x" {
		t.Errorf("port 443: %q", got)
	}
}

func TestRedirectBadHost(t *testing.T) {
	h := NewRedirect(8443, testOptions())
	for _, host := range []string{"", strings.Repeat("a", 300), strings.Repeat("a.", 130) + "com", "evil.com/x", "a b", "x..y", "<script>"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Errorf("Host %.40q: %d, want 400", host, w.Code)
		}
	}
}

func TestEmbeddedDefault(t *testing.T) {
	// The embedded UI is whatever web/static holds at build time; only check that the
	// handler works with it and that index.html, when present, is served at /.
	h := New(Options{})
	w := do(t, h, "GET", "/")
	if _, err := embedded.Open("static/index.html"); err == nil && w.Code != 200 {
		t.Errorf("GET / with embedded index.html: %d", w.Code)
	}
	if w := do(t, h, "GET", "/.gitkeep"); w.Code != 404 {
		t.Errorf("hidden embedded file served: %d", w.Code)
	}
}
