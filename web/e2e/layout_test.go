package e2e

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

var screenshots = flag.Bool("e2e.screenshots", false, "TestScreenshots: write the key screens at both phone sizes to docs/screenshots/")

// phoneSizes are the screens the layout is checked on: a small Android phone and an
// iPhone 12 to 15, in CSS pixels, with touch.
var phoneSizes = []struct {
	name string
	w, h int64
}{{"360x640", 360, 640}, {"390x844", 390, 844}}

// menuClick opens the room's actions menu (#room-menu) if it is closed and clicks the
// item sel in it, as a person does.
func menuClick(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](`(() => { const m = document.getElementById('room-menu'); if (!m.open) document.getElementById('room-menu-button').click(); })()`),
		chromedp.Click(chromedp.CSS(sel)),
	)
}

// layoutJS says what is wrong with the screen shown, or "": the page scrolls sideways; a
// visible control is smaller than a 44 px touch target, reaches out of the screen sideways,
// has its words cut, shows an emoji or a symbol as its icon, or has no words and no inline
// SVG icon with an aria-label; the composer's placeholder does not fit in it.
const layoutJS = `(() => {
  const bad = [];
  const vw = innerWidth;
  if (document.documentElement.scrollWidth > vw) bad.push('horizontal scroll: ' + document.documentElement.scrollWidth + ' > ' + vw);
  const name = (n) => '#' + (n.id || '') + '.' + (n.className && n.className.baseVal === undefined ? n.className : '') + ' "' + n.textContent.trim().slice(0, 30) + '"';
  const controls = [...document.querySelectorAll('button, .button, summary, select, textarea, input:not([type=file]):not([type=checkbox]), [role=button], a[href]')]
    .filter((n) => n.checkVisibility({ visibilityProperty: true }));
  for (const n of controls) {
    const r = n.getBoundingClientRect();
    if (r.width < 44 || r.height < 44) bad.push(name(n) + ' is ' + Math.round(r.width) + 'x' + Math.round(r.height));
    if (r.left < -0.5 || r.right > vw + 0.5) bad.push(name(n) + ' reaches out of the screen: ' + Math.round(r.left) + '..' + Math.round(r.right));
    if (n.matches('select, textarea, input')) continue;
    const words = n.textContent.trim();
    if (/[\p{Extended_Pictographic}\p{So}\u2190-\u21ff]/u.test(words)) bad.push(name(n) + ' shows a symbol as its icon');
    if (!words && !n.querySelector('svg, img')) bad.push(name(n) + ' has neither words nor an icon');
    if (!words && !n.querySelector('img[alt]:not([alt=""])') && !n.getAttribute('aria-label')) bad.push(name(n) + ' has no words and no aria-label');
    if (n.scrollWidth > n.clientWidth + 1) bad.push(name(n) + ' has its words cut: ' + n.scrollWidth + ' > ' + n.clientWidth);
  }
  const input = document.getElementById('composer-input');
  if (input.getClientRects().length > 0) {
    // The placeholder in the field as text: it fits on the field's one line, uncut.
    const keep = input.value;
    input.value = input.placeholder;
    if (input.scrollHeight > input.clientHeight + 1 || input.scrollWidth > input.clientWidth + 1) bad.push('the composer placeholder "' + input.placeholder + '" does not fit: ' + input.scrollWidth + 'x' + input.scrollHeight + ' in ' + input.clientWidth + 'x' + input.clientHeight);
    input.value = keep;
  }
  return bad.join('; ');
})()`

