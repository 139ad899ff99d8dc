// Package torrent reads and writes ChatTorrent invitations: BitTorrent metainfo files
// (BEP 3) whose single "file" is a WebRTC SDP, with ChatTorrent's own fields beside `info`
// in a `chattorrent` dictionary. The format, its rules and its error codes are
// docs/PROTOCOL.md section 1; web/static/js/torrent.js implements the same, and both are
// checked against the vectors in testdata/.
package torrent

import (
	"crypto/sha1"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxSize is the largest invitation file accepted, in bytes.
const MaxSize = 65536

// Format constants.
const (
	Version          = 1     // chattorrent.v written and understood
	PieceLength      = 16384 // info.piece length
	MaxSDP           = 32768 // bytes of sdp
	MaxRoomName      = 80    // bytes of room name
	MaxPeerID        = 64    // bytes of peer.id
	MaxPeerName      = 64    // bytes of peer.name
	MaxCreatedBy     = 128   // bytes of created by
	MaxCreationDate  = 253402300799
	DefaultCreatedBy = "ChatTorrent"
	Comment          = "ChatTorrent invitation: open it in ChatTorrent"
)

// Role says which half of the WebRTC handshake an invitation carries.
type Role string

// The two roles.
const (
	RoleOffer  Role = "offer"
	RoleAnswer Role = "answer"
)

// Peer is the device that wrote an invitation.
type Peer struct {
	ID   string // 1..64 bytes of [A-Za-z0-9_-]
	Name string // 1..64 bytes of UTF-8, no control characters
}

// Invitation is the content of a .torrent invitation.
type Invitation struct {
	Role        Role
	Room        string // 32 lowercase hex characters
	RoomName    string // 1..80 bytes of UTF-8, no control characters
	SDP         string // complete non-trickle SDP, starts with "v=0"
	Session     string // 32 lowercase hex characters, made by the offerer
	Fingerprint string // the SDP's a=fingerprint value; Encode fills it in when empty
	Peer        Peer
	Created     time.Time // whole seconds; Encode uses the current time when zero
	CreatedBy   string    // Encode writes DefaultCreatedBy when empty
	InfoHash    [20]byte  // SHA-1 of the bencoded info dictionary; set by Decode
}

// Decode parses and checks an invitation file. Every error is an *Error carrying one of the
// codes of docs/PROTOCOL.md; the checks run in the order documented there, so Go and JS
// report the same code and field for the same bytes.
func Decode(b []byte) (*Invitation, error) {
	inv, _, err := decode(b)
	return inv, err
}

// decode runs the checks of docs/PROTOCOL.md in their order, one step per part of the
// file, and returns the info dictionary too.
func decode(b []byte) (*Invitation, map[string]any, error) {
	top, info, ct, err := decodeShape(b)
	if err != nil {
		return nil, nil, err
	}
	if err := checkVersion(ct); err != nil {
		return nil, nil, err
	}
	inv := &Invitation{}
	for _, step := range []func() error{
		func() error { return decodeChatTorrent(ct, inv) },
		func() error { return decodeCreated(top, inv) },
		func() error { return checkInfo(info, inv) },
	} {
		if err := step(); err != nil {
			return nil, nil, err
		}
	}
	raw, err := EncodeBencode(info) // canonical input: the same bytes as in the file
	if err != nil {
		return nil, nil, err
	}
	inv.InfoHash = sha1.Sum(raw)
	return inv, info, nil
}

// decodeShape checks the file is a torrent (size, bencode, an info dictionary with its
// fields) with a chattorrent dictionary, and returns the three dictionaries.
func decodeShape(b []byte) (top, info, ct map[string]any, err error) {
	if len(b) == 0 {
		return nil, nil, nil, errf(CodeEmpty, "", "the file is empty")
	}
	if len(b) > MaxSize {
		return nil, nil, nil, errf(CodeTooLarge, "", "more than 65536 bytes")
	}
	v, err := DecodeBencode(b)
	if err != nil {
		return nil, nil, nil, err
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, nil, nil, errf(CodeNotTorrent, "", "not a dictionary")
	}
	info, ok = top["info"].(map[string]any)
	if !ok {
		return nil, nil, nil, errf(CodeNotTorrent, "", "no info dictionary")
	}
	if !isString(info["name"]) || !isInt(info["piece length"]) || !isString(info["pieces"]) ||
		!(isInt(info["length"]) || isList(info["files"])) {
		return nil, nil, nil, errf(CodeNotTorrent, "", "info lacks name, piece length, pieces or length")
	}
	ct, ok = top["chattorrent"].(map[string]any)
	if !ok {
		return nil, nil, nil, errf(CodeNotChatTorrent, "", "no chattorrent dictionary")
	}
	return top, info, ct, nil
}

// checkVersion checks the chattorrent dictionary's format version.
func checkVersion(ct map[string]any) error {
	ver, ok := ct["v"].(int64)
	if !ok {
		return missingOr(ct, "v", "v", "want an integer")
	}
	if ver < 1 {
		return errf(CodeBadField, "v", "want 1")
	}
	if ver > Version {
		return errf(CodeVersion, "", "format version is newer than this program understands")
	}
	return nil
}

// decodeChatTorrent reads the chattorrent dictionary: role, room, session, peer, SDP and
// fingerprint.
func decodeChatTorrent(ct map[string]any, inv *Invitation) error {
	role, err := stringField(ct, "role", "role")
	if err != nil {
		return err
	}
	if role != string(RoleOffer) && role != string(RoleAnswer) {
		return errf(CodeBadField, "role", `want "offer" or "answer"`)
	}
	inv.Role = Role(role)
	if inv.Room, err = hexField(ct, "room", "room"); err != nil {
		return err
	}
	if inv.RoomName, err = textField(ct, "room name", "room name", MaxRoomName); err != nil {
		return err
	}
	if inv.Session, err = hexField(ct, "session", "session"); err != nil {
		return err
	}
	if err := decodePeer(ct, inv); err != nil {
		return err
	}
	if inv.SDP, err = stringField(ct, "sdp", "sdp"); err != nil {
		return err
	}
	if err := checkSDP(inv.SDP); err != nil {
		return err
	}
	inv.Fingerprint, err = stringField(ct, "fingerprint", "fingerprint")
	return err
}

// decodePeer reads the chattorrent dictionary's peer: its id and name.
func decodePeer(ct map[string]any, inv *Invitation) error {
	peer, ok := ct["peer"].(map[string]any)
	if !ok {
		return missingOr(ct, "peer", "peer", "want a dictionary")
	}
	var err error
	if inv.Peer.ID, err = stringField(peer, "id", "peer.id"); err != nil {
		return err
	}
	if !validPeerID(inv.Peer.ID) {
		return errf(CodeBadField, "peer.id", "want 1..64 characters of A-Z a-z 0-9 _ -")
	}
	inv.Peer.Name, err = textField(peer, "name", "peer.name", MaxPeerName)
	return err
}

// decodeCreated reads the top level's created by and creation date.
func decodeCreated(top map[string]any, inv *Invitation) error {
	var err error
	if inv.CreatedBy, err = textField(top, "created by", "created by", MaxCreatedBy); err != nil {
		return err
	}
	date, ok := top["creation date"].(int64)
	if !ok {
		return missingOr(top, "creation date", "creation date", "want an integer")
	}
	if date < 0 || date > MaxCreationDate {
		return errf(CodeBadField, "creation date", "want unix seconds from 1970 to 9999")
	}
	inv.Created = time.Unix(date, 0).UTC()
	return nil
}

// checkInfo checks the info dictionary describes the SDP as a single file, and that the
// fingerprint is the SDP's.
func checkInfo(info map[string]any, inv *Invitation) error {
	length, ok := info["length"].(int64)
	if !ok {
		return errf(CodeBadField, "info.length", "want an integer (a single file)")
	}
	if info["piece length"].(int64) != PieceLength {
		return errf(CodeBadField, "info.piece length", "want 16384")
	}
	if length != int64(len(inv.SDP)) {
		return errf(CodePiecesMismatch, "", "info.length is not the length of the sdp")
	}
	if info["pieces"].(string) != string(pieces(inv.SDP)) {
		return errf(CodePiecesMismatch, "", "info.pieces are not the SHA-1 hashes of the sdp")
	}
	if inv.Fingerprint != sdpFingerprint(inv.SDP) {
		return errf(CodeFingerprintMismatch, "", "fingerprint is not the one in the sdp")
	}
	return nil
}

// Encode writes inv as an invitation file: info is computed from the SDP, Fingerprint is
// taken from the SDP when empty, Created defaults to now and CreatedBy to
// DefaultCreatedBy. The result is checked exactly as Decode checks it; inv is not changed.
func Encode(inv *Invitation) ([]byte, error) {
	if inv == nil {
		return nil, errf(CodeBadField, "", "no invitation")
	}
	fp := inv.Fingerprint
	if fp == "" {
		fp = sdpFingerprint(inv.SDP)
		if fp == "" {
			if err := checkSDP(inv.SDP); err != nil {
				return nil, err
			}
		}
	}
	created := inv.Created
	if created.IsZero() {
		created = time.Now()
	}
	createdBy := inv.CreatedBy
	if createdBy == "" {
		createdBy = DefaultCreatedBy
	}
	doc := map[string]any{
		"comment":       Comment,
		"created by":    createdBy,
		"creation date": created.Unix(),
		"info": map[string]any{
			"length":       len(inv.SDP),
			"name":         SafeFileName(inv.RoomName) + "_" + string(inv.Role) + ".sdp",
			"piece length": PieceLength,
			"pieces":       pieces(inv.SDP),
		},
		"chattorrent": map[string]any{
			"fingerprint": fp,
			"peer":        map[string]any{"id": inv.Peer.ID, "name": inv.Peer.Name},
			"role":        string(inv.Role),
			"room":        inv.Room,
			"room name":   inv.RoomName,
			"sdp":         inv.SDP,
			"session":     inv.Session,
			"v":           Version,
		},
	}
	b, err := EncodeBencode(doc)
	if err != nil {
		return nil, err
	}
	if _, err := Decode(b); err != nil {
		return nil, err
	}
	return b, nil
}

// pieces is the concatenated SHA-1 of each PieceLength piece of sdp.
func pieces(sdp string) []byte {
	var out []byte
	for i := 0; i < len(sdp); i += PieceLength {
		h := sha1.Sum([]byte(sdp[i:min(i+PieceLength, len(sdp))]))
		out = append(out, h[:]...)
	}
	return out
}

// sdpFingerprint is the value of the SDP's first a=fingerprint line with surrounding spaces
// and tabs removed, or "" if there is none. Lines end at "\n"; a "\r" before it is dropped.
func sdpFingerprint(sdp string) string {
	for line := range strings.SplitSeq(sdp, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if v, ok := strings.CutPrefix(line, "a=fingerprint:"); ok {
			return strings.Trim(v, " \t")
		}
	}
	return ""
}

func checkSDP(sdp string) error {
	switch {
	case len(sdp) < 1 || len(sdp) > MaxSDP:
		return errf(CodeBadField, "sdp", "want 1..32768 bytes")
	case !utf8.ValidString(sdp):
		return errf(CodeBadField, "sdp", "not UTF-8")
	case !strings.HasPrefix(sdp, "v=0"):
		return errf(CodeBadField, "sdp", `does not start with "v=0"`)
	case sdpFingerprint(sdp) == "":
		return errf(CodeBadField, "sdp", "no a=fingerprint line")
	}
	return nil
}

func isString(v any) bool { _, ok := v.(string); return ok }
func isInt(v any) bool    { _, ok := v.(int64); return ok }
func isList(v any) bool   { _, ok := v.([]any); return ok }

// missingOr is the bad-field error for d[key] being absent or of the wrong type.
func missingOr(d map[string]any, key, field, wrongType string) *Error {
	if _, ok := d[key]; !ok {
		return errf(CodeBadField, field, "missing")
	}
	return errf(CodeBadField, field, wrongType)
}

func stringField(d map[string]any, key, field string) (string, error) {
	s, ok := d[key].(string)
	if !ok {
		return "", missingOr(d, key, field, "want a string")
	}
	return s, nil
}

func hexField(d map[string]any, key, field string) (string, error) {
	s, err := stringField(d, key, field)
	if err != nil {
		return "", err
	}
	if len(s) != 32 || strings.Trim(s, "0123456789abcdef") != "" {
		return "", errf(CodeBadField, field, "want 32 lowercase hex characters")
	}
	return s, nil
}

// textField is a string of 1..maxLen bytes of UTF-8 without control (Cc) or format (Cf)
// characters: the rule of history.ValidText for names.
func textField(d map[string]any, key, field string, maxLen int) (string, error) {
	s, err := stringField(d, key, field)
	if err != nil {
		return "", err
	}
	switch {
	case len(s) < 1 || len(s) > maxLen:
		return "", errf(CodeBadField, field, "want 1.."+strconv.Itoa(maxLen)+" bytes")
	case !utf8.ValidString(s):
		return "", errf(CodeBadField, field, "not UTF-8")
	case strings.ContainsFunc(s, isControlOrFormat):
		return "", errf(CodeBadField, field, "holds a control or format character")
	}
	return s, nil
}

// isControlOrFormat is history.IsControlOrFormat (this package does not import history).
func isControlOrFormat(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf) }

func validPeerID(s string) bool {
	if len(s) < 1 || len(s) > MaxPeerID {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
