package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// supervised runs a binary as systemd runs the box's unit (Restart=on-failure): started
// again whenever it exits non-zero, until the test ends.
type supervised struct {
	bin, ready string
	args       []string
	logs       *syncBuffer

	mu       sync.Mutex
	cmd      *exec.Cmd
	starts   int
	stopping bool
	done     chan struct{}
}

// supervise runs bin on a fixed port (a page keeps its origin across the restarts).
func supervise(t *testing.T, bin string, args ...string) *supervised {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &supervised{bin: bin, ready: filepath.Join(dir, "ready.json"), logs: new(syncBuffer), done: make(chan struct{})}
	s.args = append([]string{"serve", "--data-dir", filepath.Join(dir, "data"), "--https-addr", addr,
		"--http-addr", "", "--ready-file", s.ready, "--webrtc-port", "0", "--turn-port", "0", "--mdns=false",
		"--owner-reset-file", ""}, args...)
	go s.run(t)
	t.Cleanup(func() {
		s.mu.Lock()
		s.stopping = true
		if s.cmd != nil && s.cmd.Process != nil {
			s.cmd.Process.Signal(syscall.SIGTERM)
		}
		s.mu.Unlock()
		<-s.done
		if t.Failed() {
			t.Logf("the box's log:\n%s", s.logs.String())
		}
	})
	return s
}

func (s *supervised) run(t *testing.T) {
	defer close(s.done)
	for {
		s.mu.Lock()
		if s.stopping || s.starts > 20 {
			s.mu.Unlock()
			return
		}
		s.cmd = exec.Command(s.bin, s.args...)
		s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
		err := s.cmd.Start()
		s.starts++
		s.mu.Unlock()
		if err != nil {
			t.Errorf("start: %v", err)
			return
		}
		err = s.cmd.Wait()
		if err == nil {
			return // a clean exit: systemd would not restart it either
		}
		fmt.Fprintf(s.logs, "--- supervisor: exited (%v), restarting\n", err)
		time.Sleep(200 * time.Millisecond)
	}
}

// client is the owner's HTTPS client of the supervised box (the CA is not checked: the
// test reads versions, not certificates).
func (s *supervised) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

// base waits for the box to be ready with want as its version and returns its origin.
func (s *supervised) base(t *testing.T, c *http.Client, want string) string {
	t.Helper()
	var last string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, err := os.ReadFile(s.ready)
		var r struct{ HTTPS string }
		if err != nil || json.Unmarshal(b, &r) != nil || r.HTTPS == "" {
			continue
		}
		resp, err := c.Get("https://" + r.HTTPS + "/healthz")
		if err != nil {
			continue
		}
		var h struct{ Version string }
		json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if last = h.Version; last == want {
			return "https://" + r.HTTPS
		}
	}
	t.Fatalf("the box never answered as version %q (last %q)", want, last)
	return ""
}

func goBuild(t *testing.T, dir, out string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"build", "-o", out}, args...)...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, b)
	}
}

func runCmd(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, out)
	}
	return string(out)
}

