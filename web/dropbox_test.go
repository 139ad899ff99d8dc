package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/net/torrent"
)

// invitations returns an offer and a matching answer, and an answer for another offer.
func invitations(t *testing.T) (offer, answer, other []byte) {
	t.Helper()
	read := func(name string) *torrent.Invitation {
		b, err := os.ReadFile("../net/torrent/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := torrent.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	enc := func(inv *torrent.Invitation) []byte {
		inv.Fingerprint = ""
		b, err := torrent.Encode(inv)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	o := read("valid_offer.torrent")
	a := read("valid_answer.torrent")
	a.Room, a.Session = o.Room, o.Session
	offer, answer = enc(o), enc(a)
	a.Session = strings.Repeat("e", 32)
	return offer, answer, enc(a)
}

// sseReader reads "event"/"data" pairs from an event stream.
type sseReader struct{ sc *bufio.Scanner }

func (s sseReader) next(t *testing.T) (event, data string) {
	t.Helper()
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && event != "":
			return event, data
		}
	}
	t.Fatalf("event stream ended: %v", s.sc.Err())
	return "", ""
}

func TestDropBox(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	drop := NewDropBox(DropOptions{TTL: time.Hour, MaxOffers: 2, MaxAnswers: 1, Now: func() time.Time { return now }})
	srv := httptest.NewTLSServer(New(Options{Drop: drop}))
	defer srv.Close()
	c := srv.Client()
	ok := map[string]string{"X-ChatTorrent": "1", "Origin": srv.URL}
	do := func(method, path string, body []byte, hdr map[string]string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(string(body)))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	offer, answer, other := invitations(t)

	// Guarded, validated and capped.
	for _, tc := range []struct {
		name   string
		body   []byte
		hdr    map[string]string
		status int
		code   string
	}{
		{"no header", offer, map[string]string{"Origin": srv.URL}, 403, "forbidden"},
		{"cross-site", offer, map[string]string{"X-ChatTorrent": "1", "Origin": "https://evil.example"}, 403, "forbidden"},
		{"garbage", []byte("garbage"), ok, 400, "malformed"},
		{"an answer", answer, ok, 400, "not-offer"},
		{"too large", []byte(strings.Repeat("x", torrent.MaxSize+1)), ok, 413, "too-large"},
	} {
		if st, b := do("POST", "/api/drop/offers", tc.body, tc.hdr); st != tc.status || !strings.Contains(string(b), `"`+tc.code+`"`) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, st, b, tc.status, tc.code)
		}
	}

	// Publish: listed without its SDP; the torrent is downloadable.
	st, b := do("POST", "/api/drop/offers", offer, ok)
	if st != 201 {
		t.Fatalf("publish: %d %s", st, b)
	}
	var pub struct{ ID, Token string }
	json.Unmarshal(b, &pub)
	st, b = do("GET", "/api/drop/offers", nil, nil)
	if st != 200 || !strings.Contains(string(b), pub.ID) || strings.Contains(string(b), "v=0") {
		t.Fatalf("list: %d %s", st, b)
	}
	if st, b = do("GET", "/api/drop/offers/"+pub.ID+"/torrent", nil, nil); st != 200 || string(b) != string(offer) {
		t.Errorf("torrent: %d", st)
	}
	if st, _ = do("GET", "/api/drop/offers/"+strings.Repeat("0", 16)+"/torrent", nil, nil); st != 404 {
		t.Errorf("unknown offer: %d", st)
	}

	// The creator's stream: wrong token refused; an answer arrives as an event.
	if st, b = do("GET", "/api/drop/offers/"+pub.ID+"/answers?token=nope", nil, nil); st != 403 || !strings.Contains(string(b), "not-creator") {
		t.Errorf("stream with a wrong token: %d %s", st, b)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/drop/offers/"+pub.ID+"/answers?token="+pub.Token, nil)
	res, err := c.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("stream: %v %v", err, res)
	}
	defer res.Body.Close()
	events := sseReader{bufio.NewScanner(res.Body)}
	if st, b = do("POST", "/api/drop/offers/"+pub.ID+"/answers", other, ok); st != 400 || !strings.Contains(string(b), "wrong-room") {
		t.Errorf("answer for another offer: %d %s", st, b)
	}
	if st, b = do("POST", "/api/drop/offers/"+pub.ID+"/answers", answer, map[string]string{"Origin": srv.URL}); st != 403 {
		t.Errorf("answer without the header: %d %s", st, b)
	}
	if st, b = do("POST", "/api/drop/offers/"+pub.ID+"/answers", answer, ok); st != 201 || !strings.Contains(string(b), `"id"`) {
		t.Fatalf("answer: %d %s", st, b)
	}
	var posted struct{ ID string }
	json.Unmarshal(b, &posted)
	ev, data := events.next(t)
	var got DropAnswerEvent
	json.Unmarshal([]byte(data), &got)
	if ev != "answer" || string(got.Torrent) != string(answer) || got.ID != posted.ID {
		t.Fatalf("event %q, answer intact: %v, id %q want %q", ev, string(got.Torrent) == string(answer), got.ID, posted.ID)
	}
	// MaxAnswers (1 here) undecided at once.
	if st, b = do("POST", "/api/drop/offers/"+pub.ID+"/answers", answer, ok); st != 429 || !strings.Contains(string(b), "too-many-answers") {
		t.Errorf("a second undecided answer: %d %s", st, b)
	}

	// Caps: two offers at most; only the creator withdraws; the stream says gone.
	do("POST", "/api/drop/offers", offer, ok)
	if st, b = do("POST", "/api/drop/offers", offer, ok); st != 503 || !strings.Contains(string(b), "drop-full") {
		t.Errorf("third offer: %d %s", st, b)
	}
	if st, _ = do("DELETE", "/api/drop/offers/"+pub.ID, nil, map[string]string{"X-ChatTorrent": "1", "Origin": srv.URL, "X-Drop-Token": "wrong"}); st != 403 {
		t.Errorf("withdraw by someone else: %d", st)
	}
	if st, _ = do("DELETE", "/api/drop/offers/"+pub.ID, nil, map[string]string{"X-ChatTorrent": "1", "Origin": srv.URL, "X-Drop-Token": pub.Token}); st != 204 {
		t.Errorf("withdraw: %d", st)
	}
	if ev, _ := events.next(t); ev != "gone" {
		t.Errorf("after withdraw the stream says %q", ev)
	}

	// Expiry: an hour later nothing is listed.
	now = now.Add(time.Hour)
	if st, b = do("GET", "/api/drop/offers", nil, nil); st != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("after the TTL: %d %s", st, b)
	}
}

