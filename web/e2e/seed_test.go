package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/chattorrent/chattorrent/net/torrent"
)

// labels of the seed's guide, per language.
var labels = map[string]map[string]string{
	"en-US": {"create": "1. Create room & export .torrent", "import": "2. Import .torrent file", "waiting": "Waiting",
		"connected": "Connected", "offline": "Offline", "export": "Export history (JSON)", "placeholder": "New room name"},
	"es-ES": {"create": "1. Crear Sala & Exportar .torrent", "import": "2. Importar Archivo .torrent", "waiting": "Esperando",
		"connected": "Conectado", "offline": "Desconectado", "export": "Exportar Historial (JSON)", "placeholder": "Nombre de la nueva sala"},
}

func TestTwoBrowsers(t *testing.T)        { seedFlow(t, "en-US", "Aula 7", "Aula_7") }
func TestTwoBrowsersSpanish(t *testing.T) { seedFlow(t, "es-ES", "Sala Niño", "Sala_Niño") }

func (u *user) setName(name string) {
	u.t.Helper()
	evalJS[chromedp.Void](u, fmt.Sprintf(`(() => { const n = document.getElementById('my-name'); n.value = %s; n.dispatchEvent(new Event('change')); })()`, js(name)))
}

// say types a message in the open room and sends it with the button.
func (u *user) say(text string) {
	u.t.Helper()
	u.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), text), chromedp.Click(chromedp.CSS("#send")))
	u.waitJS(fmt.Sprintf(`[...document.querySelectorAll('#messages .msg.mine .msg-body')].some(n => n.textContent === %s)`, js(text)))
}

func (u *user) waitStatus(state string) {
	u.t.Helper()
	u.waitJS(fmt.Sprintf(`document.getElementById('room-status').dataset.state === %s`, js(state)))
}

func (u *user) waitMessage(text string) {
	u.t.Helper()
	u.waitJS(fmt.Sprintf(`[...document.querySelectorAll('#messages .msg-body')].some(n => n.textContent === %s)`, js(text)))
}

func (u *user) bodies() []string {
	u.t.Helper()
	return evalJS[[]string](u, `[...document.querySelectorAll('#messages .msg:not(.system) .msg-body')].map(n => n.textContent)`)
}

func (u *user) openRoom(id string) {
	u.t.Helper()
	u.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`.room-item[data-room-id=%q]`, id))))
	u.waitJS(fmt.Sprintf(`document.getElementById('messages').dataset.room === %q`, id))
}