// roomJS says what is wrong with the open room on a phone, or "": its actions are not in
// one closed menu (#room-menu) with only the back button and the menu's button in the
// room's header, or the chat and the composer are not both on screen.
const roomJS = `(() => {
  const bad = [];
  const shown = (n) => n && n.checkVisibility({ visibilityProperty: true });
  const menu = document.getElementById('room-menu');
  if (!menu || menu.tagName !== 'DETAILS') return 'no #room-menu (a <details>)';
  if (menu.open) bad.push('the menu is open');
  for (const id of ['reconnect', 'export-history', 'export-media', 'keep-on-box', 'box-record', 'publish-offer']) {
    const n = document.getElementById(id);
    if (!menu.contains(n)) bad.push(id + ' is not in the menu');
    else if (shown(n)) bad.push(id + ' is shown with the menu closed');
  }
  const head = document.querySelector('.room-head');
  const headControls = [...head.querySelectorAll('button, .button, summary')].filter(shown).map((n) => n.id);
  if (headControls.join() !== 'back,room-menu-button') bad.push('the room header shows ' + headControls.join());
  const c = document.getElementById('composer').getBoundingClientRect();
  if (c.height === 0 || c.top < 0 || c.bottom > innerHeight + 0.5) bad.push('the composer is not on screen: ' + Math.round(c.top) + '..' + Math.round(c.bottom) + ' of ' + innerHeight);
  // The chat: the messages' list, on screen, at least a quarter of the screen's height.
  const m = document.getElementById('messages').getBoundingClientRect();
  const seen = Math.min(m.bottom, innerHeight) - Math.max(m.top, 0);
  if (seen < innerHeight / 4) bad.push('the chat has ' + Math.round(seen) + ' px of ' + innerHeight);
  return bad.join('; ');
})()`

// menuJS says what is wrong with the open menu, or "": each item shown is inside the
// screen, uncovered and says what it does in the page's language.
const menuJS = `((want) => {
  const bad = [];
  const menu = document.getElementById('room-menu');
  if (!menu.open) return 'the menu is closed';
  const items = [...document.querySelectorAll('#room-actions button')].filter((n) => n.checkVisibility({ visibilityProperty: true }));
  const words = items.map((n) => n.textContent.trim());
  for (const w of want) if (!words.includes(w)) bad.push('no item "' + w + '" in ' + JSON.stringify(words));
  for (const n of items) {
    const r = n.getBoundingClientRect();
    if (r.top < 0 || r.left < 0 || r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5) bad.push(n.id + ' outside the screen');
    const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    if (at !== n && !n.contains(at)) bad.push(n.id + ' is covered');
  }
  return bad.join('; ');
})`

// check runs a check of the screen and reports what is wrong under the screen's name.
func check(t *testing.T, u *user, screen, expr string) {
	t.Helper()
	if got := evalJS[string](u, expr); got != "" {
		t.Errorf("%s, %s: %s", u.name, screen, got)
	}
}

