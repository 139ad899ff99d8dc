package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chattorrent/chattorrent/net/pieces"
)

// TestBoxFetchesFiles: A invites the box into a room and sends an image; the box (the real
// binary, a pion peer) fetches it from A's browser, verifies and stores it; A closes; C
// joins the room through the box and gets the image from the box alone, byte-identical.
func TestBoxFetchesFiles(t *testing.T) {
	pic := writePNG(t)
	raw, err := os.ReadFile(pic)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pic)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := pieces.Leaves(f, int64(len(raw)))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	root := pieces.RootHex(pieces.Root(leaves))
	sum := sha256.Sum256(raw)

	a := newUser(t, "A", "en-US")
	a.setName("Ana")
	a.waitJS(`!document.getElementById('box').hidden`)
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Fotos de la caja"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitJS(`document.querySelectorAll('#rooms .room-item').length === 1`)
	room := evalJS[string](a, `document.querySelector('#rooms .room-item').dataset.roomId`)
	a.do(menuClick("#keep-on-box"))
	a.waitStatus("connected")
	a.waitJS(`document.getElementById('room-peer').textContent.includes('ChatTorrent e2ebox')`)

	a.do(chromedp.SetUploadFiles(chromedp.CSS("#attach-file"), []string{pic}))
	loaded := `[...document.querySelectorAll('#messages .msg-image')].some(i => i.complete && i.naturalWidth === 64 && i.alt === 'foto del aula.png')`
	a.waitJS(loaded)

	// The box holds the image whole, under its root, in its files directory.
	held := filepath.Join(server.dir, "data", "files", root)
	deadline := time.Now().Add(60 * time.Second) // only keeps a broken test from hanging
	for {
		if got, err := os.ReadFile(held); err == nil {
			if sha256.Sum256(got) != sum {
				t.Fatal("the box stored the image changed")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the box never stored the image %s\n%s", root, a.state())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A's new phone (her identity from a file: the box shows a room to its members only)
	// opens the room through the box while A is gone: the image comes from the box.
	a.do(chromedp.Click(chromedp.CSS(".identity summary")))
	idPath, _ := a.download(chromedp.Click(chromedp.CSS("#identity-export")))
	a.checkConsole()
	a.close()
	c := newUser(t, "C", "en-US")
	c.do(chromedp.Click(chromedp.CSS(".identity summary")), chromedp.SetUploadFiles(chromedp.CSS("#identity-file"), []string{idPath}))
	sel := fmt.Sprintf(`.box-open[data-room-id=%q]`, room)
	c.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	c.do(chromedp.Click(chromedp.CSS(sel)))
	c.waitStatus("connected")
	c.waitJS(loaded)
	// "Save" writes the bytes C holds (the page's CSP keeps fetch() off blob: URLs).
	saved, name := c.download(chromedp.Click(chromedp.CSS(`#messages .file-save[download="foto del aula.png"]`)))
	if name != "foto del aula.png" {
		t.Errorf("saved as %q", name)
	}
	if got := fileSum(t, saved); got != sum {
		t.Errorf("C's image has SHA-256 %x, want %x", got, sum)
	}
	c.checkConsole()
}
