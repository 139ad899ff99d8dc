package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/chattorrent/chattorrent/board"
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

	a.do(menuClick("#keep-on-box"))
	a.waitStatus("connected")
	a.waitJS(`document.getElementById('room-peer').textContent.includes('ChatTorrent e2ebox')`)
	a.say("con la caja")
	a.waitJS(`[...document.querySelectorAll('#messages .msg.mine .msg-state')].every(n => n.dataset.state === 'delivered')`)
	rooms := fmt.Sprintf(`fetch('/api/rooms', {headers: {'X-ChatTorrent': '1'}}).then(r => r.json()).then(rs => rs.some(r => r.id === %q && r.entries >= 4))`, room)
	a.waitAsync(rooms) // Ana's join and two messages, the box's join

	// Before leaving, Ana keeps her identity (her key) in a file, for her new phone.
	a.do(chromedp.Click(chromedp.CSS(".identity summary")))
	idPath, _ := a.download(chromedp.Click(chromedp.CSS("#identity-export")))

	// A stranger on the same Wi-Fi, with the page's own Origin and header, sees no room
	// and is refused the room's history, zip and microphone like a room that does not
	// exist; asking to join it hands over nothing.
	d := newUser(t, "D", "en-US")
	d.waitJS(`!document.getElementById('box').hidden`)
	if n := evalJS[int](d, `document.querySelectorAll('#box-rooms .box-room').length`); n != 0 {
		t.Errorf("a stranger's page lists %d rooms of the box", n)
	}
	strangerSees(t, d, room)
	d.checkConsole()
	d.close()

	// The creator leaves; on a new phone with her identity she gets everything from the
	// box alone.
	a.checkConsole()
	a.close()
	c := newUser(t, "C", "en-US")
	c.do(chromedp.Click(chromedp.CSS(".identity summary")), chromedp.SetUploadFiles(chromedp.CSS("#identity-file"), []string{idPath}))
	sel := fmt.Sprintf(`.box-open[data-room-id=%q]`, room)
	c.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	c.do(chromedp.Click(chromedp.CSS(sel)))
	c.waitStatus("connected")
	c.waitMessage("antes de la caja")
	c.waitMessage("con la caja")
	c.say("hola, caja")
	c.waitJS(`[...document.querySelectorAll('#messages .msg.mine .msg-state')].pop().dataset.state === 'delivered'`)

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

