package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// flushRecorder is a ResponseRecorder that says when the handler first flushed (an event
// stream started).
type flushRecorder struct {
	*httptest.ResponseRecorder
	once    sync.Once
	flushed chan struct{}
}

func newFlushRecorder() *flushRecorder {
	return &flushRecorder{ResponseRecorder: httptest.NewRecorder(), flushed: make(chan struct{})}
}

func (f *flushRecorder) Flush() {
	f.ResponseRecorder.Flush()
	f.once.Do(func() { close(f.flushed) })
}

// streamOpener opens event streams on h from given addresses until the test ends.
type streamOpener struct {
	t  *testing.T
	h  http.Handler
	wg sync.WaitGroup
}

// open starts a GET of path from addr; it returns the recorder once the handler either
// started the stream (ok) or answered at once.
func (s *streamOpener) open(path, addr string) (rec *flushRecorder, stop func()) {
	ctx, cancel := context.WithCancel(s.t.Context())
	req := httptest.NewRequestWithContext(ctx, "GET", "https://box.local"+path, nil)
	req.RemoteAddr = addr
	rec = newFlushRecorder()
	done := make(chan struct{})
	s.wg.Go(func() {
		defer close(done)
		s.h.ServeHTTP(rec, req)
	})
	select {
	case <-rec.flushed:
	case <-done:
	}
	return rec, func() { cancel(); <-done }
}

func streaming(rec *flushRecorder) bool {
	select {
	case <-rec.flushed:
		return rec.Code == http.StatusOK
	default:
		return false
	}
}

