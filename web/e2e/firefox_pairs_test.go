package e2e

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The controls the pair flow presses, by their ids (docs/UI.md), in one place: when a
// control moves (say, into a room menu), only these change.

// createRoom types the room's name and presses "1. Create room & export .torrent": the
// offer it downloads.
func createRoom(p peer, name string) (path, file string) {
	p.typeInto("#new-room-name", name)
	return p.clickDownload("#create-room")
}

// openMenuJS opens the room's actions menu (#room-menu) when it is closed.
const openMenuJS = `(() => { const m = document.getElementById('room-menu'); if (!m.open) document.getElementById('room-menu-button').click(); return true; })()`

// exportHistory presses "Export history (JSON)" in the open room's menu.
func exportHistory(p peer) (path, file string) {
	var ok bool
	p.evalJSON(openMenuJS, &ok)
	return p.clickDownload("#export-history")
}

// exportMedia presses "Export with files (zip)" in the open room's menu.
func exportMedia(p peer) (path, file string) {
	var ok bool
	p.evalJSON(openMenuJS, &ok)
	return p.clickDownload("#export-media")
}

// attachFile sends a file to the open room with the attach button's hidden input.
func attachFile(p peer, path string) { p.upload("#attach-file", path) }

// recordVoice records a voice note of two seconds or more (the recorder hands its data
// over every second) from the browser's fake microphone and sends it.
func recordVoice(p peer) {
	p.click("#record")
	p.waitJS(`document.getElementById('record').dataset.recording === '1' && /^0:0[2-9]$/.test(document.getElementById('record-time').textContent)`)
	p.click("#record")
	p.waitJS(`document.getElementById('record').dataset.recording === undefined`)
}

// openRoom opens a room from the room list (after a reload the list shows, no room).
func openRoom(p peer, id string) {
	p.click(fmt.Sprintf(`.room-item[data-room-id=%q]`, id))
	p.waitJS(fmt.Sprintf(`document.getElementById('messages').dataset.room === %q`, id))
}

// collectGarbage makes the page allocate and drop some 100 MB in small steps: the
// browser collects garbage, as it does while a person takes minutes to send the answer
// back. (Gecko then closed the answerer's RTCPeerConnection when the page kept no
// reference to it: the firefox->firefox flake.)
func collectGarbage(p peer) {
	var n int
	p.evalJSON(`(async () => {
		let keep = [];
		for (let i = 0; i < 200; i++) {
			keep.push(new Array(100000).fill({ i }));
			if (keep.length > 5) keep.shift();
			await new Promise((r) => setTimeout(r, 5));
		}
		keep = [];
		return 200;
	})()`, &n)
}

func setName(p peer, name string) {
	var ok bool
	p.evalJSON(fmt.Sprintf(`(() => { const n = document.getElementById('my-name'); n.value = %s; n.dispatchEvent(new Event('change')); return true; })()`, js(name)), &ok)
}

// engine is one browser engine the pairs run on.
type engine struct {
	name string
	open func(t *testing.T, who, lang string) peer
}

var (
	chromiumEngine = engine{"chromium", func(t *testing.T, who, lang string) peer { return newUser(t, who, lang) }}
	firefoxEngine  = engine{"firefox", func(t *testing.T, who, lang string) peer { return newFirefoxUser(t, who, lang) }}
)

