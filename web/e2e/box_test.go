package e2e

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"os"
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
	// The landing page shows where other phones open the box: as text and as a QR code
	// the box drew (the image loaded).
	a.waitJS(`!document.getElementById('box-address').hidden && document.getElementById('box-qr').complete && document.getElementById('box-qr').naturalWidth > 0`)
	if urls := evalJS[string](a, `[...document.querySelectorAll('#box-urls .box-url')].map(li => li.textContent).join(' ')`); !strings.HasPrefix(urls, "https://e2ebox.local:") {
		t.Errorf("addresses on the page: %q, want the box's mDNS name first", urls)
	}
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

// TestDropBoxFlow: A publishes the room's offer on the box; B sees the open room, joins
// with one tap; A's page gets B's answer by SSE and applies it. No file changes hands.
func TestDropBoxFlow(t *testing.T) {
	a := newUser(t, "A", "es-ES")
	b := newUser(t, "B", "es-ES")
	a.setName("Ana")
	b.setName("Bruno")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Patio"))
	a.download(chromedp.Click(chromedp.CSS("#create-room"))) // the file is still offered
	a.waitJS(`!document.getElementById('publish-offer').hidden`)
	a.do(chromedp.Click(chromedp.CSS("#publish-offer")))
	a.waitJS(`document.getElementById('publish-offer').hidden`)
	b.waitJS(`[...document.querySelectorAll('#drop-offers .drop-offer .room-name')].some(n => n.textContent === 'Patio')`)
	if got := b.text("#drop-offers .drop-offer .room-last"); got != "invita Ana" {
		t.Errorf("B sees the offer as %q", got)
	}
	before := len(b.downloads())
	b.do(chromedp.Click(chromedp.CSS("#drop-offers .drop-join")))
	a.waitStatus("connected")
	b.waitStatus("connected")
	if n := len(b.downloads()); n != before {
		t.Errorf("B downloaded %d files joining through the box", n-before)
	}
	a.say("hola por la caja")
	b.waitMessage("hola por la caja")
	b.say("recibido")
	a.waitMessage("recibido")
	// The answered offer is gone from everyone's list.
	b.waitJS(`document.querySelectorAll('#drop-offers .drop-offer').length === 0`)
	a.checkConsole()
	b.checkConsole()
}

