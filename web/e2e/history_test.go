package e2e

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chattorrent/chattorrent/store/history"
)

// archive makes a room history of n signed entries by one author, as the Go side makes them.
func archive(t testing.TB, room string, n int) []history.Entry {
	t.Helper()
	key := ed25519.NewKeyFromSeed([]byte(strings.Repeat("k", 32)))
	l := history.NewLog(room)
	start := time.Now().Add(-48 * time.Hour).UnixMilli()
	out := make([]history.Entry, 0, n)
	for i := range n {
		e := history.Entry{Author: history.EncodeKey(key.Public().(ed25519.PublicKey)), Name: "Archivo",
			Kind: history.KindText, Body: fmt.Sprintf("mensaje %d del archivo", i), TS: start + int64(i)*1000}
		l.Next(&e)
		e.Sign(key)
		if _, err := l.Add(e, time.Now()); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// seedStorage writes a room and its entries into the page's localStorage in the layout
// pages kept histories in before entries.js (chunks of 200), then reloads the page, which
// moves them to IndexedDB.
func (u *user) seedStorage(room, name string, entries []history.Entry) {
	u.t.Helper()
	rooms, _ := json.Marshal([]map[string]any{{"id": room, "name": name, "created": time.Now().UnixMilli(), "peer": nil}})
	evalJS[chromedp.Void](u, fmt.Sprintf(`localStorage.setItem('chattorrent:v1:rooms', %s)`, js(string(rooms))))
	chunks := 0
	for i := 0; i < len(entries); i += 200 {
		b, _ := json.Marshal(entries[i:min(i+200, len(entries))])
		evalJS[chromedp.Void](u, fmt.Sprintf(`localStorage.setItem('chattorrent:v1:room:%s:c%d', %s)`, room, chunks, js(string(b))))
		chunks++
	}
	evalJS[chromedp.Void](u, fmt.Sprintf(`localStorage.setItem('chattorrent:v1:room:%s:n', '%d')`, room, chunks))
	u.do(chromedp.Reload())
	u.waitJS(`document.body.dataset.ready === '1'`)
}

// TestLongHistory: a 10,000-entry history reaches a new guest in batches, the page shows
// the latest messages (not 10,000 nodes), and everything survives a reload.
func TestLongHistory(t *testing.T) {
	const n = 10000
	room := strings.Repeat("5a", 16)
	a := newUser(t, "A", "en-US")
	b := newUser(t, "B", "en-US")
	a.seedStorage(room, "Archivo", archive(t, room, n))
	a.openRoom(room)
	a.waitJS(`document.querySelectorAll('#messages .msg').length > 0`)

	// Long tasks on B's main thread while it syncs, for the log (the benchmark reports them).
	evalJS[chromedp.Void](b, `(() => { window.__long = []; new PerformanceObserver(l => { for (const e of l.getEntries()) window.__long.push(e.duration); }).observe({type: 'longtask', buffered: false}); })()`)
	offer, _ := a.download(menuClick("#reconnect"))
	answer, _ := b.importAndDownload(offer)
	start := time.Now()
	a.importFile(answer)
	b.waitStatus("connected")
	b.waitLong(fmt.Sprintf(`chattorrentStoredEntries(%q).then((c) => c >= %d)`, room, n+1), time.Minute)
	b.waitMessage(fmt.Sprintf("mensaje %d del archivo", n-1))
	b.waitJS(`document.getElementById('show-earlier').hidden === false`)
	t.Logf("B synced %d entries in %v; B's long tasks (ms): %v", n, time.Since(start).Round(time.Millisecond), evalJS[[]float64](b, `window.__long`))

	shown := evalJS[int](b, `document.querySelectorAll('#messages .msg').length`)
	if shown > 400 {
		t.Errorf("B renders %d message nodes for a %d-entry history", shown, n)
	}
	if got := evalJS[string](b, `[...document.querySelectorAll('#messages .msg:not(.system) .msg-body')].pop()?.textContent`); got != fmt.Sprintf("mensaje %d del archivo", n-1) {
		t.Errorf("B's latest message is %q", got)
	}
	b.do(chromedp.Click(chromedp.CSS("#show-earlier")))
	b.waitJS(fmt.Sprintf(`document.querySelectorAll('#messages .msg').length > %d`, shown))

	b.do(chromedp.Reload())
	b.waitJS(`document.body.dataset.ready === '1'`)
	b.openRoom(room)
	if !strings.Contains(b.text("#show-earlier"), "98") {
		t.Errorf("after reload B offers %q", b.text("#show-earlier"))
	}
	a.checkConsole()
	b.checkConsole()
}

// TestHistoryBeyondLocalStorage: a 30,000-entry history (12 MB of entries: more than
// localStorage holds for an origin, about 5 M characters) is kept by A, syncs to a new guest
// B, who stores all of it, and both still have it after a reload.
func TestHistoryBeyondLocalStorage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 30,000 entries")
	}
	const n = 30000
	room := strings.Repeat("6b", 16)
	entries := archive(t, room, n)
	size := 0
	a := newUser(t, "A", "en-US")
	rooms, _ := json.Marshal([]map[string]any{{"id": room, "name": "Grande", "created": time.Now().UnixMilli(), "peer": nil}})
	evalJS[chromedp.Void](a, fmt.Sprintf(`localStorage.setItem('chattorrent:v1:rooms', %s)`, js(string(rooms))))
	for i := 0; i < n; i += 5000 {
		b, _ := json.Marshal(entries[i:min(i+5000, n)])
		size += len(b)
		evalJS[chromedp.Void](a, fmt.Sprintf(`import('/js/entries.js').then(({ EntryStore }) => new EntryStore(null).append(%q, %s))`, room, b))
	}
	t.Logf("%d entries, %.1f MB of JSON", n, float64(size)/1e6)
	a.do(chromedp.Reload())
	a.waitJS(`document.body.dataset.ready === '1'`)
	a.openRoom(room)
	a.waitMessage(fmt.Sprintf("mensaje %d del archivo", n-1))

	b := newUser(t, "B", "en-US")
	offer, _ := a.download(menuClick("#reconnect"))
	answer, _ := b.importAndDownload(offer)
	a.importFile(answer)
	b.waitStatus("connected")
	b.waitLong(fmt.Sprintf(`chattorrentStoredEntries(%q).then((c) => c >= %d)`, room, n+1), 3*time.Minute) // A's and B's joins too
	b.waitMessage(fmt.Sprintf("mensaje %d del archivo", n-1))
	for _, u := range []*user{a, b} {
		u.do(chromedp.Reload())
		u.waitJS(`document.body.dataset.ready === '1'`)
		u.openRoom(room)
		u.waitMessage(fmt.Sprintf("mensaje %d del archivo", n-1))
		if got := evalJS[int](u, fmt.Sprintf(`chattorrentStoredEntries(%q)`, room)); got < n+1 {
			t.Errorf("%s stores %d entries after a reload", u.name, got)
		}
		u.checkConsole()
	}
}

