package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestKeepOnBoxAtOnce: "Keep a copy on this box" pressed in the moment the room is created
// (its join still being written, the window's database still opening) connects the box.
// It once made no request and the room stayed "waiting" without a word.
func TestKeepOnBoxAtOnce(t *testing.T) {
	a := newUser(t, "A", "en-US")
	a.setName("Ana")
	a.waitJS(`!document.getElementById('box').hidden`)
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Pronto"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.do(menuClick("#keep-on-box"))
	a.waitStatus("connected")
	a.waitJS(`document.getElementById('room-peer').textContent.includes('ChatTorrent e2ebox')`)
	a.checkConsole()
}
