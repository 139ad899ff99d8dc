package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// startLoggedBox is startBox with the box's log in a file (its path is returned): the owner
// test reads the claim code the box prints there, as a Pi owner reads the journal.
func startLoggedBox(tb testing.TB, hostname string, args ...string) (base, logPath string) {
	tb.Helper()
	dir := tb.TempDir()
	ready := filepath.Join(dir, "ready.json")
	logPath = filepath.Join(dir, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(server.dir, "chattorrent"), append([]string{"serve", "--data-dir", filepath.Join(dir, "data"),
		"--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--ready-file", ready, "--hostname", hostname,
		"--webrtc-port", "0", "--turn-port", "0", "--mdns=false", "--owner-reset-file", ""}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
		if tb.Failed() {
			b, _ := os.ReadFile(logPath)
			tb.Logf("%s's log:\n%s", hostname, b)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(ready)
		var r struct{ HTTPS string }
		if err == nil && json.Unmarshal(b, &r) == nil && r.HTTPS != "" {
			return "https://" + r.HTTPS, logPath
		}
	}
	tb.Fatalf("%s not ready", hostname)
	return "", ""
}

var reClaimCode = regexp.MustCompile(`claim_code=(\d{5}-\d{5})`)

// TestOwnerClaim: a new box is unclaimed and prints a one-time code in its log; the first
// person types it on the page and becomes the owner (an HttpOnly cookie the page cannot
// read); a second browser can neither claim the box nor read or change its settings; the
// owner switches the microphone off on the page and a member's "voice note from the box"
// is refused with mic-off.
func TestOwnerClaim(t *testing.T) {
	base, logPath := startLoggedBox(t, "ownerbox", "--webrtc-loopback", "--mic", "wav:"+filepath.Join(server.dir, "mic.wav"))
	a := newUserAt(t, "A", "en-US", base, noDNS)
	a.setName("Ana")
	a.waitJS(`document.getElementById('owner').dataset.state === 'unclaimed' && !document.getElementById('owner-claim').hidden`)

	logs, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	m := reClaimCode.FindSubmatch(logs)
	if m == nil {
		t.Fatalf("no claim code in the box's log:\n%s", logs)
	}
	code := string(m[1])

	// A wrong code first: refused, said on the page.
	a.do(chromedp.SendKeys(chromedp.CSS("#owner-code"), "00000-00000"), chromedp.Click(chromedp.CSS("#owner-claim-btn")))
	a.waitJS(`document.getElementById('owner-msg').dataset.code === 'owner.err.bad-code'`)
	evalJS[chromedp.Void](a, `document.getElementById('owner-code').value = ''`)
	a.do(chromedp.SendKeys(chromedp.CSS("#owner-code"), code), chromedp.Click(chromedp.CSS("#owner-claim-btn")))
	a.waitJS(`document.getElementById('owner').dataset.state === 'owner' && !document.getElementById('owner-settings').hidden`)
	if got := evalJS[bool](a, `document.getElementById('owner-mic').checked`); !got {
		t.Error("the owner sees the microphone off on a new box")
	}
	if c := evalJS[string](a, `document.cookie`); c != "" {
		t.Errorf("the page reads cookies %q: the owner's must be HttpOnly", c)
	}

	// A second browser: told the box has an owner, refused everything.
	b := newUserAt(t, "B", "en-US", base, noDNS)
	b.waitJS(`document.getElementById('owner').dataset.state === 'other' && !document.getElementById('owner-other').hidden && document.getElementById('owner-settings').hidden`)
	post := `fetch(%s, {method: %s, headers: {'X-ChatTorrent': '1', 'Content-Type': 'application/json'}, body: %s}).then(async r => r.status + ' ' + (await r.json()).code)`
	if got := evalJS[string](b, fmt.Sprintf(post, js("/api/owner/claim"), js("POST"), js(`{"code":"`+code+`"}`))); got != "409 claimed" {
		t.Errorf("a second claim with the same code: %s", got)
	}
	if got := evalJS[string](b, `fetch('/api/owner/settings', {headers: {'X-ChatTorrent': '1'}}).then(async r => r.status + ' ' + (await r.json()).code)`); got != "401 not-owner" {
		t.Errorf("a stranger reads the settings: %s", got)
	}
	if got := evalJS[string](b, fmt.Sprintf(post, js("/api/owner/settings"), js("PUT"), js(`{"mic_off":true}`))); got != "401 not-owner" {
		t.Errorf("a stranger changes the settings: %s", got)
	}

	// A room the box keeps, then the owner switches the microphone off.
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Radio"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitJS(`!document.getElementById('keep-on-box').hidden`)
	a.do(menuClick("#keep-on-box"))
	a.waitStatus("connected")
	room := evalJS[string](a, `document.querySelector('#rooms .room-item').dataset.roomId`)
	a.do(chromedp.Click(chromedp.CSS("#owner-mic")))
	a.waitJS(`document.getElementById('owner-msg').dataset.code === 'owner.saved' && !document.getElementById('owner-mic').checked`)
	voice := fmt.Sprintf(`fetch('/api/rooms/%s/voice?seconds=2', {method: 'POST', headers: {'X-ChatTorrent': '1'}}).then(async r => r.status + ' ' + (await r.json()).code)`, room)
	if got := evalJS[string](a, voice); got != "403 mic-off" {
		t.Errorf("a voice note with the microphone off: %s", got)
	}
	if got := evalJS[string](b, voice); got != "403 mic-off" {
		t.Errorf("a stranger's voice note with the microphone off: %s", got)
	}
	// Export on insert, off: the box keeps it.
	if !evalJS[bool](a, `document.getElementById('owner-stick').checked`) {
		t.Error("a new box shows the export on insert off")
	}
	a.do(chromedp.Click(chromedp.CSS("#owner-stick")))
	a.waitAsync(`fetch('/api/owner/settings', {headers: {'X-ChatTorrent': '1'}}).then(r => r.json()).then(s => s.stick_export_off === true && s.mic_off === true)`)
	// The owner's choices survive a reload of the page.
	a.reopen()
	a.waitJS(`document.getElementById('owner').dataset.state === 'owner' && !document.getElementById('owner-mic').checked && !document.getElementById('owner-stick').checked`)
	a.checkConsole()
	b.checkConsole()
}
