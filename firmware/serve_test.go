package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer collects the server's log while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitReady polls for the ready file until the server writes it or run returns.
func waitReady(t *testing.T, path string, done <-chan error) readyInfo {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(30 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil {
			var ri readyInfo
			if err := json.Unmarshal(b, &ri); err != nil {
				t.Fatalf("ready file %q: %v", b, err)
			}
			return ri
		}
		select {
		case err := <-done:
			t.Fatalf("run returned before ready: %v", err)
		case <-timeout:
			t.Fatal("server not ready after 30s")
		case <-tick.C:
		}
	}
}

// TestServe runs the real server on loopback (run it inside a network namespace:
// unshare -n sh -c 'ip link set lo up && go test ./firmware/').
func TestServe(t *testing.T) {
	dir := t.TempDir()
	dataDir, readyFile := filepath.Join(dir, "data"), filepath.Join(dir, "ready.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data-dir", dataDir, "--https-addr", "127.0.0.1:0",
			"--http-addr", "127.0.0.1:0", "--ready-file", readyFile, "--hostname", "testbox", "--mdns=false"}, io.Discard, logs)
	}()
	ready := waitReady(t, readyFile, done)

	caPEM, err := os.ReadFile(ready.CACert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA does not parse")
	}
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: 10 * time.Second,
	}
	defer client.CloseIdleConnections()

	resp, err := client.Get("https://" + ready.HTTPS + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over verified HTTPS: %v", err)
	}
	var health struct{ Status, Version string }
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != 200 || health.Status != "ok" || health.Version != version {
		t.Errorf("healthz: %d %+v", resp.StatusCode, health)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS state %+v", resp.TLS)
	}
	if resp.Header.Get("Content-Security-Policy") == "" {
		t.Error("no CSP header")
	}
	// The certificate also covers the names mDNS takes when another host holds testbox.local.
	for _, name := range []string{"testbox.local", "testbox-2.local", "testbox-16.local"} {
		conn, err := tls.Dial("tcp", ready.HTTPS, &tls.Config{RootCAs: roots, ServerName: name})
		if err != nil {
			t.Errorf("TLS as %s: %v", name, err)
			continue
		}
		conn.Close()
	}
	if conn, err := tls.Dial("tcp", ready.HTTPS, &tls.Config{RootCAs: roots, ServerName: "testbox-17.local"}); err == nil {
		conn.Close()
		t.Error("the certificate covers testbox-17.local, a name mDNS never takes")
	}

	// The plain-HTTP side redirects to HTTPS but hands out the CA itself.
	resp, err = client.Get("http://" + ready.HTTP + "/some/page?q=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://" + ready.HTTPS + "/some/page?q=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("redirect: %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	// The API answers only requests addressed to the box (DNS rebinding): not another name
	// that resolves to it, not the generic chattorrent.local.
	for host, want := range map[string]int{"testbox.local": 200, "testbox-2.local": 200, "localhost": 200, ready.HTTPS: 200,
		"evil.example": http.StatusMisdirectedRequest, "chattorrent.local": http.StatusMisdirectedRequest, "192.168.1.1": http.StatusMisdirectedRequest} {
		req, _ := http.NewRequest("GET", "https://"+ready.HTTPS+"/api/rooms", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET /api/rooms with Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
	// The plain-HTTP side sends the generic name to the box's own.
	req, _ := http.NewRequest("GET", "http://"+ready.HTTP+"/x", nil)
	req.Host = "chattorrent.local"
	if resp, err := client.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); !strings.HasPrefix(resp.Header.Get("Location"), "https://testbox.local:") {
		t.Errorf("redirect of chattorrent.local: %q", resp.Header.Get("Location"))
	}
	resp, err = client.Get("http://" + ready.HTTP + "/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(caPEM) {
		t.Errorf("/ca.crt over HTTP: %d", resp.StatusCode)
	}

	// SIGTERM arrives as a cancelled context: a clean exit.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if _, err := os.Stat(readyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready file left behind: %v", err)
	}
	for _, want := range []string{"component=cert", "open the chat", "https://127.0.0.1:", "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}

	// A second start reuses the CA.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	done2 := make(chan error, 1)
	go func() {
		done2 <- run(ctx2, []string{"serve", "--data-dir", dataDir, "--https-addr", "127.0.0.1:0",
			"--http-addr", "", "--ready-file", readyFile}, io.Discard, io.Discard)
	}()
	ready2 := waitReady(t, readyFile, done2)
	if ready2.HTTP != "" {
		t.Errorf("HTTP listener with -http-addr empty: %q", ready2.HTTP)
	}
	if ca2, _ := os.ReadFile(ready2.CACert); string(ca2) != string(caPEM) {
		t.Error("CA changed between starts")
	}
	// "healthcheck" finds it healthy, trusting only the box's CA; a wrong port is unhealthy.
	if out, stderr, code := runMain(t, "healthcheck", "--data-dir", dataDir, "--https-addr", ready2.HTTPS); code != 0 || !strings.Contains(out, `"ok"`) {
		t.Errorf("healthcheck: exit %d, out %q, stderr %q", code, out, stderr)
	}
	if _, stderr, code := runMain(t, "healthcheck", "--data-dir", dataDir, "--https-addr", "127.0.0.1:1"); code != 1 || !strings.HasPrefix(stderr, "chattorrent: healthcheck:") {
		t.Errorf("healthcheck on a closed port: exit %d, stderr %q", code, stderr)
	}
	cancel2()
	if err := <-done2; err != nil {
		t.Errorf("second run: %v", err)
	}
}

func TestServeBadAddress(t *testing.T) {
	err := run(context.Background(), []string{"serve", "--data-dir", t.TempDir(), "--https-addr", "127.0.0.1:notaport"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "HTTPS") {
		t.Errorf("err = %v", err)
	}
}

func TestOpenURLs(t *testing.T) {
	lan := []netip.Addr{netip.MustParseAddr("192.168.4.1"), netip.MustParseAddr("fd00::1")}
	got := openURLs(&net.TCPAddr{Port: 8443}, "box", lan)
	want := []string{"https://localhost:8443", "https://box.local:8443", "https://192.168.4.1:8443", "https://[fd00::1]:8443"}
	if !slices.Equal(got, want) {
		t.Errorf("wildcard: %q, want %q", got, want)
	}
	got = openURLs(&net.TCPAddr{IP: net.IPv6unspecified, Port: 443}, "box", lan[:1])
	want = []string{"https://localhost", "https://box.local", "https://192.168.4.1"}
	if !slices.Equal(got, want) {
		t.Errorf("port 443: %q, want %q", got, want)
	}
	got = openURLs(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9}, "box", lan)
	if want := []string{"https://127.0.0.1:9"}; !slices.Equal(got, want) {
		t.Errorf("bound address: %q, want %q", got, want)
	}
	if got := dialAddr(&net.TCPAddr{IP: net.IPv6unspecified, Port: 80}); got != "127.0.0.1:80" {
		t.Errorf("dialAddr wildcard = %q", got)
	}
}

func TestServeCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := run(ctx, []string{"serve", "--data-dir", t.TempDir(), "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, io.Discard, io.Discard)
	if err != nil {
		t.Errorf("run with a cancelled context = %v, want nil", err)
	}
}