// phoneFlow walks the key screens on a phone of size w x h with touch, checks each, and
// calls shot(name) at each (screenshots): the room list, the waiting room, its menu open,
// a room with messages and a picture, and the room list with the box's panel. A is in
// Spanish, B in English.
func phoneFlow(t *testing.T, w, h int64, shot func(u *user, name string)) {
	a := newUser(t, "A", "es-ES")
	b := newUser(t, "B", "en-US")
	for _, u := range []*user{a, b} {
		u.do(chromedp.EmulateViewport(w, h, chromedp.EmulateMobile, chromedp.EmulateTouch))
	}
	a.setName("Ana")
	b.setName("Bruno")
	check(t, a, "room list", layoutJS)
	shot(a, "rooms")

	// The waiting room: the control the hint names is there; the actions in one menu.
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Excursión al museo"))
	offer, _ := a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitStatus("waiting")
	check(t, a, "waiting room", layoutJS)
	check(t, a, "waiting room", roomJS)
	check(t, a, "waiting room", namedControlJS)
	shot(a, "waiting-room")

	// The menu, with the keyboard: Enter opens it, Escape closes it and gives the focus back.
	a.do(chromedp.Focus(chromedp.CSS("#room-menu-button")), chromedp.KeyEvent(kb.Enter))
	a.waitJS(`document.getElementById('room-menu').open`)
	check(t, a, "menu", layoutJS)
	check(t, a, "menu", menuJS+`(["Nueva oferta (reconectar)", "Exportar Historial (JSON)", "Exportar con archivos (zip)", "Guardar copia en esta caja"])`)
	shot(a, "menu")
	a.do(chromedp.KeyEvent(kb.Escape))
	a.waitJS(`!document.getElementById('room-menu').open && document.activeElement.id === 'room-menu-button'`)

	// Connected, with messages and a picture, on both phones.
	answer, _ := b.importAndDownload(offer)
	b.waitStatus("waiting")
	check(t, b, "waiting room", roomJS)
	a.do(chromedp.SetUploadFiles(chromedp.CSS("#room-import-file"), []string{answer}))
	a.waitStatus("connected")
	b.waitStatus("connected")
	a.say("¿Quién trae la merienda?")
	b.say("I will bring sandwiches for everyone")
	a.do(chromedp.SetUploadFiles(chromedp.CSS("#attach-file"), []string{writePNG(t)}))
	loaded := `[...document.querySelectorAll('#messages .msg-image')].some(i => i.complete && i.naturalWidth === 64)`
	a.waitJS(loaded)
	b.waitJS(loaded)
	for _, u := range []*user{a, b} {
		u.waitJS(`(() => { const m = document.getElementById('messages'); return m.scrollHeight - m.scrollTop - m.clientHeight < 2; })()`)
		check(t, u, "room", layoutJS)
		check(t, u, "room", roomJS)
	}
	shot(a, "room")
	shot(b, "room-en")
	b.do(chromedp.Click(chromedp.CSS("#room-menu-button")))
	b.waitJS(`document.getElementById('room-menu').open`)
	check(t, b, "menu", menuJS+`(["New offer (reconnect)", "Export history (JSON)", "Export with files (zip)"])`)
	shot(b, "menu-en")
	// A tap elsewhere closes it.
	b.do(chromedp.Click(chromedp.CSS("#room-title")))
	b.waitJS(`!document.getElementById('room-menu').open`)

	// The box's panel, once the box keeps the room.
	a.do(menuClick("#keep-on-box"))
	a.waitJS(`document.getElementById('room-peer').textContent.includes('e2ebox')`)
	a.do(chromedp.Click(chromedp.CSS("#back")))
	a.waitJS(`document.querySelectorAll('#box-rooms .box-room').length === 1 && document.querySelectorAll('#box-status li').length > 0`)
	check(t, a, "room list with the box", layoutJS)
	// The box's panel at the top of the room list (the list scrolls, not the page), drawn.
	// Scrolled, then measured after two frames; again while the panel still moves (the
	// box's status and rooms arrive over the network and change its height above).
	var below float64
	for range 20 {
		below = evalJS[float64](a, `(async () => {
  const b = document.getElementById('box');
  const p = b.closest('.panel');
  p.scrollTop += b.getBoundingClientRect().top - p.getBoundingClientRect().top;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return b.getBoundingClientRect().top - document.querySelector('.home').getBoundingClientRect().top;
})()`)
		if below <= 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if below > 1 {
		t.Errorf("A: the box's panel is %v px below the top of the room list", below)
	}
	shot(a, "box")
	a.checkConsole()
	b.checkConsole()
}

// TestPhoneLayout: the phone-first layout at 360x640 and 390x844 with touch, in Spanish
// and English: no sideways scroll, every control a 44 px touch target named by words or an
// inline SVG icon (no emoji), nothing cut (the composer's placeholder fits), the room's
// actions in one keyboard-accessible menu, the chat and the composer on screen, and the
// control the waiting room's hint names on that screen.
func TestPhoneLayout(t *testing.T) {
	for _, s := range phoneSizes {
		t.Run(s.name, func(t *testing.T) {
			phoneFlow(t, s.w, s.h, func(*user, string) {})
		})
	}
}

// TestScreenshots writes the key screens at both phone sizes to docs/screenshots/ (run with
// -e2e.screenshots; docs/UI.md has the command). The layout is checked as in TestPhoneLayout.
func TestScreenshots(t *testing.T) {
	if !*screenshots {
		t.Skip("run with -e2e.screenshots to write docs/screenshots/")
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range phoneSizes {
		t.Run(s.name, func(t *testing.T) {
			phoneFlow(t, s.w, s.h, func(u *user, name string) {
				t.Helper()
				ctx, cancel := u.stepCtx()
				defer cancel()
				png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatalf("screenshot %s: %v", name, err)
				}
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%s.png", name, s.name)), png, 0o644); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}
