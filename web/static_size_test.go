package web

import (
	"bytes"
	"encoding/json"
	"io/fs"
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