func seedFlow(t *testing.T, lang, room, safe string) {
	l := labels[lang]
	a := newUser(t, "A", lang)
	b := newUser(t, "B", lang)
	b.do(chromedp.EmulateViewport(390, 844)) // B is on a phone
	a.setName("Ana")
	b.setName("Bruno")

	// The seed's labels, in the browser's language.
	for _, u := range []*user{a, b} {
		if got := u.text("#create-room"); got != l["create"] {
			t.Errorf("%s: create button %q, want %q", u.name, got, l["create"])
		}
		if got := u.text("#import-button"); got != l["import"] {
			t.Errorf("%s: import button %q, want %q", u.name, got, l["import"])
		}
		if got := evalJS[string](u, `document.getElementById('new-room-name').placeholder`); got != l["placeholder"] {
			t.Errorf("%s: placeholder %q, want %q", u.name, got, l["placeholder"])
		}
	}
	// The phone-sized page: the create button is on screen.
	if !evalJS[bool](b, `(() => { const r = document.getElementById('create-room').getBoundingClientRect(); return r.width > 0 && r.right <= innerWidth && r.height >= 40; })()`) {
		t.Error("B (390px wide): the create button is not fully on screen")
	}

	// 1. A creates the room: the offer is downloaded; A waits.
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), room))
	offer, name := a.download(chromedp.Click(chromedp.CSS("#create-room")))
	if name != safe+"_offer.torrent" {
		t.Errorf("offer file %q, want %q", name, safe+"_offer.torrent")
	}
	a.waitStatus("waiting")
	if got := a.text("#room-status"); got != l["waiting"] {
		t.Errorf("A status %q, want %q", got, l["waiting"])
	}
	roomID := evalJS[string](a, `document.querySelector('#rooms .room-item').dataset.roomId`)
	// A writes while waiting: B must get these on connect (the seed's history sync).
	a.say("hola 1")
	a.say("hola 2 <b>not html</b>")

	// 2. B imports the offer: the answer is downloaded; B waits.
	answer, name := b.importAndDownload(offer)
	if name != safe+"_answer.torrent" {
		t.Errorf("answer file %q, want %q", name, safe+"_answer.torrent")
	}
	b.waitStatus("waiting")
	if got := b.text("#room-title"); got != room {
		t.Errorf("B room title %q, want %q", got, room)
	}

	// 3. A imports the answer: both connected, each sees the other's name.
	a.importFile(answer)
	a.waitStatus("connected")
	b.waitStatus("connected")
	if got := a.text("#room-status"); got != l["connected"] {
		t.Errorf("A status %q, want %q", got, l["connected"])
	}
	a.waitJS(`document.getElementById('room-peer').textContent.includes('Bruno')`)
	b.waitJS(`document.getElementById('room-peer').textContent.includes('Ana')`)

	// 5. B received A's history.
	b.waitMessage("hola 1")
	b.waitMessage("hola 2 <b>not html</b>")
	if n := evalJS[int](b, `document.querySelectorAll('#messages b').length`); n != 0 {
		t.Error("a peer's message was inserted as HTML")
	}

	// 4. Chat both ways; author, time and delivery state on each message.
	b.say("hola desde el teléfono")
	a.waitMessage("hola desde el teléfono")
	a.say("respuesta de A")
	b.waitMessage("respuesta de A")
	for _, u := range []*user{a, b} {
		u.waitJS(`[...document.querySelectorAll('#messages .msg.mine .msg-state')].every(n => n.dataset.state === 'delivered')`)
		ok := evalJS[bool](u, `[...document.querySelectorAll('#messages .msg:not(.system)')].every(m =>
			m.querySelector('.msg-author').textContent.trim() !== '' &&
			!isNaN(Date.parse(m.querySelector('.msg-time').getAttribute('datetime'))))`)
		if !ok {
			t.Errorf("%s: a message lacks its author or time", u.name)
		}
	}
	if got := evalJS[string](b, `[...document.querySelectorAll('#messages .msg:not(.mine):not(.system) .msg-author')].map(n => n.textContent).join(',')`); !strings.Contains(got, "Ana") {
		t.Errorf("B shows A's messages by %q", got)
	}

	// 6. Append-only: nothing offers to edit or delete a message.
	for _, u := range []*user{a, b} {
		if n := evalJS[int](u, `document.querySelectorAll('#messages button, #messages [contenteditable], #messages input, #messages textarea').length`); n != 0 {
			t.Errorf("%s: %d controls inside the messages", u.name, n)
		}
	}

	// 7. B reloads, then closes the browser and reopens it: the room and its history stay.
	want := []string{"hola 1", "hola 2 <b>not html</b>", "hola desde el teléfono", "respuesta de A"}
	b.do(chromedp.Reload())
	b.waitJS(`document.body.dataset.ready === '1'`)
	b.openRoom(roomID)
	if got := b.bodies(); !slices.Equal(got, want) {
		t.Errorf("B after reload: %q, want %q", got, want)
	}
	b.close()
	a.waitStatus("offline")
	b.open()
	b.do(chromedp.EmulateViewport(390, 844))
	b.openRoom(roomID)
	if got := b.bodies(); !slices.Equal(got, want) {
		t.Errorf("B after reopening the browser: %q, want %q", got, want)
	}
	b.waitStatus("offline")
	if got := b.text("#room-status"); got != l["offline"] {
		t.Errorf("B status %q, want %q", got, l["offline"])
	}

	// Both write while apart; then B reconnects with a fresh offer and answer.
	a.say("A mientras tanto")
	b.say("B mientras tanto")
	offer2, name := b.download(menuClick("#reconnect"))
	if name != safe+"_offer.torrent" {
		t.Errorf("reconnect offer file %q", name)
	}
	b.waitStatus("waiting")
	answer2, _ := a.importAndDownload(offer2)
	b.importFile(answer2)
	a.waitStatus("connected")
	b.waitStatus("connected")
	a.waitMessage("B mientras tanto")
	b.waitMessage("A mientras tanto")
	b.say("de vuelta")
	a.waitMessage("de vuelta")
	idsA := evalJS[[]string](a, `[...document.querySelectorAll('#messages .msg')].map(m => m.dataset.id)`)
	idsB := evalJS[[]string](b, `[...document.querySelectorAll('#messages .msg')].map(m => m.dataset.id)`)
	slices.Sort(idsA)
	slices.Sort(idsB)
	if !slices.Equal(idsA, idsB) || len(slices.Compact(slices.Clone(idsA))) != len(idsA) {
		t.Errorf("after reconnecting the histories differ or repeat:\nA %v\nB %v", idsA, idsB)
	}
	// The safety codes match.
	codeA, codeB := a.text("#safety"), b.text("#safety")
	if codeA == "" || codeA != codeB {
		t.Errorf("safety codes %q and %q", codeA, codeB)
	}

	// 8. Export the history as JSON.
	if got := a.text("#export-history"); got != l["export"] {
		t.Errorf("export button %q, want %q", got, l["export"])
	}
	exp, name := a.download(menuClick("#export-history"))
	if name != safe+"_history.json" {
		t.Errorf("export file %q, want %q", name, safe+"_history.json")
	}
	checkExport(t, exp, roomID, room, append(want, "A mientras tanto", "B mientras tanto", "de vuelta"))

	a.checkConsole()
	b.checkConsole()
}

