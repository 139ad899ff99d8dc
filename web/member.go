package web

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/chattorrent/chattorrent/store/history"
)

// Membership: a room the box keeps is shown, exported and recorded into only for a page
// that proves it holds the key of one of the room's authors (docs/SECURITY.md, "Members").
// The box hands out a single-use nonce; the page signs ProofMessage(origin, nonce) with its
// identity key (the Ed25519 key its entries are signed with) and gets an HttpOnly cookie
// naming the authors it proved. A room's members are the authors of its stored history.

// Limits of the membership state, all held in RAM (lost on restart: pages prove again).
const (
	// ProofContext starts every signed proof, so that a proof can never pass for an entry's
	// signature or anything else the key signs.
	ProofContext = "chattorrent-member-v1"
	// MemberCookie holds a member session's token.
	MemberCookie = "ct_member"
	// ChallengeTTL is how long a nonce may be answered.
	ChallengeTTL = 2 * time.Minute
	// MaxChallenges bounds the nonces waiting for an answer; the oldest go first.
	MaxChallenges = 1024
	// MemberSessionTTL is how long a proof lasts; the page proves again at every start.
	MemberSessionTTL = 24 * time.Hour
	// MaxMemberSessions bounds the sessions held; the least recently proven goes first.
	MaxMemberSessions = 4096
	// MaxSessionAuthors bounds the keys one session may prove (a page that imported
	// another identity proves that one too).
	MaxSessionAuthors = 4
	// maxProofBody bounds a proof request's body.
	maxProofBody = 4 << 10
)

// ProofMessage is what a page signs to prove its key to the box at origin (the page's
// origin, "https://host:port", as the browser sends it in Origin).
func ProofMessage(origin, nonce string) []byte {
	return []byte(ProofContext + "\n" + origin + "\n" + nonce)
}

// Members holds the box's open challenges and member sessions.
type Members struct {
	now func() time.Time

	mu         sync.Mutex
	challenges map[string]time.Time    // nonce (hex) → expiry
	sessions   map[[32]byte]*memberSes // sha256 of the token → session
}

type memberSes struct {
	authors []string
	expires time.Time
	proven  time.Time
}

// NewMembers returns an empty Members; now nil means time.Now.
func NewMembers(now func() time.Time) *Members {
	if now == nil {
		now = time.Now
	}
	return &Members{now: now, challenges: make(map[string]time.Time), sessions: make(map[[32]byte]*memberSes)}
}

// challenge makes a new single-use nonce.
func (m *Members) challenge() string {
	var b [32]byte
	rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for n, exp := range m.challenges {
		if now.After(exp) {
			delete(m.challenges, n)
		}
	}
	for len(m.challenges) >= MaxChallenges {
		oldest, at := "", time.Time{}
		for n, exp := range m.challenges {
			if oldest == "" || exp.Before(at) {
				oldest, at = n, exp
			}
		}
		delete(m.challenges, oldest)
	}
	m.challenges[nonce] = now.Add(ChallengeTTL)
	return nonce
}

// errBadProof is every refused proof: the page learns no more than that.
var errBadProof = errors.New("web: the proof does not check")