// TestIdentityBackup: a person keeps their identity (key and name) by exporting it and
// importing it into another browser; peers see the same fingerprint beside the name.
func TestIdentityBackup(t *testing.T) {
	a := newUser(t, "A", "en-US")
	a.setName("Ana")
	fp := a.text("#my-fingerprint")
	if len(fp) != 9 || fp[4] != '-' {
		t.Fatalf("fingerprint %q", fp)
	}
	// The key is a non-extractable CryptoKey in IndexedDB: nothing of it in localStorage,
	// and the page's own script cannot export the key it signs with.
	if got := evalJS[string](a, `localStorage.getItem('chattorrent.identity') || JSON.stringify(Object.fromEntries(Object.entries(localStorage)))`); strings.Contains(got, `"d"`) || strings.Contains(got, "jwk") {
		t.Errorf("localStorage holds the key: %s", got)
	}
	if got := evalJS[string](a, `import('/js/keystore.js').then(async (m) => { const k = await m.loadKey(); if (!k) return 'no key'; if (k.privateKey.extractable) return 'extractable'; try { await crypto.subtle.exportKey('jwk', k.privateKey); return 'exported'; } catch { return 'refused'; } })`); got != "refused" {
		t.Errorf("the kept signing key: %s, want a key exportKey refuses", got)
	}
	a.do(chromedp.Click(chromedp.CSS(".identity summary")))
	path, name := a.download(chromedp.Click(chromedp.CSS("#identity-export")))
	if !strings.HasPrefix(name, "chattorrent-identity-") {
		t.Errorf("identity file %q", name)
	}
	if raw, err := os.ReadFile(path); err != nil || !strings.Contains(string(raw), `"d":`) {
		t.Errorf("the exported identity holds no private key: %v %s", err, raw)
	}
	b := newUser(t, "B", "en-US")
	if b.text("#my-fingerprint") == fp {
		t.Fatal("two browsers made the same key")
	}
	b.do(chromedp.Click(chromedp.CSS(".identity summary")), chromedp.SetUploadFiles(chromedp.CSS("#identity-file"), []string{path}))
	b.waitJS(fmt.Sprintf(`document.getElementById('my-fingerprint').textContent === %q`, fp))
	if got := evalJS[string](b, `document.getElementById('my-name').value`); got != "Ana" {
		t.Errorf("restored name %q", got)
	}
	// Survives closing the browser.
	b.reopen()
	b.waitJS(fmt.Sprintf(`document.getElementById('my-fingerprint').textContent === %q`, fp))

	// An older page kept the key as a JWK in localStorage: the page moves it into
	// IndexedDB and keeps the identity.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := newUser(t, "D", "en-US")
	evalJS[bool](d, fmt.Sprintf(`(async () => {
		const f = %s;
		const db = await new Promise((res, rej) => { const r = indexedDB.deleteDatabase('chattorrent-keys'); r.onsuccess = res; r.onerror = rej; r.onblocked = res; });
		const key = Object.keys(localStorage).find((k) => k.endsWith('identity'));
		localStorage.setItem(key, JSON.stringify({ author: f.jwk.x, name: f.name, jwk: f.jwk }));
		return true;
	})()`, raw))
	d.reopen()
	d.waitJS(fmt.Sprintf(`document.getElementById('my-fingerprint').textContent === %q`, fp))
	if got := evalJS[string](d, `JSON.stringify(Object.fromEntries(Object.entries(localStorage)))`); strings.Contains(got, "jwk") {
		t.Errorf("after the move localStorage still holds the key: %s", got)
	}

	// A file that is not an identity changes nothing.
	bad := t.TempDir() + "/not-identity.json"
	os.WriteFile(bad, []byte(`{"format":"chattorrent-identity","v":1,"jwk":{"kty":"OKP","crv":"Ed25519","x":"short","d":"x"}}`), 0o600)
	b.do(chromedp.Click(chromedp.CSS(".identity summary")), chromedp.SetUploadFiles(chromedp.CSS("#identity-file"), []string{bad}))
	b.waitJS(`document.getElementById('notice').dataset.code === 'identity-bad'`)
	if got := b.text("#my-fingerprint"); got != fp {
		t.Errorf("a bad identity file changed the fingerprint to %q", got)
	}

	// Peers show the name with that fingerprint.
	c := newUser(t, "C", "en-US")
	b.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Huellas"))
	offer, _ := b.download(chromedp.Click(chromedp.CSS("#create-room")))
	b.say("soy Ana")
	answer, _ := c.importAndDownload(offer)
	b.importFile(answer)
	c.waitMessage("soy Ana")
	if got := evalJS[string](c, `[...document.querySelectorAll('#messages .msg')].find(m => m.textContent.includes('soy Ana')).querySelector('.msg-fp').textContent`); got != fp {
		t.Errorf("C shows Ana's fingerprint as %q, want %q", got, fp)
	}
	a.checkConsole()
	b.checkConsole()
	c.checkConsole()
}

