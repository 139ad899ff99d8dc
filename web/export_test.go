package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// slowBox is a fakeBox whose exports write a first byte, then wait for release.
type slowBox struct {
	fakeBox
	started chan struct{}
	release chan struct{}
}

func (b slowBox) wait(w io.Writer) error {
	io.WriteString(w, "{")
	b.started <- struct{}{}
	<-b.release
	return nil
}

func (b slowBox) Export(room string) (string, func(io.Writer) error, error) {
	name, _, err := b.fakeBox.Export(room)
	return name, b.wait, err
}

func (b slowBox) ExportZip(room string) (string, func(io.Writer) error, error) {
	name, _, err := b.fakeBox.ExportZip(room)
	return name, b.wait, err
}

// At most MaxConcurrentExports history.json and history.zip downloads run at once; one
// more is answered 503 busy, and a place is free again once an export ends.
func TestExportSlots(t *testing.T) {
	box := slowBox{started: make(chan struct{}), release: make(chan struct{})}
	h := New(Options{Box: box})
	member := prove(t, h, "https://box.local", memberKey)
	get := func(file string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "https://box.local/api/rooms/"+strings.Repeat("a", 32)+"/"+file, nil)
		r.AddCookie(member)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	done := make(chan *httptest.ResponseRecorder)
	for i := range MaxConcurrentExports {
		go func() { done <- get([]string{"history.json", "history.zip"}[i%2]) }()
		<-box.started
	}
	for _, file := range []string{"history.json", "history.zip"} {
		if w := get(file); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"code":"busy"`) {
			t.Errorf("%s beyond %d exports: %d %s, want 503 busy", file, MaxConcurrentExports, w.Code, w.Body)
		}
	}
	// Not refused before membership: a stranger still gets 404 while the box is busy.
	r := httptest.NewRequest("GET", "https://box.local/api/rooms/"+strings.Repeat("a", 32)+"/history.json", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNotFound {
		t.Errorf("a stranger while busy: %d, want 404", w.Code)
	}
	box.release <- struct{}{}
	if w := <-done; w.Code != http.StatusOK || w.Body.String() != "{" {
		t.Fatalf("first export: %d %q", w.Code, w.Body)
	}
	go func() { done <- get("history.json") }()
	<-box.started
	close(box.release)
	for range MaxConcurrentExports {
		if w := <-done; w.Code != http.StatusOK {
			t.Errorf("export: %d %s", w.Code, w.Body)
		}
	}
}

// failBox's exports fail before writing anything.
type failBox struct{ fakeBox }

func (failBox) Export(room string) (string, func(io.Writer) error, error) {
	return "Aula 7", func(io.Writer) error { return io.ErrUnexpectedEOF }, nil
}

// An export that fails before its first byte is still answered 500, not an empty file.
func TestExportFailsBeforeFirstByte(t *testing.T) {
	h := New(Options{Box: failBox{}})
	member := prove(t, h, "https://box.local", memberKey)
	r := httptest.NewRequest("GET", "https://box.local/api/rooms/"+strings.Repeat("a", 32)+"/history.json", nil)
	r.AddCookie(member)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusInternalServerError || w.Header().Get("Content-Disposition") != "" || !strings.Contains(w.Body.String(), `"code":"failed"`) {
		t.Errorf("%d %q %s", w.Code, w.Header().Get("Content-Disposition"), w.Body)
	}
}