// TestUpdateAndRollback: the owner uploads signed releases to a box run as systemd runs
// it. A release with a wrong signature, for another machine, or truncated is refused with
// its reason and changes nothing; a good one restarts the box into it and is kept once
// healthy; a deliberately broken one (it exits at once) is rolled back by itself to the
// previous version, and the owner reads why.
func TestUpdateAndRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four binaries")
	}
	dir := t.TempDir()
	tool := filepath.Join(server.dir, "chattorrent")
	key, other := filepath.Join(dir, "release.key"), filepath.Join(dir, "other.key")
	pub := strings.TrimSpace(runCmd(t, tool, "release", "keygen", "-o", key))
	runCmd(t, tool, "release", "keygen", "-o", other)

	// The installed binary and release 2.0.0: the project's code, the release key stamped.
	installed, v2 := filepath.Join(dir, "usr-bin", "chattorrent"), filepath.Join(dir, "v2", "chattorrent")
	for bin, ver := range map[string]string{installed: "1.0.0", v2: "2.0.0"} {
		goBuild(t, ".", bin, nil, "-ldflags", "-X main.version="+ver+" -X main.releaseKey="+pub, "../../firmware")
	}
	// A broken release: a program that exits at once; and the same for another machine.
	src := filepath.Join(dir, "broken")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module broken\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nimport \"os\"\n\nfunc main() { os.Exit(3) }\n"), 0o644)
	broken, foreign := filepath.Join(dir, "broken.bin"), filepath.Join(dir, "foreign.bin")
	goBuild(t, src, broken, []string{"CGO_ENABLED=0"}, ".")
	foreignArch := "arm64"
	if strings.Contains(runCmd(t, tool, "version"), "arm64") {
		foreignArch = "amd64"
	}
	goBuild(t, src, foreign, []string{"CGO_ENABLED=0", "GOARCH=" + foreignArch}, ".")

	rel := func(keyFile, ver, bin string) string {
		out := filepath.Join(dir, ver+"-"+filepath.Base(keyFile)+"-"+filepath.Base(bin)+".release")
		runCmd(t, tool, "release", "sign", "-key", keyFile, "-version", ver, "-o", out, bin)
		return out
	}
	good := rel(key, "2.0.0", v2)
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.release")
	os.WriteFile(truncated, goodBytes[:len(goodBytes)-4096], 0o644)
	notRelease := filepath.Join(dir, "photo.release")
	os.WriteFile(notRelease, []byte("PK\x03\x04 a zip"), 0o644)

	box := supervise(t, installed)
	c := box.client()
	base := box.base(t, c, "1.0.0")
	// A stranger may not update the box.
	req, _ := http.NewRequest("POST", base+"/api/owner/update", bytes.NewReader(goodBytes))
	req.Header.Set("X-ChatTorrent", "1")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a stranger's upload: %v %v", resp.Status, err)
	}

	// The owner claims the box on the page and updates it from there.
	a := newUserAt(t, "A", "en-US", base, noDNS)
	claimOnPage(t, a, box.logs, 0)
	a.do(chromedp.Click(chromedp.CSS("#owner-update-box summary")))
	releases := filepath.Join(filepath.Dir(box.ready), "data", "releases")
	upload := func(path, code string) {
		t.Helper()
		evalJS[chromedp.Void](a, `document.getElementById('owner-update-msg').dataset.code = ''`)
		a.do(chromedp.SetUploadFiles(chromedp.CSS("#owner-update-file"), []string{path}))
		a.waitJS(`document.getElementById('owner-update-msg').dataset.code === ` + js(code))
	}
	for _, bad := range []struct{ file, code string }{
		{rel(other, "2.0.0", v2), "bad-signature"},
		{rel(key, "9.0.0", foreign), "wrong-platform"},
		{truncated, "truncated"},
		{notRelease, "not-a-release"},
	} {
		upload(bad.file, bad.code)
		if msg := a.text("#owner-update-msg"); !strings.Contains(msg, "nothing was installed") && bad.code != "not-a-release" {
			t.Errorf("%s: the page says %q", bad.code, msg)
		}
		if ents, _ := os.ReadDir(releases); len(ents) != 0 {
			t.Errorf("%s: the refused release left %d files in %s", bad.code, len(ents), releases)
		}
	}

	// A good release: the box restarts into it and keeps it once healthy.
	upload(good, "back")
	if msg := a.text("#owner-update-msg"); !strings.Contains(msg, "2.0.0") {
		t.Errorf("after the update the page says %q", msg)
	}
	box.base(t, c, "2.0.0")
	state := func() map[string]any {
		t.Helper()
		var st map[string]any
		out := evalJS[string](a, `fetch('/api/owner/update', {headers: {'X-ChatTorrent': '1'}}).then(r => r.text())`)
		var u struct{ State map[string]any }
		json.Unmarshal([]byte(out), &u)
		st = u.State
		return st
	}
	for deadline := time.Now().Add(70 * time.Second); state()["trial"] == true; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("2.0.0 still on trial: %v", state())
		}
	}

	// A broken release: it exits at once; the box goes back to 2.0.0 by itself.
	upload(rel(key, "3.0.0", broken), "back")
	box.base(t, c, "2.0.0")
	a.waitJS(`document.getElementById('owner-update-status').textContent.includes('rolled back from 3.0.0 to 2.0.0')`)
	if !strings.Contains(box.logs.String(), "rolling back") {
		t.Error("the rollback is not in the box's log")
	}
}