// TestLanguageSwitch: the switch overrides the browser's language and is remembered.
func TestLanguageSwitch(t *testing.T) {
	u := newUser(t, "A", "en-US")
	if got := u.text("#create-room"); got != "1. Create room & export .torrent" {
		t.Fatalf("English label %q", got)
	}
	u.do(chromedp.SetValue(chromedp.CSS("#lang"), "es"))
	evalJS[chromedp.Void](u, `document.getElementById('lang').dispatchEvent(new Event('change'))`)
	u.waitJS(`document.getElementById('create-room').textContent === '1. Crear Sala & Exportar .torrent'`)
	if got := evalJS[string](u, `document.documentElement.lang`); got != "es" {
		t.Errorf("html lang %q", got)
	}
	u.reopen()
	if got := u.text("#import-button"); got != "2. Importar Archivo .torrent" {
		t.Errorf("after reopening: %q", got)
	}
	u.checkConsole()
}

// TestForkedAuthor: two peers hold different entries at the same (author, seq), for example
// because that author's key was copied to a second device. On connect each keeps its own
// first entry, refuses the other's, and marks the author as forked; the session goes on.
func TestForkedAuthor(t *testing.T) {
	room := strings.Repeat("6b", 16)
	base := archive(t, room, 3)
	key := ed25519.NewKeyFromSeed([]byte(strings.Repeat("k", 32)))
	fork := func(body string) history.Entry {
		e := history.Entry{Room: room, Author: base[2].Author, Name: "Archivo", Seq: 4, Prev: base[2].ID,
			TS: time.Now().Add(-time.Minute).UnixMilli(), Kind: history.KindText, Body: body}
		e.Sign(key)
		return e
	}
	a := newUser(t, "A", "en-US")
	b := newUser(t, "B", "en-US")
	a.seedStorage(room, "Bifurcada", append(base[:3:3], fork("version A")))
	b.seedStorage(room, "Bifurcada", append(base[:3:3], fork("version B")))
	a.openRoom(room)
	b.openRoom(room)
	offer, _ := a.download(menuClick("#reconnect"))
	answer, _ := b.importAndDownload(offer)
	a.importFile(answer)
	a.waitStatus("connected")
	b.waitStatus("connected")
	for _, u := range []*user{a, b} {
		u.waitJS(`document.querySelectorAll('#messages .msg-forked').length > 0`)
	}
	// Each kept its own first entry; the session goes on: a new message still arrives.
	if got := a.bodies(); !slices.Contains(got, "version A") || slices.Contains(got, "version B") {
		t.Errorf("A shows %q", got)
	}
	if got := b.bodies(); !slices.Contains(got, "version B") || slices.Contains(got, "version A") {
		t.Errorf("B shows %q", got)
	}
	a.say("todavía conectados")
	b.waitMessage("todavía conectados")
	a.checkConsole()
	b.checkConsole()
}