func checkExport(t *testing.T, path, roomID, room string, bodies []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var x struct {
		Format  string
		V       int
		Room    struct{ ID, Name string }
		Entries []struct {
			Author, Name, Kind, Body, ID, Sig string
			Seq, TS                           int64
		}
	}
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatalf("export: %v", err)
	}
	if x.Format != "chattorrent-history" || x.V != 1 || x.Room.ID != roomID || x.Room.Name != room {
		t.Errorf("export header: %+v", x)
	}
	var texts []string
	seen := map[string]bool{}
	for i, e := range x.Entries {
		if seen[e.ID] {
			t.Errorf("export repeats entry %s", e.ID)
		}
		seen[e.ID] = true
		if i > 0 && e.TS < x.Entries[i-1].TS {
			t.Errorf("export not in time order at %d", i)
		}
		if e.Author == "" || e.Name == "" || e.Sig == "" {
			t.Errorf("export entry %d lacks author, name or signature: %+v", i, e)
		}
		if e.Kind == "text" {
			texts = append(texts, e.Body)
		}
	}
	if !slices.Equal(texts, bodies) {
		t.Errorf("exported messages %q, want %q", texts, bodies)
	}
	// The export verifies offline with the appliance's command; a tampered one does not.
	verify := func(p string) (string, error) {
		out, err := exec.Command(filepath.Join(server.dir, "chattorrent"), "verify", p).CombinedOutput()
		return string(out), err
	}
	if out, err := verify(path); err != nil {
		t.Errorf("chattorrent verify on the export: %v\n%s", err, out)
	}
	tampered := filepath.Join(t.TempDir(), "tampered.json")
	os.WriteFile(tampered, bytes.Replace(b, []byte(`"hola 1"`), []byte(`"hola 9"`), 1), 0o600)
	if out, err := verify(tampered); err == nil || !strings.Contains(out, "FAIL entry") {
		t.Errorf("chattorrent verify accepted a tampered export:\n%s", out)
	}
}

