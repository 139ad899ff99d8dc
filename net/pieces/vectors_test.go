package pieces

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

// content is the vectors' file content: byte i is (i*31+7) mod 251.
func content(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i*31 + 7) % 251)
	}
	return b
}

type vectors struct {
	Content string `json:"content"`
	Files   []struct {
		Size      int64  `json:"size"`
		Pieces    int    `json:"pieces"`
		FirstLeaf string `json:"first_leaf"`
		LastLeaf  string `json:"last_leaf"`
		Root      string `json:"root"`
	} `json:"files"`
	Bodies []struct {
		Kind string `json:"kind"`
		Body string `json:"body"`
		Code string `json:"code"` // "" when valid
	} `json:"bodies"`
	Frames []struct {
		Hex    string `json:"hex"`
		Type   string `json:"type"` // piece, pieces, hashes, or "" when invalid
		Root   string `json:"root,omitempty"`
		Index  uint32 `json:"index"`
		Length int    `json:"length"`
	} `json:"frames"`
	Controls []struct {
		JSON  string `json:"json"`
		Valid bool   `json:"valid"`
	} `json:"controls"`
}

func makeVectors(t *testing.T) vectors {
	var v vectors
	v.Content = "byte i of a file is (i*31+7) mod 251"
	for _, size := range []int64{1, 16383, 16384, 16385, 3*16384 + 5, 5 * 16384, 100000, 1 << 20} {
		leaves, err := Leaves(bytes.NewReader(content(size)), size)
		if err != nil {
			t.Fatal(err)
		}
		root := Root(leaves)
		v.Files = append(v.Files, struct {
			Size      int64  `json:"size"`
			Pieces    int    `json:"pieces"`
			FirstLeaf string `json:"first_leaf"`
			LastLeaf  string `json:"last_leaf"`
			Root      string `json:"root"`
		}{size, len(leaves), hex.EncodeToString(leaves[0][:]), hex.EncodeToString(leaves[len(leaves)-1][:]), RootHex(root)})
	}
	root := strings.Repeat("ab", 32)
	body := func(kind, s, code string) {
		v.Bodies = append(v.Bodies, struct {
			Kind string `json:"kind"`
			Body string `json:"body"`
			Code string `json:"code"`
		}{kind, s, code})
	}
	ok := `"root":"` + root + `","size":10,"name":"foto.jpg","type":"image/jpeg"`
	body("image", "{"+ok+"}", "")
	body("voice", "{"+ok+`,"duration":1500}`, "")
	body("file", `{"root":"`+root+`","size":9007199254740991,"name":"ñandú ok.bin","type":""}`, "")
	body("text", "{"+ok+"}", "bad-kind")
	body("file", "{"+ok, "not-json")
	body("file", "[]", "not-json")
	body("file", "{"+ok+"} x", "not-json")
	body("file", `{"root":"`+strings.ToUpper(root)+`","size":10,"name":"a","type":""}`, "bad-root")
	body("file", `{"root":"`+root+`","size":0,"name":"a","type":""}`, "bad-size")
	body("file", `{"root":"`+root+`","size":1.5,"name":"a","type":""}`, "bad-size")
	body("file", `{"root":"`+root+`","size":9007199254740992,"name":"a","type":""}`, "bad-size")
	body("file", `{"root":"`+root+`","size":"10","name":"a","type":""}`, "bad-size")
	body("file", `{"root":"`+root+`","size":10,"name":"a/b","type":""}`, "bad-name")
	body("file", `{"root":"`+root+`","size":10,"name":"a\\b","type":""}`, "bad-name")
	body("file", `{"root":"`+root+`","size":10,"name":"","type":""}`, "bad-name")
	body("file", `{"root":"`+root+`","size":10,"name":"a\u0007","type":""}`, "bad-name")
	body("file", `{"root":"`+root+`","size":10,"name":"`+strings.Repeat("é", 128)+`","type":""}`, "bad-name")
	body("file", `{"root":"`+root+`","size":10,"name":"a","type":null}`, "bad-type")
	body("file", `{"root":"`+root+`","size":10,"name":"a","type":"`+strings.Repeat("x", 128)+`"}`, "bad-type")
	body("file", `{"root":"`+root+`","size":10,"name":"a","type":"","duration":5}`, "bad-duration")
	body("voice", `{"root":"`+root+`","size":10,"name":"a","type":"","duration":-1}`, "bad-duration")
	for _, b := range v.Bodies {
		_, err := ParseMeta(b.Kind, b.Body)
		if Code(err) != b.Code {
			t.Fatalf("%s %s: got %v, want %q", b.Kind, b.Body, err, b.Code)
		}
	}
	var r [32]byte
	copy(r[:], bytes.Repeat([]byte{0xcd}, 32))
	frame := func(b []byte, typ string, index uint32, length int) {
		rh := ""
		if typ != "" {
			rh = RootHex(r)
		}
		v.Frames = append(v.Frames, struct {
			Hex    string `json:"hex"`
			Type   string `json:"type"`
			Root   string `json:"root,omitempty"`
			Index  uint32 `json:"index"`
			Length int    `json:"length"`
		}{hex.EncodeToString(b), typ, rh, index, length})
	}
	frame(EncodePiece(r, 7, []byte{1, 2, 3}), "piece", 7, 3)
	frame(EncodePiece(r, 1<<32-1, content(PieceSize)), "piece", 1<<32-1, PieceSize)
	frame(EncodeHashes(r, 4096, make([][32]byte, 2)), "hashes", 4096, 64)
	frame(EncodePieces(r, 9, content(PiecesPerFrame*PieceSize)), "pieces", 9, PiecesPerFrame*PieceSize)
	frame(EncodePieces(r, 0, content(PieceSize+5)), "pieces", 0, PieceSize+5)
	frame(make([]byte, 37), "", 0, 0)                                          // too short
	frame(append([]byte{9}, make([]byte, 40)...), "", 0, 0)                    // unknown type
	frame(EncodePiece(r, 0, content(PieceSize+1)), "", 0, 0)                   // piece too large
	frame(EncodePieces(r, 0, content(PiecesPerFrame*PieceSize+1)), "", 0, 0)   // pieces too large
	frame(append(EncodeHashes(r, 0, make([][32]byte, 1)), 0), "", 0, 0)        // not a multiple of 32
	frame(EncodeHashes(r, 0, make([][32]byte, MaxHashesPerFrame+1)), "", 0, 0) // too many leaves
	control := func(s string, valid bool) {
		v.Controls = append(v.Controls, struct {
			JSON  string `json:"json"`
			Valid bool   `json:"valid"`
		}{s, valid})
	}
	R := `"root":"` + root + `"`
	control(`{"t":"want",`+R+`,"hashes":true,"ranges":[[0,2],[5,9]]}`, true)
	control(`{"t":"want",`+R+`,"hashes":false,"ranges":[]}`, true)
	control(`{"t":"want",`+R+`,"hashes":false,"ranges":[[0,9]],"multi":true}`, true)
	control(`{"t":"want",`+R+`,"hashes":false,"ranges":[[0,9]],"multi":1}`, false)
	control(`{"t":"want",`+R+`,"hashes":false,"ranges":[[0,2],[2,9]]}`, true)
	control(`{"t":"got",`+R+`,"pieces":12}`, true)
	control(`{"t":"nope",`+R+`}`, true)
	control(`{"t":"cancel",`+R+`}`, true)
	control(`{"t":"want",`+R+`,"hashes":1,"ranges":[]}`, false)
	control(`{"t":"want",`+R+`,"hashes":true,"ranges":[[2,1]]}`, false)
	control(`{"t":"want",`+R+`,"hashes":true,"ranges":[[0,5],[3,9]]}`, false)
	control(`{"t":"want",`+R+`,"hashes":true,"ranges":[[-1,2]]}`, false)
	control(`{"t":"want",`+R+`,"hashes":true,"ranges":[[0,4294967296]]}`, false)
	control(`{"t":"want",`+R+`,"hashes":true,"ranges":[[0.5,2]]}`, false)
	control(`{"t":"got",`+R+`,"pieces":-1}`, false)
	control(`{"t":"nope","root":"x"}`, false)
	control(`{"t":"nope","root":null}`, false)
	many := make([]string, MaxRanges+1)
	for i := range many {
		many[i] = "[" + itoa(2*i) + "," + itoa(2*i+1) + "]"
	}
	control(`{"t":"want",`+R+`,"hashes":true,"ranges":[`+strings.Join(many, ",")+`]}`, false)
	return v
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestVectors checks testdata/vectors.json against this package (-update rewrites it);
// web/jstest/files.test.mjs replays the same file.
func TestVectors(t *testing.T) {
	v := makeVectors(t)
	for _, f := range v.Frames {
		b, _ := hex.DecodeString(f.Hex)
		got, err := DecodeFrame(b)
		if f.Type == "" {
			if Code(err) != "bad-frame" {
				t.Errorf("frame %.40s…: %v, want bad-frame", f.Hex, err)
			}
			continue
		}
		types := map[byte]string{FramePiece: "piece", FrameHashes: "hashes", FramePieces: "pieces"}
		if err != nil || types[got.Type] != f.Type || got.Index != f.Index || len(got.Data) != f.Length || RootHex(got.Root) != f.Root {
			t.Errorf("frame %.40s…: %+v %v", f.Hex, got, err)
		}
	}
	for _, c := range v.Controls {
		if _, err := DecodeControl([]byte(c.JSON)); (err == nil) != c.Valid {
			t.Errorf("control %.80s: %v, want valid=%v", c.JSON, err, c.Valid)
		}
	}
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.WriteFile("testdata/vectors.json", b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile("testdata/vectors.json")
	if err != nil || !bytes.Equal(old, b) {
		t.Fatalf("testdata/vectors.json is out of date (go test ./net/pieces -run TestVectors -update): %v", err)
	}
}
