package rtc

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"sync"
	"testing"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/net/transfer"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/history"
)

// TestSessionSeeds: a session with a Seeder answers a want with the hashes and the pieces
// as binary frames, and nope for a file it does not hold; file messages before hello are
// dropped.
func TestSessionSeeds(t *testing.T) {
	blobs, err := blobs.New(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 5*pieces.PieceSize-100)
	rand.Read(data)
	root, err := blobs.Put(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	seeder := transfer.NewSeeder(transfer.SeederOptions{Blobs: blobs, Announced: func(string) bool { return true }})
	ca, cb := Pipe(64)
	w := newWatcher()
	s, err := NewSession(Config{Room: testRoom, Self: PeerInfo{ID: "box", Name: "Caja"}, History: NewMemHistory(history.NewLog(testRoom)),
		Conn: ca, OnEvent: w.on, Files: seeder})
	if err != nil {
		t.Fatal(err)
	}
	stop := runSession(t, t.Context(), s)
	defer stop()
	go seeder.Run(t.Context(), s)

	var mu sync.Mutex
	var frames [][]byte
	cb.HandleFrames(func(b []byte) {
		mu.Lock()
		frames = append(frames, b)
		mu.Unlock()
	})
	var texts []string
	go func() {
		for {
			b, err := cb.Recv(t.Context())
			if err != nil {
				return
			}
			mu.Lock()
			texts = append(texts, string(b))
			mu.Unlock()
		}
	}()
	peer := fakePeer{t: t, conn: cb}
	rh := pieces.RootHex(root)
	peer.send(`{"t":"want","root":"` + rh + `","hashes":true,"ranges":[[0,5]]}`) // before hello: dropped
	peer.send(`{"t":"hello","v":1,"room":"` + testRoom + `","peer":{"id":"p","name":"P"},"heads":{}}`)
	peer.send(`{"t":"want","root":"` + rh + `","hashes":true,"ranges":[[0,5]]}`)
	peer.send(`{"t":"want","root":"` + strings.Repeat("0", 64) + `","hashes":true,"ranges":[[0,1]]}`)
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(frames) == 6 && strings.Contains(strings.Join(texts, ""), `"nope"`)
	})
	mu.Lock()
	defer mu.Unlock()
	h, err := pieces.DecodeFrame(frames[0])
	if err != nil || h.Type != pieces.FrameHashes || h.Leaves != 5 {
		t.Fatalf("first frame: %+v %v", h, err)
	}
	leaves := make([][32]byte, 5)
	for i := range leaves {
		copy(leaves[i][:], h.Data[32*i:])
	}
	if pieces.Root(leaves) != root {
		t.Fatal("the hashes do not make the root")
	}
	var got []byte
	for i, b := range frames[1:] {
		p, err := pieces.DecodeFrame(b)
		if err != nil || p.Type != pieces.FramePiece || int(p.Index) != i || sha256.Sum256(p.Data) != leaves[i] {
			t.Fatalf("piece %d: %+v %v", i, p.Index, err)
		}
		got = append(got, p.Data...)
	}
	if !bytes.Equal(got, data) {
		t.Error("pieces do not make the file")
	}
	if seeder.Served() != 5 {
		t.Errorf("served %d pieces", seeder.Served())
	}
}