// strangerSees checks, from u's page (the page's own Origin and header), that the box
// answers every room-scoped request for room exactly as for a room that does not exist.
func strangerSees(t *testing.T, u *user, room string) {
	t.Helper()
	other := strings.Repeat("0", 32)
	ask := func(method, path string) string {
		return evalJS[string](u, fmt.Sprintf(`fetch(%q, {method: %q, headers: {'X-ChatTorrent': '1'}}).then(async r => r.status + ' ' + (await r.text()))`, path, method))
	}
	if got := ask("GET", "/api/rooms"); strings.TrimSpace(got) != "200 []" {
		t.Errorf("a stranger's room list: %s", got)
	}
	for _, p := range []struct{ method, path string }{
		{"GET", "/api/rooms/%s/history.json"}, {"GET", "/api/rooms/%s/history.zip"}, {"POST", "/api/rooms/%s/voice?seconds=2"},
	} {
		kept, unknown := ask(p.method, fmt.Sprintf(p.path, room)), ask(p.method, fmt.Sprintf(p.path, other))
		if !strings.HasPrefix(kept, "404 ") || kept != unknown {
			t.Errorf("a stranger's %s %s: %q, for a room the box does not keep: %q", p.method, p.path, kept, unknown)
		}
	}
	// The stranger's offer for the kept room (its id known, say, from an old invitation)
	// is refused: answering it would hand over the room's history.
	got := evalJS[string](u, fmt.Sprintf(`(async () => {
		const { makeOffer } = await import('/js/rtc.js');
		const { encodeInvitation } = await import('/js/torrent.js');
		const o = await makeOffer();
		const body = await encodeInvitation({role: 'offer', room: %q, roomName: 'x', sdp: o.sdp, session: '1'.repeat(32), peer: {id: 'A'.repeat(43), name: 'x'}});
		o.pc.close();
		const r = await fetch('/api/rooms/connect', {method: 'POST', body, headers: {'X-ChatTorrent': '1'}});
		return r.status + ' ' + (await r.json()).code;
	})()`, room))
	if got != "404 no-room" {
		t.Errorf("a stranger's offer for the kept room: %s", got)
	}
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

// TestDropBoxFlow: A publishes the room's offer on the box (the page says everyone on the
// Wi-Fi sees it); B sees the open room, joins with one tap and reads the safety code its page
// shows; A's page gets B's answer by SSE and shows B's name and the same code, and connects
// only once A accepts. No file changes hands.
func TestDropBoxFlow(t *testing.T) {
	a := newUser(t, "A", "es-ES")
	b := newUser(t, "B", "es-ES")
	a.setName("Ana")
	b.setName("Bruno")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Patio"))
	a.download(chromedp.Click(chromedp.CSS("#create-room"))) // the file is still offered
	a.waitJS(`!document.getElementById('publish-offer').hidden`)
	if note := a.text("#publish-note"); !strings.Contains(note, "todo el mundo en esta wifi") || evalJS[bool](a, `document.getElementById('publish-note').hidden`) {
		t.Errorf("next to the publish button: %q", note)
	}
	a.do(menuClick("#publish-offer"))
	a.waitJS(`document.getElementById('publish-offer').hidden`)
	b.waitJS(`[...document.querySelectorAll('#drop-offers .drop-offer .room-name')].some(n => n.textContent === 'Patio')`)
	if got := b.text("#drop-offers .drop-offer .room-last"); got != "invita Ana" {
		t.Errorf("B sees the offer as %q", got)
	}
	before := len(b.downloads())
	b.do(chromedp.Click(chromedp.CSS("#drop-offers .drop-join")))
	code := b.waitDropCode()

	who, shown := a.waitDropAnswer("Bruno")
	if who != "Bruno quiere unirse a «Patio»" || shown != code {
		t.Errorf("A is asked %q with code %q; B's page shows %q", who, shown, code)
	}
	if got := a.text("#drop-answers .drop-accept") + "/" + a.text("#drop-answers .drop-reject"); got != "Aceptar/Rechazar" {
		t.Errorf("buttons %q", got)
	}
	// Nothing is applied before A decides.
	if st := evalJS[string](a, `document.getElementById('room-status').dataset.state`); st == "connected" {
		t.Fatal("A connected before accepting")
	}
	a.do(chromedp.Click(chromedp.CSS("#drop-answers .drop-accept")))
	a.waitStatus("connected")
	b.waitStatus("connected")
	a.waitJS(`document.getElementById('drop-consent').hidden`)
	// The code compared before is the one both pages show once connected.
	a.waitJS(fmt.Sprintf(`document.getElementById('safety').textContent.includes(%s)`, js(code)))
	b.waitJS(fmt.Sprintf(`document.getElementById('safety').textContent.includes(%s)`, js(code)))
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

// TestDropBoxStranger: a stranger on the Wi-Fi answers a published offer before the
// intended guest. The stranger typed a right-to-left override into the name, which the
// page removes (names refuse format characters); the creator sees the name (isolated, in a
// <bdi>) and code, rejects it: the stranger is told and never connects;
// the creator's page replaces the offer with a fresh one, and the intended guest then
// joins it, is accepted and connects. An
// answer POSTed straight to the box (no page) is also only ever shown, never applied.
func TestDropBoxStranger(t *testing.T) {
	a := newUser(t, "A", "en-US")
	b := newUser(t, "B", "en-US")
	c := newUser(t, "C", "en-US")
	const strangerTyped, strangerName = "\u202eMallory", "Mallory"
	a.setName("Ana")
	b.setName("Bruno")
	c.setName(strangerTyped)
	if got := evalJS[string](c, `document.getElementById('my-name').value`); got != strangerName {
		t.Errorf("the typed name became %+q, want %q", got, strangerName)
	}
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Yard"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitJS(`!document.getElementById('publish-offer').hidden`)
	a.do(menuClick("#publish-offer"))
	a.waitJS(`document.getElementById('publish-offer').hidden`)

	// The stranger answers first.
	c.waitJS(`document.querySelectorAll('#drop-offers .drop-join').length === 1`)
	firstID := evalJS[string](c, `document.querySelector('#drop-offers .drop-join').dataset.id`)
	c.do(chromedp.Click(chromedp.CSS("#drop-offers .drop-join")))
	strangerCode := c.waitDropCode()
	who, shown := a.waitDropAnswer(strangerName)
	if shown != strangerCode || !strings.HasSuffix(who, "wants to join “Yard”") {
		t.Errorf("A is asked %q with code %q; the stranger's page shows %q", who, shown, strangerCode)
	}
	if tag := evalJS[string](a, `document.querySelector('#drop-answers .drop-answer-name').tagName`); tag != "BDI" {
		t.Errorf("the name is in a %s, want BDI", tag)
	}
	a.do(chromedp.Click(chromedp.CSS("#drop-answers .drop-reject")))
	a.waitJS(`document.getElementById('drop-consent').hidden`)
	c.waitJS(`document.getElementById('drop-wait').dataset.state === 'rejected'`)
	if st := evalJS[string](c, `document.getElementById('room-status').dataset.state`); st == "connected" || st == "waiting" {
		t.Errorf("the rejected stranger's room is %q", st)
	}
	if notice := c.text("#notice"); !strings.Contains(notice, "rejected your answer") {
		t.Errorf("the stranger is told %q", notice)
	}

	// An answer POSTed straight to the box, as a script would: the stranger's own answer
	// again (a valid one for this offer). It is shown, not applied.
	// The rejection replaced the offer the stranger answered with a fresh one.
	offerID := evalJS[string](b, fmt.Sprintf(`(async () => { for (let i = 0; i < 100; i++) { const l = await fetch('/api/drop/offers').then(r => r.json()); if (l.length === 1 && l[0].id !== %q) return l[0].id; await new Promise(r => setTimeout(r, 100)); } return ''; })()`, firstID))
	if offerID == "" {
		t.Fatal("no fresh offer is listed after a rejection")
	}
	st := evalJS[string](c, fmt.Sprintf(`(async () => {
		const off = new Uint8Array(await fetch('/api/drop/offers/%[1]s/torrent').then(r => r.arrayBuffer()));
		const { decodeInvitation, encodeInvitation } = await import('/js/torrent.js');
		const { makeAnswer } = await import('/js/rtc.js');
		const inv = await decodeInvitation(off);
		const ans = await makeAnswer(inv.sdp);
		window.scriptedPC = ans.pc;
		const bytes = await encodeInvitation({ role: 'answer', room: inv.room, roomName: inv.roomName, sdp: ans.sdp, session: inv.session, peer: { id: 'x'.repeat(64), name: 'script' } });
		const r = await fetch('/api/drop/offers/%[1]s/answers', { method: 'POST', body: bytes, headers: { 'X-ChatTorrent': '1' } });
		return String(r.status);
	})()`, offerID))
	if st != "201" {
		t.Fatalf("scripted answer: %s", st)
	}
	a.waitDropAnswer("script")
	a.do(chromedp.Click(chromedp.CSS("#drop-answers .drop-reject")))
	a.waitJS(`document.getElementById('drop-consent').hidden`)

	// The intended guest joins and gets in: a rejection replaced the offer with a fresh
	// one (the script still holds the old one's credentials and keeps probing it).
	b.waitJS(fmt.Sprintf(`(() => { const l = document.querySelectorAll('#drop-offers .drop-join'); return l.length === 1 && l[0].dataset.id !== %q; })()`, offerID))
	b.do(chromedp.Click(chromedp.CSS("#drop-offers .drop-join")))
	code := b.waitDropCode()
	if _, shown := a.waitDropAnswer("Bruno"); shown != code {
		t.Errorf("A shows %q for Bruno, Bruno's page %q", shown, code)
	}
	a.do(chromedp.Click(chromedp.CSS("#drop-answers .drop-accept")))
	a.waitStatus("connected")
	b.waitStatus("connected")
	a.say("solo para Bruno")
	b.waitMessage("solo para Bruno")
	if peer := a.text("#room-peer"); strings.Contains(peer, "Mallory") || strings.Contains(peer, "script") {
		t.Errorf("A is connected with %q", peer)
	}
	if n := evalJS[int](a, `globalThis.chattorrentStats().length`); n != 1 {
		t.Errorf("A has %d connections, want Bruno's only", n)
	}
	if got := evalJS[[]string](c, `[...document.querySelectorAll('#messages .msg-body')].map(n => n.textContent)`); strings.Contains(strings.Join(got, "|"), "solo para Bruno") {
		t.Error("the stranger got the room's message")
	}
	if st := evalJS[string](c, `window.scriptedPC.connectionState`); st == "connected" {
		t.Error("the scripted answer's connection is connected")
	}
	a.checkConsole()
	b.checkConsole()
	c.checkConsole()
}

// waitDropCode waits for the safety code the guest's page shows after answering through the
// box, and returns it.
func (u *user) waitDropCode() string {
	u.t.Helper()
	u.waitJS(`document.getElementById('drop-wait').dataset.state === 'waiting' && !document.getElementById('drop-wait').hidden && /^\d{3} \d{3}$/.test(document.querySelector('#drop-wait .drop-wait-code')?.textContent || '')`)
	return u.text("#drop-wait .drop-wait-code")
}

// waitDropAnswer waits until the creator's page asks about an answer from name, and returns
// what it says ("<name> wants to join …") and the code shown with it.
func (u *user) waitDropAnswer(name string) (who, code string) {
	u.t.Helper()
	sel := fmt.Sprintf(`[...document.querySelectorAll('#drop-answers .drop-answer')].find(li => li.querySelector('.drop-answer-name').textContent === %s)`, js(name))
	u.waitJS(`!document.getElementById('drop-consent').hidden && !!` + sel)
	who = evalJS[string](u, sel+`.querySelector('.drop-answer-who').textContent`)
	code = evalJS[string](u, sel+`.querySelector('.drop-answer-code').dataset.code`)
	return who, code
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
	a.do(menuClick("#keep-on-box"))
	a.waitStatus("connected")
	a.waitJS(`[...document.querySelectorAll('#box-status .box-feature')].some(n => n.dataset.feature === 'microphone' && !n.classList.contains('absent'))`)
	a.waitJS(`!document.getElementById('box-record').hidden`)
	a.do(menuClick("#box-record"))
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
	a.do(menuClick("#keep-on-box"))
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

// TestBoxFullVoiceNote: a box whose store budget is spent refuses a member's voice note
// with 507 store-full before its microphone opens, and the page says the box is full, in
// the page's language.
func TestBoxFullVoiceNote(t *testing.T) {
	dir := t.TempDir()
	tone := &board.Recording{SampleRate: board.SampleRate, Samples: make([]int16, board.SampleRate)}
	var wav bytes.Buffer
	if _, err := board.WriteWAV(&wav, tone, 0); err != nil {
		t.Fatal(err)
	}
	mic := filepath.Join(dir, "mic.wav")
	if err := os.WriteFile(mic, wav.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// 100 KB: the room and its joins fit; a 10 s note (320 KB) does not.
	base := startBox(t, "llenabox", "--webrtc-loopback", "--mic", "wav:"+mic, "--store-budget", "100000")
	a := newUserAt(t, "A", "es-ES", base, noDNS)
	a.setName("Ana")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Llena"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitJS(`!document.getElementById('keep-on-box').hidden`)
	a.do(menuClick("#keep-on-box"))
	a.waitStatus("connected")
	a.waitJS(`!document.getElementById('box-record').hidden`)
	a.do(menuClick("#box-record"))
	a.waitJS(`document.getElementById('notice').textContent.includes('La caja está llena')`)
	if n := evalJS[int](a, `document.querySelectorAll('#messages audio').length`); n != 0 {
		t.Errorf("%d voice notes in the room of a full box", n)
	}
}

// TestBoxFullRefusesEntries: a box whose store is full keeps the DataChannel open but
// refuses the page's new entries with a refused message (store-full); the page says so
// once, naming the box, and the chat goes on.
func TestBoxFullRefusesEntries(t *testing.T) {
	// 4 KB: the room and its joins fit, a few messages more do not.
	base := startBox(t, "llenabox2", "--webrtc-loopback", "--store-budget", "4096")
	a := newUserAt(t, "A", "en-US", base, noDNS)
	a.setName("Ana")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Full"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitJS(`!document.getElementById('keep-on-box').hidden`)
	a.do(menuClick("#keep-on-box"))
	a.waitStatus("connected")
	refused := `document.getElementById('notice').dataset.code === 'refused-store-full'`
	for i := 0; i < 30 && !evalJS[bool](a, refused); i++ {
		a.say(fmt.Sprintf("mensaje %d con algo de texto para llenar la caja", i))
	}
	a.waitJS(refused)
	if got := a.text("#notice"); !strings.Contains(got, "is full") || !strings.Contains(got, "ChatTorrent") {
		t.Errorf("the notice: %q", got)
	}
	a.waitStatus("connected")
	a.checkConsole()
}
