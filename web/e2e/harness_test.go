// Package e2e drives the real chattorrent binary with real Chromium processes through the
// real UI. Everything runs inside a loopback-only network namespace:
//
//	unshare -n sh -c 'ip link set lo up && go test ./web/e2e/'
//
// Outside one the tests skip (and fail with CI=true); so does a missing Chromium.
package e2e

import (
	"bytes"
	"math"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/chattorrent/chattorrent/board"
	"github.com/chattorrent/chattorrent/store/testenv"
)

// server is the chattorrent binary under test.
var server struct {
	base string // https://127.0.0.1:PORT
	dir  string
}

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	if reason := skipReason(); reason != "" {
		if testenv.InCI() {
			fmt.Fprintln(os.Stderr, "e2e: cannot run with CI=true:", reason)
			return 1
		}
		fmt.Println("e2e: skipped:", reason)
		return 0
	}
	dir, err := os.MkdirTemp("", "chattorrent-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	server.dir = dir
	stop, err := startServer(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: server:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// skipReason says why these tests cannot run here, or "".
func skipReason() string {
	if why := testenv.NotLoopbackOnly(); why != "" {
		return why
	}
	if _, err := os.Stat(chromiumPath()); err != nil {
		return "no Chromium at " + chromiumPath() + " (deploy/test.sh installs it)"
	}
	return ""
}

// startServer builds and starts the real binary and waits for its ready file.
func startServer(dir string) (stop func() error, err error) {
	bin := filepath.Join(dir, "chattorrent")
	build := exec.Command("go", "build", "-o", bin, "../../firmware")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build: %v\n%s", err, out)
	}
	ready := filepath.Join(dir, "ready.json")
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	// The box's microphone is a WAV file: 1.5 s of a 440 Hz tone.
	tone := &board.Recording{SampleRate: board.SampleRate, Samples: make([]int16, board.SampleRate*3/2)}
	for i := range tone.Samples {
		tone.Samples[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/board.SampleRate))
	}
	var wav bytes.Buffer
	if _, err := board.WriteWAV(&wav, tone, 0); err != nil {
		return nil, err
	}
	mic := filepath.Join(dir, "mic.wav")
	if err := os.WriteFile(mic, wav.Bytes(), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--data-dir", filepath.Join(dir, "data"),
		"--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--ready-file", ready, "--hostname", "e2ebox", "--webrtc-loopback",
		"--webrtc-port", "0", "--turn-port", "0",
		"--mic", "wav:"+mic, "--sticks", filepath.Join(dir, "sticks", "*"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(ready)
		if err == nil {
			var r struct{ HTTPS string }
			if json.Unmarshal(b, &r) == nil && r.HTTPS != "" {
				server.base = "https://" + r.HTTPS
				break
			}
		}
		select {
		case err := <-done:
			return nil, fmt.Errorf("server exited before ready: %v (log in %s)", err, logf.Name())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return nil, errors.New("server not ready after 60s")
		}
	}
	return func() error {
		defer logf.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				log, _ := os.ReadFile(logf.Name())
				return fmt.Errorf("exit after SIGTERM: %v\n%s", err, log)
			}
			return nil
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			return errors.New("did not stop within 15s of SIGTERM")
		}
	}, nil
}

// startBox runs another appliance (the suite's binary, a data directory of its own) with
// args added to the loopback defaults, for tests that need a fresh one; it stops with tb.
func startBox(tb testing.TB, hostname string, args ...string) string {
	tb.Helper()
	return startBoxProc(tb, hostname, args...).base
}

// boxProc is an appliance startBoxProc started.
type boxProc struct {
	base string // https://127.0.0.1:PORT
	pid  int
	logs *syncBuffer // its log so far
}

