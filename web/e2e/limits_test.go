package e2e

import (
	"bufio"
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
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/chattorrent/chattorrent/net/archiver"
	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/web"
)

// limitsBox is a box of the limits test's own: its caps are not shared with other tests.
type limitsBox struct {
	base string // https://127.0.0.1:PORT
	host string // 127.0.0.1:PORT
	data string
	tls  *tls.Config
	api  *webrtc.API
}

// from returns an HTTP client whose connections come from src (a 127.x.y.z address: in a
// loopback-only namespace every one of them is local), so the box counts it as a client
// of its own (web's clientAddr is the TCP peer address). HTTP/1.1: one connection per
// request in flight, as a browser's event streams are.
func (b *limitsBox) from(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, TLSClientConfig: b.tls.Clone(), MaxIdleConnsPerHost: 16,
	}}
}

// apiError is the body of a refused request.
type apiError struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

// do sends one request and returns its status and, for a refusal, its JSON code; ok
// responses' bodies are returned too.
func (b *limitsBox) do(t *testing.T, c *http.Client, method, path string, body []byte, hdr map[string]string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-ChatTorrent", "1")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e apiError
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Errorf("%s %s: %s: body is not a JSON error: %q", method, path, resp.Status, raw)
		}
	}
	return resp.StatusCode, e.Code, raw
}

// dropSDP is an SDP the drop box takes: it passes SDPs on unread.
var dropSDP = "v=0\r\na=fingerprint:sha-256 " + strings.Repeat("CD:", 31) + "CD\r\n"

// offerTorrent wraps sdp in an offer .torrent for a fresh room.
func offerTorrent(t *testing.T, sdp string) []byte {
	t.Helper()
	var room, sess [16]byte
	rand.Read(room[:])
	rand.Read(sess[:])
	return invitation(t, torrent.RoleOffer, hex.EncodeToString(room[:]), hex.EncodeToString(sess[:]), sdp)
}