// TestImportErrors: every bad import shows a clear error and changes nothing.
func TestImportErrors(t *testing.T) {
	a := newUser(t, "A", "en-US")
	b := newUser(t, "B", "en-US")
	dir := t.TempDir()

	expectError := func(u *user, code string, action func()) {
		t.Helper()
		before := evalJS[string](u, `chattorrentStoredEntries().then((n) => JSON.stringify([document.querySelectorAll('#rooms .room-item').length, document.querySelectorAll('#messages .msg').length, localStorage.length, n]))`)
		evalJS[chromedp.Void](u, `(() => { const n = document.getElementById('notice'); delete n.dataset.code; delete n.dataset.kind; })()`)
		action()
		u.waitJS(fmt.Sprintf(`document.getElementById('notice').dataset.code === %q && document.getElementById('notice').dataset.kind === 'error'`, code))
		if msg := u.text("#notice"); len(msg) < 20 {
			t.Errorf("%s: %s: the message %q says too little", u.name, code, msg)
		}
		after := evalJS[string](u, `chattorrentStoredEntries().then((n) => JSON.stringify([document.querySelectorAll('#rooms .room-item').length, document.querySelectorAll('#messages .msg').length, localStorage.length, n]))`)
		if before != after {
			t.Errorf("%s: %s changed the page or storage: %s → %s", u.name, code, before, after)
		}
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	expectError(a, "empty-name", func() { a.do(chromedp.Click(chromedp.CSS("#create-room"))) })

	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Errores"))
	offer, _ := a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitStatus("waiting")
	a.waitJS(`document.querySelectorAll('#rooms .room-item').length === 1 && document.querySelectorAll('#messages .msg').length === 1`)
	offerBytes, err := os.ReadFile(offer)
	if err != nil {
		t.Fatal(err)
	}

	expectError(a, "own-offer", func() { a.importFile(offer) })
	expectError(a, "truncated", func() { a.importFile(write("half.torrent", offerBytes[:len(offerBytes)/2])) })
	expectError(a, "malformed", func() { a.importFile(write("text.torrent", []byte("this is not a torrent at all"))) })
	expectError(a, "too-large", func() { a.importFile(write("big.torrent", bytes.Repeat([]byte("x"), 70000))) })
	expectError(a, "empty", func() { a.importFile(write("empty.torrent", nil)) })
	expectError(a, "not-torrent", func() { a.importFile(write("list.torrent", []byte("li1ei2ee"))) })

	answer, _ := b.importAndDownload(offer)
	b.waitStatus("waiting")
	b.waitJS(`document.querySelectorAll('#rooms .room-item').length === 1 && document.querySelectorAll('#messages .msg').length === 1`)
	answerBytes, err := os.ReadFile(answer)
	if err != nil {
		t.Fatal(err)
	}
	// B holds no offer of its own: its own answer is for an offer it does not hold.
	expectError(b, "no-pending-offer", func() { b.importFile(answer) })

	inv, err := torrent.Decode(answerBytes)
	if err != nil {
		t.Fatal(err)
	}
	inv.Room = strings.Repeat("e", 32)
	other, err := torrent.Encode(inv)
	if err != nil {
		t.Fatal(err)
	}
	expectError(a, "wrong-room", func() { a.importFile(write("other_answer.torrent", other)) })

	a.importFile(answer)
	a.waitStatus("connected")
	b.waitStatus("connected")
	// Both joins synced both ways before the snapshot (a join arriving meanwhile is no change
	// of the refused import's making).
	for _, u := range []*user{a, b} {
		u.waitJS(`document.querySelectorAll('#messages .msg').length === 2`)
	}
	expectError(a, "already-used", func() { a.importFile(answer) })
	a.waitStatus("connected")

	a.checkConsole()
	b.checkConsole()
}

// TestThreePeers: A and C never connect to each other; B is connected to both and passes
// entries on, so A's and C's messages reach each other through B.
func TestThreePeers(t *testing.T) {
	a := newUser(t, "A", "en-US")
	b := newUser(t, "B", "en-US")
	c := newUser(t, "C", "en-US")
	a.setName("Ana")
	b.setName("Bruno")
	c.setName("Carla")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Tres"))
	offer, _ := a.download(chromedp.Click(chromedp.CSS("#create-room")))
	answer, _ := b.importAndDownload(offer)
	a.importFile(answer)
	b.waitStatus("connected")
	offer2, _ := b.download(menuClick("#reconnect"))
	answer2, _ := c.importAndDownload(offer2)
	b.importFile(answer2)
	c.waitStatus("connected")
	b.waitJS(`document.getElementById('room-peer').textContent.includes('Ana') && document.getElementById('room-peer').textContent.includes('Carla')`)
	a.say("de Ana para todos")
	c.waitMessage("de Ana para todos")
	c.say("de Carla")
	a.waitMessage("de Carla")
	a.checkConsole()
	b.checkConsole()
	c.checkConsole()
}

// TestPendingOffers: A's page holds several unanswered offers while it stays open; each
// answer, whenever it comes back, connects its own room.
func TestPendingOffers(t *testing.T) {
	a := newUser(t, "A", "en-US")
	b := newUser(t, "B", "en-US")
	c := newUser(t, "C", "en-US")
	b.setName("Bruno")
	c.setName("Carla")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Primera"))
	offer1, _ := a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitJS(`document.querySelectorAll('#rooms .room-item').length === 1`)
	room1 := evalJS[string](a, `document.querySelector('#rooms .room-item').dataset.roomId`)
	a.waitStatus("waiting")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Segunda"))
	offer2, _ := a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitJS(`document.querySelectorAll('#rooms .room-item').length === 2`)
	room2 := evalJS[string](a, `[...document.querySelectorAll('#rooms .room-item')].map(n => n.dataset.roomId).find(id => id !== `+js(room1)+`)`)
	// The answers come back in the other order.
	answer2, _ := c.importAndDownload(offer2)
	answer1, _ := b.importAndDownload(offer1)
	a.importFile(answer2)
	c.waitStatus("connected")
	a.importFile(answer1)
	b.waitStatus("connected")
	a.openRoom(room1)
	a.waitStatus("connected")
	a.waitJS(`document.getElementById('room-peer').textContent.includes('Bruno')`)
	a.openRoom(room2)
	a.waitStatus("connected")
	a.waitJS(`document.getElementById('room-peer').textContent.includes('Carla')`)
	a.checkConsole()
	b.checkConsole()
	c.checkConsole()
}
