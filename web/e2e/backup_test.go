package e2e

import (
	"archive/zip"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/web"
)

// boxGet reads path from a box as a command on the box does (its local token).
func boxGet(t *testing.T, c *http.Client, base, data, path string) []byte {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(data, "local-token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set(web.LocalHeader, strings.TrimSpace(string(token)))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	return b
}

// roomHistory is a room's history.json from the box without its export time.
func roomHistory(t *testing.T, c *http.Client, base, data, room string) string {
	t.Helper()
	var x map[string]any
	if err := json.Unmarshal(boxGet(t, c, base, data, "/api/rooms/"+room+"/history.json"), &x); err != nil {
		t.Fatal(err)
	}
	delete(x, "exported")
	b, _ := json.Marshal(x)
	return string(b)
}

// filesTree is every file under dirs with its content.
func filesTree(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() && !strings.HasSuffix(p, ".lock") {
				b, _ := os.ReadFile(p)
				out[p] = string(b)
			}
			return nil
		})
	}
	return out
}

// trusting is a client that trusts only the CA in caFile.
func trusting(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("the CA does not parse")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

var reBackupName = regexp.MustCompile(`^chattorrent-backupa-backup-\d{8}-\d{6}\.tar$`)

// TestBackupRestore: box A keeps two rooms (text in both, a picture in one); its owner
// downloads the backup on the page. A new box B (its own data directory, CA and identity)
// is claimed; a tampered copy of the backup is refused on the page with its reason and
// changes nothing; the real one is restored from the page: B restarts and then serves the
// same history for both rooms and the picture, with A's CA (a client that trusts only A's
// CA connects to B) and A's identity.
func TestBackupRestore(t *testing.T) {
	bin := filepath.Join(server.dir, "chattorrent")
	boxA := supervise(t, bin, "--hostname", "backupa", "--webrtc-loopback")
	c := boxA.client()
	baseA := boxA.base(t, c, "dev")
	dataA := filepath.Join(filepath.Dir(boxA.ready), "data")
	a := newUserAt(t, "A", "en-US", baseA, noDNS)
	a.setName("Ana")
	claimOnPage(t, a, boxA.logs, 0)

	var rooms []string
	for i, name := range []string{"Campamento", "Cocina"} {
		a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), name))
		a.download(chromedp.Click(chromedp.CSS("#create-room")))
		a.waitJS(fmt.Sprintf(`document.querySelectorAll('#rooms .room-item').length === %d && !document.getElementById('keep-on-box').hidden`, i+1))
		a.do(menuClick("#keep-on-box"))
		a.waitStatus("connected")
		a.say("hola desde " + name)
	}
	pic := writePNG(t)
	raw, _ := os.ReadFile(pic)
	a.do(chromedp.SetUploadFiles(chromedp.CSS("#attach-file"), []string{pic}))
	leaves, _ := pieces.Leaves(bytes.NewReader(raw), int64(len(raw)))
	root := pieces.RootHex(pieces.Root(leaves))
	// The box holds both rooms' text and the picture.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ids := evalJS[[]string](a, `[...document.querySelectorAll('#rooms .room-item')].map(n => n.dataset.roomId)`)
		_, err := os.Stat(filepath.Join(dataA, "files", root))
		if len(ids) == 2 && err == nil {
			rooms = ids
			h0, h1 := roomHistory(t, c, baseA, dataA, ids[0]), roomHistory(t, c, baseA, dataA, ids[1])
			if strings.Contains(h0+h1, "hola desde Campamento") && strings.Contains(h0+h1, "hola desde Cocina") && strings.Contains(h0+h1, root) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("box A never held both rooms and the picture\n%s", a.state())
		}
	}
	want := map[string]string{}
	for _, r := range rooms {
		want[r] = roomHistory(t, c, baseA, dataA, r)
	}

	// The backup, downloaded on the page.
	a.do(chromedp.Click(chromedp.CSS("#owner-backup-box summary")))
	backup, name := a.download(chromedp.Click(chromedp.CSS("#owner-backup-link")))
	if !reBackupName.MatchString(name) {
		t.Errorf("the backup is named %q", name)
	}
	good, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(good, []byte("hola desde Cocina"), []byte("HOLA desde Cocina"), 1)
	if bytes.Equal(tampered, good) {
		t.Fatal("the backup holds no text to tamper with")
	}
	dir := t.TempDir()
	goodPath, badPath := filepath.Join(dir, name), filepath.Join(dir, "tampered-"+name)
	os.WriteFile(goodPath, good, 0o600)
	os.WriteFile(badPath, tampered, 0o600)

	// Box B, new, claimed by its owner.
	boxB := supervise(t, bin, "--hostname", "backupb", "--webrtc-loopback")
	baseB := boxB.base(t, c, "dev")
	dataB := filepath.Join(filepath.Dir(boxB.ready), "data")
	trustA := trusting(t, filepath.Join(dataA, "ca.crt"))
	if resp, err := trustA.Get(baseB + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("a client trusting A's CA already connects to B")
	}
	b := newUserAt(t, "B", "en-US", baseB, noDNS)
	claimOnPage(t, b, boxB.logs, 0)
	b.do(chromedp.Click(chromedp.CSS("#owner-backup-box summary")))
	restore := func(path string) {
		t.Helper()
		b.do(chromedp.SetUploadFiles(chromedp.CSS("#owner-restore-file"), []string{path}))
		b.waitJS(`!document.getElementById('owner-restore-confirm').hidden`)
		b.do(chromedp.Click(chromedp.CSS("#owner-restore-btn")))
	}

	// The tampered backup: refused, said why, nothing changed.
	watched := []string{filepath.Join(dataB, "store"), filepath.Join(dataB, "files"), filepath.Join(dataB, "ca.crt"), filepath.Join(dataB, "identity.json")}
	before := filesTree(t, watched...)
	restore(badPath)
	b.waitJS(`document.getElementById('owner-restore-msg').dataset.code === 'bad-entry'`)
	if msg := b.text("#owner-restore-msg"); !strings.Contains(msg, "nothing was changed") {
		t.Errorf("the refusal says %q", msg)
	}
	after := filesTree(t, watched...)
	if len(after) != len(before) {
		t.Errorf("the refused backup left %d files, %d before", len(after), len(before))
	}
	for p, v := range before {
		if after[p] != v {
			t.Errorf("the refused backup changed %s", p)
		}
	}
	token, _ := os.ReadFile(filepath.Join(dataB, "local-token"))
	for _, r := range rooms {
		req, _ := http.NewRequest("GET", baseB+"/api/rooms/"+r+"/history.json", nil)
		req.Header.Set(web.LocalHeader, strings.TrimSpace(string(token)))
		if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("B's room %s after a refused backup: %v %v", r, resp.Status, err)
		}
	}

	// The real one: restored, B restarts as A's CA and identity.
	restore(goodPath)
	b.waitLong(`document.getElementById('owner-restore-msg').dataset.code === 'restored'`, 3*time.Minute)
	if msg := b.text("#owner-restore-msg"); !strings.Contains(msg, "2 rooms") || !strings.Contains(msg, "1 new files") {
		t.Errorf("after the restore the page says %q", msg)
	}
	baseB = boxB.base(t, c, "dev")
	for _, r := range rooms {
		if got := roomHistory(t, c, baseB, dataB, r); got != want[r] {
			t.Errorf("room %s on B:\n%s\nwant A's:\n%s", r, got, want[r])
		}
	}
	found := false
	for _, r := range rooms {
		z := boxGet(t, c, baseB, dataB, "/api/rooms/"+r+"/history.zip")
		zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			if strings.HasPrefix(f.Name, "media/"+root[:12]) {
				rc, _ := f.Open()
				got, _ := io.ReadAll(rc)
				rc.Close()
				found = bytes.Equal(got, raw)
			}
		}
	}
	if !found {
		t.Error("B does not serve A's picture")
	}
	for _, f := range []string{"ca.crt", "ca.key", "identity.json"} {
		wa, _ := os.ReadFile(filepath.Join(dataA, f))
		wb, _ := os.ReadFile(filepath.Join(dataB, f))
		if !bytes.Equal(wa, wb) {
			t.Errorf("B's %s is not A's", f)
		}
	}
	resp, err := trustA.Get(baseB + "/healthz")
	if err != nil {
		t.Fatalf("a client trusting A's CA does not connect to B: %v", err)
	}
	resp.Body.Close()
	a.checkConsole()
}
