package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// WebKit: WebKitGTK's MiniBrowser driven by WebKitWebDriver (WebDriver classic, over
// loopback inside the test's namespace) on an Xvfb display. The session is ephemeral, like
// Safari's Private Browsing. Debian's WebKitGTK has no WebRTC, so WebKit takes part in no
// pair (TestEnginePairs); TestWebKitPage checks the page itself.

const miniBrowser = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"

// webkitMissing says why WebKit tests cannot run here, or "".
func webkitMissing() string {
	for _, tool := range []string{"WebKitWebDriver", "Xvfb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "no " + tool + " (deploy/test.sh installs webkit2gtk-driver and xvfb)"
		}
	}
	if _, err := os.Stat(miniBrowser); err != nil {
		return "no " + miniBrowser + " (deploy/test.sh installs webkit2gtk-driver)"
	}
	return ""
}

// wkUser is one person at a WebKit MiniBrowser: a WebDriver session.
type wkUser struct {
	t    testing.TB
	url  string // the WebDriver session's URL
	dl   string // the XDG download folder
	logs *syncBuffer
}

// startProc starts a helper process in its own group, stopped (its group) with t.
func startProc(t testing.TB, logs io.Writer, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return cmd
}

// newWebKitUser starts Xvfb, WebKitWebDriver and a MiniBrowser session on the box's page
// in lang (en_US or es_ES). Without them the test skips, and fails with CI=true.
func newWebKitUser(t *testing.T, lang string) *wkUser {
	t.Helper()
	if reason := webkitMissing(); reason != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("WebKit e2e cannot run with CI=true:", reason)
		}
		t.Skip(reason)
	}
	home := t.TempDir()
	w := &wkUser{t: t, dl: filepath.Join(home, "Downloads"), logs: new(syncBuffer)}
	if err := os.MkdirAll(w.dl, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".config"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Downloads go to the XDG download folder.
	if err := os.WriteFile(filepath.Join(home, ".config", "user-dirs.dirs"), []byte(fmt.Sprintf("XDG_DOWNLOAD_DIR=%q\n", w.dl)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("WebKit's logs:\n%s", w.logs.String())
		}
	})

	// Xvfb picks a free display and writes its number on fd 3.
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	xvfb := exec.Command("Xvfb", "-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "1280x900x24")
	xvfb.ExtraFiles = []*os.File{wr}
	xvfb.Stdout, xvfb.Stderr = w.logs, w.logs
	xvfb.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := xvfb.Start(); err != nil {
		t.Fatalf("Xvfb: %v", err)
	}
	wr.Close()
	t.Cleanup(func() { xvfb.Process.Signal(syscall.SIGTERM); xvfb.Wait() })
	display, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil {
		t.Fatalf("Xvfb gave no display: %v\n%s", err, w.logs.String())
	}
	env := append(os.Environ(), "DISPLAY=:"+strings.TrimSpace(display), "HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_DATA_HOME="+filepath.Join(home, ".local/share"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "XDG_RUNTIME_DIR="+home,
		"LANG="+lang+".UTF-8", "LANGUAGE="+lang, "LC_ALL=", "NO_AT_BRIDGE=1", "GTK_A11Y=none")

	// WebKitWebDriver on a free loopback port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	startProc(t, w.logs, env, "WebKitWebDriver", fmt.Sprintf("--port=%d", port), "--host=127.0.0.1")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(base + "/status")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("WebKitWebDriver not answering: %v\n%s", err, w.logs.String())
		}
	}
	var s struct {
		SessionID string `json:"sessionId"`
	}
	w.url = base + "/session"
	w.cmd("POST", "", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"acceptInsecureCerts": true, // the box's self-signed certificate
		"webkitgtk:browserOptions": map[string]any{"binary": miniBrowser,
			"args": []string{"--automation", "--enable-media-stream=true", "--enable-mock-capture-devices=true"}},
	}}}, &s)
	if s.SessionID == "" {
		t.Fatal("WebKitWebDriver: no session")
	}
	w.url = base + "/session/" + s.SessionID
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("WebKit at the end: %s", w.state())
		}
		req, _ := http.NewRequest("DELETE", w.url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	w.navigate(server.base + "/")
	return w
}

// cmd sends one WebDriver command and decodes its value into out (if not nil).
func (w *wkUser) cmd(method, path string, body, out any) {
	w.t.Helper()
	if err := w.try(method, path, body, out); err != nil {
		w.t.Fatalf("WebKit: %s %s: %v", method, path, err)
	}
}

