package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/history"
)

// TestBoxCrash: the box (the real binary) is killed with SIGKILL while a peer (Go, pion)
// writes into a room the box keeps, and started again on the same data directory, 20
// times. Every entry the box acknowledged before a kill is in its store afterwards, the
// store opens every time, and after each restart the peer's sync brings the box what it
// had not stored yet (the peer keeps writing on its own chain, so a lost entry would be a
// gap the box refuses).
func TestBoxCrash(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	api, err := rtc.NewAPI(rtc.Options{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	author := history.EncodeKey(pub)
	var roomID [16]byte
	rand.Read(roomID[:])
	room := hex.EncodeToString(roomID[:])
	mine := rtc.NewMemHistory(history.NewLog(room))
	sign := func(e *history.Entry) { e.Sign(key) }
	if _, err := mine.Write(history.Entry{Author: author, Name: "Pion", Kind: history.KindJoin, TS: time.Now().UnixMilli()}, sign); err != nil {
		t.Fatal(err)
	}
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 11))

	var mu sync.Mutex
	acked := map[string]bool{}
	for round := range 20 {
		base, cmd, done := startCrashBox(t, data, round)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		s, pc := joinBox(t, ctx, api, base, data, room, key, mine, func(ids []string) {
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				acked[id] = true
			}
		})
		runDone := make(chan struct{})
		go func() { defer close(runDone); s.Run(ctx) }()

		// Write for a while, then pull the plug in the middle of it.
		stop := time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		written := 0
	writing:
		for {
			select {
			case <-stop:
				break writing
			default:
			}
			e, err := mine.Write(history.Entry{Author: author, Name: "Pion", Kind: history.KindText,
				Body: fmt.Sprintf("round %d, message %d", round, written), TS: time.Now().UnixMilli()}, sign)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Publish(ctx, e); err != nil {
				t.Fatalf("round %d: publish: %v", round, err)
			}
			written++
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Kill()
		<-done
		cancel()
		pc.Close()
		<-runDone

		// The store opens, and holds every entry acknowledged so far.
		st, err := store.Open(filepath.Join(data, "store"), store.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("round %d: the store does not open after the kill: %v", round, err)
		}
		es, err := st.Entries(room)
		st.Close()
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Killed before the peer's hello reached the box, which makes the room only
			// then: nothing can have been acknowledged (checked below).
		case err != nil:
			t.Fatalf("round %d: %v", round, err)
		}
		held := map[string]bool{}
		for _, e := range es {
			held[e.ID] = true
		}
		mu.Lock()
		lost := 0
		for id := range acked {
			if !held[id] {
				lost++
			}
		}
		n := len(acked)
		mu.Unlock()
		if lost > 0 {
			t.Fatalf("round %d: %d of %d acknowledged entries lost", round, lost, n)
		}
		t.Logf("round %d: wrote %d, acknowledged so far %d, stored %d", round, written, n, len(es))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 20 {
		t.Errorf("only %d entries were acknowledged over 20 rounds: the test did not test much", len(acked))
	}
}

// startCrashBox starts the binary on data; done is closed when it exits.
func startCrashBox(t *testing.T, data string, round int) (string, *exec.Cmd, chan struct{}) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready.json")
	var logs bytes.Buffer
	cmd := exec.Command(filepath.Join(server.dir, "chattorrent"), "serve", "--data-dir", data,
		"--https-addr", "127.0.0.1:0", "--http-addr", "", "--ready-file", ready, "--hostname", "crashbox",
		"--webrtc-loopback", "--webrtc-port", "0", "--turn-port", "-1", "--mdns=false",
		"--mic", "none", "--ptt-pin", "none", "--export-pin", "none", "--led-pin", "none", "--sticks", "none")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("round %d, box log:\n%s", round, logs.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(ready)
		var r struct{ HTTPS string }
		if err == nil && json.Unmarshal(b, &r) == nil && r.HTTPS != "" {
			return "https://" + r.HTTPS, cmd, done
		}
		select {
		case <-done:
			t.Fatalf("round %d: the box exited at start:\n%s", round, logs.String())
		default:
		}
	}
	t.Fatalf("round %d: the box is not ready", round)
	return "", nil, nil
}

// joinBox invites the box into room (POST /api/rooms/connect, as the page's "keep a copy"
// does) and returns the peer's session on the open channel; onAcked gets the ids the box
// acknowledges.
func joinBox(t *testing.T, ctx context.Context, api *webrtc.API, base, data, room string, key ed25519.PrivateKey, h rtc.History, onAcked func([]string)) (*rtc.Session, interface{ Close() error }) {
	t.Helper()
	author := history.EncodeKey(key.Public().(ed25519.PublicKey))
	pc, dc, sdp, err := rtc.Offer(ctx, api)
	if err != nil {
		t.Fatal(err)
	}
	var sess [16]byte
	rand.Read(sess[:])
	offer, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleOffer, Room: room, RoomName: "Crash", SDP: sdp,
		Session: hex.EncodeToString(sess[:]), Peer: torrent.Peer{ID: author, Name: "Pion"}})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(data, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	mustProve(t, ctx, client, base, key) // a room the box keeps is joined by its members only
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/rooms/connect", bytes.NewReader(offer))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-ChatTorrent", "1")
	req.Header.Set("Content-Type", "application/x-bittorrent")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("connect: %s: %s", resp.Status, answer)
	}
	inv, err := torrent.Decode(answer)
	if err != nil {
		t.Fatal(err)
	}
	if err := rtc.Accept(pc, inv.SDP); err != nil {
		t.Fatal(err)
	}
	conn, err := rtc.Open(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rtc.NewSession(rtc.Config{Room: room, Self: rtc.PeerInfo{ID: author, Name: "Pion"}, History: h, Conn: conn,
		Logger: slog.New(slog.DiscardHandler),
		OnEvent: func(ev rtc.Event) {
			if ev.Kind == rtc.EventAcked {
				onAcked(ev.IDs)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	return s, pc
}
