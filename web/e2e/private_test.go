package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// batchesStored says how the page's media batches are stored: "buf" (ArrayBuffers),
// "blob" or "" (none), read straight from IndexedDB.
const batchesStored = `new Promise((resolve, reject) => {
  const r = indexedDB.open('chattorrent-media');
  r.onerror = () => reject(r.error);
  r.onsuccess = () => {
    const g = r.result.transaction('batches').objectStore('batches').getAll();
    g.onerror = () => reject(g.error);
    g.onsuccess = () => {
      const kinds = new Set(g.result.map((b) => b.buf instanceof ArrayBuffer ? 'buf' : b.blob instanceof Blob ? 'blob' : '?'));
      r.result.close();
      resolve([...kinds].sort().join(','));
    };
  };
})`

// TestMediaArrayBuffers: where IndexedDB refuses Blobs (WebKit's private browsing), the
// page stores media as ArrayBuffers. Chromium takes Blobs, so the test forces that path
// with the page's test flag ?media=buffers (media.js): a picture is sent and shown on both
// sides, both store it as ArrayBuffers, and it is still shown after a reload.
func TestMediaArrayBuffers(t *testing.T) {
	a := newUser(t, "A", "en-US")
	b := newUser(t, "B", "en-US")
	for _, u := range []*user{a, b} {
		u.do(chromedp.Navigate(u.base + "/?media=buffers"))
		u.waitJS(`document.body.dataset.ready === '1'`)
	}
	a.setName("Ana")
	b.setName("Bruno")
	connect(a, b, "Privado")
	pic := writePNG(t)
	a.do(chromedp.SetUploadFiles(chromedp.CSS("#attach-file"), []string{pic}))
	loaded := `[...document.querySelectorAll('#messages .msg-image')].some(i => i.complete && i.naturalWidth === 64 && i.alt === 'foto del aula.png')`
	a.waitJS(loaded)
	b.waitJS(loaded)
	for _, u := range []*user{a, b} {
		if got := evalJS[string](u, batchesStored); got != "buf" {
			t.Errorf("%s: batches stored as %q, want ArrayBuffers only", u.name, got)
		}
	}
	roomID := evalJS[string](b, `document.getElementById('messages').dataset.room`)
	b.do(chromedp.Reload())
	b.waitJS(`document.body.dataset.ready === '1'`)
	b.openRoom(roomID)
	b.waitJS(loaded)
	if notice := evalJS[string](b, `document.getElementById('notice').hidden ? '' : document.getElementById('notice').textContent`); notice != "" {
		t.Errorf("B: notice %q", notice)
	}
	a.checkConsole()
	b.checkConsole()
}