func (w *wkUser) try(method, path string, body, out any) error {
	b, _ := json.Marshal(body)
	if body == nil {
		b = nil
	}
	req, err := http.NewRequest(method, w.url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 90 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var v struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, v.Value)
	}
	if out != nil {
		if err := json.Unmarshal(v.Value, out); err != nil {
			return fmt.Errorf("%s: %w", v.Value, err)
		}
	}
	return nil
}

func (w *wkUser) navigate(url string) {
	w.t.Helper()
	w.cmd("POST", "/url", map[string]any{"url": url}, nil)
	w.waitJS(`document.body.dataset.ready === '1'`)
}

func (w *wkUser) reload() {
	w.t.Helper()
	w.cmd("POST", "/refresh", map[string]any{}, nil)
	w.waitJS(`document.body.dataset.ready === '1'`)
}

// evalJSON evaluates expr in the page (a promise is awaited) and decodes its value.
func (w *wkUser) evalJSON(expr string, out any) {
	w.t.Helper()
	if err := w.tryEval(expr, out); err != nil {
		w.t.Fatalf("WebKit: %s: %v\n%s", expr, err, w.state())
	}
}

func (w *wkUser) tryEval(expr string, out any) error {
	var r struct{ OK, Err string }
	script := `const done = arguments[arguments.length - 1];
Promise.resolve().then(async () => (` + expr + `)).then(
  (v) => done({ OK: JSON.stringify(v === undefined ? null : v) }),
  (e) => done({ Err: String((e && e.stack) || e) + ' (' + (e && e.name) + ')' }));`
	if err := w.try("POST", "/execute/async", map[string]any{"script": script, "args": []any{}}, &r); err != nil {
		return err
	}
	if r.Err != "" {
		return fmt.Errorf("%s", r.Err)
	}
	return json.Unmarshal([]byte(r.OK), out)
}

// waitJS polls a predicate until it is true (60 s at most).
func (w *wkUser) waitJS(pred string) {
	w.t.Helper()
	var last error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var ok bool
		if last = w.tryEval(pred, &ok); last == nil && ok {
			return
		}
	}
	w.t.Fatalf("WebKit: waiting for %s: timeout (%v)\n%s", pred, last, w.state())
}

func (w *wkUser) element(sel string) string {
	w.t.Helper()
	var el map[string]string
	w.cmd("POST", "/element", map[string]any{"using": "css selector", "value": sel}, &el)
	for _, id := range el {
		return id
	}
	w.t.Fatalf("WebKit: no element %s", sel)
	return ""
}

func (w *wkUser) click(sel string) {
	w.t.Helper()
	w.cmd("POST", "/element/"+w.element(sel)+"/click", map[string]any{}, nil)
}

// upload gives a (hidden) file input a file: WebKitWebDriver takes send-keys there.
func (w *wkUser) upload(sel, path string) {
	w.t.Helper()
	w.cmd("POST", "/element/"+w.element(sel)+"/value", map[string]any{"text": path}, nil)
}

// downloaded runs trigger and returns the one new file in the download folder, once its
// size is steady.
func (w *wkUser) downloaded(trigger func()) string {
	w.t.Helper()
	before := map[string]bool{}
	es, _ := os.ReadDir(w.dl)
	for _, e := range es {
		before[e.Name()] = true
	}
	trigger()
	var last string
	var lastSize int64 = -1
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		es, _ := os.ReadDir(w.dl)
		var fresh []string
		for _, e := range es {
			if !before[e.Name()] && !strings.HasSuffix(e.Name(), ".wkdownload") && !strings.HasPrefix(e.Name(), ".") {
				fresh = append(fresh, e.Name())
			}
		}
		if len(fresh) != 1 {
			continue
		}
		st, err := os.Stat(filepath.Join(w.dl, fresh[0]))
		if err != nil || st.Size() == 0 {
			continue
		}
		if fresh[0] == last && st.Size() == lastSize {
			return filepath.Join(w.dl, fresh[0])
		}
		last, lastSize = fresh[0], st.Size()
	}
	es, _ = os.ReadDir(w.dl)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	w.t.Fatalf("WebKit: no download completed in 60s (folder: %q)\n%s", names, w.state())
	return ""
}

func (w *wkUser) state() string {
	var s any
	if err := w.tryEval(`({
		notice: document.getElementById('notice')?.textContent, code: document.getElementById('notice')?.dataset.code,
		unsupported: document.body.dataset.unsupported, ready: document.body.dataset.ready,
		status: document.getElementById('room-status')?.dataset.state,
		messages: [...document.querySelectorAll('#messages .msg-body')].map(n => n.textContent), url: location.href})`, &s); err != nil {
		return "page: " + err.Error()
	}
	b, _ := json.Marshal(s)
	return "page: " + string(b)
}