// TestStreamLimits: one address holds at most MaxStreamsPerClient event streams (the drop
// box's list and an offer's answer stream count alike): the next is 429 too-many while
// another address still gets one; the box holds at most MaxStreams in all (503 busy); a
// stream that ends gives its place back.
func TestStreamLimits(t *testing.T) {
	drop := NewDropBox(DropOptions{})
	s := &streamOpener{t: t, h: New(Options{Drop: drop})}
	offer, _, _ := invitations(t)
	id, token, err := drop.Publish(clientAddr(&http.Request{RemoteAddr: "10.0.0.1:1"}), offer)
	if err != nil {
		t.Fatal(err)
	}
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	for i := range MaxStreamsPerClient {
		path := "/api/drop/events"
		if i%2 == 1 {
			path = "/api/drop/offers/" + id + "/answers?token=" + token
		}
		rec, stop := s.open(path, "10.0.0.1:1000")
		stops = append(stops, stop)
		if !streaming(rec) {
			t.Fatalf("stream %d of one address: %d %s", i+1, rec.Code, rec.Body)
		}
	}
	rec, stop := s.open("/api/drop/events", "10.0.0.1:2000")
	stop()
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), `"code":"too-many"`) {
		t.Errorf("one stream too many from one address: %d %s", rec.Code, rec.Body)
	}
	for c := 2; len(stops) < MaxStreams; c++ {
		for range MaxStreamsPerClient {
			rec, stop := s.open("/api/drop/events", fmt.Sprintf("10.0.0.%d:1000", c))
			stops = append(stops, stop)
			if !streaming(rec) {
				t.Fatalf("stream %d of the box: %d %s", len(stops), rec.Code, rec.Body)
			}
		}
	}
	rec, stop = s.open("/api/drop/events", "[fd00::1]:1000")
	stop()
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"code":"busy"`) {
		t.Errorf("one stream too many for the box: %d %s", rec.Code, rec.Body)
	}
	stops[0]() // the first address closes one: it may open one again
	stops = stops[1:]
	rec, stop = s.open("/api/drop/events", "10.0.0.1:3000")
	stops = append(stops, stop)
	if !streaming(rec) {
		t.Errorf("after a stream ended: %d %s", rec.Code, rec.Body)
	}
}

// TestDropClientLimits: one address holds at most MaxDropOffersPerClient open offers and
// MaxDropAnswersPerClient undecided answers (over every offer); past that 429 too-many,
// while another address is served.
func TestDropClientLimits(t *testing.T) {
	h := New(Options{Drop: NewDropBox(DropOptions{})})
	offer, answer, _ := invitations(t)
	post := func(path, addr string, body []byte) (int, string, string) {
		req := httptest.NewRequest("POST", "https://box.local"+path, bytes.NewReader(body))
		req.RemoteAddr = addr
		req.Header.Set("X-ChatTorrent", "1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out struct{ ID, Code string }
		json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out.ID, out.Code
	}
	var ids []string
	for i := range MaxDropOffersPerClient {
		st, id, code := post("/api/drop/offers", "10.0.0.1:1000", offer)
		if st != http.StatusCreated {
			t.Fatalf("offer %d: %d %s", i+1, st, code)
		}
		ids = append(ids, id)
	}
	if st, _, code := post("/api/drop/offers", "10.0.0.1:1001", offer); st != http.StatusTooManyRequests || code != CodeTooMany {
		t.Errorf("one offer too many from one address: %d %s", st, code)
	}
	if st, _, code := post("/api/drop/offers", "10.0.0.2:1000", offer); st != http.StatusCreated {
		t.Errorf("another address's offer: %d %s", st, code)
	}
	for i := range MaxDropAnswersPerClient { // spread over offers: each takes 8 undecided
		if st, _, code := post("/api/drop/offers/"+ids[i%2]+"/answers", "10.0.0.3:1000", answer); st != http.StatusCreated {
			t.Fatalf("answer %d: %d %s", i+1, st, code)
		}
	}
	if st, _, code := post("/api/drop/offers/"+ids[2]+"/answers", "10.0.0.3:1000", answer); st != http.StatusTooManyRequests || code != CodeTooMany {
		t.Errorf("one answer too many from one address: %d %s", st, code)
	}
	if st, _, code := post("/api/drop/offers/"+ids[2]+"/answers", "10.0.0.4:1000", answer); st != http.StatusCreated {
		t.Errorf("another address's answer: %d %s", st, code)
	}
}

// TestSlowBodyCut: a client that trickles a request body is answered 408 slow-body once
// BodyReadTimeout has passed, over a real connection (run inside `unshare -n`).
func TestSlowBodyCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv := httptest.NewServer(New(Options{Drop: NewDropBox(DropOptions{}), BodyReadTimeout: timeout}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/drop/offers HTTP/1.1\r\nHost: box.local\r\nX-ChatTorrent: 1\r\nContent-Length: 1000\r\n\r\n")
	start := time.Now()
	got := make(chan *http.Response, 1)
	go func() {
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			close(got)
			return
		}
		got <- res
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	giveUp := time.After(5 * time.Second) // only keeps a broken test from hanging
	for {
		select {
		case res, ok := <-got:
			if !ok {
				t.Fatal("the connection closed without a response")
			}
			var body struct{ Code string }
			json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			if res.StatusCode != http.StatusRequestTimeout || body.Code != CodeSlowBody {
				t.Errorf("a trickled body: %d %q, want 408 %s", res.StatusCode, body.Code, CodeSlowBody)
			}
			if d := time.Since(start); d < timeout || d > timeout+2*time.Second {
				t.Errorf("cut after %v, want about %v", d, timeout)
			}
			return
		case <-tick.C:
			conn.Write([]byte("x")) // may fail once the server gave up
		case <-giveUp:
			t.Fatal("a trickled body was never cut")
		}
	}
}

// addrBox is a fakeBox that reports the client address Connect was given.
type addrBox struct {
	fakeBox
	got chan netip.Addr
}

func (b addrBox) Connect(ctx context.Context, _ []byte) ([]byte, error) {
	b.got <- ClientAddr(ctx)
	return []byte("d4:infoe"), nil
}

// TestConnectClientAddr: the box is told the inviting request's source address (IPv4 as
// IPv4 when it arrives mapped into IPv6), which it counts opening connections by.
func TestConnectClientAddr(t *testing.T) {
	box := addrBox{got: make(chan netip.Addr, 1)}
	h := New(Options{Box: box})
	req := httptest.NewRequest("POST", "https://box.local/api/rooms/connect", strings.NewReader("offer"))
	req.RemoteAddr = "[::ffff:10.0.0.5]:4321"
	req.Header.Set("X-ChatTorrent", "1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("connect: %d %s", rec.Code, rec.Body)
	}
	if got := <-box.got; got != netip.MustParseAddr("10.0.0.5") {
		t.Errorf("the box was told %v, want 10.0.0.5", got)
	}
}

// TestStreamOutlivesWriteTimeout: an event stream idle for longer than WriteTimeout is not
// cut (the deadline covers each write only; over HTTP/2 a deadline left set would reset the
// stream when it passes), and the next event still arrives.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	drop := NewDropBox(DropOptions{})
	srv := httptest.NewUnstartedServer(New(Options{Drop: drop, WriteTimeout: timeout}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/drop/events", nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Fatalf("want HTTP/2, got %s", res.Proto)
	}
	events := sseReader{bufio.NewScanner(res.Body)}
	if ev, _ := events.next(t); ev != "offers" {
		t.Fatalf("first event %q", ev)
	}
	time.Sleep(3 * timeout)
	offer, _, _ := invitations(t)
	if _, _, err := drop.Publish(netip.Addr{}, offer); err != nil {
		t.Fatal(err)
	}
	if ev, data := events.next(t); ev != "offers" || !strings.Contains(data, `"room_name"`) {
		t.Fatalf("after an idle while: %q %q", ev, data)
	}
}

// TestSlowBodyCutHTTP2: the same over HTTP/2, as browsers speak to the box: the stream's
// read deadline cuts a trickled body with 408 slow-body.
func TestSlowBodyCutHTTP2(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv := httptest.NewUnstartedServer(New(Options{Drop: NewDropBox(DropOptions{}), BodyReadTimeout: timeout}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // only keeps a broken test from hanging
	defer cancel()
	go func() { // trickles until the request is over
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := pw.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/api/drop/offers", pr)
	req.Header.Set("X-ChatTorrent", "1")
	start := time.Now()
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("a trickled body was never answered: %v", err)
	}
	defer res.Body.Close()
	var body struct{ Code string }
	json.NewDecoder(res.Body).Decode(&body)
	if res.ProtoMajor != 2 || res.StatusCode != http.StatusRequestTimeout || body.Code != CodeSlowBody {
		t.Errorf("a trickled body: %s %d %q, want HTTP/2 408 %s", res.Proto, res.StatusCode, body.Code, CodeSlowBody)
	}
	if d := time.Since(start); d > timeout+2*time.Second {
		t.Errorf("cut after %v, want about %v", d, timeout)
	}
}