// TestHistoryMove: a history an earlier page kept in localStorage is moved to IndexedDB when
// the page starts; what an old tab writes there afterwards, overlapping what was moved, is
// moved at the next start, each entry kept once; localStorage keeps no entries.
func TestHistoryMove(t *testing.T) {
	const n = 500
	room := strings.Repeat("7c", 16)
	entries := archive(t, room, n)
	u := newUser(t, "A", "en-US")
	legacy := fmt.Sprintf(`Object.keys(localStorage).filter((k) => k.startsWith('chattorrent:v1:room:%s:') && !k.endsWith(':delivered') && !k.endsWith(':delivered-seq')).length`, room)
	for _, part := range [][]history.Entry{entries[:300], entries[200:]} {
		u.seedStorage(room, "Mudanza", part)
		if got := evalJS[int](u, legacy); got != 0 {
			t.Errorf("%d history keys left in localStorage", got)
		}
	}
	if got := evalJS[int](u, fmt.Sprintf(`chattorrentStoredEntries(%q)`, room)); got != n {
		t.Errorf("%d entries stored, want %d", got, n)
	}
	u.openRoom(room)
	u.waitMessage(fmt.Sprintf("mensaje %d del archivo", n-1))
	u.checkConsole()
}

// TestTwoTabs: the same person in two tabs of one browser. A room created in the first tab
// appears in the second with what was said in it; then each tab shows what the other says,
// as it is said, and the person's entries stay one chain (no fork from two tabs writing).
func TestTwoTabs(t *testing.T) {
	a := newUser(t, "A", "es-ES")
	a.setName("Ana")
	tabCtx, cancel := chromedp.NewContext(a.ctx)
	defer cancel()
	tab := &user{t: t, name: "A, second tab", lang: a.lang, profile: a.profile, dl: a.dl, base: a.base, rules: a.rules, ctx: tabCtx}
	if err := chromedp.Do(tabCtx); err != nil { // the tab lives as long as tabCtx, not a step's
		t.Fatal(err)
	}
	tab.do(chromedp.Navigate(a.base + "/"))
	tab.waitJS(`document.body.dataset.ready === '1'`)

	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Pestañas"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.say("uno")
	room := evalJS[string](a, `document.getElementById('messages').dataset.room`)
	tab.waitJS(fmt.Sprintf(`!!document.querySelector('.room-item[data-room-id=%q]')`, room))
	tab.openRoom(room)
	tab.waitMessage("uno")
	a.say("dos")
	tab.waitMessage("dos")
	tab.say("tres")
	a.waitMessage("tres")
	a.say("cuatro")
	tab.waitMessage("cuatro")
	for _, u := range []*user{a, tab} {
		if got := u.bodies(); !slices.Equal(got[len(got)-4:], []string{"uno", "dos", "tres", "cuatro"}) {
			t.Errorf("%s shows %q", u.name, got)
		}
	}
	a.do(chromedp.Reload())
	a.waitJS(`document.body.dataset.ready === '1'`)
	a.openRoom(room)
	a.waitMessage("cuatro")
	if got := evalJS[int](a, fmt.Sprintf(`chattorrentStoredEntries(%q)`, room)); got != 5 { // a join and four messages
		t.Errorf("%d entries stored, want 5", got)
	}
	a.checkConsole()
}