// syncBuffer is a bytes.Buffer a process writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startBoxProc is startBox for tests that watch the process (its memory, its log).
func startBoxProc(tb testing.TB, hostname string, args ...string) *boxProc {
	tb.Helper()
	dir := tb.TempDir()
	ready := filepath.Join(dir, "ready.json")
	cmd := exec.Command(filepath.Join(server.dir, "chattorrent"), append([]string{"serve", "--data-dir", filepath.Join(dir, "data"),
		"--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--ready-file", ready, "--hostname", hostname,
		"--webrtc-port", "0", "--turn-port", "0", "--mdns=false"}, args...)...)
	logs := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if tb.Failed() {
			tb.Logf("%s's log:\n%s", hostname, logs.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(ready)
		var r struct{ HTTPS string }
		if err == nil && json.Unmarshal(b, &r) == nil && r.HTTPS != "" {
			return &boxProc{base: "https://" + r.HTTPS, pid: cmd.Process.Pid, logs: logs}
		}
	}
	tb.Fatalf("%s not ready", hostname)
	return nil
}

// user is one person: one Chromium process with its own profile (so closing and reopening
// the browser is real) and its own download folder.
type user struct {
	t       testing.TB
	name    string
	lang    string // es-ES or en-US
	profile string
	dl      string
	base    string // the page's origin: server.base unless the test serves its own box
	rules   string // Chromium's --host-resolver-rules
	noMic   bool   // no microphone permission: Chromium hides its addresses behind .local names
	quota   int64  // >0: the origin's storage quota in bytes, set before the page first loads
	preload string // JS run in every document before the page's own scripts (e.g. to remove a browser feature)
	ctx     context.Context
	stop    func()

	mu       sync.Mutex
	problems []string // console errors and uncaught exceptions
	console  []string // the latest console lines of any kind, for failure messages
}

// noDNS stops Chromium's own start-up lookups: every name fails but the loopback ones.
const noDNS = "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"

func newUser(t testing.TB, name, lang string) *user {
	t.Helper()
	return newUserAt(t, name, lang, server.base, noDNS)
}

// newUserAt opens the page at base, with Chromium resolving names by rules; opts adjust
// the user before the browser starts.
func newUserAt(t testing.TB, name, lang, base, rules string, opts ...func(*user)) *user {
	t.Helper()
	u := &user{t: t, name: name, lang: lang, profile: t.TempDir(), dl: t.TempDir(), base: base, rules: rules}
	for _, o := range opts {
		o(u)
	}
	u.open()
	t.Cleanup(func() {
		if t.Failed() && u.stop != nil {
			t.Logf("%s at the end: %s", u.name, u.state())
		}
		u.close()
	})
	return u
}

// open starts Chromium on the user's profile and loads the page.
func (u *user) open() {
	t := u.t
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath()),
		chromedp.UserDataDir(u.profile),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.IgnoreCertErrors,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("use-fake-ui-for-media-stream", !u.noMic), // (it also counts as a granted microphone)
		chromedp.Flag("use-fake-device-for-media-stream", true), // a beeping microphone
		chromedp.Flag("host-resolver-rules", u.rules),
		chromedp.Flag("lang", u.lang),
		chromedp.Flag("accept-lang", u.lang),
	)
	if dir := os.Getenv("E2E_NETLOG"); dir != "" { // debugging: Chromium's own network log
		opts = append(opts, chromedp.Flag("log-net-log", filepath.Join(dir, u.name+"-netlog.json")))
	}
	// Start the browser here, once per context, and look at its error: chromedp allocates on
	// the first call that needs the browser and again on the next one if that failed, and a
	// second allocation on one context closes its channel twice (a panic that hides the
	// error). A browser that did not start (say, the previous process on this profile still
	// held its lock) gets a fresh allocator and context, twice at most.
	var ctx context.Context
	for attempt := 1; ; attempt++ {
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		c, cancelCtx := chromedp.NewContext(allocCtx)
		err := chromedp.Do(c)
		if err == nil {
			ctx = c
			u.stop = func() {
				cctx, cancel := context.WithTimeout(c, 20*time.Second)
				defer cancel()
				chromedp.Cancel(cctx) // graceful: localStorage is flushed
				cancelCtx()
				cancelAlloc()
			}
			break
		}
		cancelCtx()
		cancelAlloc()
		if attempt == 3 {
			t.Fatalf("%s: start Chromium (%s): %v", u.name, chromiumPath(), err)
		}
		t.Logf("%s: Chromium did not start (attempt %d): %v", u.name, attempt, err)
		time.Sleep(time.Second)
	}
	u.ctx = ctx
	console := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range console {
			if err != nil {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			line := string(ev.Type) + ": " + strings.Join(parts, " ")
			u.mu.Lock()
			u.console = append(u.console, line)
			if len(u.console) > 40 {
				u.console = u.console[1:]
			}
			u.mu.Unlock()
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				u.problem("console." + line)
			}
		}
	}()
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			u.problem("uncaught: " + msg)
		}
	}()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: u.dl, EventsEnabled: new(true),
	}); err != nil {
		t.Fatalf("%s: downloads: %v", u.name, err)
	}
	// In a loopback-only namespace Chromium gathers ICE candidates only for a page that
	// holds the microphone permission.
	if !u.noMic {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: "microphone"}, Setting: browser.PermissionSettingGranted, Origin: u.base,
		}); err != nil {
			t.Fatalf("%s: permission: %v", u.name, err)
		}
	}
	if u.quota > 0 {
		// Before the page stores anything: Chromium applies an override to storage the
		// origin opens afterwards (the page keeps its key in IndexedDB at its first load).
		q := float64(u.quota)
		if _, err := chromedp.Call(ctx, storage.OverrideQuotaForOrigin, storage.OverrideQuotaForOriginParams{Origin: u.base, QuotaSize: &q}); err != nil {
			t.Fatalf("%s: quota: %v", u.name, err)
		}
	}
	if u.preload != "" {
		if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: u.preload}); err != nil {
			t.Fatalf("%s: preload: %v", u.name, err)
		}
	}
	u.do(chromedp.Navigate(u.base + "/"))
	u.waitJS(`document.body.dataset.ready === '1'`)
}

