package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConnectFailedSaysSo: the creator imports an answer whose phone is gone (its browser
// closed after writing it): the connection fails, and the page says so with the reason
// instead of "Answer applied: connecting…" for ever.
func TestConnectFailedSaysSo(t *testing.T) {
	a := newUser(t, "Ana", "en")
	b := newUser(t, "Bea", "en")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Gone"))
	offer, _ := a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitStatus("waiting")
	answer, _ := b.importAndDownload(offer)
	b.close() // the answering phone is gone before the creator imports its answer
	a.importFile(answer)
	// ICE gives up after its checks time out (Chromium: about 30 s).
	a.waitJS(`document.getElementById('notice').dataset.code === 'connect-failed'`)
	if got, want := a.text("#notice"), "Could not connect to the other phone"; len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("notice %q, want it to start with %q", got, want)
	}
}
