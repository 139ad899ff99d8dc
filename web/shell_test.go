package web

import (
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// TestShell: /shell.json lists every file of the UI the service worker must keep (index.html
// as "/"), no hidden file, not the worker itself; never cached.
func TestShell(t *testing.T) {
	static := fstest.MapFS{
		"index.html":           {Data: []byte("<!doctype html>")},
		"sw.js":                {Data: []byte("//")},
		"app.css":              {Data: []byte("body{}")},
		"js/app.js":            {Data: []byte("export {};")},
		"js/verify-worker.js":  {Data: []byte("export {};")},
		"manifest.webmanifest": {Data: []byte("{}")},
		".secret":              {Data: []byte("no")},
		".git/config":          {Data: []byte("no")},
		"js/.hidden.js":        {Data: []byte("no")},
		"sub/index.html":       {Data: []byte("no: served only as /sub/")},
	}
	w := do(t, New(Options{Static: static, Version: "9.9"}), "GET", "/shell.json")
	if w.Code != 200 || w.Header().Get("Cache-Control") != "no-store" || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	checkSecurityHeaders(t, w)
	var body struct {
		Version string
		Files   []string
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	want := []string{"/", "/app.css", "/js/app.js", "/js/verify-worker.js", "/manifest.webmanifest"}
	slices.Sort(body.Files)
	if body.Version != "9.9" || !slices.Equal(body.Files, want) {
		t.Errorf("%+v, want files %v", body, want)
	}
}

// TestServiceWorkerEmbedded: the embedded UI has a service worker at the root (its scope is
// the whole site without a Service-Worker-Allowed header), served as JavaScript, revalidated
// and under the CSP; the page registers it; the shell lists every module; the manifest is
// an installable app's.
func TestServiceWorkerEmbedded(t *testing.T) {
	h := New(Options{})
	w := do(t, h, "GET", "/sw.js")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") || w.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("/sw.js: %d %v", w.Code, w.Header())
	}
	checkSecurityHeaders(t, w)
	sw := w.Body.String()
	for _, s := range []string{"'/api/'", "respondWith", "/shell.json"} {
		if !strings.Contains(sw, s) {
			t.Errorf("sw.js lacks %s", s)
		}
	}
	app, err := fs.ReadFile(embedded, "static/js/app.js")
	if err != nil || !strings.Contains(string(app), "serviceWorker.register('/sw.js'") {
		t.Errorf("app.js does not register /sw.js (%v)", err)
	}

	var shell struct{ Files []string }
	if err := json.Unmarshal(do(t, h, "GET", "/shell.json").Body.Bytes(), &shell); err != nil {
		t.Fatal(err)
	}
	mods, _ := fs.Glob(embedded, "static/js/*.js")
	if len(mods) == 0 {
		t.Fatal("no modules embedded")
	}
	for _, m := range append(mods, "static/index.html", "static/app.css", "static/manifest.webmanifest", "static/icon.svg") {
		u := "/" + strings.TrimPrefix(m, "static/")
		if u == "/index.html" {
			u = "/"
		}
		if !slices.Contains(shell.Files, u) {
			t.Errorf("shell lacks %s: %v", u, shell.Files)
		}
	}
	if slices.Contains(shell.Files, "/sw.js") {
		t.Error("the shell lists the worker itself")
	}

	var man struct {
		Name, ShortName, StartURL, Scope, Display, ID string
		Icons                                         []struct{ Src, Sizes, Type string }
	}
	w = do(t, h, "GET", "/manifest.webmanifest")
	if w.Header().Get("Content-Type") != "application/manifest+json" {
		t.Errorf("manifest type %q", w.Header().Get("Content-Type"))
	}
	raw := strings.NewReplacer(`"short_name"`, `"shortname"`, `"start_url"`, `"starturl"`).Replace(w.Body.String())
	if err := json.Unmarshal([]byte(raw), &man); err != nil {
		t.Fatal(err)
	}
	if man.Name == "" || man.ShortName == "" || man.StartURL != "/" || man.Display != "standalone" || len(man.Icons) == 0 {
		t.Errorf("manifest %+v", man)
	}
	// Installable everywhere: PNG icons of 192 and 512 pixels besides the SVG.
	for _, size := range []string{"192x192", "512x512"} {
		if !slices.ContainsFunc(man.Icons, func(ic struct{ Src, Sizes, Type string }) bool {
			return ic.Sizes == size && ic.Type == "image/png"
		}) {
			t.Errorf("no %s PNG icon: %+v", size, man.Icons)
		}
	}
	for _, ic := range man.Icons {
		if do(t, h, "GET", ic.Src).Code != 200 || !slices.Contains(shell.Files, ic.Src) {
			t.Errorf("icon %s not served or not in the shell", ic.Src)
		}
	}
}
