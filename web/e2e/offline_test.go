package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// startStoppableBox runs a box of its own, like startBox, and returns its origin and a stop
// function (SIGTERM, then wait): the test goes on without it.
func startStoppableBox(t *testing.T, hostname string, args ...string) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready.json")
	cmd := exec.Command(filepath.Join(server.dir, "chattorrent"), "serve", "--data-dir", filepath.Join(dir, "data"),
		"--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--ready-file", ready, "--hostname", hostname,
		"--webrtc-port", "0", "--turn-port", "0", "--webrtc-loopback", "--mdns=false")
	cmd.Args = append(cmd.Args, args...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s's log:\n%s", hostname, logs.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(ready)
		var r struct{ HTTPS string }
		if err == nil && json.Unmarshal(b, &r) == nil && r.HTTPS != "" {
			return "https://" + r.HTTPS, stop
		}
	}
	t.Fatalf("%s not ready", hostname)
	return "", nil
}

// waitWorker waits until the page is controlled by the box's service worker (sw.js), its
// shell stored.
func (u *user) waitWorker() {
	u.t.Helper()
	u.waitAsync(`navigator.serviceWorker.ready.then((r) => !!r.active && r.active.state === 'activated' && !!navigator.serviceWorker.controller)`)
}

// TestOfflinePage: two pages visit a box with no STUN/TURN (its /api/ice answers an empty
// list) over its self-signed HTTPS (Chromium with --ignore-certificate-errors); its service
// worker stores the app shell, and they chat.
// The box's UI changes (an update): a reload takes the new page at once (network first).
// The box stops. Both pages reload: they open from the cache, ready, with their room and
// its messages, and connect again with .torrent files and chat without any box. The page
// is installable (no installability errors from Chromium).
func TestOfflinePage(t *testing.T) {
	static := t.TempDir() // the box's UI, a copy of web/static that the test updates
	if err := os.CopyFS(static, os.DirFS("../static")); err != nil {
		t.Fatal(err)
	}
	// No STUN/TURN on this box: /api/ice must still answer (an empty list), not 404.
	base, stopBox := startStoppableBox(t, "offlinebox", "--static-dir", static, "--turn-port", "-1")
	a := newUserAt(t, "A", "en-US", base, noDNS)
	b := newUserAt(t, "B", "en-US", base, noDNS)
	t0 := time.Now()
	a.waitWorker()
	b.waitWorker()
	t.Logf("workers ready in %v", time.Since(t0))
	if res, err := chromedp.Call(a.ctx, page.GetInstallabilityErrors, cdp.Empty{}); err != nil {
		t.Errorf("installability: %v", err)
	} else if len(res.InstallabilityErrors) > 0 {
		var ids []string
		for _, e := range res.InstallabilityErrors {
			ids = append(ids, e.ErrorID)
		}
		t.Errorf("not installable: %v", ids)
	}
	// An update of the box: the next load with the box reachable is the new page.
	index := filepath.Join(static, "index.html")
	html, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	html = bytes.Replace(html, []byte("<title>"), []byte(`<meta name="chattorrent-test" content="v2"><title>`), 1)
	if err := os.WriteFile(index, html, 0o644); err != nil {
		t.Fatal(err)
	}
	const updated = `document.querySelector('meta[name="chattorrent-test"]')?.content === 'v2'`
	for _, u := range []*user{a, b} {
		u.do(chromedp.Reload())
		u.waitJS(`document.body.dataset.ready === '1'`)
		if !evalJS[bool](u, updated) {
			t.Errorf("%s: the page is not the box's new one after a reload", u.name)
		}
	}
	a.setName("Ana")
	b.setName("Bruno")
	connect(a, b, "Sin caja")
	a.say("con la caja")
	b.waitMessage("con la caja")
	roomID := evalJS[string](a, `document.getElementById('messages').dataset.room`)
	if ice := evalJS[string](a, `JSON.stringify(performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/api/ice')).map((e) => e.responseStatus))`); ice != "[200]" {
		t.Errorf("A's /api/ice answers with no TURN on the box: %s, want one 200", ice)
	}

	t.Logf("connected in %v", time.Since(t0))
	t0 = time.Now()
	stopBox()
	if evalJS[bool](a, `fetch('/healthz').then(() => true, () => false)`) {
		t.Fatal("the box still answers")
	}
	for _, u := range []*user{a, b} {
		t0 := time.Now()
		u.do(chromedp.Reload())
		defer func() { t.Logf("%s: reloaded without the box in %v", u.name, time.Since(t0)) }()
		u.waitJS(`document.body.dataset.ready === '1'`)
		u.waitJS(`!!navigator.serviceWorker.controller`)
		u.openRoom(roomID)
		u.waitMessage("con la caja")
		if !evalJS[bool](u, updated) {
			t.Errorf("%s: the cached page is not the latest the box served", u.name)
		}
	}
	t.Logf("reloaded in %v", time.Since(t0))
	t0 = time.Now()
	reconnect(a, b)
	t.Logf("reconnected in %v", time.Since(t0))
	a.say("sin la caja")
	b.waitMessage("sin la caja")
	b.say("seguimos")
	a.waitMessage("seguimos")
	a.checkConsole()
	b.checkConsole()
}