// downloads lists the files in u's download folder.
func (u *user) downloads() []string {
	u.t.Helper()
	es, err := os.ReadDir(u.dl)
	if err != nil {
		u.t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestBoxVoiceNote: the box records a voice note on its microphone (a WAV file here) into
// a room it keeps; the page gets the entry and the file from the box over WebRTC and plays it.
func TestBoxVoiceNote(t *testing.T) {
	a := newUser(t, "A", "en-US")
	a.setName("Ana")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Radio"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitJS(`!document.getElementById('keep-on-box').hidden`)
	a.do(chromedp.Click(chromedp.CSS("#keep-on-box")))
	a.waitStatus("connected")
	a.waitJS(`[...document.querySelectorAll('#box-status .box-feature')].some(n => n.dataset.feature === 'microphone' && !n.classList.contains('absent'))`)
	a.waitJS(`!document.getElementById('box-record').hidden`)
	a.do(chromedp.Click(chromedp.CSS("#box-record")))
	playable := `(() => { const au = document.querySelector('#messages audio.msg-audio'); return !!au && au.readyState >= 1 && au.duration > 1; })()`
	a.waitJS(playable)
	if got := a.text(`#messages .msg:not(.mine) .msg-author`); !strings.Contains(got, "ChatTorrent e2ebox") {
		t.Errorf("the note's author %q, want the box", got)
	}
	if typ := evalJS[string](a, `document.querySelector('#messages .file[data-state="complete"] .file-save').download`); !strings.HasSuffix(typ, ".wav") {
		t.Errorf("the note is saved as %q", typ)
	}

	// The box's zip of the room holds its history and the note.
	room := evalJS[string](a, `document.querySelector('#rooms .room-item').dataset.roomId`)
	sel := fmt.Sprintf(`.box-room[data-room-id=%q] .box-zip`, room)
	a.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	path, name := a.download(chromedp.Click(chromedp.CSS(sel)))
	if name != "Radio_history.zip" {
		t.Errorf("zip named %q", name)
	}
	z, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("the box's zip: %v", err)
	}
	defer z.Close()
	var x struct {
		Entries []json.RawMessage
		Media   []struct {
			Kind, Path string
			Included   bool
		}
	}
	files := map[string]*zip.File{}
	for _, f := range z.File {
		files[f.Name] = f
	}
	readZip := func(name string) []byte {
		f := files[name]
		if f == nil {
			t.Fatalf("%s not in the zip (%d files)", name, len(z.File))
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := json.Unmarshal(readZip("history.json"), &x); err != nil {
		t.Fatal(err)
	}
	if len(x.Media) != 1 || x.Media[0].Kind != "voice" || !x.Media[0].Included {
		t.Fatalf("media list %+v", x.Media)
	}
	if wav := readZip(x.Media[0].Path); len(wav) < 44 || string(wav[:4]) != "RIFF" || string(wav[8:12]) != "WAVE" {
		t.Errorf("%s is not the WAV note (%d bytes)", x.Media[0].Path, len(wav))
	}
	a.checkConsole()
}

// overflowJS lists what sticks out of the page's width: the document scrolling sideways, or
// a visible element under sel whose right edge is past the viewport.
const overflowJS = `((sel) => {
  const w = document.documentElement.clientWidth;
  const out = [];
  if (document.documentElement.scrollWidth > w + 1) out.push('page ' + document.documentElement.scrollWidth + ' > ' + w);
  for (const n of document.querySelectorAll(sel)) {
    const r = n.getBoundingClientRect();
    if (r.width > 0 && r.right > w + 1) out.push((n.className || n.tagName) + ' ' + JSON.stringify(n.textContent.slice(0, 30)) + ' ends at ' + Math.round(r.right) + ' > ' + w);
  }
  return out.join('; ');
})`

// TestPhoneFitsBoxList: on a 360 px phone in Spanish (the longest labels), the box's list of
// kept rooms (a name and three buttons each) and the room around it fit the screen: nothing
// scrolls sideways, no button is cut off.
func TestPhoneFitsBoxList(t *testing.T) {
	a := newUser(t, "A", "es-ES")
	a.do(chromedp.EmulateViewport(360, 740))
	a.setName("Ana")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Una sala con un nombre bastante largo"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitJS(`document.querySelectorAll('#rooms .room-item').length === 1`)
	room := evalJS[string](a, `document.querySelector('#rooms .room-item').dataset.roomId`)
	a.do(chromedp.Click(chromedp.CSS("#keep-on-box")))
	a.waitStatus("connected")
	if got := evalJS[string](a, overflowJS+`('#room *')`); got != "" {
		t.Errorf("the room overflows a 360 px screen: %s", got)
	}
	a.do(chromedp.Click(chromedp.CSS("#back")))
	a.waitJS(fmt.Sprintf(`!!document.querySelector('.box-room[data-room-id=%q]') && document.querySelector('.box-room').getBoundingClientRect().width > 0`, room))
	if got := evalJS[string](a, overflowJS+`('.home *')`); got != "" {
		t.Errorf("the home screen with the box's rooms overflows a 360 px screen: %s", got)
	}
	// The box's absent parts say why in Spanish (the box's English words stay as the title).
	details := evalJS[[]string](a, `[...document.querySelectorAll('#box-status .box-feature-detail[data-code]:not([data-code=""])')].map(n => n.dataset.code + ': ' + n.textContent + ' | ' + n.title)`)
	if len(details) == 0 {
		t.Error("no absent part of the box listed with a reason code")
	}
	for _, d := range details {
		code, rest, _ := strings.Cut(d, ": ")
		shown, english, _ := strings.Cut(rest, " | ")
		if code != "cannot-use" && strings.Contains(shown, english) {
			t.Errorf("absent part (%s) shown in the box's English: %q", code, shown)
		}
	}
	a.checkConsole()
}