// TestWebKitPage: the page in an ephemeral WebKit session (Safari's Private Browsing):
// it becomes ready; Ed25519 signs and verifies in the page and in its verify worker (or,
// where WebKit lacks Ed25519, the page says the browser is too old); without WebRTC,
// creating a room says so in words and the page goes on working; a picture is stored
// through the ArrayBuffer path (IndexedDB refuses Blobs here) and shown from storage after
// a reload; the history export lands in the XDG download folder.
func TestWebKitPage(t *testing.T) {
	w := newWebKitUser(t, "en_US")
	var env struct {
		Unsupported string
		RTC         string
		UA          string
	}
	w.evalJSON(`({Unsupported: document.body.dataset.unsupported || '', RTC: typeof RTCPeerConnection, UA: navigator.userAgent})`, &env)
	t.Logf("WebKit: %s; RTCPeerConnection %s; unsupported=%q", env.UA, env.RTC, env.Unsupported)
	if env.Unsupported == "1" {
		// No Ed25519 in this WebKit: the documented "browser too old" page, nothing else.
		var u struct {
			Shown  bool
			Text   string
			Layout bool
		}
		w.evalJSON(`({Shown: !document.getElementById('unsupported').hidden, Text: document.getElementById('unsupported').textContent,
			Layout: !document.querySelector('.layout').hidden})`, &u)
		if !u.Shown || !strings.Contains(u.Text, "17") || u.Layout {
			t.Fatalf("WebKit without Ed25519: #unsupported %+v", u)
		}
		t.Log("this WebKit lacks Ed25519 in WebCrypto: the page shows its \"browser too old\" message")
		return
	}

	// Ed25519 in the page: a key made here signs and verifies; a changed message fails.
	var pageOK []bool
	w.evalJSON(`(async () => {
		const kp = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
		const msg = new TextEncoder().encode('hola');
		const sig = await crypto.subtle.sign({ name: 'Ed25519' }, kp.privateKey, msg);
		return [await crypto.subtle.verify({ name: 'Ed25519' }, kp.publicKey, sig, msg),
			await crypto.subtle.verify({ name: 'Ed25519' }, kp.publicKey, sig, new TextEncoder().encode('hola!'))];
	})()`, &pageOK)
	if len(pageOK) != 2 || !pageOK[0] || pageOK[1] {
		t.Fatalf("Ed25519 sign/verify in the page: %v, want [true false]", pageOK)
	}
	// In the page's verify worker: entries signed by Go verify; a changed body does not.
	room := "00112233445566778899aabbccddeeff"
	entries := archive(t, room, 3)
	raw, _ := json.Marshal(entries)
	var workerResults [2][]any
	w.evalJSON(fmt.Sprintf(`(async () => {
		const entries = %s;
		const bad = structuredClone(entries);
		bad[1].body = 'cambiado';
		const worker = new Worker('/js/verify-worker.js', { type: 'module' });
		const ask = (id, list) => new Promise((resolve, reject) => {
			worker.addEventListener('message', (ev) => { if (ev.data.id === id) resolve(ev.data.results); });
			worker.addEventListener('error', (ev) => reject(new Error('worker: ' + ev.message)));
			worker.postMessage({ id, room: %q, now: Date.now(), entries: list });
		});
		const out = [await ask(1, entries), await ask(2, bad)];
		worker.terminate();
		return out;
	})()`, raw, room), &workerResults)
	good, bad := workerResults[0], workerResults[1]
	if len(good) != 3 || good[0] != nil || good[1] != nil || good[2] != nil {
		t.Errorf("verify worker on Go-signed entries: %v, want three nulls (valid)", good)
	}
	if len(bad) != 3 || bad[1] == nil {
		t.Errorf("verify worker on a changed entry: %v, want entry 1 refused", bad)
	}

	// No WebRTC here: creating a room says so, in words, and nothing is created.
	if env.RTC == "undefined" {
		w.evalJSON(`(() => { document.getElementById('new-room-name').value = 'Sin WebRTC'; return true; })()`, new(bool))
		w.click("#create-room")
		w.waitJS(`document.getElementById('notice').dataset.code === 'no-webrtc'`)
		var n struct {
			Kind, Text string
			Rooms      int
		}
		w.evalJSON(`({Kind: document.getElementById('notice').dataset.kind, Text: document.getElementById('notice').textContent,
			Rooms: document.querySelectorAll('#rooms .room-item').length})`, &n)
		if n.Kind != "error" || n.Text != "This browser does not support WebRTC." || n.Rooms != 0 {
			t.Errorf("create without WebRTC: %+v, want the error \"This browser does not support WebRTC.\" and no room", n)
		}
		w.waitJS(`!document.getElementById('create-room').disabled`)
	} else {
		t.Logf("this WebKit has WebRTC (RTCPeerConnection %s): the no-WebRTC notice is not checked", env.RTC)
	}

	// A room kept in this page's storage (an old layout the page moves to IndexedDB,
	// verifying every entry in the worker): opened without any peer.
	rooms, _ := json.Marshal([]map[string]any{{"id": room, "name": "Aula Safari", "created": time.Now().UnixMilli(), "peer": nil}})
	w.evalJSON(fmt.Sprintf(`(() => { localStorage.setItem('chattorrent:v1:rooms', %s); localStorage.setItem('chattorrent:v1:room:%s:c0', %s);
		localStorage.setItem('chattorrent:v1:room:%s:n', '1'); return true; })()`, js(string(rooms)), room, js(string(raw)), room), new(bool))
	w.reload()
	openWK := func() {
		w.click(fmt.Sprintf(`.room-item[data-room-id=%q]`, room))
		w.waitJS(fmt.Sprintf(`document.getElementById('messages').dataset.room === %q`, room))
		w.waitJS(`[...document.querySelectorAll('#messages .msg-body')].some(n => n.textContent === 'mensaje 2 del archivo')`)
	}
	openWK()

	// A picture: stored (as ArrayBuffers: this session's IndexedDB refuses Blobs) and shown.
	w.upload("#attach-file", writePNG(t))
	w.waitJS(pictureShown)
	var stored string
	w.evalJSON(batchesStored, &stored)
	if stored != "buf" {
		t.Errorf("WebKit (ephemeral session) stored the picture's batches as %q, want ArrayBuffers (\"buf\"): media.js's fallback", stored)
	}
	var blobRefused string
	w.evalJSON(`new Promise((resolve) => {
		const r = indexedDB.open('chattorrent-e2e-probe');
		r.onupgradeneeded = () => r.result.createObjectStore('s');
		r.onsuccess = () => {
			const tx = r.result.transaction('s', 'readwrite');
			const q = tx.objectStore('s').put(new Blob(['x']), 'k');
			q.onerror = (ev) => { ev.preventDefault(); resolve(q.error ? q.error.name + ': ' + q.error.message : 'null'); };
			tx.oncomplete = () => resolve('');
		};
		r.onerror = () => resolve('open: ' + r.error);
	})`, &blobRefused)
	if blobRefused == "" {
		t.Log("this WebKit session's IndexedDB stores Blobs: media.js chose ArrayBuffers anyway?")
	} else {
		t.Logf("this WebKit session's IndexedDB refuses a Blob: %s", blobRefused)
	}
	w.reload()
	openWK()
	w.waitJS(pictureShown)
	if notice := w.text(`#notice:not([hidden])`); notice != "" && !strings.Contains(notice, "WebRTC") {
		t.Errorf("notice after the reload: %q", notice)
	}

	// The history export lands in the XDG download folder and holds the room's messages.
	var opened bool
	w.evalJSON(openMenuJS, &opened)
	path := w.downloaded(func() { w.click("#export-history") })
	if filepath.Base(path) != "Aula_Safari_history.json" {
		t.Errorf("export saved as %q, want Aula_Safari_history.json", filepath.Base(path))
	}
	var x struct {
		Format  string
		Room    struct{ ID string }
		Entries []struct{ Kind, Body string }
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatalf("the export: %v", err)
	}
	var texts, kinds []string
	for _, e := range x.Entries {
		kinds = append(kinds, e.Kind)
		if e.Kind == "text" {
			texts = append(texts, e.Body)
		}
	}
	if x.Format != "chattorrent-history" || x.Room.ID != room || strings.Join(texts, "|") != "mensaje 0 del archivo|mensaje 1 del archivo|mensaje 2 del archivo" || !strings.Contains(strings.Join(kinds, " "), "image") {
		t.Errorf("the export: format %q room %q texts %q kinds %q", x.Format, x.Room.ID, texts, kinds)
	}
}

func (w *wkUser) text(sel string) string {
	w.t.Helper()
	var s string
	w.evalJSON(fmt.Sprintf(`(document.querySelector(%s)?.textContent ?? '').trim()`, js(sel)), &s)
	return s
}