// invitation is a .torrent of role for room and session, from a fresh peer.
func invitation(t *testing.T, role torrent.Role, room, session, sdp string) []byte {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	b, err := torrent.Encode(&torrent.Invitation{Role: role, Room: room, RoomName: "Límites",
		SDP: sdp, Session: session, Peer: torrent.Peer{ID: history.EncodeKey(pub), Name: "Límites"}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newLimitsBox starts a box of the test's own, its HTTPS trusted by the box's CA, with a
// pion API for offers.
func newLimitsBox(t *testing.T, hostname string, args ...string) *limitsBox {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	base := startBox(t, hostname, append([]string{"--data-dir", data, "--webrtc-loopback"}, args...)...)
	ca, err := os.ReadFile(filepath.Join(data, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	u, _ := url.Parse(base)
	api, err := rtc.NewAPI(rtc.Options{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	return &limitsBox{base: base, host: u.Host, data: data, tls: &tls.Config{RootCAs: pool}, api: api}
}

// pionOffer is a real pion peer's offer SDP; the peer lives until t ends and never accepts
// the box's answer, so its connection stays "opening" on the box.
func (b *limitsBox) pionOffer(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	pc, _, sdp, err := rtc.Offer(ctx, b.api)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return sdp
}

// connect posts an offer .torrent to POST /api/rooms/connect, as the page does.
func (b *limitsBox) connect(t *testing.T, c *http.Client, offer []byte) (int, string) {
	t.Helper()
	status, code, _ := b.do(t, c, http.MethodPost, "/api/rooms/connect", offer,
		map[string]string{"Content-Type": "application/x-bittorrent"})
	return status, code
}

// publish posts an offer to the drop box.
func (b *limitsBox) publish(t *testing.T, c *http.Client) (int, string) {
	t.Helper()
	status, code, _ := b.do(t, c, http.MethodPost, "/api/drop/offers", offerTorrent(t, dropSDP),
		map[string]string{"Content-Type": "application/x-bittorrent"})
	return status, code
}

// dropOffer publishes an offer that must be taken; it returns a function that posts an
// answer to it from a client.
func (b *limitsBox) dropOffer(t *testing.T, c *http.Client) (answer func(c *http.Client) (int, string)) {
	t.Helper()
	var r, s [16]byte
	rand.Read(r[:])
	rand.Read(s[:])
	room, session := hex.EncodeToString(r[:]), hex.EncodeToString(s[:])
	status, code, body := b.do(t, c, http.MethodPost, "/api/drop/offers", invitation(t, torrent.RoleOffer, room, session, dropSDP),
		map[string]string{"Content-Type": "application/x-bittorrent"})
	var created struct{ ID string }
	if status != http.StatusCreated || json.Unmarshal(body, &created) != nil {
		t.Fatalf("drop offer: %d %q %s", status, code, body)
	}
	return func(c *http.Client) (int, string) {
		t.Helper()
		status, code, _ := b.do(t, c, http.MethodPost, "/api/drop/offers/"+created.ID+"/answers",
			invitation(t, torrent.RoleAnswer, room, session, dropSDP), map[string]string{"Content-Type": "application/x-bittorrent"})
		return status, code
	}
}

// stream opens GET /api/drop/events and, when it is 200, holds it open until t ends (its
// first event has arrived: the box holds the stream's place); else it returns the code.
func (b *limitsBox) stream(t *testing.T, c *http.Client) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.base+"/api/drop/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		t.Cleanup(func() { resp.Body.Close() })
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
			t.Fatalf("stream: %v", err)
		}
		return resp.StatusCode, ""
	}
	defer resp.Body.Close()
	var e apiError
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Errorf("%s: not a JSON error: %q", resp.Status, raw)
	}
	return resp.StatusCode, e.Code
}

// joined opens a real peer connection from c's address into a fresh room: the pion peer
// accepts the box's answer, opens the DataChannel, says hello and sends its join entry,
// and returns once the box acknowledged that entry (so the box handled the hello: the
// connection is past "opening"). The session runs until t ends.
func (b *limitsBox) joined(t *testing.T, c *http.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var roomID [16]byte
	rand.Read(roomID[:])
	room := hex.EncodeToString(roomID[:])
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	author := history.EncodeKey(pub)
	log := history.NewLog(room)
	join := history.Entry{Author: author, Name: "Límites", Kind: history.KindJoin, TS: time.Now().UnixMilli()}
	log.Next(&join)
	join.Sign(key)
	if _, err := log.Add(join, time.Now()); err != nil {
		t.Fatal(err)
	}
	pc, dc, sdp, err := rtc.Offer(ctx, b.api)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var sess [16]byte
	rand.Read(sess[:])
	offer, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleOffer, Room: room, RoomName: "Límites", SDP: sdp,
		Session: hex.EncodeToString(sess[:]), Peer: torrent.Peer{ID: author, Name: "Límites"}})
	if err != nil {
		t.Fatal(err)
	}
	status, code, answer := b.do(t, c, http.MethodPost, "/api/rooms/connect", offer,
		map[string]string{"Content-Type": "application/x-bittorrent"})
	if status != http.StatusOK {
		t.Fatalf("connect: %d %q", status, code)
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
	acked := make(chan struct{})
	var once sync.Once
	s, err := rtc.NewSession(rtc.Config{Room: room, Self: rtc.PeerInfo{ID: author, Name: "Límites"}, History: rtc.NewMemHistory(log),
		Conn: conn, Logger: slog.New(slog.DiscardHandler), OnEvent: func(ev rtc.Event) {
			if ev.Kind == rtc.EventAcked && slices.Contains(ev.IDs, join.ID) {
				once.Do(func() { close(acked) })
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(sctx) }()
	t.Cleanup(func() { stop(); <-done })
	select {
	case <-acked:
	case <-ctx.Done():
		t.Fatal("the box did not acknowledge the join entry")
	}
}

// TestLimitsBlackBox shows the per-client limits of docs/OPERATIONS.md ("Limits:
// connections and requests") against the real binary over HTTPS, each client a source
// address of its own: every subtest fails when its limit is taken out of the box.
func TestLimitsBlackBox(t *testing.T) {
	box := newLimitsBox(t, "limitsbox", "--body-timeout", "1s")
	data := box.data
	pionOffer, connect := box.pionOffer, box.connect

	// archiver.MaxOfferCandidates and the SDP checks: an offer the box cannot answer is
	// refused before a peer connection is made, and no room is kept for it.
	t.Run("bad-sdp", func(t *testing.T) {
		c := box.from("127.0.0.10")
		junk := "v=0\r\na=fingerprint:sha-256 " + strings.Repeat("AB:", 31) + "AB\r\nthis is no SDP\r\n"
		if status, code := connect(t, c, offerTorrent(t, junk)); status != http.StatusBadRequest || code != web.CodeBadSDP {
			t.Errorf("junk SDP: %d %q, want 400 %q", status, code, web.CodeBadSDP)
		}
		// A real offer with more ICE candidates than the box takes: pion alone would answer it.
		valid := pionOffer(t)
		var extra strings.Builder
		for i := range archiver.MaxOfferCandidates + 1 {
			fmt.Fprintf(&extra, "a=candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host\r\n", 1000+i, 40000+i)
		}
		if strings.Count(valid, "\r\nm=") != 1 || !strings.Contains(valid, "\r\nm=application") {
			t.Fatalf("want one application section, the last, in the offer:\n%s", valid)
		}
		flooded := valid + extra.String() // candidates of that section
		if status, code := connect(t, c, offerTorrent(t, flooded)); status != http.StatusBadRequest || code != web.CodeBadSDP {
			t.Errorf("offer with %d extra candidates: %d %q, want 400 %q", archiver.MaxOfferCandidates+1, status, code, web.CodeBadSDP)
		}
		// The box keeps no room: its local token (what chattorrent export uses) lists all.
		tok, err := os.ReadFile(filepath.Join(data, "local-token"))
		if err != nil {
			t.Fatal(err)
		}
		status, _, body := box.do(t, c, http.MethodGet, "/api/rooms", nil,
			map[string]string{web.LocalHeader: strings.TrimSpace(string(tok))})
		var rooms []json.RawMessage
		if status != http.StatusOK || json.Unmarshal(body, &rooms) != nil {
			t.Fatalf("GET /api/rooms with the local token: %d %s", status, body)
		}
		if len(rooms) != 0 {
			t.Errorf("the box keeps rooms after refused offers: %s", body)
		}
	})

	// archiver.DefaultMaxOpeningPerClient: 4 connections not yet past hello per address.
	t.Run("opening-per-client", func(t *testing.T) {
		a, b := box.from("127.0.0.2"), box.from("127.0.0.3")
		for i := range 4 {
			if status, code := connect(t, a, offerTorrent(t, pionOffer(t))); status != http.StatusOK {
				t.Fatalf("offer %d from one address: %d %q, want 200", i+1, status, code)
			}
		}
		if status, code := connect(t, a, offerTorrent(t, pionOffer(t))); status != http.StatusTooManyRequests || code != web.CodeTooMany {
			t.Errorf("5th opening offer from one address: %d %q, want 429 %q", status, code, web.CodeTooMany)
		}
		if status, code := connect(t, b, offerTorrent(t, pionOffer(t))); status != http.StatusOK {
			t.Errorf("an offer from another address: %d %q, want 200", status, code)
		}
	})

	// archiver.DefaultMaxPeersPerClient: 8 peer connections per address, open or opening
	// (here all past hello, so the opening cap is not what refuses the 9th).
	t.Run("peers-per-client", func(t *testing.T) {
		a, b := box.from("127.0.0.11"), box.from("127.0.0.12")
		for range archiver.DefaultMaxPeersPerClient {
			box.joined(t, a)
		}
		if status, code := connect(t, a, offerTorrent(t, pionOffer(t))); status != http.StatusTooManyRequests || code != web.CodeTooMany {
			t.Errorf("offer %d from one address holding %d peer connections: %d %q, want 429 %q",
				archiver.DefaultMaxPeersPerClient+1, archiver.DefaultMaxPeersPerClient, status, code, web.CodeTooMany)
		}
		if status, code := connect(t, b, offerTorrent(t, pionOffer(t))); status != http.StatusOK {
			t.Errorf("an offer from another address: %d %q, want 200", status, code)
		}
	})

	// web.MaxStreamsPerClient: 8 event streams per address.
	t.Run("streams-per-client", func(t *testing.T) {
		a, b := box.from("127.0.0.4"), box.from("127.0.0.5")
		for i := range web.MaxStreamsPerClient {
			if status, code := box.stream(t, a); status != http.StatusOK {
				t.Fatalf("stream %d of one address: %d %q, want 200", i+1, status, code)
			}
		}
		if status, code := box.stream(t, a); status != http.StatusTooManyRequests || code != web.CodeTooMany {
			t.Errorf("9th stream of one address: %d %q, want 429 %q", status, code, web.CodeTooMany)
		}
		if status, code := box.stream(t, b); status != http.StatusOK {
			t.Errorf("a stream of another address: %d %q, want 200", status, code)
		}
	})

	// web.MaxDropOffersPerClient: 8 open drop-box offers per address.
	t.Run("drop-offers-per-client", func(t *testing.T) {
		a, b := box.from("127.0.0.6"), box.from("127.0.0.7")
		for i := range web.MaxDropOffersPerClient {
			if status, code := box.publish(t, a); status != http.StatusCreated {
				t.Fatalf("drop offer %d of one address: %d %q, want 201", i+1, status, code)
			}
		}
		if status, code := box.publish(t, a); status != http.StatusTooManyRequests || code != web.CodeTooMany {
			t.Errorf("9th drop offer of one address: %d %q, want 429 %q", status, code, web.CodeTooMany)
		}
		if status, code := box.publish(t, b); status != http.StatusCreated {
			t.Errorf("a drop offer of another address: %d %q, want 201", status, code)
		}
	})

	// web.DropOptions.MaxAnswers: 8 answers waiting for a verdict on one offer.
	t.Run("drop-answers-per-offer", func(t *testing.T) {
		answer := box.dropOffer(t, box.from("127.0.0.13"))
		for i := range 8 { // web.DropOptions.MaxAnswers's default
			if status, code := answer(box.from(fmt.Sprintf("127.0.4.%d", i+1))); status != http.StatusCreated {
				t.Fatalf("answer %d to one offer: %d %q, want 201", i+1, status, code)
			}
		}
		if status, code := answer(box.from("127.0.4.9")); status != http.StatusTooManyRequests || code != "too-many-answers" {
			t.Errorf("9th answer to one offer, from a fresh address: %d %q, want 429 too-many-answers", status, code)
		}
	})

	// web.MaxDropAnswersPerClient: 8 answers of one address waiting, over every offer.
	t.Run("drop-answers-per-client", func(t *testing.T) {
		a := box.from("127.0.0.15")
		for i := range web.MaxDropAnswersPerClient {
			if status, code := box.dropOffer(t, box.from("127.0.0.14"))(a); status != http.StatusCreated {
				t.Fatalf("answer %d of one address: %d %q, want 201", i+1, status, code)
			}
		}
		answer := box.dropOffer(t, box.from("127.0.0.16"))
		if status, code := answer(a); status != http.StatusTooManyRequests || code != web.CodeTooMany {
			t.Errorf("9th answer of one address: %d %q, want 429 %q", status, code, web.CodeTooMany)
		}
		if status, code := answer(box.from("127.0.0.17")); status != http.StatusCreated {
			t.Errorf("an answer of another address: %d %q, want 201", status, code)
		}
	})

	// torrent.MaxSize: an invitation of more than 65,536 bytes.
	t.Run("too-large", func(t *testing.T) {
		c := box.from("127.0.0.18")
		big := bytes.Repeat([]byte("d"), torrent.MaxSize+1)
		for _, path := range []string{"/api/rooms/connect", "/api/drop/offers"} {
			if status, code, _ := box.do(t, c, http.MethodPost, path, big, nil); status != http.StatusRequestEntityTooLarge || code != torrent.CodeTooLarge {
				t.Errorf("POST %s of %d bytes: %d %q, want 413 %q", path, len(big), status, code, torrent.CodeTooLarge)
			}
		}
	})

	// The request headers' cap (firmware/serve.go: 32 KiB).
	t.Run("large-headers", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, box.base+"/api/drop/offers", nil)
		req.Header.Set("X-Filler", strings.Repeat("x", 64<<10))
		resp, err := box.from("127.0.0.19").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("64 KiB of headers: %s, want 431", resp.Status)
		}
	})

	// The headers' timeout (firmware/serve.go: 10 s, http.Server.ReadHeaderTimeout, which
	// also bounds the TLS handshake): a client that never finishes either is disconnected.
	t.Run("slow-headers", func(t *testing.T) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.20")}, Timeout: 10 * time.Second}
		raw, err := d.DialContext(t.Context(), "tcp", box.host) // no TLS handshake at all
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		conn, err := tls.DialWithDialer(d, "tcp", box.host, box.tls.Clone())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+box.host+"\r\n"); err != nil { // and no blank line
			t.Fatal(err)
		}
		type result struct {
			what string
			err  error
		}
		results := make(chan result, 2)
		for what, c := range map[string]net.Conn{"a TCP connection without a TLS handshake": raw, "a request with unfinished headers": conn} {
			go func() {
				// Without the limit the box would wait for ever; this bounds the test.
				c.SetReadDeadline(time.Now().Add(25 * time.Second))
				_, err := io.Copy(io.Discard, c)
				results <- result{what, err}
			}()
		}
		for range 2 {
			if r := <-results; errors.Is(r.err, os.ErrDeadlineExceeded) {
				t.Errorf("%s is still open: %v", r.what, r.err)
			}
		}
	})

	// web.DefaultBodyReadTimeout (here --body-timeout 1s): a body still arriving after the
	// timeout is cut, however steadily it trickles.
	t.Run("slow-body", func(t *testing.T) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.8")}, Timeout: 10 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", box.host, box.tls.Clone())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// Without the limit the box would wait for the rest; this bounds the test.
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		body := offerTorrent(t, dropSDP)
		head := fmt.Sprintf("POST /api/drop/offers HTTP/1.1\r\nHost: %s\r\nX-ChatTorrent: 1\r\n"+
			"Content-Type: application/x-bittorrent\r\nContent-Length: %d\r\n\r\n", box.host, len(body))
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		trickled := make(chan struct{})
		go func() { // a byte every 200 ms: the whole body would take minutes
			defer close(trickled)
			for _, c := range body {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := conn.Write([]byte{c}); err != nil {
					return
				}
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		close(stop)
		if err != nil {
			t.Fatalf("no answer to a trickled body: %v", err)
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		var e apiError
		json.Unmarshal(raw, &e)
		if resp.StatusCode != http.StatusRequestTimeout || e.Code != web.CodeSlowBody {
			t.Errorf("trickled body: %s %s, want 408 %q", resp.Status, raw, web.CodeSlowBody)
		}
		conn.Close()
		<-trickled
	})
}

// TestLimitsBoxWide fills the whole box's caps from several addresses, each within its own
// share, in a box of its own: the next one, from a fresh address, is refused.
func TestLimitsBoxWide(t *testing.T) {
	box := newLimitsBox(t, "limitswide")
	// clients returns n clients, each of a source address of its own in 127.0.subnet.0/24.
	clients := func(subnet, n int) []*http.Client {
		cs := make([]*http.Client, n)
		for i := range cs {
			cs[i] = box.from(fmt.Sprintf("127.0.%d.%d", subnet, i+1))
		}
		return cs
	}

	// archiver.DefaultMaxPeers: 32 peer connections, 4 opening from each of 8 addresses.
	t.Run("peers", func(t *testing.T) {
		const maxPeers, perClient = archiver.DefaultMaxPeers, archiver.DefaultMaxOpeningPerClient
		cs := clients(1, maxPeers/perClient+1)
		for i := range maxPeers {
			if status, code := box.connect(t, cs[i/perClient], offerTorrent(t, box.pionOffer(t))); status != http.StatusOK {
				t.Fatalf("offer %d (client %d): %d %q, want 200", i+1, i/perClient+1, status, code)
			}
		}
		if status, code := box.connect(t, cs[len(cs)-1], offerTorrent(t, box.pionOffer(t))); status != http.StatusServiceUnavailable || code != "busy" {
			t.Errorf("offer %d, from a fresh address: %d %q, want 503 busy", maxPeers+1, status, code)
		}
	})

	// web.MaxStreams: 64 event streams, 8 from each of 8 addresses.
	t.Run("streams", func(t *testing.T) {
		cs := clients(2, web.MaxStreams/web.MaxStreamsPerClient+1)
		for i := range web.MaxStreams {
			if status, code := box.stream(t, cs[i/web.MaxStreamsPerClient]); status != http.StatusOK {
				t.Fatalf("stream %d: %d %q, want 200", i+1, status, code)
			}
		}
		if status, code := box.stream(t, cs[len(cs)-1]); status != http.StatusServiceUnavailable || code != "busy" {
			t.Errorf("stream %d, from a fresh address: %d %q, want 503 busy", web.MaxStreams+1, status, code)
		}
	})

	// web.DropOptions.MaxOffers (64 by default): open drop-box offers of the whole box.
	t.Run("drop-offers", func(t *testing.T) {
		const maxOffers = 64 // web.DropOptions.MaxOffers's default
		cs := clients(3, maxOffers/web.MaxDropOffersPerClient+1)
		for i := range maxOffers {
			if status, code := box.publish(t, cs[i/web.MaxDropOffersPerClient]); status != http.StatusCreated {
				t.Fatalf("drop offer %d: %d %q, want 201", i+1, status, code)
			}
		}
		if status, code := box.publish(t, cs[len(cs)-1]); status != http.StatusServiceUnavailable || code != "drop-full" {
			t.Errorf("drop offer %d, from a fresh address: %d %q, want 503 drop-full", maxOffers+1, status, code)
		}
	})
}
