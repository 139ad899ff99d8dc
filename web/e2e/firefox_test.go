package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chattorrent/chattorrent/store/testenv"
)

// peer is what the cross-engine tests need of a person at a browser: a Chromium user
// (chromedp) or a Firefox user (web/e2e/firefox/driver.mjs over WebDriver BiDi).
type peer interface {
	label() string
	typeInto(sel, text string)
	click(sel string)
	clickDownload(sel string) (path, name string) // click sel; the download it causes
	upload(sel, path string)                      // set a file input's file (fires change)
	importFile(path string)
	importAndDownload(path string) (path2, name string)
	say(text string)
	waitStatus(state string)
	waitMessage(text string)
	waitJS(pred string)
	evalJSON(expr string, out any) // expr's value (promises awaited) decoded into out
	reload()                       // reload the page and wait until it is ready
	checkConsole()
}

func (u *user) label() string { return u.name + " (Chromium)" }

func (u *user) typeInto(sel, text string) {
	u.t.Helper()
	u.do(chromedp.SendKeys(chromedp.CSS(sel), text))
}

func (u *user) click(sel string) {
	u.t.Helper()
	u.do(chromedp.Click(chromedp.CSS(sel)))
}

func (u *user) clickDownload(sel string) (string, string) {
	u.t.Helper()
	return u.download(chromedp.Click(chromedp.CSS(sel)))
}

func (u *user) upload(sel, path string) {
	u.t.Helper()
	u.do(chromedp.SetUploadFiles(chromedp.CSS(sel), []string{path}))
}

func (u *user) evalJSON(expr string, out any) {
	u.t.Helper()
	s := evalJS[string](u, `(async () => JSON.stringify(await (`+expr+`)))()`)
	if err := json.Unmarshal([]byte(s), out); err != nil {
		u.t.Fatalf("%s: %s: %v (%q)", u.label(), expr, err, s)
	}
}

func (u *user) reload() {
	u.t.Helper()
	u.do(chromedp.Reload())
	u.waitJS(`document.body.dataset.ready === '1'`)
}

func firefoxPath() string {
	if p := os.Getenv("FIREFOX"); p != "" {
		return p
	}
	return "/usr/bin/firefox-esr"
}

// firefoxMissing says why Firefox tests cannot run here, or "".
func firefoxMissing() string {
	if _, err := os.Stat(firefoxPath()); err != nil {
		return "no Firefox at " + firefoxPath() + " (deploy/test.sh installs firefox-esr)"
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "no node (deploy/test.sh installs nodejs)"
	}
	if _, err := os.Stat("firefox/node_modules/puppeteer-core/package.json"); err != nil {
		return "no web/e2e/firefox/node_modules (run npm ci there; deploy/test.sh does)"
	}
	return ""
}

// ffUser is one person at a Firefox: a driver.mjs process with its own Firefox profile and
// download folder.
type ffUser struct {
	t    testing.TB
	name string
	dl   string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  chan ffReply
	logs *syncBuffer // the driver's and Firefox's stderr

	mu     sync.Mutex
	nextID int
}

type ffReply struct {
	ID    int             `json:"id"`
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

// newFirefoxUser starts Firefox on the box's page in lang. Without Firefox or the driver's
// node_modules the test skips, and fails with CI=true.
func newFirefoxUser(t testing.TB, name, lang string) *ffUser {
	t.Helper()
	if reason := firefoxMissing(); reason != "" {
		testenv.SkipOrFail(t, "Firefox e2e: "+reason)
	}
	f := &ffUser{t: t, name: name, dl: t.TempDir(), out: make(chan ffReply, 1), logs: new(syncBuffer)}
	f.cmd = exec.Command("node", "firefox/driver.mjs")
	// Firefox's own profile and temporary files in the test's folder, removed with it.
	f.cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir(), "MOZ_CRASHREPORTER_DISABLE=1")
	f.cmd.Stderr = f.logs
	// Its own process group, so that a driver that hangs is stopped with its Firefox; and if
	// the test binary dies, the driver gets SIGTERM (puppeteer then closes Firefox).
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	var err error
	if f.in, err = f.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var r ffReply
			if json.Unmarshal(sc.Bytes(), &r) != nil {
				f.logs.Write([]byte("driver stdout: " + sc.Text() + "\n"))
				continue
			}
			f.out <- r
		}
		close(f.out)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s at the end: %s\ndriver log:\n%s", f.label(), f.state(), f.logs.String())
		}
		f.close()
	})
	start := time.Now()
	f.call(map[string]any{"cmd": "open", "url": server.base + "/", "lang": lang, "downloads": f.dl, "firefox": firefoxPath()}, 120*time.Second)
	f.waitJS(`document.body.dataset.ready === '1'`)
	t.Logf("%s: Firefox started and the page ready in %v", f.label(), time.Since(start).Round(time.Millisecond))
	return f
}

// call sends one command and returns its value; an error fails the test.
func (f *ffUser) call(msg map[string]any, timeout time.Duration) json.RawMessage {
	f.t.Helper()
	v, err := f.try(msg, timeout)
	if err != nil {
		f.t.Fatalf("%s: %s: %v\n%s", f.label(), msg["cmd"], err, f.state())
	}
	return v
}

func (f *ffUser) try(msg map[string]any, timeout time.Duration) (json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	msg["id"] = f.nextID
	b, _ := json.Marshal(msg)
	if _, err := f.in.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("driver gone: %v", err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-f.out:
			if !ok {
				return nil, fmt.Errorf("driver exited")
			}
			if r.ID != f.nextID {
				continue // the late reply of a command that timed out
			}
			if !r.OK {
				return nil, fmt.Errorf("%s", r.Error)
			}
			return r.Value, nil
		case <-timer.C:
			return nil, fmt.Errorf("no reply in %s", timeout)
		}
	}
}

