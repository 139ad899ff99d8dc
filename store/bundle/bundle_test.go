package bundle

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/history"
)

// The zip holds history.json, which still verifies, lists every announced file and says
// which are included, and the held files byte for byte under media/.
func TestWrite(t *testing.T) {
	blobs, err := blobs.New(filepath.Join(t.TempDir(), "files"), 0)
	if err != nil {
		t.Fatal(err)
	}
	photo := bytes.Repeat([]byte("foto "), 10_000) // 50,000 bytes: four pieces
	root, err := blobs.Put(bytes.NewReader(photo), int64(len(photo)))
	if err != nil {
		t.Fatal(err)
	}

	room := strings.Repeat("b", 32)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	log := history.NewLog(room)
	now := time.Now()
	add := func(kind, body string) {
		e := history.Entry{Author: history.EncodeKey(pub), Name: "Ana", Kind: kind, Body: body, TS: now.UnixMilli()}
		log.Next(&e)
		e.Sign(key)
		if _, err := log.Add(e, now); err != nil {
			t.Fatal(err)
		}
	}
	add(history.KindText, "hola")
	held, _ := pieces.Meta{Kind: "image", Root: pieces.RootHex(root), Size: int64(len(photo)), Name: "patio 1.jpg", Type: "image/jpeg", Duration: -1}.Body()
	add("image", held)
	missing, _ := pieces.Meta{Kind: "file", Root: strings.Repeat("c", 64), Size: 5, Name: "notas.txt", Type: "text/plain", Duration: -1}.Body()
	add("file", missing)
	add("image", held) // the same file twice: stored once, listed twice

	var buf bytes.Buffer
	if err := Write(&buf, history.NewExport(log, "Patio", now), blobs, now); err != nil {
		t.Fatal(err)
	}
	z, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range z.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(r)
		r.Close()
	}
	if len(files) != 2 {
		t.Errorf("zip holds %d files, want history.json and one photo", len(files))
	}
	x, fails, err := history.VerifyExport(bytes.NewReader(files["history.json"]), now)
	if err != nil || len(fails) > 0 || len(x.Entries) != 4 {
		t.Fatalf("history.json: %v, %v, %d entries", err, fails, len(x.Entries))
	}
	var out struct{ Media []Media }
	if err := json.Unmarshal(files["history.json"], &out); err != nil {
		t.Fatal(err)
	}
	want := "media/" + pieces.RootHex(root)[:12] + "-patio_1.jpg"
	if len(out.Media) != 3 || !out.Media[0].Included || out.Media[0].Path != want || out.Media[1].Included || !out.Media[2].Included || out.Media[2].Path != want {
		t.Fatalf("media list %+v", out.Media)
	}
	if !bytes.Equal(files[want], photo) {
		t.Errorf("%s: %d bytes, not the photo", want, len(files[want]))
	}
	// Streamed, history.json is still the bytes the whole value encoded makes.
	var whole bytes.Buffer
	enc := json.NewEncoder(&whole)
	enc.SetIndent("", " ")
	if err := enc.Encode(Export{Export: history.NewExport(log, "Patio", now), Media: out.Media}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files["history.json"], whole.Bytes()) {
		t.Errorf("history.json differs from the whole export encoded:\n%s\nwant\n%s", files["history.json"], whole.Bytes())
	}
	// WriteStream from a Source read twice gives the same zip as Write.
	var streamed bytes.Buffer
	if err := WriteStream(&streamed, sliceSource{history.NewExport(log, "Patio", now)}, blobs, now); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(streamed.Bytes(), buf.Bytes()) {
		t.Error("WriteStream and Write differ")
	}
}
