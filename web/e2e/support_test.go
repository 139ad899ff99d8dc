package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// noEd25519 makes Chromium's WebCrypto behave as an older browser's (iOS below 17, Chrome
// below 137, Firefox below 129): every Ed25519 operation is rejected as unsupported. It runs
// before the page's scripts. (Not in the verify worker: the page starts it only with Ed25519.)
const noEd25519 = `(() => {
  const s = crypto.subtle;
  const ed = (a) => a === 'Ed25519' || (a && typeof a === 'object' && a.name === 'Ed25519');
  const no = () => Promise.reject(new DOMException('Operation is not supported', 'NotSupportedError'));
  for (const [m, i] of [['generateKey', 0], ['importKey', 2], ['sign', 0], ['verify', 0]]) {
    const orig = s[m].bind(s);
    s[m] = (...args) => (ed(args[i]) ? no() : orig(...args));
  }
})();`

// TestNoEd25519: a browser without Ed25519 in WebCrypto gets a page that says which
// browser versions ChatTorrent needs, in Spanish and in English, instead of the app (and
// not "Could not connect: Operation is not supported"), with nothing in the console.
func TestNoEd25519(t *testing.T) {
	a := newUserAt(t, "A", "es-ES", server.base, noDNS, func(u *user) { u.preload = noEd25519 })
	a.waitJS(`document.body.dataset.unsupported === '1'`)
	if got := evalJS[bool](a, `crypto.subtle.generateKey({name: 'Ed25519'}, true, ['sign']).then(() => true, () => false)`); got {
		t.Fatal("the preload did not remove Ed25519")
	}
	visible := func(sel string) bool {
		return evalJS[bool](a, `(() => { const n = document.querySelector(`+js(sel)+`); return !!n && n.getClientRects().length > 0; })()`)
	}
	check := func(title string, words ...string) {
		t.Helper()
		if !visible("#unsupported") {
			t.Fatalf("the message is not shown:\n%s", a.state())
		}
		for _, sel := range []string{"#home", "#room", "#composer", "#my-name"} {
			if visible(sel) {
				t.Errorf("%s is shown next to the message", sel)
			}
		}
		if got := a.text("#unsupported h2"); got != title {
			t.Errorf("title %q, want %q", got, title)
		}
		body := a.text("#unsupported")
		for _, w := range words {
			if !strings.Contains(body, w) {
				t.Errorf("message %q lacks %q", body, w)
			}
		}
		if strings.Contains(body, "Operation is not supported") || strings.Contains(a.text("#notice"), "Operation") {
			t.Errorf("the browser's error is shown: %q / %q", body, a.text("#notice"))
		}
	}
	check("Este navegador es demasiado antiguo para ChatTorrent", "Ed25519", "Safari", "iOS 17", "Chrome 137", "Android", "Firefox 129")
	a.do(chromedp.SetValue(chromedp.CSS("#lang"), "en"))
	evalJS[chromedp.Void](a, `document.getElementById('lang').dispatchEvent(new Event('change'))`)
	check("This browser is too old for ChatTorrent", "Ed25519", "Safari", "iOS 17", "Chrome 137", "Android", "Firefox 129")
	if evalJS[bool](a, `document.getElementById('notice').hidden === false`) {
		t.Errorf("a notice is shown: %q", a.text("#notice"))
	}
	a.checkConsole()
}
