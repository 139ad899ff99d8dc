package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// phone is a 390x844 touch phone (an iPhone 12 to 15's viewport in CSS pixels).
var phone = chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch)

// namedControlJS finds the control the room's hint names between «» or “” (the last such name:
// the first may be a file's) and says what is wrong with it, or "" when it is on screen,
// fully inside the viewport and not covered.
const namedControlJS = `(() => {
  const hint = document.getElementById('room-hint');
  if (hint.hidden) return 'no hint';
  const names = [...hint.textContent.matchAll(/[«“]([^»”]+)[»”]/g)].map((m) => m[1]);
  if (!names.length) return 'the hint names no control: ' + hint.textContent;
  const name = names[names.length - 1];
  const all = [...document.querySelectorAll('button, .button, [role=button]')].filter((n) => n.textContent.trim() === name);
  const shown = all.filter((n) => n.getClientRects().length > 0);
  if (!shown.length) return 'no control "' + name + '" on screen (' + all.length + ' hidden)';
  const n = shown[0];
  const r = n.getBoundingClientRect();
  if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) return '"' + name + '" outside the viewport: ' + JSON.stringify(r);
  if (r.height < 44) return '"' + name + '" is ' + r.height + 'px tall';
  const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  if (at !== n && !n.contains(at)) return '"' + name + '" is covered by ' + (at && at.outerHTML.slice(0, 80));
  return '';
})()`

// TestPhoneWaitingRoomImport: on a phone, the waiting room's hint says to import the answer
// with «2. Importar Archivo .torrent»; that control is in the room view, on screen, under the
// hint (the room list, where the other one is, is off screen), in Spanish and English, and it
// imports the answer: the room connects.
func TestPhoneWaitingRoomImport(t *testing.T) {
	a := newUser(t, "A", "es-ES")
	b := newUser(t, "B", "en-US")
	a.do(phone)
	a.setName("Ana")
	b.setName("Bruno")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Sala del móvil"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitStatus("waiting")
	if evalJS[bool](a, `document.getElementById('home').getClientRects().length > 0`) {
		t.Fatal("the room list is on screen next to the room: not the phone layout")
	}
	if got := evalJS[string](a, namedControlJS); got != "" {
		t.Errorf("Spanish: %s\n%s", got, a.state())
	}
	if got := a.text("#room-import"); got != "2. Importar Archivo .torrent" {
		t.Errorf("room's import button %q", got)
	}
	a.do(chromedp.SetValue(chromedp.CSS("#lang"), "en"))
	evalJS[chromedp.Void](a, `document.getElementById('lang').dispatchEvent(new Event('change'))`)
	// The hint is kept in the language it was made in until the next one; the button follows
	// the switch. A fresh offer makes an English hint.
	offer, _ := a.download(menuClick("#reconnect"))
	a.waitJS(`document.getElementById('room-hint').textContent.includes('“2. Import .torrent file”')`)
	if got := evalJS[string](a, namedControlJS); got != "" {
		t.Errorf("English: %s\n%s", got, a.state())
	}

	// The control does what the hint says: the answer imported through it connects the room.
	answer, _ := b.importAndDownload(offer)
	a.do(chromedp.SetUploadFiles(chromedp.CSS("#room-import-file"), []string{answer}))
	a.waitStatus("connected")
	b.waitStatus("connected")
	if !evalJS[bool](a, `document.getElementById('room-import').hidden`) {
		t.Error("the import button stays after the room connected")
	}
	a.checkConsole()
	b.checkConsole()
}

// composerJS says what is wrong with the open room's composer on this screen, or "".
const composerJS = `(() => {
  const bad = [];
  if (document.documentElement.scrollWidth > innerWidth) bad.push('horizontal scroll: ' + document.documentElement.scrollWidth + ' > ' + innerWidth);
  const c = document.getElementById('composer').getBoundingClientRect();
  if (c.height === 0 || c.top < 0 || c.bottom > innerHeight + 0.5 || c.left < 0 || c.right > innerWidth + 0.5) bad.push('composer not fully on screen: ' + JSON.stringify(c));
  for (const id of ['attach', 'record', 'send', 'composer-input']) {
    const n = document.getElementById(id);
    const r = n.getBoundingClientRect();
    if (r.width < 44 || r.height < 44) bad.push(id + ' is ' + r.width + 'x' + r.height);
    if (r.left < 0 || r.right > innerWidth + 0.5) bad.push(id + ' is cut off');
  }
  for (const id of ['attach', 'record']) {
    const n = document.getElementById(id);
    if (/\p{Extended_Pictographic}/u.test(n.textContent)) bad.push(id + ' shows an emoji: ' + n.textContent);
    if (!n.querySelector('svg')) bad.push(id + ' has no icon');
    if (!n.getAttribute('aria-label')) bad.push(id + ' has no aria-label');
  }
  return bad.join('; ');
})()`

// TestSmallPhoneComposer: on a 360x640 touch phone the open room does not scroll sideways,
// the composer is on screen, its controls are inline SVG icons with aria-labels (no emoji)
// and every one is a touch target of 44 px or more; in Spanish, and after switching to English.
func TestSmallPhoneComposer(t *testing.T) {
	a := newUser(t, "A", "es-ES")
	a.do(chromedp.EmulateViewport(360, 640, chromedp.EmulateMobile, chromedp.EmulateTouch))
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Una sala con un nombre bastante largo para un móvil pequeño"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitStatus("waiting")
	if got := evalJS[string](a, composerJS); got != "" {
		t.Errorf("Spanish: %s", got)
	}
	if got := evalJS[string](a, `document.getElementById('record').getAttribute('aria-label')`); got != "Grabar nota de voz" {
		t.Errorf("record's aria-label %q", got)
	}
	a.do(chromedp.SetValue(chromedp.CSS("#lang"), "en"))
	evalJS[chromedp.Void](a, `document.getElementById('lang').dispatchEvent(new Event('change'))`)
	if got := evalJS[string](a, composerJS); got != "" {
		t.Errorf("English: %s", got)
	}
	if got := evalJS[string](a, `document.getElementById('attach').getAttribute('aria-label')`); got != "Attach a file or image" {
		t.Errorf("attach's aria-label %q", got)
	}
	// Recording: the stop icon and the time replace the microphone, still no sideways scroll.
	a.do(chromedp.Click(chromedp.CSS("#record")))
	a.waitJS(`document.getElementById('record').dataset.recording === '1' && document.getElementById('record-time').textContent !== ''`)
	if got := evalJS[string](a, composerJS); got != "" {
		t.Errorf("recording: %s", got)
	}
	if !evalJS[bool](a, `getComputedStyle(document.querySelector('#record .ico-mic')).display === 'none' && getComputedStyle(document.querySelector('#record .ico-stop')).display !== 'none'`) {
		t.Error("recording: the stop icon is not shown instead of the microphone")
	}
	a.do(chromedp.Click(chromedp.CSS("#record")))
	a.waitJS(`document.getElementById('record').dataset.recording === undefined && document.getElementById('record-time').textContent === ''`)
	a.checkConsole()
}