// prove checks a signed nonce and adds the author to the session of token (a new session
// when token is unknown). It returns the session's token and authors.
func (m *Members) prove(token, origin, author, nonce, sig string) (string, []string, error) {
	pub, ok := history.DecodeKey(author)
	if !ok {
		return "", nil, errBadProof
	}
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(s) != ed25519.SignatureSize {
		return "", nil, errBadProof
	}
	now := m.now()
	m.mu.Lock()
	exp, ok := m.challenges[nonce]
	delete(m.challenges, nonce) // single use, even when the proof fails
	m.mu.Unlock()
	if !ok || now.After(exp) || !ed25519.Verify(pub, ProofMessage(origin, nonce), s) {
		return "", nil, errBadProof
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ses := m.lookup(token, now)
	if ses == nil {
		var b [32]byte
		rand.Read(b[:])
		token = base64.RawURLEncoding.EncodeToString(b[:])
		ses = &memberSes{}
		m.evict(now)
		m.sessions[sha256.Sum256([]byte(token))] = ses
	}
	if !slices.Contains(ses.authors, author) {
		if len(ses.authors) >= MaxSessionAuthors {
			ses.authors = ses.authors[1:]
		}
		ses.authors = append(ses.authors, author)
	}
	ses.proven = now
	ses.expires = now.Add(MemberSessionTTL)
	return token, slices.Clone(ses.authors), nil
}

// lookup finds a live session; m.mu is held.
func (m *Members) lookup(token string, now time.Time) *memberSes {
	if token == "" {
		return nil
	}
	k := sha256.Sum256([]byte(token))
	ses := m.sessions[k]
	if ses == nil {
		return nil
	}
	if now.After(ses.expires) {
		delete(m.sessions, k)
		return nil
	}
	return ses
}

// evict makes room for one more session; m.mu is held.
func (m *Members) evict(now time.Time) {
	if len(m.sessions) < MaxMemberSessions {
		return
	}
	var oldest [32]byte
	var at time.Time
	first := true
	for k, s := range m.sessions {
		if now.After(s.expires) {
			delete(m.sessions, k)
			continue
		}
		if first || s.proven.Before(at) {
			oldest, at, first = k, s.proven, false
		}
	}
	if len(m.sessions) >= MaxMemberSessions {
		delete(m.sessions, oldest)
	}
}

// Authors returns the keys the request's member session proved (none without one).
func (m *Members) Authors(r *http.Request) []string {
	if m == nil {
		return nil
	}
	c, err := r.Cookie(MemberCookie)
	if err != nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ses := m.lookup(c.Value, m.now()); ses != nil {
		return slices.Clone(ses.authors)
	}
	return nil
}

// memberChallenge: POST /api/member/challenge → {"nonce": …, "context": …}.
func (o Options) memberChallenge(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		fail(w, http.StatusForbidden, "forbidden", "cross-site request refused")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Nonce   string `json:"nonce"`
		Context string `json:"context"`
	}{o.Members.challenge(), ProofContext})
}

// proofRequest is the body of POST /api/member/proof.
type proofRequest struct {
	Author string `json:"author"` // the identity key, base64url (as in entries)
	Nonce  string `json:"nonce"`
	Sig    string `json:"sig"` // Ed25519 over ProofMessage(Origin, nonce), base64url
}

// memberProof: POST /api/member/proof. The Origin header is required: it is what the page
// signed, so that a proof made for another box's page never opens this one.
func (o Options) memberProof(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if !sameOrigin(r) || origin == "" {
		fail(w, http.StatusForbidden, "forbidden", "cross-site request refused")
		return
	}
	var req proofRequest
	body, err := o.readBody(w, r, maxProofBody)
	if o.slowBody(w, r, err) {
		return
	}
	if err != nil || json.Unmarshal(body, &req) != nil {
		fail(w, http.StatusBadRequest, "bad-proof", "a proof is a small JSON object {author, nonce, sig}")
		return
	}
	token := ""
	if c, err := r.Cookie(MemberCookie); err == nil {
		token = c.Value
	}
	token, authors, err := o.Members.prove(token, origin, req.Author, req.Nonce, req.Sig)
	if err != nil {
		fail(w, http.StatusUnauthorized, "bad-proof", "the proof does not check: ask for a new challenge")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: MemberCookie, Value: token, Path: "/api/",
		MaxAge: int(MemberSessionTTL / time.Second), HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, struct {
		Authors []string `json:"authors"`
	}{authors})
}

// memberOf reports whether the request proved a key of one of room's authors. A room the
// box does not keep has no members.
func (o Options) memberOf(r *http.Request, room string) bool {
	if o.local(r) { // any room the box keeps
		_, err := o.Box.Member(room, nil)
		return err == nil
	}
	if o.Members == nil {
		return false
	}
	authors := o.Members.Authors(r)
	if len(authors) == 0 {
		return false
	}
	ok, err := o.Box.Member(room, authors)
	return err == nil && ok
}

// LocalHeader carries Options.LocalToken.
const LocalHeader = "X-ChatTorrent-Local"

// local reports whether the request comes from a command on the box itself, which could
// read every room from the data directory anyway.
func (o Options) local(r *http.Request) bool {
	got := r.Header.Get(LocalHeader)
	return o.LocalToken != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(o.LocalToken)) == 1
}

// notFound is the one answer to a room-scoped request from a non-member: the same whether
// the box keeps the room or not.
func notFound(w http.ResponseWriter) {
	fail(w, http.StatusNotFound, "no-room", "the box keeps no such room for you: open it from a page that is a member")
}

type provenKey struct{}

func withProven(ctx context.Context, authors []string) context.Context {
	return context.WithValue(ctx, provenKey{}, authors)
}

// ProvenAuthors returns, inside Box.Connect, the keys the inviting request proved (none
// when it proved none): the box trusts a peer's word about itself only for these.
func ProvenAuthors(ctx context.Context) []string {
	a, _ := ctx.Value(provenKey{}).([]string)
	return a
}
