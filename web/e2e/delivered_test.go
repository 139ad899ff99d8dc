package e2e

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestDeliveredMarksFromEarlierPage: pages before 2026-12-07 kept every delivered id of a
// room in localStorage; the page now keeps one seq (storage.js Delivered). The ids an
// earlier page kept still mark those messages delivered, are folded into the seq once,
// and the list of ids is removed.
func TestDeliveredMarksFromEarlierPage(t *testing.T) {
	u := newUser(t, "A", "en-US")
	u.setName("Ana")
	u.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Marcas"))
	u.download(chromedp.Click(chromedp.CSS("#create-room")))
	u.waitStatus("waiting")
	room := evalJS[string](u, `document.querySelector('#rooms .room-item').dataset.roomId`)
	for _, m := range []string{"uno", "dos", "tres"} {
		u.say(m)
	}
	states := `[...document.querySelectorAll('#messages .msg.mine .msg-state')].map(n => n.dataset.state).join(',')`
	if got := evalJS[string](u, states); got != "sent,sent,sent" {
		t.Fatalf("before: %s", got)
	}
	// What an earlier page wrote once a peer had acknowledged the first two (seqs 2 and 3:
	// the room's join entry is seq 1).
	key := fmt.Sprintf("chattorrent:v1:room:%s:delivered", room)
	evalJS[chromedp.Void](u, fmt.Sprintf(`localStorage.setItem(%q, JSON.stringify([...document.querySelectorAll('#messages .msg.mine')].slice(0, 2).map(n => n.dataset.id)))`, key))
	u.reopen()
	u.openRoom(room)
	u.waitJS(fmt.Sprintf(`%s === 'delivered,delivered,sent'`, states))
	u.waitJS(fmt.Sprintf(`localStorage.getItem(%q) === null && localStorage.getItem(%q) === '3'`, key, key+"-seq"))
	u.reopen()
	u.openRoom(room)
	u.waitJS(fmt.Sprintf(`%s === 'delivered,delivered,sent'`, states))
}
