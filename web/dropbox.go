package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"sync"
	"time"

	"github.com/chattorrent/chattorrent/net/torrent"
)

// DropBox is the "tracker" of docs/PROTOCOL.md §6: a creator publishes a room's offer
// .torrent, everyone on the LAN sees the open offers, a guest posts an answer, and the
// creator's page receives it by SSE. A published offer is visible to everyone on the LAN,
// so anyone may answer it: the creator's page applies an answer only after its person
// accepted it (name and safety code shown), and tells the box its verdict, which the
// guest's page follows. A rejected answer leaves the offer open for the next one. It holds
// only invitations (SDP and names), never chat content; everything is in memory, capped,
// and expires.
type DropBox struct {
	mu      sync.Mutex
	offers  map[string]*dropOffer
	changed chan struct{} // closed and replaced on every change of the list
	opts    DropOptions
}

// DropOptions are the drop box's limits; zero values take the defaults.
type DropOptions struct {
	TTL        time.Duration // how long an offer stays listed; default 1 h
	MaxOffers  int           // offers held at once; default 64
	MaxAnswers int           // undecided answers per offer; default 8
	// MaxOffersPerClient caps the open offers one address published; default
	// MaxDropOffersPerClient.
	MaxOffersPerClient int
	// MaxAnswersPerClient caps one address's answers waiting for a verdict, over every
	// offer; default MaxDropAnswersPerClient.
	MaxAnswersPerClient int
	Now                 func() time.Time // default time.Now
}

type dropOffer struct {
	id, room, roomName, peerName string
	client                       netip.Addr // who published it
	torrent                      []byte
	token                        [32]byte // SHA-256 of the creator's withdraw token
	created, expires             time.Time
	answers                      []*dropAnswer // oldest first; undecided ones and a few decided
	answered                     chan struct{} // closed and replaced when an answer arrives
	gone                         chan struct{} // closed when withdrawn or expired
}

// dropAnswer is one guest's answer and the creator's verdict on it.
type dropAnswer struct {
	id      string
	client  netip.Addr // who posted it
	torrent []byte
	verdict string        // "" (undecided), VerdictAccepted or VerdictRejected
	decided chan struct{} // closed when the verdict is given
}

// Verdicts the creator gives an answer.
const (
	VerdictAccepted = "accepted"
	VerdictRejected = "rejected"
)

