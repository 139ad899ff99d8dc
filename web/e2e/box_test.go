package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBoxKeepsRoom: a member invites the box into a room; the box (a real pion peer in the
// chattorrent binary) joins with its own identity and keeps the history; the creator leaves;
// a newcomer opens the room from the box's list and gets the whole history from the box.
func TestBoxKeepsRoom(t *testing.T) {
	a := newUser(t, "A", "en-US")
	a.setName("Ana")
	a.waitJS(`!document.getElementById('box').hidden`)
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Archivo del aula"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitJS(`document.querySelectorAll('#rooms .room-item').length === 1`)
	room := evalJS[string](a, `document.querySelector('#rooms .room-item').dataset.roomId`)
	a.say("antes de la caja")

	a.do(chromedp.Click(chromedp.CSS("#keep-on-box")))
	a.waitStatus("connected")
	a.waitJS(`document.getElementById('room-peer').textContent.includes('ChatTorrent e2ebox')`)
	a.say("con la caja")
	a.waitJS(`[...document.querySelectorAll('#messages .msg.mine .msg-state')].every(n => n.dataset.state === 'delivered')`)
	rooms := fmt.Sprintf(`fetch('/api/rooms', {headers: {'X-ChatTorrent': '1'}}).then(r => r.json()).then(rs => rs.some(r => r.id === %q && r.entries >= 4))`, room)
	a.waitAsync(rooms) // Ana's join and two messages, the box's join

	// The creator leaves; a newcomer gets everything from the box alone.
	a.checkConsole()
	a.close()
	c := newUser(t, "C", "en-US")
	c.setName("Carla")
	sel := fmt.Sprintf(`.box-open[data-room-id=%q]`, room)
	c.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	c.do(chromedp.Click(chromedp.CSS(sel)))
	c.waitStatus("connected")
	c.waitMessage("antes de la caja")
	c.waitMessage("con la caja")
	c.say("hola, caja")
	c.waitJS(`[...document.querySelectorAll('#messages .msg.mine .msg-state')].every(n => n.dataset.state === 'delivered')`)

	// The box's history download verifies offline.
	path, name := c.download(chromedp.Click(chromedp.CSS(fmt.Sprintf(`.box-room[data-room-id=%q] .box-history`, room))))
	if name != "Archivo_del_aula_history.json" {
		t.Errorf("history file %q", name)
	}
	out, err := exec.Command(filepath.Join(server.dir, "chattorrent"), "verify", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 failed") {
		t.Errorf("verify the box's export: %v\n%s", err, out)
	}
	c.checkConsole()
}

// TestBoxAPIRefusesCrossSite: a POST without the page's header, or from another origin, is
// refused; a bad invitation gets a clear code.
func TestBoxAPIRefusesCrossSite(t *testing.T) {
	u := newUser(t, "A", "en-US")
	status := func(js string) string { return evalJS[string](u, js) }
	if got := status(`fetch('/api/rooms/connect', {method: 'POST', body: 'x'}).then(r => r.status + '')`); got != "403" {
		t.Errorf("POST without X-ChatTorrent: %s", got)
	}
	if got := status(`fetch('/api/rooms/connect', {method: 'POST', body: 'not a torrent', headers: {'X-ChatTorrent': '1'}}).then(r => r.json()).then(j => j.code)`); got != "malformed" {
		t.Errorf("a bad invitation: %s", got)
	}
	if got := status(`fetch('/api/rooms/connect', {method: 'POST', body: 'x'.repeat(70000), headers: {'X-ChatTorrent': '1'}}).then(r => r.status + '')`); got != "413" {
		t.Errorf("an oversized invitation: %s", got)
	}
	if got := status(`fetch('/api/rooms/` + strings.Repeat("0", 32) + `/history.json').then(r => r.status + '')`); got != "404" {
		t.Errorf("unknown room: %s", got)
	}
	u.checkConsole()
}