func (f *ffUser) close() {
	if f.cmd == nil {
		return
	}
	f.try(map[string]any{"cmd": "close"}, 20*time.Second)
	f.in.Close()
	done := make(chan struct{})
	go func() { f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL) // the driver's group: it and its Firefox
		<-done
	}
	f.cmd = nil
}

func (f *ffUser) label() string { return f.name + " (Firefox)" }

// state is what the page shows, for failure messages.
func (f *ffUser) state() string {
	s, _ := f.try(map[string]any{"cmd": "eval", "js": `JSON.stringify({
		notice: document.getElementById('notice')?.textContent, code: document.getElementById('notice')?.dataset.code,
		status: document.getElementById('room-status')?.dataset.state, peer: document.getElementById('room-peer')?.textContent,
		messages: [...document.querySelectorAll('#messages .msg-body')].map(n => n.textContent), url: location.href})`}, 5*time.Second)
	c, _ := f.try(map[string]any{"cmd": "console"}, 5*time.Second)
	r, _ := f.try(map[string]any{"cmd": "rtc"}, 10*time.Second)
	return fmt.Sprintf("page: %s\nconsole: %s\npeer connections: %s", s, c, r)
}

func (f *ffUser) waitJS(pred string) {
	f.t.Helper()
	f.call(map[string]any{"cmd": "waitJS", "js": pred, "timeoutMs": 60000}, 70*time.Second)
}

func (f *ffUser) typeInto(sel, text string) {
	f.t.Helper()
	f.call(map[string]any{"cmd": "type", "selector": sel, "text": text}, 60*time.Second)
}

func (f *ffUser) click(sel string) {
	f.t.Helper()
	f.call(map[string]any{"cmd": "click", "selector": sel}, 60*time.Second)
}

func (f *ffUser) upload(sel, path string) {
	f.t.Helper()
	f.call(map[string]any{"cmd": "upload", "selector": sel, "path": path}, 60*time.Second)
}

func (f *ffUser) importFile(path string) {
	f.t.Helper()
	f.upload("#import-file", path)
}

func (f *ffUser) evalJSON(expr string, out any) {
	f.t.Helper()
	v := f.call(map[string]any{"cmd": "eval", "js": expr}, 60*time.Second)
	if err := json.Unmarshal(v, out); err != nil {
		f.t.Fatalf("%s: %s: %v (%s)", f.label(), expr, err, v)
	}
}

func (f *ffUser) reload() {
	f.t.Helper()
	f.call(map[string]any{"cmd": "reload"}, 60*time.Second)
	f.waitJS(`document.body.dataset.ready === '1'`)
}

// downloaded runs trigger and returns the one file it adds to the download folder, once
// Firefox has finished writing it (no .part file left, the size steady).
func (f *ffUser) downloaded(trigger func()) (string, string) {
	f.t.Helper()
	before := map[string]bool{}
	if es, err := os.ReadDir(f.dl); err == nil {
		for _, e := range es {
			before[e.Name()] = true
		}
	}
	trigger()
	var last string
	var lastSize int64 = -1
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		es, _ := os.ReadDir(f.dl)
		var fresh []string
		partial := false
		for _, e := range es {
			if strings.HasSuffix(e.Name(), ".part") {
				partial = true
			} else if !before[e.Name()] {
				fresh = append(fresh, e.Name())
			}
		}
		if len(fresh) > 1 {
			f.t.Fatalf("%s: %d downloads at once: %v", f.label(), len(fresh), fresh)
		}
		if len(fresh) == 0 || partial {
			continue
		}
		st, err := os.Stat(filepath.Join(f.dl, fresh[0]))
		if err != nil || st.Size() == 0 {
			continue
		}
		if fresh[0] == last && st.Size() == lastSize {
			return filepath.Join(f.dl, fresh[0]), fresh[0]
		}
		last, lastSize = fresh[0], st.Size()
	}
	f.t.Fatalf("%s: no download completed in 60s\n%s", f.label(), f.state())
	return "", ""
}

func (f *ffUser) clickDownload(sel string) (string, string) {
	f.t.Helper()
	return f.downloaded(func() { f.click(sel) })
}

func (f *ffUser) importAndDownload(path string) (string, string) {
	f.t.Helper()
	return f.downloaded(func() { f.importFile(path) })
}

func (f *ffUser) say(text string) {
	f.t.Helper()
	f.typeInto("#composer-input", text)
	f.click("#send")
	f.waitJS(fmt.Sprintf(`[...document.querySelectorAll('#messages .msg.mine .msg-body')].some(n => n.textContent === %s)`, js(text)))
}

func (f *ffUser) waitStatus(state string) {
	f.t.Helper()
	f.waitJS(fmt.Sprintf(`document.getElementById('room-status').dataset.state === %s`, js(state)))
}

func (f *ffUser) waitMessage(text string) {
	f.t.Helper()
	f.waitJS(fmt.Sprintf(`[...document.querySelectorAll('#messages .msg-body')].some(n => n.textContent === %s)`, js(text)))
}

// checkConsole fails the test on any console error or uncaught exception so far.
func (f *ffUser) checkConsole() {
	f.t.Helper()
	var p []string
	json.Unmarshal(f.call(map[string]any{"cmd": "problems"}, 10*time.Second), &p)
	if len(p) > 0 {
		f.t.Errorf("%s: page problems:\n%s", f.label(), strings.Join(p, "\n"))
	}
}
