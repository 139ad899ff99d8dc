package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chattorrent/chattorrent/store/history"
)

// windowMax is web/static/js/window.js's WINDOW_MAX: the entries a page holds of a room.
const windowMax = 600

// storeEntries writes a room and its entries straight into the page's IndexedDB with the
// page's own module (entries.js), then reloads the page.
func (u *user) storeEntries(room, name string, entries []history.Entry) {
	u.t.Helper()
	rooms, _ := json.Marshal([]map[string]any{{"id": room, "name": name, "created": time.Now().UnixMilli(), "peer": nil}})
	evalJS[chromedp.Void](u, fmt.Sprintf(`localStorage.setItem('chattorrent:v1:rooms', %s)`, js(string(rooms))))
	for i := 0; i < len(entries); i += 5000 {
		b, _ := json.Marshal(entries[i:min(i+5000, len(entries))])
		evalJS[chromedp.Void](u, fmt.Sprintf(`import('/js/entries.js').then(({ EntryStore }) => new EntryStore(null).append(%q, %s))`, room, b))
	}
	u.do(chromedp.Reload())
	u.waitJS(`document.body.dataset.ready === '1'`)
}

var reArchived = regexp.MustCompile(`^mensaje (\d+) del archivo$`)

// shownNumbers is the numbers of the archive's messages in #messages, in order.
func (u *user) shownNumbers() []int {
	u.t.Helper()
	var out []int
	for _, b := range u.bodies() {
		if m := reArchived.FindStringSubmatch(b); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}

// consecutive says what is wrong with a run of message numbers that should be a, a+1, ….
func consecutive(ns []int) string {
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			return fmt.Sprintf("message %d follows %d", ns[i], ns[i-1])
		}
	}
	return ""
}

// scrollToFirst scrolls the open room of "mensaje N del archivo" entries (archive) up a
// page at a time until its first message shows, failing on a page out of order; each runs
// after every page.
func (u *user) scrollToFirst(n int, each func()) {
	u.t.Helper()
	oldest := u.shownNumbers()[0]
	for step := 0; oldest > 0; step++ {
		if step > n/100 {
			u.t.Fatalf("%s never reached the first message: at %d", u.name, oldest)
		}
		evalJS[chromedp.Void](u, `(() => { const ol = document.getElementById('messages'); ol.scrollTop = 0; ol.dispatchEvent(new Event('scroll')); })()`)
		u.waitJS(fmt.Sprintf(`(() => { const m = [...document.querySelectorAll('#messages .msg-body')].map(n => n.textContent.match(/^mensaje (\d+) /)).find(Boolean); return m && Number(m[1]) < %d; })()`, oldest))
		got := u.shownNumbers()
		if bad := consecutive(got); bad != "" {
			u.t.Fatalf("after scrolling up %s shows %d… %d: %s", u.name, got[0], got[len(got)-1], bad)
		}
		oldest = got[0]
		if each != nil {
			each()
		}
	}
}

// TestRoomWindow: a room of 3,000 entries opens at its newest messages while the page holds
// a window of at most windowMax entries (objects and DOM nodes), not the room; scrolling up
// reads older pages in order down to the first message, scrolling down reads the newest
// again, a message written while scrolled back brings the newest back, the window staying
// bounded all along; and a sync gives a new guest all 3,000.
func TestRoomWindow(t *testing.T) {
	const n = 3000
	room := strings.Repeat("7c", 16)
	a := newUser(t, "A", "en-US")
	a.storeEntries(room, "Ventana", archive(t, room, n))
	a.openRoom(room)
	a.waitMessage(fmt.Sprintf("mensaje %d del archivo", n-1))

	bounded := func(u *user, when string) {
		t.Helper()
		w := evalJS[map[string]any](u, fmt.Sprintf(`typeof chattorrentWindow === 'function' ? chattorrentWindow(%q) : {}`, room))
		nodes := evalJS[int](u, `document.querySelectorAll('#messages .msg').length`)
		if held, _ := w["held"].(float64); held > windowMax || nodes > windowMax || nodes == 0 {
			t.Fatalf("%s %s: the page holds %v entries and %d message nodes of a %d-entry room (window %d)", u.name, when, w, nodes, n, windowMax)
		}
	}
	bounded(a, "on opening")
	if got := a.shownNumbers(); len(got) == 0 || got[len(got)-1] != n-1 || consecutive(got) != "" {
		t.Fatalf("A opens at %v…: %s", got[:min(3, len(got))], consecutive(got))
	}

	// Scroll up to the first message, a page at a time.
	a.scrollToFirst(n, func() { bounded(a, "scrolling up") })
	if !evalJS[bool](a, `document.getElementById('show-earlier').hidden`) {
		t.Errorf("at the first message A still offers %q", a.text("#show-earlier"))
	}

	// And down again to the newest.
	for step := 0; a.shownNumbers()[len(a.shownNumbers())-1] < n-1; step++ {
		if step > n/100 {
			t.Fatalf("A never came back to the newest message")
		}
		newest := a.shownNumbers()[len(a.shownNumbers())-1]
		evalJS[chromedp.Void](a, `(() => { const ol = document.getElementById('messages'); ol.scrollTop = ol.scrollHeight; ol.dispatchEvent(new Event('scroll')); })()`)
		a.waitJS(fmt.Sprintf(`(() => { const m = [...document.querySelectorAll('#messages .msg-body')].map(n => n.textContent.match(/^mensaje (\d+) /)).filter(Boolean).pop(); return m && Number(m[1]) > %d; })()`, newest))
		if bad := consecutive(a.shownNumbers()); bad != "" {
			t.Fatalf("after scrolling down: %s", bad)
		}
		bounded(a, "scrolling down")
	}

	// Up a page (the window lets go of the newest), then a message: the window comes back to
	// the newest to show it.
	top := a.shownNumbers()[0]
	evalJS[chromedp.Void](a, `(() => { const ol = document.getElementById('messages'); ol.scrollTop = 0; ol.dispatchEvent(new Event('scroll')); })()`)
	a.waitJS(fmt.Sprintf(`(() => { const m = [...document.querySelectorAll('#messages .msg-body')].map(n => n.textContent.match(/^mensaje (\d+) /)).find(Boolean); return m && Number(m[1]) < %d; })()`, top))
	if w := evalJS[map[string]any](a, fmt.Sprintf(`chattorrentWindow(%q)`, room)); w["atEnd"] != false {
		t.Fatalf("after a page up the window still holds the newest: %v", w)
	}
	a.say("desde arriba")
	bounded(a, "after writing")

	// A new guest gets the whole room and, like A, holds only a window of it.
	b := newUser(t, "B", "en-US")
	offer, _ := a.download(menuClick("#reconnect"))
	answer, _ := b.importAndDownload(offer)
	a.importFile(answer)
	b.waitStatus("connected")
	b.waitLong(fmt.Sprintf(`chattorrentStoredEntries(%q).then((c) => c >= %d)`, room, n+1), 3*time.Minute)
	b.waitMessage(fmt.Sprintf("mensaje %d del archivo", n-1))
	bounded(b, "after the sync")
	a.checkConsole()
	b.checkConsole()
}