// TestDropEvents: the public stream sends the list now and at every change.
func TestDropEvents(t *testing.T) {
	drop := NewDropBox(DropOptions{})
	srv := httptest.NewTLSServer(New(Options{Drop: drop}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/drop/events", nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("content type %q", ct)
	}
	events := sseReader{bufio.NewScanner(res.Body)}
	if ev, data := events.next(t); ev != "offers" || data != "[]" {
		t.Fatalf("first event %q %q", ev, data)
	}
	offer, _, _ := invitations(t)
	if _, _, err := drop.Publish(netip.Addr{}, offer); err != nil {
		t.Fatal(err)
	}
	if ev, data := events.next(t); ev != "offers" || !strings.Contains(data, `"room_name"`) {
		t.Fatalf("after publish %q %q", ev, data)
	}
}

// TestDropConsent: answers wait for the creator's verdict; a rejected one is not handed out
// again, its guest is told, and the offer takes the next answer (the real guest's); only
// the creator decides.
func TestDropConsent(t *testing.T) {
	drop := NewDropBox(DropOptions{MaxAnswers: 1})
	srv := httptest.NewTLSServer(New(Options{Drop: drop}))
	defer srv.Close()
	c := srv.Client()
	ok := map[string]string{"X-ChatTorrent": "1", "Origin": srv.URL}
	do := func(method, path string, body []byte, hdr map[string]string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(string(body)))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	stream := func(path string) sseReader {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+path, nil)
		res, err := c.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("stream %s: %v %v", path, err, res)
		}
		t.Cleanup(func() { res.Body.Close() })
		return sseReader{bufio.NewScanner(res.Body)}
	}
	offer, answer, _ := invitations(t)
	id, token, err := drop.Publish(netip.Addr{}, offer)
	if err != nil {
		t.Fatal(err)
	}
	creator := func(tok string) map[string]string {
		return map[string]string{"X-ChatTorrent": "1", "Origin": srv.URL, "X-Drop-Token": tok}
	}
	answerOnce := func() string {
		t.Helper()
		st, b := do("POST", "/api/drop/offers/"+id+"/answers", answer, ok)
		var a struct{ ID string }
		json.Unmarshal(b, &a)
		if st != 201 || !reDropID.MatchString(a.ID) {
			t.Fatalf("answer: %d %s", st, b)
		}
		return a.ID
	}

	stranger := answerOnce()
	strangerHears := stream("/api/drop/offers/" + id + "/answers/" + stranger)
	if st, b := do("POST", "/api/drop/offers/"+id+"/answers/"+stranger+"/reject", nil, creator("wrong")); st != 403 || !strings.Contains(string(b), "not-creator") {
		t.Errorf("a verdict without the token: %d %s", st, b)
	}
	if st, _ := do("POST", "/api/drop/offers/"+id+"/answers/"+stranger+"/reject", nil, map[string]string{"Origin": srv.URL, "X-Drop-Token": token}); st != 403 {
		t.Errorf("a verdict without the page's header: %d", st)
	}
	if st, b := do("POST", "/api/drop/offers/"+id+"/answers/"+strings.Repeat("0", 16)+"/reject", nil, creator(token)); st != 404 || !strings.Contains(string(b), "no-answer") {
		t.Errorf("a verdict on no answer: %d %s", st, b)
	}
	if st, b := do("POST", "/api/drop/offers/"+id+"/answers/"+stranger+"/reject", nil, creator(token)); st != 204 {
		t.Fatalf("reject: %d %s", st, b)
	}
	if ev, data := strangerHears.next(t); ev != "verdict" || data != `"rejected"` {
		t.Errorf("the rejected guest hears %q %s", ev, data)
	}
	if st, b := do("POST", "/api/drop/offers/"+id+"/answers/"+stranger+"/accept", nil, creator(token)); st != 409 {
		t.Errorf("accepting a rejected answer: %d %s", st, b)
	}

	// The offer is still listed and takes the real guest's answer (MaxAnswers is 1: the
	// rejected one does not count); a new creator stream hands out only that one.
	if list, _ := drop.List(); len(list) != 1 {
		t.Fatalf("after a rejection %d offers listed", len(list))
	}
	guest := answerOnce()
	creatorHears := stream("/api/drop/offers/" + id + "/answers?token=" + token)
	ev, data := creatorHears.next(t)
	var got DropAnswerEvent
	json.Unmarshal([]byte(data), &got)
	if ev != "answer" || got.ID != guest {
		t.Fatalf("the creator gets %q %s, want the guest's answer %s", ev, got.ID, guest)
	}
	guestHears := stream("/api/drop/offers/" + id + "/answers/" + guest)
	if st, b := do("POST", "/api/drop/offers/"+id+"/answers/"+guest+"/accept", nil, creator(token)); st != 204 {
		t.Fatalf("accept: %d %s", st, b)
	}
	if st, _ := do("DELETE", "/api/drop/offers/"+id, nil, creator(token)); st != 204 {
		t.Errorf("withdraw after accepting: %d", st)
	}
	if ev, data := guestHears.next(t); ev != "verdict" || data != `"accepted"` {
		t.Errorf("the accepted guest hears %q %s", ev, data)
	}
	if st, _ := do("GET", "/api/drop/offers/"+id+"/answers/"+guest, nil, nil); st != 404 {
		t.Errorf("verdict stream of a withdrawn offer: %d", st)
	}
}

// TestDropVerdictGone: a guest whose answer got no verdict hears "gone" when the offer is
// withdrawn.
func TestDropVerdictGone(t *testing.T) {
	drop := NewDropBox(DropOptions{})
	srv := httptest.NewTLSServer(New(Options{Drop: drop}))
	defer srv.Close()
	offer, answer, _ := invitations(t)
	id, token, _ := drop.Publish(netip.Addr{}, offer)
	aid, err := drop.Answer(netip.Addr{}, id, answer)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/drop/offers/"+id+"/answers/"+aid, nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := drop.Withdraw(id, token); err != nil {
		t.Fatal(err)
	}
	if ev, _ := (sseReader{bufio.NewScanner(res.Body)}).next(t); ev != "gone" {
		t.Errorf("after the withdrawal the guest hears %q", ev)
	}
}