// TestEnginePairs runs the seed's whole flow between every pair of the engines here, each
// way: a creates the room and exports the offer, b imports it and exports the answer, a
// imports that; chat both ways; a picture both preview; a voice note from each that the
// other engine plays; b reloads and still shows the history, the picture and the notes;
// a exports the history (JSON, verified) and b the zip with the media. WebKit cannot take
// part here (no WebRTC in Debian's WebKitGTK: TestWebKitPage).
func TestEnginePairs(t *testing.T) {
	for _, pair := range []struct {
		a, b engine
		lang string
	}{
		{chromiumEngine, chromiumEngine, "en-US"},
		{firefoxEngine, chromiumEngine, "en-US"},
		{chromiumEngine, firefoxEngine, "es-ES"},
		{firefoxEngine, firefoxEngine, "es-ES"},
	} {
		t.Run(pair.a.name+"->"+pair.b.name, func(t *testing.T) {
			start := time.Now()
			pairFlow(t, pair.a.open(t, "A", pair.lang), pair.b.open(t, "B", pair.lang))
			t.Logf("%s->%s: the whole flow in %v (browsers started)", pair.a.name, pair.b.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// pictureShown: the picture's inline preview is decoded (a PNG of 64x48, writePNG).
const pictureShown = `[...document.querySelectorAll('#messages .msg-image')].some(i => i.complete && i.naturalWidth === 64 && i.alt === 'foto del aula.png')`

// othersVoicePlays: the other person's voice note is loaded in this engine's player with
// its data decoded (readyState HAVE_CURRENT_DATA or more, a duration, no error): the engine
// reads the other engine's recording (Chromium's audio/mp4, Firefox's
// audio/webm;codecs=opus). A format this engine cannot play shows .voice-unplayable and no
// <audio>: never true.
const othersVoicePlays = `(() => {
  const au = document.querySelector('#messages .msg:not(.mine) audio.msg-audio');
  return !!au && !au.error && au.readyState >= 2 && au.duration > 0;
})()`

// audioState is what the page's players say, for failure messages.
const audioState = `[...document.querySelectorAll('#messages .file')].map(f => ({state: f.dataset.state, mine: !!f.closest('.msg.mine'),
  note: [...f.querySelectorAll('.file-note')].map(n => n.textContent).join(' | '),
  audio: [...f.querySelectorAll('audio')].map(a => ({src: a.src.slice(0, 16), ready: a.readyState, duration: String(a.duration), t: a.currentTime, paused: a.paused, error: a.error && (a.error.code + ' ' + a.error.message)}))}))`

func pairFlow(t *testing.T, a, b peer) {
	start := time.Now()
	setName(a, "Ana")
	setName(b, "Bruno")
	offer, name := createRoom(a, "Aula 7")
	if name != "Aula_7_offer.torrent" {
		t.Errorf("%s: offer file %q, want Aula_7_offer.torrent", a.label(), name)
	}
	a.waitStatus("waiting")
	var roomID string
	a.evalJSON(`document.getElementById('messages').dataset.room`, &roomID)
	a.say("hola 1")
	answer, name := b.importAndDownload(offer)
	if name != "Aula_7_answer.torrent" {
		t.Errorf("%s: answer file %q, want Aula_7_answer.torrent", b.label(), name)
	}
	b.waitStatus("waiting")
	collectGarbage(b)
	t.Cleanup(func() {
		if t.Failed() { // the candidates each side offered, for a pair that did not connect
			for _, p := range []string{offer, answer} {
				raw, _ := os.ReadFile(p)
				var lines []string
				for _, l := range strings.Split(string(raw), "\n") {
					if strings.Contains(l, "candidate") {
						lines = append(lines, strings.TrimSpace(l))
					}
				}
				t.Logf("%s (%d bytes) candidates:\n%s", filepath.Base(p), len(raw), strings.Join(lines, "\n"))
			}
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range []peer{a, b} {
				var st any
				p.evalJSON(audioState, &st)
				t.Logf("%s's files: %v", p.label(), st)
			}
		}
	})
	a.importFile(answer)
	a.waitStatus("connected")
	b.waitStatus("connected")
	t.Logf("%s -> %s connected %v after the create click", a.label(), b.label(), time.Since(start).Round(time.Millisecond))
	a.waitJS(`document.getElementById('room-peer').textContent.includes('Bruno')`)
	b.waitJS(`document.getElementById('room-peer').textContent.includes('Ana')`)

	// Chat both ways (and the history written while waiting).
	b.waitMessage("hola 1")
	b.say("desde " + b.label())
	a.waitMessage("desde " + b.label())
	a.say("respuesta de " + a.label())
	b.waitMessage("respuesta de " + a.label())
	texts := []string{"hola 1", "desde " + b.label(), "respuesta de " + a.label()}

	// A picture: both preview it.
	attachFile(a, writePNG(t))
	a.waitJS(pictureShown)
	b.waitJS(pictureShown)

	// A voice note from each: the other engine plays it.
	recordVoice(a)
	b.waitJS(othersVoicePlays)
	recordVoice(b)
	a.waitJS(othersVoicePlays)
	for _, u := range []peer{a, b} {
		u.waitJS(`[...document.querySelectorAll('#messages .msg.mine .msg-state')].every(n => n.dataset.state === 'delivered')`)
	}

	// b reloads: the history, the picture and both notes are shown from its storage.
	b.reload()
	openRoom(b, roomID)
	var bodies []string
	b.evalJSON(`[...document.querySelectorAll('#messages .msg:not(.system) .msg-body')].filter(n => !n.querySelector('.file')).map(n => n.textContent)`, &bodies)
	if !slices.Equal(bodies, texts) {
		t.Errorf("%s after reload: messages %q, want %q", b.label(), bodies, texts)
	}
	b.waitJS(pictureShown)
	b.waitJS(othersVoicePlays)
	b.waitJS(`document.querySelectorAll('#messages .file[data-state="complete"] audio.msg-audio').length === 2`)

	// Exports: a's JSON history verifies and holds the messages; b's zip holds the media.
	path, name := exportHistory(a)
	if name != "Aula_7_history.json" {
		t.Errorf("%s: export file %q, want Aula_7_history.json", a.label(), name)
	}
	checkExport(t, path, roomID, "Aula 7", texts)
	path, name = exportMedia(b)
	if name != "Aula_7_history.zip" {
		t.Errorf("%s: zip file %q, want Aula_7_history.zip", b.label(), name)
	}
	checkPairZip(t, b.label(), path, roomID)
	a.checkConsole()
	b.checkConsole()
}

// checkPairZip: the zip export holds history.json for the room, listing the picture and
// the two voice notes, each included with its bytes.
func checkPairZip(t *testing.T, who, path, roomID string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("%s: the zip export: %v", who, err)
	}
	defer zr.Close()
	read := func(name string) []byte {
		f, err := zr.Open(name)
		if err != nil {
			t.Fatalf("%s: %s in the zip: %v", who, name, err)
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			t.Fatalf("%s: %s in the zip: %v", who, name, err)
		}
		return b
	}
	var x struct {
		Room  struct{ ID string }
		Media []struct {
			Kind, Type, Path string
			Size             int
			Included         bool
		}
	}
	if err := json.Unmarshal(read("history.json"), &x); err != nil {
		t.Fatalf("%s: the zip's history.json: %v", who, err)
	}
	if x.Room.ID != roomID {
		t.Errorf("%s: the zip is of room %q, want %q", who, x.Room.ID, roomID)
	}
	var kinds []string
	for _, m := range x.Media {
		kinds = append(kinds, m.Kind+" "+strings.Split(m.Type, ";")[0])
		if !m.Included || len(read(m.Path)) != m.Size || m.Size == 0 {
			t.Errorf("%s: media %+v not in the zip whole", who, m)
		}
	}
	slices.Sort(kinds)
	if len(kinds) != 3 || kinds[0] != "image image/png" || !strings.HasPrefix(kinds[1], "voice audio/") || !strings.HasPrefix(kinds[2], "voice audio/") {
		t.Errorf("%s: the zip's media %q, want the picture and two voice notes", who, kinds)
	}
}
