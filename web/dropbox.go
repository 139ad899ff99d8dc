package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/chattorrent/chattorrent/net/torrent"
)

// DropBox is the "tracker" of docs/PROTOCOL.md §6: a creator publishes a room's offer
// .torrent, everyone on the LAN sees the open offers, a guest posts an answer, and the
// creator's page receives it by SSE and applies it. It holds only invitations (SDP and
// names), never chat content; everything is in memory, capped, and expires.
type DropBox struct {
	mu      sync.Mutex
	offers  map[string]*dropOffer
	changed chan struct{} // closed and replaced on every change of the list
	opts    DropOptions
}

// DropOptions are the drop box's limits; zero values take the defaults.
type DropOptions struct {
	TTL        time.Duration    // how long an offer stays listed; default 1 h
	MaxOffers  int              // offers held at once; default 64
	MaxAnswers int              // answers queued per offer; default 8
	Now        func() time.Time // default time.Now
}

type dropOffer struct {
	id, room, roomName, peerName string
	torrent                      []byte
	token                        [32]byte // SHA-256 of the creator's withdraw token
	created, expires             time.Time
	answers                      [][]byte
	answered                     chan struct{} // closed and replaced when an answer arrives
	gone                         chan struct{} // closed when withdrawn or expired
}

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

// Publish lists an offer and returns its id and the creator's withdraw token.
func (d *DropBox) Publish(b []byte) (id, token string, err error) {
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
	if len(d.offers) >= d.opts.MaxOffers {
		return "", "", ErrDropFull
	}
	now := d.opts.Now()
	d.offers[id] = &dropOffer{
		id: id, room: inv.Room, roomName: inv.RoomName, peerName: inv.Peer.Name, torrent: b,
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

// Answer queues a guest's answer for the offer's creator.
func (d *DropBox) Answer(id string, b []byte) error {
	inv, err := torrent.Decode(b)
	if err != nil {
		return err
	}
	if inv.Role != torrent.RoleAnswer {
		return fmt.Errorf("%w: an offer was sent where an answer belongs", ErrDropMismatch)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked()
	o, ok := d.offers[id]
	if !ok {
		return ErrDropNoOffer
	}
	offer, err := torrent.Decode(o.torrent)
	if err != nil {
		return fmt.Errorf("web: drop box: stored offer: %w", err)
	}
	if inv.Room != offer.Room || inv.Session != offer.Session {
		return ErrDropMismatch
	}
	if len(o.answers) >= d.opts.MaxAnswers {
		return ErrDropAnswers
	}
	o.answers = append(o.answers, b)
	close(o.answered)
	o.answered = make(chan struct{})
	return nil
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

// takeAnswers hands the creator the answers queued so far, a channel closed when more
// arrive, and one closed when the offer is gone.
func (d *DropBox) takeAnswers(id, token string) (answers [][]byte, more, gone <-chan struct{}, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked()
	o, err := d.creator(id, token)
	if err != nil {
		return nil, nil, nil, err
	}
	answers, o.answers = o.answers, nil
	return answers, o.answered, o.gone, nil
}

// ---- HTTP (routes in web.New) ----

const sseKeepAlive = 25 * time.Second

func dropFail(w http.ResponseWriter, err error) {
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
	case errors.Is(err, ErrDropAnswers):
		fail(w, http.StatusTooManyRequests, "too-many-answers", "this offer already has answers waiting")
	case errors.Is(err, ErrDropMismatch):
		fail(w, http.StatusBadRequest, "wrong-room", "that answer is for another room or offer")
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, torrent.MaxSize))
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, torrent.CodeTooLarge, "an invitation is at most 65536 bytes")
		return
	}
	id, token, err := o.Drop.Publish(body)
	if err != nil {
		dropFail(w, err)
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
	send, ok := sse(w)
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
		dropFail(w, err)
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, torrent.MaxSize))
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, torrent.CodeTooLarge, "an invitation is at most 65536 bytes")
		return
	}
	if err := o.Drop.Answer(id, body); err != nil {
		dropFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (o Options) dropWithdraw(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		fail(w, http.StatusForbidden, "forbidden", "cross-site request refused")
		return
	}
	if err := o.Drop.Withdraw(r.PathValue("id"), r.Header.Get("X-Drop-Token")); err != nil {
		dropFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// dropAnswers streams the answers to the creator's offer as "answer" events (base64 of the
// .torrent), and "gone" when the offer is withdrawn or expires. The token is a query
// parameter: EventSource cannot send headers.
func (o Options) dropAnswers(w http.ResponseWriter, r *http.Request) {
	id, token := r.PathValue("id"), r.URL.Query().Get("token")
	if err := o.Drop.check(id, token); err != nil {
		dropFail(w, err)
		return
	}
	send, ok := sse(w)
	if !ok {
		return
	}
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	for {
		answers, more, gone, err := o.Drop.takeAnswers(id, token)
		if err != nil {
			send("gone", []byte(`"`+err.Error()+`"`))
			return
		}
		for _, a := range answers {
			if !send("answer", []byte(`"`+base64.StdEncoding.EncodeToString(a)+`"`)) {
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
// empty) and flushes, false once the client is gone.
func sse(w http.ResponseWriter) (send func(event string, data []byte) bool, ok bool) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil, false
	}
	return func(event string, data []byte) bool {
		var err error
		if event == "" {
			_, err = io.WriteString(w, ": keep-alive\n\n")
		} else {
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		}
		return err == nil && rc.Flush() == nil
	}, true
}
