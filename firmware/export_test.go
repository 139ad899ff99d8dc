package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/web"
)

// "chattorrent export" writes each kept room as a zip of its verifiable history and files:
// from the data directory when the box is stopped, through the running box otherwise
// (which holds the store).
func TestExportCommand(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	room := strings.Repeat("e", 32)
	photo := bytes.Repeat([]byte{0xff, 0xd8, 7}, 20_000)
	func() {
		st, err := store.Open(filepath.Join(data, "store"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		id, err := store.LoadIdentity(data, "Caja")
		if err != nil {
			t.Fatal(err)
		}
		blobs, err := blobs.New(filepath.Join(data, "files"), 0)
		if err != nil {
			t.Fatal(err)
		}
		root, err := blobs.Put(bytes.NewReader(photo), int64(len(photo)))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateRoom(room, "Campamento"); err != nil {
			t.Fatal(err)
		}
		rh, err := st.RoomHistory(room)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := pieces.Meta{Kind: "image", Root: pieces.RootHex(root), Size: int64(len(photo)), Name: "fuego.jpg", Type: "image/jpeg", Duration: -1}.Body()
		for _, e := range []history.Entry{{Kind: history.KindText, Body: "hola"}, {Kind: "image", Body: body}} {
			e.Author, e.Name, e.TS = id.Author(), id.Name, time.Now().UnixMilli()
			if _, err := rh.Write(e, id.Sign); err != nil {
				t.Fatal(err)
			}
		}
	}()

	check := func(out string) {
		t.Helper()
		zips, _ := filepath.Glob(filepath.Join(out, "*"))
		if len(zips) != 1 || filepath.Base(zips[0]) != "Campamento_"+room+"_history.zip" {
			t.Fatalf("written: %v", zips)
		}
		z, err := zip.OpenReader(zips[0])
		if err != nil {
			t.Fatal(err)
		}
		defer z.Close()
		got := map[string][]byte{}
		for _, f := range z.File {
			r, _ := f.Open()
			got[f.Name], _ = io.ReadAll(r)
			r.Close()
		}
		x, fails, err := history.VerifyExport(bytes.NewReader(got["history.json"]), time.Now())
		if err != nil || len(fails) != 0 || len(x.Entries) != 2 {
			t.Fatalf("history.json: %v %v", err, fails)
		}
		var m struct{ Media []struct{ Path string } }
		json.Unmarshal(got["history.json"], &m)
		if len(m.Media) != 1 || !bytes.Equal(got[m.Media[0].Path], photo) {
			t.Errorf("media %+v: the photo is not in the zip", m.Media)
		}
	}

	// The box is stopped: the export reads the data directory.
	out1 := filepath.Join(dir, "out1")
	os.Mkdir(out1, 0o755)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"export", "-data-dir", data, "-o", out1}, &stdout, &stderr); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr.String())
	}
	check(out1)

	// The box runs: the export asks it.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	readyFile := filepath.Join(dir, "ready.json")
	go func() {
		done <- run(ctx, []string{"serve", "--data-dir", data, "--https-addr", "127.0.0.1:0", "--http-addr", "",
			"--ready-file", readyFile, "--mdns=false", "--mic", "none", "--ptt-pin", "none", "--export-pin", "none",
			"--led-pin", "none", "--sticks", "none"}, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	ready := waitReady(t, readyFile, done)
	out2 := filepath.Join(dir, "out2")
	os.Mkdir(out2, 0o755)
	stderr.Reset()
	if err := run(t.Context(), []string{"export", "-data-dir", data, "-https-addr", ready.HTTPS, "-o", out2, room}, &stdout, &stderr); err != nil {
		t.Fatalf("export through the box: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "exporting through it") {
		t.Errorf("stderr %q: the export did not go through the running box", stderr.String())
	}
	check(out2)

	// Bad input: a room id that is not one, a room the box does not keep.
	if err := run(t.Context(), []string{"export", "-data-dir", data, "-o", out2, "../x"}, io.Discard, io.Discard); err == nil {
		t.Error("a bad room id was accepted")
	}
	if err := run(t.Context(), []string{"export", "-data-dir", data, "-https-addr", ready.HTTPS, "-o", out2, strings.Repeat("f", 32)}, io.Discard, io.Discard); err == nil {
		t.Error("a room the box does not keep was exported")
	}
}

// Two rooms with the same name whose ids share their first 8 hex characters each get their
// own zip: neither overwrites the other (the name once held only the id's prefix).
func TestExportSameNameSamePrefix(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	rooms := []string{"abcdef01" + strings.Repeat("1", 24), "abcdef01" + strings.Repeat("2", 24)}
	func() {
		st, err := store.Open(filepath.Join(data, "store"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		id, err := store.LoadIdentity(data, "Caja")
		if err != nil {
			t.Fatal(err)
		}
		for i, room := range rooms {
			if err := st.CreateRoom(room, "Clase"); err != nil {
				t.Fatal(err)
			}
			rh, err := st.RoomHistory(room)
			if err != nil {
				t.Fatal(err)
			}
			e := history.Entry{Kind: history.KindText, Body: fmt.Sprintf("room %d", i), Author: id.Author(), Name: id.Name, TS: time.Now().UnixMilli()}
			if _, err := rh.Write(e, id.Sign); err != nil {
				t.Fatal(err)
			}
		}
	}()
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"export", "-data-dir", data, "-o", out}, &stdout, &stderr); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr.String())
	}
	zips, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(zips) != 2 {
		t.Fatalf("want one zip per room, got %v", zips)
	}
	for i, room := range rooms {
		name := filepath.Join(out, "Clase_"+room+"_history.zip")
		z, err := zip.OpenReader(name)
		if err != nil {
			t.Fatalf("room %d: %v", i, err)
		}
		var x history.Export
		for _, f := range z.File {
			if f.Name == "history.json" {
				r, _ := f.Open()
				json.NewDecoder(r).Decode(&x)
				r.Close()
			}
		}
		z.Close()
		if len(x.Entries) != 1 || x.Entries[0].Room != room || x.Entries[0].Body != fmt.Sprintf("room %d", i) {
			t.Errorf("%s holds %+v, not room %d's history", name, x.Entries, i)
		}
	}
}

// Through the running box, an export answered 503 busy (web.MaxConcurrentExports taken)
// is asked again until a place is free, and gives up after exportRetries.
func TestRemoteExportWaitsWhileBusy(t *testing.T) {
	defer func(n int, d time.Duration) { exportRetries, exportRetryWait = n, d }(exportRetries, exportRetryWait)
	exportRetries, exportRetryWait = 3, time.Millisecond
	busy := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(web.LocalHeader) != "tok" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		if busy > 0 {
			busy--
			http.Error(w, `{"code":"busy"}`, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "PK")
	}))
	defer srv.Close()
	rx := remoteExport{client: srv.Client(), base: srv.URL, local: "tok"}
	for _, tc := range []struct {
		busy int
		ok   bool
	}{{0, true}, {3, true}, {4, false}} {
		busy = tc.busy
		var b bytes.Buffer
		err := rx.zip(context.Background(), strings.Repeat("e", 32), &b)
		if (err == nil) != tc.ok || (tc.ok && b.String() != "PK") {
			t.Errorf("%d busy answers: %v, %q", tc.busy, err, b.String())
		}
	}
}
