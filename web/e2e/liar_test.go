package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/store/history"
)

// liar is a real pion peer, written for this test, that joins a browser's room through
// the .torrent files, announces a file, and serves it with some pieces corrupted once.
type liar struct {
	t       *testing.T
	key     ed25519.PrivateKey
	author  string
	log     *history.Log
	data    []byte
	leaves  [][32]byte
	root    [32]byte
	corrupt map[uint32]bool // pieces still to lie about

	mu      sync.Mutex
	lied    int
	served  int
	dc      *webrtc.DataChannel
	problem error
}

func newLiar(t *testing.T, room string, size int) *liar {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	l := &liar{t: t, key: key, author: history.EncodeKey(key.Public().(ed25519.PublicKey)), log: history.NewLog(room),
		data: make([]byte, size), corrupt: map[uint32]bool{3: true, uint32(pieces.NumPieces(int64(size)) - 1): true}}
	rand.Read(l.data)
	var err error
	if l.leaves, err = pieces.Leaves(bytes.NewReader(l.data), int64(size)); err != nil {
		t.Fatal(err)
	}
	l.root = pieces.Root(l.leaves)
	body, err := pieces.Meta{Kind: "file", Root: pieces.RootHex(l.root), Size: int64(size), Name: "mentira.bin", Type: "application/octet-stream"}.Body()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []history.Entry{{Kind: history.KindJoin}, {Kind: "file", Body: body}} {
		e.Author, e.Name, e.TS = l.author, "Lía", time.Now().UnixMilli()
		l.log.Next(&e)
		e.Sign(key)
		if _, err := l.log.Add(e, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func (l *liar) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.problem == nil {
		l.problem = err
	}
}

func (l *liar) send(b []byte, text bool) {
	var err error
	if text {
		err = l.dc.SendText(string(b))
	} else {
		err = l.dc.Send(b)
	}
	if err != nil {
		l.fail(err)
	}
}

func (l *liar) onMessage(room string, msg webrtc.DataChannelMessage) {
	if !msg.IsString {
		return
	}
	var head struct{ T string }
	json.Unmarshal(msg.Data, &head)
	switch head.T {
	case rtc.TypeHello:
		m, err := rtc.DecodeMessage(msg.Data)
		if err != nil {
			l.fail(err)
			return
		}
		hello, _ := rtc.EncodeHello(rtc.Hello{V: rtc.Version, Room: room, Peer: rtc.PeerInfo{ID: l.author, Name: "Lía"}, Heads: l.log.Heads(), Tips: l.log.Tips()})
		l.send(hello, true)
		msgs, _ := rtc.EncodeEntries(l.log.Missing(m.Hello.Heads))
		for _, b := range msgs {
			l.send(b, true)
		}
	case "want":
		c, err := pieces.DecodeControl(msg.Data)
		if err != nil {
			l.fail(err)
			return
		}
		if c.Hashes {
			l.send(pieces.EncodeHashes(l.root, 0, l.leaves), false)
		}
		for _, r := range c.Ranges {
			for i := r[0]; i < min(r[1], int64(len(l.leaves))); i++ {
				start := i * pieces.PieceSize
				piece := bytes.Clone(l.data[start : start+int64(pieces.PieceLen(int64(len(l.data)), int(i)))])
				l.mu.Lock()
				if l.corrupt[uint32(i)] {
					delete(l.corrupt, uint32(i))
					piece[len(piece)/2] ^= 0x55
					l.lied++
				}
				l.served++
				l.mu.Unlock()
				l.send(pieces.EncodePiece(l.root, uint32(i), piece), false)
			}
		}
	}
}

// answer answers the browser's offer file with a pion connection and returns the answer file.
func (l *liar) answer(ctx context.Context, offerPath, dir string) string {
	t := l.t
	b, err := os.ReadFile(offerPath)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := torrent.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		l.mu.Lock()
		l.dc = dc
		l.mu.Unlock()
		dc.OnMessage(func(msg webrtc.DataChannelMessage) { l.onMessage(inv.Room, msg) })
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: inv.SDP}); err != nil {
		t.Fatal(err)
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("ICE gathering did not complete")
	}
	out, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleAnswer, Room: inv.Room, RoomName: inv.RoomName,
		SDP: pc.LocalDescription().SDP, Session: inv.Session, Peer: torrent.Peer{ID: l.author, Name: "Lía"}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "Mentiras_answer.torrent")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLyingPeer: a Go peer serves a file with two corrupted pieces; the page drops them,
// asks for them again, and the file completes byte-identical.
func TestLyingPeer(t *testing.T) {
	a := newUser(t, "A", "en-US")
	a.setName("Ana")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Mentiras"))
	offer, _ := a.download(chromedp.Click(chromedp.CSS("#create-room")))
	b, err := os.ReadFile(offer)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := torrent.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	l := newLiar(t, inv.Room, 40*pieces.PieceSize+1234)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	a.importFile(l.answer(ctx, offer, t.TempDir()))
	a.waitStatus("connected")
	a.waitJS(`!!document.querySelector('#messages .file[data-state="complete"] .file-save[download="mentira.bin"]')`)
	saved, _ := a.download(chromedp.Click(chromedp.CSS(`#messages .file-save[download="mentira.bin"]`)))
	got, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(l.data) {
		t.Fatal("the file arrived changed")
	}
	bad := evalJS[float64](a, `chattorrentStats().reduce((n, s) => n + s.files.badPieces, 0)`)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.problem != nil {
		t.Errorf("the lying peer: %v", l.problem)
	}
	t.Logf("the peer lied about %d pieces and served %d for %d; the page refused %v", l.lied, l.served, len(l.leaves), bad)
	if l.lied != 2 || bad != 2 || l.served != len(l.leaves)+2 {
		t.Errorf("lied %d, refused %v, served %d: want 2, 2, %d", l.lied, bad, l.served, len(l.leaves)+2)
	}
	a.checkConsole()
}