// DropOffer is one listed offer as the page sees it (no SDP).
type DropOffer struct {
	ID       string    `json:"id"`
	Room     string    `json:"room"`
	RoomName string    `json:"room_name"`
	PeerName string    `json:"peer_name"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
}

// NewDropBox returns an empty drop box.
func NewDropBox(opts DropOptions) *DropBox {
	if opts.TTL <= 0 {
		opts.TTL = time.Hour
	}
	if opts.MaxOffers <= 0 {
		opts.MaxOffers = 64
	}
	if opts.MaxAnswers <= 0 {
		opts.MaxAnswers = 8
	}
	if opts.MaxOffersPerClient <= 0 {
		opts.MaxOffersPerClient = MaxDropOffersPerClient
	}
	if opts.MaxAnswersPerClient <= 0 {
		opts.MaxAnswersPerClient = MaxDropAnswersPerClient
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &DropBox{offers: make(map[string]*dropOffer), changed: make(chan struct{}), opts: opts}
}

// Errors of the drop box (the API maps them to codes).
var (
	ErrDropFull     = errors.New("web: drop box: too many open offers")
	ErrDropNoOffer  = errors.New("web: drop box: no such offer (withdrawn or expired)")
	ErrDropToken    = errors.New("web: drop box: only the offer's creator may do this")
	ErrDropAnswers  = errors.New("web: drop box: too many answers waiting for this offer")
	ErrDropMismatch = errors.New("web: drop box: the answer is for another room or offer")
	ErrDropNoAnswer = errors.New("web: drop box: no such answer")
	ErrDropDecided  = errors.New("web: drop box: that answer already has a verdict")
	ErrDropTooMany  = errors.New("web: drop box: this client holds too many offers or answers")
)

func (d *DropBox) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// expireLocked drops offers past their time.
func (d *DropBox) expireLocked() {
	now := d.opts.Now()
	for id, o := range d.offers {
		if !now.Before(o.expires) {
			close(o.gone)
			delete(d.offers, id)
			d.notifyLocked()
		}
	}
}

// Publish lists an offer from client and returns its id and the creator's withdraw token.
// A client (an address; the zero Addr is not counted) holds at most MaxOffersPerClient
// open offers: ErrDropTooMany.
func (d *DropBox) Publish(client netip.Addr, b []byte) (id, token string, err error) {
	inv, err := torrent.Decode(b)
	if err != nil {
		return "", "", err
	}
	if inv.Role != torrent.RoleOffer {
		return "", "", ErrNotOffer
	}
	var raw [16]byte
	rand.Read(raw[:])
	token = hex.EncodeToString(raw[:])
	rand.Read(raw[:8])
	id = hex.EncodeToString(raw[:8])
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked()
	if client.IsValid() {
		mine := 0
		for _, o := range d.offers {
			if o.client == client {
				mine++
			}
		}
		if mine >= d.opts.MaxOffersPerClient {
			return "", "", ErrDropTooMany
		}
	}
	if len(d.offers) >= d.opts.MaxOffers {
		return "", "", ErrDropFull
	}
	now := d.opts.Now()
	d.offers[id] = &dropOffer{
		id: id, client: client, room: inv.Room, roomName: inv.RoomName, peerName: inv.Peer.Name, torrent: b,
		token: sha256.Sum256([]byte(token)), created: now, expires: now.Add(d.opts.TTL),
		answered: make(chan struct{}), gone: make(chan struct{}),
	}
	d.notifyLocked()
	return id, token, nil
}

// List returns the open offers, oldest first, and a channel closed at the next change.
func (d *DropBox) List() ([]DropOffer, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked()
	out := make([]DropOffer, 0, len(d.offers))
	for _, o := range d.offers {
		out = append(out, DropOffer{ID: o.id, Room: o.room, RoomName: o.roomName, PeerName: o.peerName, Created: o.created, Expires: o.expires})
	}
	sortOffers(out)
	return out, d.changed
}

func sortOffers(s []DropOffer) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && (s[j].Created.Before(s[j-1].Created) || s[j].Created.Equal(s[j-1].Created) && s[j].ID < s[j-1].ID); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Torrent returns an offer's .torrent.
func (d *DropBox) Torrent(id string) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked()
	o, ok := d.offers[id]
	if !ok {
		return nil, ErrDropNoOffer
	}
	return o.torrent, nil
}

// Answer queues a guest's answer (from client) for the offer's creator and returns the
// answer's id (the guest follows its verdict with it). Any number of answers may come one
// after another; at most MaxAnswers wait for a verdict at once, and at most
// MaxAnswersPerClient of one client over every offer (ErrDropTooMany; the zero Addr is
// not counted).
func (d *DropBox) Answer(client netip.Addr, id string, b []byte) (answerID string, err error) {
	inv, err := torrent.Decode(b)
	if err != nil {
		return "", err
	}
	if inv.Role != torrent.RoleAnswer {
		return "", fmt.Errorf("%w: an offer was sent where an answer belongs", ErrDropMismatch)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked()
	o, ok := d.offers[id]
	if !ok {
		return "", ErrDropNoOffer
	}
	offer, err := torrent.Decode(o.torrent)
	if err != nil {
		return "", fmt.Errorf("web: drop box: stored offer: %w", err)
	}
	if inv.Room != offer.Room || inv.Session != offer.Session {
		return "", ErrDropMismatch
	}
	undecided := 0
	for _, a := range o.answers {
		if a.verdict == "" {
			undecided++
		}
	}
	if undecided >= d.opts.MaxAnswers {
		return "", ErrDropAnswers
	}
	if client.IsValid() {
		mine := 0
		for _, other := range d.offers {
			for _, a := range other.answers {
				if a.verdict == "" && a.client == client {
					mine++
				}
			}
		}
		if mine >= d.opts.MaxAnswersPerClient {
			return "", ErrDropTooMany
		}
	}
	// Decided answers are kept only so their guests can read the verdict: the oldest go
	// first when there are many.
	for len(o.answers) >= 2*d.opts.MaxAnswers {
		i := 0
		for o.answers[i].verdict == "" {
			i++
		}
		o.answers = append(o.answers[:i], o.answers[i+1:]...)
	}
	var raw [8]byte
	rand.Read(raw[:])
	a := &dropAnswer{id: hex.EncodeToString(raw[:]), client: client, torrent: b, decided: make(chan struct{})}
	o.answers = append(o.answers, a)
	close(o.answered)
	o.answered = make(chan struct{})
	return a.id, nil
}

func (d *DropBox) creator(id, token string) (*dropOffer, error) {
	o, ok := d.offers[id]
	if !ok {
		return nil, ErrDropNoOffer
	}
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], o.token[:]) != 1 {
		return nil, ErrDropToken
	}
	return o, nil
}

func (d *DropBox) check(id, token string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := d.creator(id, token)
	return err
}

// Withdraw removes an offer; only its creator (holding the token) may.
func (d *DropBox) Withdraw(id, token string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.creator(id, token)
	if err != nil {
		return err
	}
	close(o.gone)
	delete(d.offers, id)
	d.notifyLocked()
	return nil
}

// Decide records the creator's verdict on an answer (only the creator, holding the token,
// may); the answer's guest is told. A rejected answer is never handed out again and the
// offer stays open for others.
func (d *DropBox) Decide(id, token, answerID, verdict string) error {
	if verdict != VerdictAccepted && verdict != VerdictRejected {
		return fmt.Errorf("web: drop box: verdict %q", verdict)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked()
	o, err := d.creator(id, token)
	if err != nil {
		return err
	}
	for _, a := range o.answers {
		if a.id != answerID {
			continue
		}
		if a.verdict != "" {
			if a.verdict == verdict {
				return nil
			}
			return ErrDropDecided
		}
		a.verdict = verdict
		close(a.decided)
		return nil
	}
	return ErrDropNoAnswer
}

// answer returns one answer to an offer (its verdict may be read once decided is closed)
// and a channel closed when the offer is gone.
func (d *DropBox) answer(id, answerID string) (*dropAnswer, <-chan struct{}, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked()
	o, ok := d.offers[id]
	if !ok {
		return nil, nil, ErrDropNoOffer
	}
	for _, a := range o.answers {
		if a.id == answerID {
			return a, o.gone, nil
		}
	}
	return nil, nil, ErrDropNoAnswer
}

// DropAnswerEvent is an "answer" event of the creator's stream.
type DropAnswerEvent struct {
	ID      string `json:"id"`
	Torrent []byte `json:"torrent"` // base64 in JSON
}

// undecidedAnswers hands the creator the answers still waiting for a verdict, a channel
// closed when more arrive, and one closed when the offer is gone. Every stream gets them
// all (a page that reconnects sees them again); the page asks its person about each.
func (d *DropBox) undecidedAnswers(id, token string) (answers []DropAnswerEvent, more, gone <-chan struct{}, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked()
	o, err := d.creator(id, token)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, a := range o.answers {
		if a.verdict == "" {
			answers = append(answers, DropAnswerEvent{ID: a.id, Torrent: a.torrent})
		}
	}
	return answers, o.answered, o.gone, nil
}

// ---- HTTP (routes in web.New) ----

const sseKeepAlive = 25 * time.Second

func (o Options) dropFail(w http.ResponseWriter, r *http.Request, err error) {
	var te *torrent.Error
	switch {
	case errors.As(err, &te):
		fail(w, http.StatusBadRequest, te.Code, te.Error())
	case errors.Is(err, ErrNotOffer):
		fail(w, http.StatusBadRequest, "not-offer", "publish the room's offer (_offer.torrent), not an answer")
	case errors.Is(err, ErrDropFull):
		fail(w, http.StatusServiceUnavailable, "drop-full", "the box holds too many open offers; try again later")
	case errors.Is(err, ErrDropNoOffer):
		fail(w, http.StatusNotFound, "no-offer", "that offer was withdrawn or has expired")
	case errors.Is(err, ErrDropToken):
		fail(w, http.StatusForbidden, "not-creator", "only the offer's creator may do this")
	case errors.Is(err, ErrDropTooMany):
		o.tooMany(w, r, "drop-box offers and answers per client", "this device already has its share of open offers and answers; withdraw one or wait")
	case errors.Is(err, ErrDropAnswers):
		fail(w, http.StatusTooManyRequests, "too-many-answers", "this offer already has answers waiting")
	case errors.Is(err, ErrDropMismatch):
		fail(w, http.StatusBadRequest, "wrong-room", "that answer is for another room or offer")
	case errors.Is(err, ErrDropNoAnswer):
		fail(w, http.StatusNotFound, "no-answer", "no such answer to that offer")
	case errors.Is(err, ErrDropDecided):
		fail(w, http.StatusConflict, "decided", "that answer already has the other verdict")
	default:
		fail(w, http.StatusInternalServerError, "failed", "the drop box failed")
	}
}

var reDropID = regexp.MustCompile(`^[0-9a-f]{16}$`)

func (o Options) dropPublish(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		fail(w, http.StatusForbidden, "forbidden", "cross-site request refused")
		return
	}
	body, err := o.readBody(w, r, torrent.MaxSize)
	if o.slowBody(w, r, err) {
		return
	}
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, torrent.CodeTooLarge, "an invitation is at most 65536 bytes")
		return
	}
	id, token, err := o.Drop.Publish(clientAddr(r), body)
	if err != nil {
		o.dropFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id, "token": token})
}

func (o Options) dropList(w http.ResponseWriter, r *http.Request) {
	list, _ := o.Drop.List()
	writeJSON(w, http.StatusOK, list)
}

// dropEvents streams the list of open offers: an "offers" event now and at every change.
func (o Options) dropEvents(w http.ResponseWriter, r *http.Request) {
	release, ok := o.openStream(w, r)
	if !ok {
		return
	}
	defer release()
	send, ok := o.sse(w)
	if !ok {
		return
	}
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	for {
		list, changed := o.Drop.List()
		b, _ := json.Marshal(list)
		if !send("offers", b) {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-keep.C:
			if !send("", nil) {
				return
			}
		}
	}
}

func (o Options) dropTorrent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !reDropID.MatchString(id) {
		fail(w, http.StatusBadRequest, "bad-id", "an offer id is 16 lowercase hex characters")
		return
	}
	b, err := o.Drop.Torrent(id)
	if err != nil {
		o.dropFail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-bittorrent")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

func (o Options) dropAnswer(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		fail(w, http.StatusForbidden, "forbidden", "cross-site request refused")
		return
	}
	id := r.PathValue("id")
	if !reDropID.MatchString(id) {
		fail(w, http.StatusBadRequest, "bad-id", "an offer id is 16 lowercase hex characters")
		return
	}
	body, err := o.readBody(w, r, torrent.MaxSize)
	if o.slowBody(w, r, err) {
		return
	}
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, torrent.CodeTooLarge, "an invitation is at most 65536 bytes")
		return
	}
	aid, err := o.Drop.Answer(clientAddr(r), id, body)
	if err != nil {
		o.dropFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": aid})
}

func (o Options) dropWithdraw(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		fail(w, http.StatusForbidden, "forbidden", "cross-site request refused")
		return
	}
	if err := o.Drop.Withdraw(r.PathValue("id"), r.Header.Get("X-Drop-Token")); err != nil {
		o.dropFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// dropDecide: the creator accepts or rejects one answer (POST …/answers/{aid}/accept or
// …/reject, the token in X-Drop-Token).
func (o Options) dropDecide(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		fail(w, http.StatusForbidden, "forbidden", "cross-site request refused")
		return
	}
	verdict := map[string]string{"accept": VerdictAccepted, "reject": VerdictRejected}[r.PathValue("verdict")]
	if verdict == "" {
		fail(w, http.StatusNotFound, "not-found", "accept or reject")
		return
	}
	if err := o.Drop.Decide(r.PathValue("id"), r.Header.Get("X-Drop-Token"), r.PathValue("aid"), verdict); err != nil {
		o.dropFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// dropVerdict streams, to the guest who posted an answer, the creator's verdict: one
// "verdict" event ("accepted" or "rejected"), or "gone" when the offer was withdrawn or
// expired first. The answer's id (random, known to the guest) is the only key: a verdict
// tells nothing about the room.
func (o Options) dropVerdict(w http.ResponseWriter, r *http.Request) {
	id, aid := r.PathValue("id"), r.PathValue("aid")
	if !reDropID.MatchString(id) || !reDropID.MatchString(aid) {
		fail(w, http.StatusBadRequest, "bad-id", "ids are 16 lowercase hex characters")
		return
	}
	a, gone, err := o.Drop.answer(id, aid)
	if err != nil {
		o.dropFail(w, r, err)
		return
	}
	release, ok := o.openStream(w, r)
	if !ok {
		return
	}
	defer release()
	send, ok := o.sse(w)
	if !ok {
		return
	}
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.decided: // a.verdict is written before decided is closed
			send("verdict", []byte(`"`+a.verdict+`"`))
			return
		case <-gone:
			select {
			case <-a.decided: // a verdict given just before the withdrawal still counts
				send("verdict", []byte(`"`+a.verdict+`"`))
			default:
				send("gone", []byte(`"withdrawn or expired"`))
			}
			return
		case <-keep.C:
			if !send("", nil) {
				return
			}
		}
	}
}

// dropAnswers streams the undecided answers to the creator's offer as "answer" events
// ({"id": answer id, "torrent": base64 of the .torrent}), each once per stream, and "gone"
// when the offer is withdrawn or expires. The token is a query parameter: EventSource
// cannot send headers.
func (o Options) dropAnswers(w http.ResponseWriter, r *http.Request) {
	id, token := r.PathValue("id"), r.URL.Query().Get("token")
	if err := o.Drop.check(id, token); err != nil {
		o.dropFail(w, r, err)
		return
	}
	release, ok := o.openStream(w, r)
	if !ok {
		return
	}
	defer release()
	send, ok := o.sse(w)
	if !ok {
		return
	}
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	sent := map[string]bool{}
	for {
		answers, more, gone, err := o.Drop.undecidedAnswers(id, token)
		if err != nil {
			send("gone", []byte(`"`+err.Error()+`"`))
			return
		}
		for _, a := range answers {
			if sent[a.ID] {
				continue
			}
			sent[a.ID] = true
			b, _ := json.Marshal(a)
			if !send("answer", b) {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-more:
		case <-gone:
		case <-keep.C:
			if !send("", nil) {
				return
			}
		}
	}
}

// sse starts an event stream; send(event, data) writes one event (a comment when event is
// empty) and flushes, false once the client is gone or has not read it within
// WriteTimeout.
func (o Options) sse(w http.ResponseWriter) (send func(event string, data []byte) bool, ok bool) {
	rc := http.NewResponseController(w)
	dw := deadlineWriter{w: w, rc: rc, timeout: o.WriteTimeout}
	flush := func() error { // under the write deadline too: a flush is where bytes leave
		if rc.SetWriteDeadline(time.Now().Add(o.WriteTimeout)) == nil {
			defer rc.SetWriteDeadline(time.Time{})
		}
		return rc.Flush()
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := flush(); err != nil {
		return nil, false
	}
	return func(event string, data []byte) bool {
		var err error
		if event == "" {
			_, err = io.WriteString(dw, ": keep-alive\n\n")
		} else {
			_, err = fmt.Fprintf(dw, "event: %s\ndata: %s\n\n", event, data)
		}
		return err == nil && flush() == nil
	}, true
}
