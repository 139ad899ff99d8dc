package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestSettingsNetwork: the owner sets the box's Wi-Fi on the page and the box writes
// exactly the validated values to wifi.conf (what the root-side applier reads); a bad
// passphrase is refused with the message on the page and the file unchanged; a stranger
// and a cross-site request are refused; then the owner renames the box: it restarts,
// answers to the new name (Host check, a certificate from a new CA for it, the factory
// reset's word) and no longer to the old one.
func TestSettingsNetwork(t *testing.T) {
	box := supervise(t, filepath.Join(server.dir, "chattorrent"), "--hostname", "setbox")
	c := box.client()
	base := box.base(t, c, "dev")
	data := filepath.Join(filepath.Dir(box.ready), "data")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(data, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}
	// hostStatus is the box's answer to a request for host (the Host check).
	hostStatus := func(host string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/api/owner", nil)
		req.Host = host
		req.Header.Set("X-ChatTorrent", "1")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// verifies reports whether the box's certificate checks out for name against its CA.
	verifies := func(name string) bool {
		t.Helper()
		resp, err := c.Get(base + "/ca.crt")
		if err != nil {
			t.Fatal(err)
		}
		caPEM, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{ServerName: name, RootCAs: pool})
		if err == nil {
			conn.Close()
		}
		return err == nil
	}
	if hostStatus("setbox.local") != http.StatusOK || hostStatus("kitchen.local") != http.StatusMisdirectedRequest || !verifies("setbox.local") || verifies("kitchen.local") {
		t.Fatal("before the rename: the box should answer setbox.local only")
	}

	a := newUserAt(t, "A", "en-US", base, noDNS)
	claimOnPage(t, a, box.logs, 0)
	a.do(chromedp.Click(chromedp.CSS("#owner-net-box summary")))
	a.waitJS(`document.getElementById('net-name').value === 'setbox' && document.getElementById('net-pass-state').dataset.set === 'no'`)

	// The Wi-Fi: name (quotes, an emoji: fine in an SSID), passphrase, country.
	evalJS[chromedp.Void](a, `document.getElementById('net-ssid').value = 'Ana\'s "Casa" ☕'`)
	a.do(chromedp.SendKeys(chromedp.CSS("#net-pass"), `pa$$ "word" 1`), chromedp.SendKeys(chromedp.CSS("#net-country"), "ES"),
		chromedp.Click(chromedp.CSS("#net-save")))
	a.waitJS(`document.getElementById('net-msg').dataset.code === 'network.savedWifi' && document.getElementById('net-pass-state').dataset.set === 'yes'`)
	const wantWiFi = "SSID=Ana's \"Casa\" ☕\nPASSPHRASE=pa$$ \"word\" 1\nCOUNTRY=ES\n"
	if got := read("wifi.conf"); got != wantWiFi {
		t.Errorf("wifi.conf = %q, want %q", got, wantWiFi)
	}
	if v := evalJS[string](a, `document.getElementById('net-pass').value`); v != "" {
		t.Errorf("the passphrase stays in the form: %q", v)
	}

	// A bad passphrase (an accent): refused, said on the page, nothing written.
	a.do(chromedp.SendKeys(chromedp.CSS("#net-pass"), "contraseña1"), chromedp.Click(chromedp.CSS("#net-save")))
	a.waitJS(`document.getElementById('net-msg').dataset.code === 'network.err.bad-passphrase'`)
	if msg := a.text("#net-msg"); !strings.Contains(msg, "8 to 63 printable ASCII") {
		t.Errorf("the page says %q", msg)
	}
	if got := read("wifi.conf"); got != wantWiFi {
		t.Errorf("a refused passphrase changed wifi.conf to %q", got)
	}

	// A stranger (no owner's cookie) and a cross-site request are refused.
	put := func(cl *http.Client, origin string) int {
		t.Helper()
		req, _ := http.NewRequest("PUT", base+"/api/owner/network", strings.NewReader(`{"ssid":"Evil","passphrase":"evil-pass","country":"ES"}`))
		req.Header.Set("X-ChatTorrent", "1")
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := put(box.client(), ""); st != http.StatusUnauthorized {
		t.Errorf("a stranger's PUT: %d, want 401", st)
	}
	cross := `fetch('/api/owner/network', {method: 'PUT', headers: {'Content-Type': 'application/json'}, body: '{"ssid":"Evil","passphrase":"evil-pass","country":"ES"}'}).then(r => r.status)`
	if st := evalJS[int](a, cross); st != http.StatusForbidden {
		t.Errorf("the owner's cookie without the page's header (a cross-site form): %d, want 403", st)
	}
	if got := read("wifi.conf"); got != wantWiFi {
		t.Errorf("refused requests changed wifi.conf to %q", got)
	}

	// The rename: the box restarts as kitchen.local.
	evalJS[chromedp.Void](a, `document.getElementById('net-pass').value = ''; document.getElementById('net-name').value = ''`)
	a.do(chromedp.SendKeys(chromedp.CSS("#net-name"), "kitchen"), chromedp.Click(chromedp.CSS("#net-save")))
	a.waitJS(`document.getElementById('net-msg').dataset.code === 'network.restarting' && document.getElementById('net-msg').textContent.includes('kitchen.local')`)
	a.waitAsync(`fetch('/api/owner/network', {headers: {'X-ChatTorrent': '1'}}).then(r => r.json()).then(v => v.box_name === 'kitchen').catch(() => false)`)
	if got := read("boxname"); got != "kitchen\n" {
		t.Errorf("boxname = %q", got)
	}
	if got := read("wifi.conf"); got != wantWiFi {
		t.Errorf("the rename changed wifi.conf to %q", got)
	}
	if hostStatus("kitchen.local") != http.StatusOK || hostStatus("setbox.local") != http.StatusMisdirectedRequest {
		t.Error("after the rename the box should answer kitchen.local only")
	}
	if !verifies("kitchen.local") {
		t.Error("the renamed box's certificate does not check out for kitchen.local")
	}
	if got := evalJS[string](a, `fetch('/api/owner/factory-reset', {headers: {'X-ChatTorrent': '1'}}).then(r => r.json()).then(r => r.confirm)`); got != "kitchen" {
		t.Errorf("the factory reset asks for %q", got)
	}
	a.reopen()
	a.waitJS(`document.getElementById('owner').dataset.state === 'owner'`)
	a.do(chromedp.Click(chromedp.CSS("#owner-net-box summary")))
	a.waitJS(`document.getElementById('net-name').value === 'kitchen' && document.getElementById('net-ssid').value === 'Ana\'s "Casa" ☕' && document.getElementById('net-country').value === 'ES' && document.getElementById('net-pass-state').dataset.set === 'yes'`)
	a.checkConsole()
}
