// Package history is ChatTorrent's verifiable, append-only room history: signed entries
// chained per author, their canonical encoding, and a Log that merges entries from peers
// while refusing anything that does not check. The same rules are implemented in
// web/static/js/history.js; both are held to store/history/testdata/vectors.json.
package history

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on an entry's fields.
const (
	MaxBody     = 16384 // bytes of UTF-8 in Body
	MaxName     = 64    // bytes of UTF-8 in Name
	MaxSeq      = 1<<53 - 1
	FutureSlack = 10 * time.Minute // how far ahead of our clock an entry's ts may be
)

// Known kinds. Other well-formed kinds (from a newer version) are stored and passed on,
// but shown as unsupported.
const (
	KindText = "text"
	KindJoin = "join"
)

// Entry is one line of a room's history. Author is the base64url (no padding) Ed25519
// public key of the writer; Sig is its base64url signature over SigningBytes; ID is the
// lowercase hex SHA-256 of the canonical encoding of every field but ID.
type Entry struct {
	Room   string `json:"room"`
	Author string `json:"author"`
	Name   string `json:"name"`
	Seq    int64  `json:"seq"`
	Prev   string `json:"prev"`
	TS     int64  `json:"ts"`
	Kind   string `json:"kind"`
	Body   string `json:"body"`
	Sig    string `json:"sig"`
	ID     string `json:"id"`
}

// The field rules as loops: the regexps they replace (^[0-9a-f]{32}$, ^[0-9a-f]{64}$,
// ^[a-z][a-z0-9-]{0,15}$) were ~40% of checking an entry without its signature.

// IsID reports whether s has the shape of an entry id: 64 lowercase hex characters.
func IsID(s string) bool { return isHex(s, 64) }

// isHex reports whether s is n lowercase hex characters.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !lowerHex[s[i]] {
			return false
		}
	}
	return true
}

// lowerHex marks the bytes of lowercase hex: 0-9, a-f.
var lowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

// isKind reports whether s matches [a-z][a-z0-9-]{0,15}.
func isKind(s string) bool {
	if len(s) < 1 || len(s) > 16 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// encode writes the canonical bencode of the entry's fields, with sig when withSig.
// Keys are written in sorted order: author, body, kind, name, prev, room, seq, [sig,] ts.
func (e *Entry) encode(withSig bool) []byte {
	b := make([]byte, 0, len(e.Author)+len(e.Body)+len(e.Kind)+len(e.Name)+len(e.Prev)+len(e.Room)+len(e.Sig)+120)
	str := func(b []byte, s string) []byte {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		return append(b, s...)
	}
	num := func(b []byte, n int64) []byte {
		b = append(b, 'i')
		b = strconv.AppendInt(b, n, 10)
		return append(b, 'e')
	}
	b = append(b, 'd')
	b = str(str(b, "author"), e.Author)
	b = str(str(b, "body"), e.Body)
	b = str(str(b, "kind"), e.Kind)
	b = str(str(b, "name"), e.Name)
	b = str(str(b, "prev"), e.Prev)
	b = str(str(b, "room"), e.Room)
	b = num(str(b, "seq"), e.Seq)
	if withSig {
		b = str(str(b, "sig"), e.Sig)
	}
	b = num(str(b, "ts"), e.TS)
	return append(b, 'e')
}

// SigningBytes is what the author signs: the canonical encoding without sig and id.
func (e *Entry) SigningBytes() []byte { return e.encode(false) }

// ComputeID is the entry's id: hex SHA-256 of the canonical encoding with sig, without id.
func (e *Entry) ComputeID() string {
	sum := sha256.Sum256(e.encode(true))
	return hex.EncodeToString(sum[:])
}

// idIsHash reports whether e.ID is ComputeID(), without making a string of it.
func (e *Entry) idIsHash() bool {
	sum := sha256.Sum256(e.encode(true))
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	return string(h[:]) == e.ID
}

// Sign fills Author, Sig and ID from the private key.
func (e *Entry) Sign(key ed25519.PrivateKey) {
	e.Author = EncodeKey(key.Public().(ed25519.PublicKey))
	e.Sig = base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, e.SigningBytes()))
	e.ID = e.ComputeID()
}

// EncodeKey is the text form of a public key used in Author.
func EncodeKey(pub ed25519.PublicKey) string { return base64.RawURLEncoding.EncodeToString(pub) }

// DecodeKey parses an Author.
func DecodeKey(s string) (ed25519.PublicKey, bool) {
	if len(s) != 43 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, false
	}
	return ed25519.PublicKey(b), true
}

