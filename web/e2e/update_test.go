package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

func supervise(t *testing.T, bin string, args ...string) *supervised {
	dir := t.TempDir()
	s := &supervised{bin: bin, ready: filepath.Join(dir, "ready.json"), logs: new(syncBuffer), done: make(chan struct{})}
	s.args = append([]string{"serve", "--data-dir", filepath.Join(dir, "data"), "--https-addr", "127.0.0.1:0",
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

	rel := func(keyFile, ver, bin string) []byte {
		out := filepath.Join(dir, ver+"-"+filepath.Base(keyFile)+".release")
		runCmd(t, tool, "release", "sign", "-key", keyFile, "-version", ver, "-o", out, bin)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := rel(key, "2.0.0", v2)

	box := supervise(t, installed)
	c := box.client()
	base := box.base(t, c, "1.0.0")
	var code string
	for deadline := time.Now().Add(10 * time.Second); code == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := reClaimCode.FindStringSubmatch(box.logs.String()); m != nil {
			code = m[1]
		}
	}
	call := func(method, path string, body []byte) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), method, base+path, bytes.NewReader(body))
		req.Header.Set("X-ChatTorrent", "1")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	// A stranger may not update the box.
	if st, out := call("POST", "/api/owner/update", good); st != http.StatusUnauthorized {
		t.Fatalf("a stranger's upload: %d %v", st, out)
	}
	if st, out := call("POST", "/api/owner/claim", []byte(`{"code":"`+code+`"}`)); st != http.StatusOK {
		t.Fatalf("claim: %d %v", st, out)
	}

	releases := filepath.Join(filepath.Dir(box.ready), "data", "releases")
	for _, bad := range []struct {
		name string
		file []byte
		code string
	}{
		{"signed by another key", rel(other, "2.0.0", v2), "bad-signature"},
		{"built for " + foreignArch, rel(key, "9.0.0", foreign), "wrong-platform"},
		{"truncated", good[:len(good)-4096], "truncated"},
		{"not a release", []byte("PK\x03\x04"), "not-a-release"},
	} {
		st, out := call("POST", "/api/owner/update", bad.file)
		if st != http.StatusUnprocessableEntity || out["code"] != bad.code || out["error"] == "" {
			t.Errorf("%s: %d %v, want 422 %s with a message", bad.name, st, out, bad.code)
		}
		if ents, _ := os.ReadDir(releases); len(ents) != 0 {
			t.Errorf("%s: the refused release left %d files in %s", bad.name, len(ents), releases)
		}
	}
	if _, err := c.Get(base + "/healthz"); err != nil {
		t.Fatalf("the box stopped after refused releases: %v", err)
	}

	// A good release: the box restarts into it and keeps it once healthy.
	if st, out := call("POST", "/api/owner/update", good); st != http.StatusAccepted || out["version"] != "2.0.0" {
		t.Fatalf("upload 2.0.0: %d %v", st, out)
	}
	base = box.base(t, c, "2.0.0")
	state := func() map[string]any {
		_, out := call("GET", "/api/owner/update", nil)
		s, _ := out["state"].(map[string]any)
		return s
	}
	for deadline := time.Now().Add(70 * time.Second); state()["trial"] == true; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("2.0.0 still on trial: %v", state())
		}
	}

	// A broken release: it exits at once; the box goes back to 2.0.0 by itself.
	if st, out := call("POST", "/api/owner/update", rel(key, "3.0.0", broken)); st != http.StatusAccepted {
		t.Fatalf("upload 3.0.0: %d %v", st, out)
	}
	base = box.base(t, c, "2.0.0")
	last, _ := state()["last"].(string)
	if !strings.Contains(last, "rolled back from 3.0.0 to 2.0.0") {
		t.Errorf("after the broken release the owner reads %q", last)
	}
	if !strings.Contains(box.logs.String(), "rolling back") {
		t.Error("the rollback is not in the box's log")
	}
}

// TestFactoryReset: the owner reads the box's storage and last log lines (a stranger may
// not), a reset needs the box's name typed, and then the box comes back empty: a new
// claim code, the old owner's cookie worth nothing, a new CA.
func TestFactoryReset(t *testing.T) {
	box := supervise(t, filepath.Join(server.dir, "chattorrent"), "--hostname", "resetbox")
	c := box.client()
	base := box.base(t, c, "dev")
	claim := func(skip int) string {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if m := reClaimCode.FindAllStringSubmatch(box.logs.String(), -1); len(m) > skip {
				return m[skip][1]
			}
		}
		t.Fatalf("no claim code #%d in the log", skip+1)
		return ""
	}
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
	if st, _ := call(stranger, "POST", "/api/owner/factory-reset", `{"confirm":"resetbox"}`); st != http.StatusUnauthorized {
		t.Errorf("a stranger's factory reset: %d", st)
	}
	first := claim(0)
	if st, body := call(c, "POST", "/api/owner/claim", `{"code":"`+first+`"}`); st != http.StatusOK {
		t.Fatalf("claim: %d %s", st, body)
	}
	if st, body := call(c, "GET", "/api/owner/storage", ""); st != http.StatusOK || !strings.Contains(body, `"rooms":[]`) {
		t.Errorf("storage: %d %s", st, body)
	}
	if st, body := call(c, "GET", "/api/owner/logs", ""); st != http.StatusOK || !strings.Contains(body, "open the chat") {
		t.Errorf("logs: %d %q", st, body)
	}
	st, body := call(c, "GET", "/api/owner/factory-reset", "")
	if st != http.StatusOK || !strings.Contains(body, `"confirm":"resetbox"`) || !strings.Contains(body, `"ca"`) {
		t.Errorf("what a reset loses: %d %s", st, body)
	}
	caBefore, _ := call(c, "GET", "/ca.crt", "")
	_, caPEM := call(c, "GET", "/ca.crt", "")
	if st, body := call(c, "POST", "/api/owner/factory-reset", `{"confirm":"another"}`); st != http.StatusBadRequest || !strings.Contains(body, "bad-confirm") {
		t.Errorf("a reset with the wrong name: %d %s", st, body)
	}
	if st, body := call(c, "POST", "/api/owner/factory-reset", `{"confirm":"resetbox"}`); st != http.StatusAccepted {
		t.Fatalf("factory reset: %d %s", st, body)
	}
	second := claim(1)
	base = box.base(t, c, "dev")
	if second == first {
		t.Error("the claim code after the reset is the old one")
	}
	if _, body := call(c, "GET", "/api/owner", ""); !strings.Contains(body, `"claimed":false`) || !strings.Contains(body, `"owner":false`) {
		t.Errorf("after the reset the old owner's cookie: %s", body)
	}
	if _, after := call(c, "GET", "/ca.crt", ""); caBefore != http.StatusOK || after == caPEM {
		t.Error("the CA survived the factory reset")
	}
	if !strings.Contains(box.logs.String(), "factory reset: the box forgot everything") {
		t.Error("the reset is not in the log")
	}
}
