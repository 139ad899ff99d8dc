package web

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
)

// maxStaticLines is the most lines a file of the page may have: the page is split into
// modules a newcomer finds by name (docs/ARCHITECTURE.md), none of them a monolith.
const maxStaticLines = 600

// TestStaticFileSize holds the rule: every text file under web/static has at most
// maxStaticLines lines.
func TestStaticFileSize(t *testing.T) {
	n := 0
	err := fs.WalkDir(embedded, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !isText(p) {
			return nil
		}
		data, err := fs.ReadFile(embedded, p)
		if err != nil {
			return err
		}
		n++
		if lines := bytes.Count(data, []byte("\n")); lines > maxStaticLines {
			t.Errorf("%s has %d lines, more than %d: split it by feature", p, lines, maxStaticLines)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d text files under static", n)
	}
}

// TestShellListsModules: every module of the page, in js/ and its folders (views/), is in
// the service worker's shell, so the page opens without the box whatever its layout.
func TestShellListsModules(t *testing.T) {
	var shell struct{ Files []string }
	if err := json.Unmarshal(do(t, New(Options{}), "GET", "/shell.json").Body.Bytes(), &shell); err != nil {
		t.Fatal(err)
	}
	var mods []string
	err := fs.WalkDir(embedded, "static/js", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".js") {
			mods = append(mods, strings.TrimPrefix(p, "static"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(mods, func(m string) bool { return strings.Count(m, "/") > 2 }) {
		t.Errorf("no module in a folder under js/ (views/): %v", mods)
	}
	for _, m := range mods {
		if !slices.Contains(shell.Files, m) {
			t.Errorf("the shell lacks %s", m)
		}
	}
}

func isText(p string) bool {
	for _, ext := range []string{".js", ".css", ".html", ".svg", ".webmanifest", ".json"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}

// TestModulePreload: index.html preloads every module the page imports (all of js/ but
// app.js, its script, and verify-worker.js, a worker's), so a phone fetches them at once
// instead of one level of imports per round trip; and preloads nothing that is not there.
func TestModulePreload(t *testing.T) {
	html, err := fs.ReadFile(embedded, "static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	err = fs.WalkDir(embedded, "static/js", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".js") && path.Base(p) != "app.js" && path.Base(p) != "verify-worker.js" {
			want = append(want, strings.TrimPrefix(p, "static"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range want {
		if !strings.Contains(string(html), `<link rel="modulepreload" href="`+m+`">`) {
			t.Errorf("index.html does not preload %s", m)
		}
	}
	if n := strings.Count(string(html), `rel="modulepreload"`); n != len(want) {
		t.Errorf("index.html preloads %d modules, want the %d of js/", n, len(want))
	}
}