// claimOnPage claims the box as user u with the claim code number skip (0: the first) the
// box printed, and waits for the owner's tools.
func claimOnPage(t *testing.T, u *user, logs *syncBuffer, skip int) {
	t.Helper()
	var code string
	for deadline := time.Now().Add(20 * time.Second); code == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := reClaimCode.FindAllStringSubmatch(logs.String(), -1); len(m) > skip {
			code = m[skip][1]
		}
	}
	if code == "" {
		t.Fatalf("no claim code #%d in the box's log", skip+1)
	}
	u.waitJS(`document.getElementById('owner').dataset.state === 'unclaimed'`)
	u.do(chromedp.SendKeys(chromedp.CSS("#owner-code"), code), chromedp.Click(chromedp.CSS("#owner-claim-btn")))
	u.waitJS(`document.getElementById('owner').dataset.state === 'owner' && document.getElementById('owner-reset-name').textContent !== ''`)
}

// TestFactoryReset: the owner reads the box's storage and last log lines (a stranger may
// not), a reset needs the box's name typed, and then the box comes back empty: a new
// claim code, the old owner's cookie worth nothing, a new CA.
func TestFactoryReset(t *testing.T) {
	box := supervise(t, filepath.Join(server.dir, "chattorrent"), "--hostname", "resetbox")
	c := box.client()
	base := box.base(t, c, "dev")
	call := func(c *http.Client, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("X-ChatTorrent", "1")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	stranger := box.client()
	for _, p := range []string{"/api/owner/storage", "/api/owner/logs", "/api/owner/factory-reset"} {
		if st, _ := call(stranger, "GET", p, ""); st != http.StatusUnauthorized {
			t.Errorf("a stranger's GET %s: %d", p, st)
		}
	}
	_, caPEM := call(c, "GET", "/ca.crt", "")
	if st, body := call(c, "POST", "/api/owner/factory-reset", `{"confirm":"resetbox"}`); st != http.StatusUnauthorized {
		t.Errorf("a stranger's reset: %d %s", st, body)
	}

	// The owner, on the page: storage, logs, what a reset loses, then the reset itself.
	a := newUserAt(t, "A", "en-US", base, noDNS)
	claimOnPage(t, a, box.logs, 0)
	a.waitJS(`document.getElementById('owner-storage-total').textContent.includes('0 rooms')`)
	a.waitJS(`document.getElementById('owner-logs').textContent.includes('open the chat')`)
	if lost := evalJS[[]string](a, `[...document.querySelectorAll('#owner-reset-lost li')].map(li => li.dataset.lost)`); !slices.Contains(lost, "ca") || !slices.Contains(lost, "rooms") || !slices.Contains(lost, "owner") {
		t.Errorf("the reset names as lost %v", lost)
	}
	a.do(chromedp.Click(chromedp.CSS("#owner-reset-box summary")), chromedp.SendKeys(chromedp.CSS("#owner-reset-word"), "resetbo"))
	if !evalJS[bool](a, `document.getElementById('owner-reset-btn').disabled`) {
		t.Error("the reset button is enabled before the box's name is typed in full")
	}
	a.do(chromedp.SendKeys(chromedp.CSS("#owner-reset-word"), "o")) // "resetboo"
	if !evalJS[bool](a, `document.getElementById('owner-reset-btn').disabled`) {
		t.Error("the reset button is enabled with a wrong name")
	}
	evalJS[chromedp.Void](a, `document.getElementById('owner-reset-word').value = ''`)
	a.do(chromedp.SendKeys(chromedp.CSS("#owner-reset-word"), "resetbox"), chromedp.Click(chromedp.CSS("#owner-reset-btn")))
	// The page reloads once the box is back: a new box, unclaimed, with a new code.
	waitAcrossReload(t, a, `document.getElementById('owner') && document.getElementById('owner').dataset.state === 'unclaimed'`)
	claimOnPage(t, a, box.logs, 1)
	codes := reClaimCode.FindAllStringSubmatch(box.logs.String(), -1)
	if codes[0][1] == codes[1][1] {
		t.Error("the claim code after the reset is the old one")
	}
	base = box.base(t, c, "dev")
	if _, after := call(c, "GET", "/ca.crt", ""); after == caPEM {
		t.Error("the CA survived the factory reset")
	}
	if !strings.Contains(box.logs.String(), "factory reset: the box forgot everything") {
		t.Error("the reset is not in the log")
	}
}

// waitAcrossReload is waitJS for a page that reloads meanwhile: an evaluation cut by the
// navigation is tried again.
func waitAcrossReload(t *testing.T, u *user, pred string) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
		var ok bool
		ok, last = chromedp.Run(ctx, chromedp.Evaluate[bool](pred))
		cancel()
		if last == nil && ok {
			return
		}
	}
	t.Fatalf("%s: waiting for %s: %v\n%s", u.name, pred, last, u.state())
}