// Fingerprint is the short form of an author key shown beside a name: the first 8 hex
// characters of SHA-256 of the raw key, grouped "abcd-ef01".
func Fingerprint(author string) string {
	pub, ok := DecodeKey(author)
	if !ok {
		return "????-????"
	}
	sum := sha256.Sum256(pub)
	h := hex.EncodeToString(sum[:4])
	return h[:4] + "-" + h[4:]
}

// Check validates one entry on its own: its fields, its id, its signature, its room and
// its time against now. It says nothing about the author's chain (see Log.Add).
func (e *Entry) Check(room string, now time.Time) error {
	pub, sig, err := e.checkFields(room)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, e.SigningBytes(), sig) {
		return errBadSignature()
	}
	return e.checkTime(now)
}

// CheckUnsigned is Check without the signature: fields, room, id and time. An entry that
// passes it is authentic only once a signature covers it: its own, or that of a later
// entry of its author chained to it by prev (CheckBatch).
func (e *Entry) CheckUnsigned(room string, now time.Time) error {
	if _, _, err := e.checkFields(room); err != nil {
		return err
	}
	return e.checkTime(now)
}

// verifySig checks the signature of an entry that passed checkFields.
func (e *Entry) verifySig() error {
	pub, _ := DecodeKey(e.Author)
	sig, _ := base64.RawURLEncoding.Strict().DecodeString(e.Sig)
	if !ed25519.Verify(pub, e.SigningBytes(), sig) {
		return errBadSignature()
	}
	return nil
}

func errBadSignature() error {
	return &Error{Code: CodeBadSignature, Msg: "signature does not match the author's key"}
}

func (e *Entry) checkTime(now time.Time) error {
	if e.TS > now.Add(FutureSlack).UnixMilli() {
		return &Error{Code: CodeFuture, Msg: "timestamp is more than 10 minutes ahead"}
	}
	return nil
}

// checkFields checks every field, the room and the id, and returns the decoded key and
// signature.
func (e *Entry) checkFields(room string) (ed25519.PublicKey, []byte, error) {
	switch {
	case !isHex(e.Room, 32):
		return nil, nil, fieldErr("room", "want 32 lowercase hex characters")
	case !ValidText(e.Name, MaxName) || e.Name == "":
		return nil, nil, fieldErr("name", "want 1 to 64 bytes of text without control or format characters")
	case e.Seq < 1 || e.Seq > MaxSeq:
		return nil, nil, fieldErr("seq", "want 1 to 2^53-1")
	case e.Seq == 1 && e.Prev != "":
		return nil, nil, fieldErr("prev", "must be empty at seq 1")
	case e.Seq > 1 && !isHex(e.Prev, 64):
		return nil, nil, fieldErr("prev", "want 64 lowercase hex characters")
	case e.TS < 0 || e.TS > MaxSeq:
		return nil, nil, fieldErr("ts", "want milliseconds since 1970")
	case !isKind(e.Kind):
		return nil, nil, fieldErr("kind", "want [a-z][a-z0-9-]{0,15}")
	case len(e.Body) > MaxBody:
		return nil, nil, &Error{Code: CodeTooLarge, Field: "body", Msg: "more than 16384 bytes"}
	case !utf8.ValidString(e.Body):
		return nil, nil, fieldErr("body", "not UTF-8")
	case !isHex(e.ID, 64):
		return nil, nil, fieldErr("id", "want 64 lowercase hex characters")
	}
	pub, ok := DecodeKey(e.Author)
	if !ok {
		return nil, nil, fieldErr("author", "want a base64url Ed25519 public key (43 characters)")
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(e.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, nil, fieldErr("sig", "want a base64url Ed25519 signature (86 characters)")
	}
	if e.Room != room {
		return nil, nil, &Error{Code: CodeWrongRoom, Msg: "entry belongs to room " + e.Room}
	}
	if !e.idIsHash() {
		return nil, nil, &Error{Code: CodeBadID, Msg: "id is not the hash of the entry"}
	}
	return pub, sig, nil
}

// ValidText reports whether s is UTF-8 of at most max bytes without control characters
// (Unicode Cc) or format characters (Cf: bidi overrides and isolates such as U+202E,
// zero-width characters U+200B-U+200F including ZWJ, U+2060-U+2064, U+FEFF, tags): the
// rule for names (of authors, peers and rooms). The page's rule is the same (history.js,
// files.js); testdata/names_vectors.json holds both to it.
func ValidText(s string, max int) bool {
	return len(s) <= max && utf8.ValidString(s) && !strings.ContainsFunc(s, IsControlOrFormat)
}

// IsControlOrFormat reports whether r is a control (Cc) or format (Cf) character: the
// characters no name or file name may hold, because they are invisible or reorder what is
// shown around them ("photo\u202egpj.exe" shows as "photoexe.jpg").
func IsControlOrFormat(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf) }