func (u *user) close() {
	if u.stop != nil {
		u.stop()
		u.stop = nil
	}
}

// reopen closes the browser gracefully and starts a new process on the same profile.
func (u *user) reopen() {
	u.close()
	u.open()
}

func (u *user) problem(s string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.problems = append(u.problems, s)
}

// checkConsole fails the test on any console error or uncaught exception so far.
func (u *user) checkConsole() {
	u.t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.problems) > 0 {
		u.t.Errorf("%s: page problems:\n%s", u.name, strings.Join(u.problems, "\n"))
		u.problems = nil
	}
}

func (u *user) stepCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(u.ctx, 60*time.Second)
}

func (u *user) do(steps ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := u.stepCtx()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		u.t.Fatalf("%s: %v\n%s", u.name, err, u.state())
	}
}

func evalJS[T any](u *user, expr string) T {
	u.t.Helper()
	ctx, cancel := u.stepCtx()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		u.t.Fatalf("%s: eval %s: %v\n%s", u.name, expr, err, u.state())
	}
	return v
}

// waitAsync polls a JS expression that yields a promise of a boolean (e.g. a fetch).
func (u *user) waitAsync(expr string) {
	u.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !evalJS[bool](u, expr) {
		if time.Now().After(deadline) {
			u.t.Fatalf("%s: waiting for %s: timeout\n%s", u.name, expr, u.state())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitJS polls a JS predicate until it is true (60 s at most).
func (u *user) waitJS(pred string) {
	u.t.Helper()
	ctx, cancel := u.stepCtx()
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](pred, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		u.t.Fatalf("%s: waiting for %s: %v\n%s", u.name, pred, err, u.state())
	}
}

// state is what the page shows, for failure messages.
func (u *user) state() string {
	ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		notice: document.getElementById('notice')?.textContent, code: document.getElementById('notice')?.dataset.code,
		status: document.getElementById('room-status')?.dataset.state, peer: document.getElementById('room-peer')?.textContent,
		messages: [...document.querySelectorAll('#messages .msg-body')].map(n => n.textContent),
		ready: document.readyState, url: location.href,
		loaded: performance.getEntriesByType('resource').map(e => e.name.replace(location.origin, '') + ' ' + Math.round(e.duration) + 'ms ' + e.responseStatus)})`))
	u.mu.Lock()
	defer u.mu.Unlock()
	return fmt.Sprintf("page: %s\nproblems: %s\nconsole:\n%s", s, strings.Join(u.problems, "\n"), strings.Join(u.console, "\n"))
}

// download runs the action that triggers one download and returns the saved file's path
// and the name the page gave it.
func (u *user) download(trigger ...chromedp.Action[chromedp.Void]) (path, name string) {
	u.t.Helper()
	ctx, cancel := u.stepCtx()
	defer cancel()
	begins := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	u.do(trigger...)
	var guid string
	for ev, err := range begins {
		if err != nil {
			u.t.Fatalf("%s: no download began: %v\n%s", u.name, err, u.state())
		}
		guid, name = ev.GUID, ev.SuggestedFilename
		break
	}
	for ev, err := range progress {
		if err != nil {
			u.t.Fatalf("%s: download %s did not complete: %v", u.name, name, err)
		}
		if ev.GUID == guid && ev.State == browser.DownloadProgressStateCompleted {
			break
		}
		if ev.GUID == guid && ev.State == browser.DownloadProgressStateCanceled {
			u.t.Fatalf("%s: download %s canceled", u.name, name)
		}
	}
	return filepath.Join(u.dl, guid), name
}

// importFile picks a file with "2. Import .torrent file".
func (u *user) importFile(path string) {
	u.t.Helper()
	u.do(chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{path}))
}

// importAndDownload imports a file and returns the download it causes (the answer).
func (u *user) importAndDownload(path string) (string, string) {
	u.t.Helper()
	return u.download(chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{path}))
}

func (u *user) text(sel string) string {
	u.t.Helper()
	return evalJS[string](u, fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? '').trim()`, sel))
}

// js quotes a Go string as a JS string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
