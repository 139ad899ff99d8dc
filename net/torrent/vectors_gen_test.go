package torrent

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/ from the generator in vectors_gen_test.go")

// The shared vectors, as read by these tests and by web/jstest/torrent.test.mjs.
type vectorFile struct {
	Comment      string        `json:"comment"`
	Vectors      []vector      `json:"vectors"`
	EncodeErrors []encodeError `json:"encodeErrors"`
}

type vector struct {
	Name   string     `json:"name"`
	File   string     `json:"file"`
	Valid  bool       `json:"valid"`
	Code   string     `json:"code,omitempty"`
	Field  string     `json:"field,omitempty"`
	Input  *vecInput  `json:"input,omitempty"`  // encoding this gives exactly the file
	Expect *vecExpect `json:"expect,omitempty"` // what decoding the file gives
}

type encodeError struct {
	Name  string   `json:"name"`
	Input vecInput `json:"input"`
	Code  string   `json:"code"`
	Field string   `json:"field,omitempty"`
}

type vecPeer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// vecInput mirrors the argument of encodeInvitation in torrent.js.
type vecInput struct {
	Role        string  `json:"role"`
	Room        string  `json:"room"`
	RoomName    string  `json:"roomName"`
	SDP         string  `json:"sdp"`
	Session     string  `json:"session"`
	Peer        vecPeer `json:"peer"`
	Fingerprint string  `json:"fingerprint,omitempty"`
	Created     int64   `json:"created"`
	CreatedBy   string  `json:"createdBy,omitempty"`
}

// vecExpect mirrors the result of decodeInvitation in torrent.js.
type vecExpect struct {
	Role        string  `json:"role"`
	Room        string  `json:"room"`
	RoomName    string  `json:"roomName"`
	SDP         string  `json:"sdp"`
	Session     string  `json:"session"`
	Peer        vecPeer `json:"peer"`
	Fingerprint string  `json:"fingerprint"`
	Created     int64   `json:"created"`
	CreatedBy   string  `json:"createdBy"`
	InfoHash    string  `json:"infoHash"`
}

type safeName struct {
	Input  string `json:"input"`
	Output string `json:"output"`
}

func (in vecInput) invitation() *Invitation {
	return &Invitation{
		Role: Role(in.Role), Room: in.Room, RoomName: in.RoomName, SDP: in.SDP,
		Session: in.Session, Peer: Peer{in.Peer.ID, in.Peer.Name}, Fingerprint: in.Fingerprint,
		Created: time.Unix(in.Created, 0), CreatedBy: in.CreatedBy,
	}
}

func expectOf(inv *Invitation) *vecExpect {
	return &vecExpect{
		Role: string(inv.Role), Room: inv.Room, RoomName: inv.RoomName, SDP: inv.SDP,
		Session: inv.Session, Peer: vecPeer{inv.Peer.ID, inv.Peer.Name},
		Fingerprint: inv.Fingerprint, Created: inv.Created.Unix(), CreatedBy: inv.CreatedBy,
		InfoHash: fmt.Sprintf("%x", inv.InfoHash),
	}
}

// fakeFingerprint is a deterministic "sha-256 AB:CD:…" value.
func fakeFingerprint(seed string) string {
	h := sha256.Sum256([]byte(seed))
	parts := make([]string, len(h))
	for i, c := range h {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return "sha-256 " + strings.Join(parts, ":")
}

// chromiumSDP is a non-trickle SDP as Chromium writes it for a DataChannel-only connection
// on loopback, after ICE gathering finished.
func chromiumSDP(role Role, seed string, extra ...string) string {
	setup, sessID, port, ufrag, pwd := "actpass", "4611731400430051336", "54321", "Fx3k", "m8YtJ0tGp0kq2Xq0VhQX1ZsE"
	if role == RoleAnswer {
		setup, sessID, port, ufrag, pwd = "active", "2837291047561289374", "60917", "Qa9v", "3Jd7K2mPq9LwZr8tYx5Nc1Bv"
	}
	lines := []string{
		"v=0",
		"o=- " + sessID + " 2 IN IP4 127.0.0.1",
		"s=-",
		"t=0 0",
		"a=group:BUNDLE 0",
		"a=extmap-allow-mixed",
		"a=msid-semantic: WMS",
		"m=application " + port + " UDP/DTLS/SCTP webrtc-datachannel",
		"c=IN IP4 127.0.0.1",
		"a=candidate:1467250027 1 udp 2122260223 127.0.0.1 " + port + " typ host generation 0 network-id 1",
		"a=candidate:3176263371 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0 network-id 1",
		"a=ice-ufrag:" + ufrag,
		"a=ice-pwd:" + pwd,
		"a=ice-options:trickle",
		"a=fingerprint:" + fakeFingerprint(seed),
		"a=setup:" + setup,
		"a=mid:0",
		"a=sctp-port:5000",
		"a=max-message-size:262144",
	}
	lines = append(lines, extra...)
	return strings.Join(lines, "\r\n") + "\r\n"
}

// padSDP returns a Chromium SDP grown with extra candidate lines to exactly n bytes.
func padSDP(seed string, n int) string {
	base := chromiumSDP(RoleOffer, seed)
	var extra []string
	for i := 0; len(base)+len(strings.Join(extra, "\r\n"))+200 < n; i++ {
		extra = append(extra, fmt.Sprintf("a=candidate:%d 1 udp 2122194687 127.0.0.%d %d typ host generation 0 network-id %d", 1000000+i, 2+i%250, 50000+i%10000, 2+i%50))
	}
	s := chromiumSDP(RoleOffer, seed, extra...)
	pad := n - len(s) - len("a=x-pad:\r\n")
	if pad < 0 {
		panic("padSDP: too long")
	}
	return s + "a=x-pad:" + strings.Repeat("p", pad) + "\r\n"
}

const (
	roomA    = "3f2a9c1be8d04a7f9b6e51c0d2a4f789"
	sessionA = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	created  = 1767225600 // 2026-01-01T00:00:00Z
)

func offerInput() vecInput {
	return vecInput{
		Role: "offer", Room: roomA, RoomName: "Kitchen table", SDP: chromiumSDP(RoleOffer, "offer"),
		Session: sessionA, Peer: vecPeer{"dev_7Hq2-xK9", "Ana"}, Created: created,
		CreatedBy: "ChatTorrent 0.1.0",
	}
}

func answerInput() vecInput {
	return vecInput{
		Role: "answer", Room: roomA, RoomName: "Kitchen table", SDP: chromiumSDP(RoleAnswer, "answer"),
		Session: sessionA, Peer: vecPeer{"dev_Bz81-pQ3", "Bruno"}, Created: created + 95,
		CreatedBy: "ChatTorrent 0.1.0",
	}
}

// generated is everything in testdata/: file name → bytes.
type generated map[string][]byte

func generateVectors() (generated, error) {
	out := generated{}
	vf := vectorFile{Comment: "Shared ChatTorrent invitation vectors (docs/PROTOCOL.md section 1). " +
		"Generated by `go test ./net/torrent -run TestGenerateVectors -update`; do not edit."}
	add := func(v vector, b []byte) {
		v.File = v.Name + ".torrent"
		out[v.File] = b
		vf.Vectors = append(vf.Vectors, v)
	}
	var firstErr error
	valid := func(name string, in vecInput) {
		b, err := Encode(in.invitation())
		if err != nil {
			firstErr = fmt.Errorf("vector %s: %w", name, err)
			return
		}
		inv, err := Decode(b)
		if err != nil {
			firstErr = fmt.Errorf("vector %s: %w", name, err)
			return
		}
		add(vector{Name: name, Valid: true, Input: &in, Expect: expectOf(inv)}, b)
	}
	validRaw := func(name string, b []byte) {
		inv, err := Decode(b)
		if err != nil {
			firstErr = fmt.Errorf("vector %s: %w", name, err)
			return
		}
		add(vector{Name: name, Valid: true, Expect: expectOf(inv)}, b)
	}
	bad := func(name, code, field string, b []byte) {
		add(vector{Name: name, Valid: false, Code: code, Field: field}, b)
	}
	// doc returns the offer as a mutable tree.
	doc := func() (top, info, ct, peer map[string]any) {
		b, err := Encode(offerInput().invitation())
		if err != nil {
			panic(err)
		}
		v, err := DecodeBencode(b)
		if err != nil {
			panic(err)
		}
		top = v.(map[string]any)
		info = top["info"].(map[string]any)
		ct = top["chattorrent"].(map[string]any)
		peer = ct["peer"].(map[string]any)
		return
	}
	enc := func(v any) []byte {
		b, err := EncodeBencode(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	mutate := func(f func(top, info, ct, peer map[string]any)) []byte {
		top, info, ct, peer := doc()
		f(top, info, ct, peer)
		return enc(top)
	}
	// withSDP sets a new sdp and keeps info and fingerprint consistent with it.
	withSDP := func(sdp string) func(top, info, ct, peer map[string]any) {
		return func(top, info, ct, peer map[string]any) {
			ct["sdp"] = sdp
			ct["fingerprint"] = sdpFingerprint(sdp)
			info["length"] = int64(len(sdp))
			info["pieces"] = string(pieces(sdp))
		}
	}

	// Valid invitations.
	valid("valid_offer", offerInput())
	valid("valid_answer", answerInput())
	uni := offerInput()
	uni.RoomName = "Sala Niño ✓"
	uni.Peer.Name = "Zoë 🎉"
	valid("valid_unicode_room_name", uni)
	zero := answerInput()
	zero.Created = 0
	zero.CreatedBy = ""
	valid("valid_creation_date_zero_default_created_by", zero)
	multi := offerInput()
	multi.SDP = padSDP("multi", 20000)
	valid("valid_two_pieces", multi)
	maxIn := offerInput()
	maxIn.SDP = padSDP("max", MaxSDP)
	maxIn.RoomName = strings.Repeat("ñ", 40) // 80 bytes
	maxIn.Peer = vecPeer{strings.Repeat("aZ0_-", 12) + "abcd", strings.Repeat("✓", 21) + "x"}
	valid("valid_longest_fields", maxIn)
	lf := offerInput()
	lf.SDP = "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nt=0 0\na=fingerprint: \t" + fakeFingerprint("lf") + " \t\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\n"
	valid("valid_lf_sdp_fingerprint_trimmed", lf)
	explicitFP := offerInput()
	explicitFP.Fingerprint = sdpFingerprint(explicitFP.SDP)
	valid("valid_explicit_fingerprint", explicitFP)
	validRaw("valid_unknown_keys_ignored", mutate(func(top, info, ct, peer map[string]any) {
		top["announce"] = "udp://tracker.invalid:6969"
		top["zzz"] = []any{int64(-7), "x", map[string]any{}}
		info["private"] = int64(1)
		ct["future"] = map[string]any{"a": []any{}}
		peer["avatar"] = "\x00\xff"
	}))
	validRaw("valid_nesting_depth_16", mutate(func(top, info, ct, peer map[string]any) {
		var v any = []any{}
		for range 14 { // top(1) + 15 lists = 16
			v = []any{v}
		}
		top["deep"] = v
	}))
	{
		// Grow an unknown key until the file is exactly MaxSize bytes.
		n := 0
		for range 4 {
			c := mutate(func(top, info, ct, peer map[string]any) { top["pad"] = strings.Repeat("-", n) })
			n += MaxSize - len(c)
		}
		validRaw("valid_exactly_65536_bytes", mutate(func(top, info, ct, peer map[string]any) { top["pad"] = strings.Repeat("-", n) }))
		if len(out["valid_exactly_65536_bytes.torrent"]) != MaxSize {
			return nil, fmt.Errorf("valid_exactly_65536_bytes: not %d bytes", MaxSize)
		}
	}

	offer, _ := Encode(offerInput().invitation())

	// Size.
	bad("empty_file", CodeEmpty, "", []byte{})
	bad("too_large_65537_bytes", CodeTooLarge, "", append(bytes.Repeat([]byte("d"), MaxSize-len(offer)+1), offer...))

	// Bencode.
	bad("truncated_half", CodeTruncated, "", offer[:len(offer)/2])
	bad("truncated_last_byte_missing", CodeTruncated, "", offer[:len(offer)-1])
	bad("truncated_string_length_past_end", CodeTruncated, "", []byte("d4:info99999999999999999999999:abce"))
	bad("truncated_in_integer", CodeTruncated, "", []byte("d13:creation datei17672"))
	bad("malformed_not_bencode", CodeMalformed, "", []byte("<html><body>hello</body></html>\n"))
	bad("malformed_trailing_garbage", CodeMalformed, "", append(bytes.Clone(offer), "garbage"...))
	bad("malformed_trailing_newline", CodeMalformed, "", append(bytes.Clone(offer), '\n'))
	bad("malformed_unsorted_keys", CodeMalformed, "", swapTopKeys(offer))
	bad("malformed_duplicate_key", CodeMalformed, "", []byte("d7:comment1:a7:comment1:be"))
	bad("malformed_integer_leading_zero", CodeMalformed, "",
		bytes.Replace(offer, []byte("13:creation datei"), []byte("13:creation datei0"), 1))
	bad("malformed_string_length_leading_zero", CodeMalformed, "",
		bytes.Replace(offer, []byte("7:comment"), []byte("07:comment"), 1))
	bad("malformed_negative_zero", CodeMalformed, "", []byte("d1:ai-0ee"))
	bad("malformed_integer_overflow", CodeMalformed, "", []byte("d1:ai9223372036854775808ee"))
	bad("malformed_integer_empty", CodeMalformed, "", []byte("d1:aiee"))
	bad("malformed_dict_key_not_string", CodeMalformed, "", []byte("di1e1:ae"))
	bad("malformed_key_without_value", CodeMalformed, "", []byte("d1:ae"))
	bad("malformed_nesting_depth_17", CodeMalformed, "", []byte("d4:deep"+strings.Repeat("l", 16)+strings.Repeat("e", 17)))
	bad("malformed_deep_nesting_unterminated", CodeMalformed, "", bytes.Repeat([]byte("l"), 1000))
	bad("truncated_nesting_depth_16_unterminated", CodeTruncated, "", bytes.Repeat([]byte("l"), 16))

	// Torrent structure.
	bad("not_torrent_integer", CodeNotTorrent, "", []byte("i42e"))
	bad("not_torrent_list", CodeNotTorrent, "", []byte("l4:infoe"))
	bad("not_torrent_no_info", CodeNotTorrent, "", mutate(func(top, info, ct, peer map[string]any) { delete(top, "info") }))
	bad("not_torrent_info_not_dict", CodeNotTorrent, "", mutate(func(top, info, ct, peer map[string]any) { top["info"] = "x" }))
	bad("not_torrent_info_no_pieces", CodeNotTorrent, "", mutate(func(top, info, ct, peer map[string]any) { delete(info, "pieces") }))
	bad("not_torrent_info_name_integer", CodeNotTorrent, "", mutate(func(top, info, ct, peer map[string]any) { info["name"] = int64(1) }))
	plainData := strings.Repeat("Lorem ipsum dolor sit amet. ", 2000)
	bad("not_chattorrent_plain_single_file", CodeNotChatTorrent, "", enc(map[string]any{
		"announce": "udp://tracker.opentrackr.org:1337/announce", "created by": "mktorrent 1.1",
		"creation date": int64(1700000000),
		"info": map[string]any{"length": len(plainData), "name": "lorem.txt", "piece length": 32768,
			"pieces": string(piecesOf(plainData, 32768))},
	}))
	bad("not_chattorrent_plain_multi_file", CodeNotChatTorrent, "", enc(map[string]any{
		"announce": "udp://tracker.opentrackr.org:1337/announce",
		"info": map[string]any{"name": "album", "piece length": 16384, "pieces": string(pieces(plainData)),
			"files": []any{
				map[string]any{"length": 28000, "path": []string{"a.txt"}},
				map[string]any{"length": len(plainData) - 28000, "path": []string{"b", "c.txt"}},
			}},
	}))
	bad("not_chattorrent_not_dict", CodeNotChatTorrent, "", mutate(func(top, info, ct, peer map[string]any) { top["chattorrent"] = []any{} }))

	// Version.
	bad("version_2", CodeVersion, "", mutate(func(top, info, ct, peer map[string]any) { ct["v"] = int64(2) }))
	bad("version_huge", CodeVersion, "", mutate(func(top, info, ct, peer map[string]any) { ct["v"] = int64(1) << 62 }))
	bad("v_zero", CodeBadField, "v", mutate(func(top, info, ct, peer map[string]any) { ct["v"] = int64(0) }))
	bad("v_string", CodeBadField, "v", mutate(func(top, info, ct, peer map[string]any) { ct["v"] = "1" }))
	bad("v_missing", CodeBadField, "v", mutate(func(top, info, ct, peer map[string]any) { delete(ct, "v") }))

	// Fields, in the order they are checked.
	set := func(d func(top, info, ct, peer map[string]any) map[string]any, key string, v any) []byte {
		return mutate(func(top, info, ct, peer map[string]any) {
			m := d(top, info, ct, peer)
			if v == nil {
				delete(m, key)
			} else {
				m[key] = v
			}
		})
	}
	inCT := func(top, info, ct, peer map[string]any) map[string]any { return ct }
	inPeer := func(top, info, ct, peer map[string]any) map[string]any { return peer }
	inTop := func(top, info, ct, peer map[string]any) map[string]any { return top }
	inInfo := func(top, info, ct, peer map[string]any) map[string]any { return info }
	for _, c := range []struct {
		name, field string
		d           func(top, info, ct, peer map[string]any) map[string]any
		key         string
		v           any // nil: delete
	}{
		{"role_missing", "role", inCT, "role", nil},
		{"role_integer", "role", inCT, "role", int64(1)},
		{"role_wrong_value", "role", inCT, "role", "host"},
		{"role_uppercase", "role", inCT, "role", "Offer"},
		{"room_missing", "room", inCT, "room", nil},
		{"room_list", "room", inCT, "room", []any{roomA}},
		{"room_too_short", "room", inCT, "room", roomA[:31]},
		{"room_too_long", "room", inCT, "room", roomA + "0"},
		{"room_uppercase_hex", "room", inCT, "room", strings.ToUpper(roomA)},
		{"room_not_hex", "room", inCT, "room", "3f2a9c1be8d04a7f9b6e51c0d2a4f78g"},
		{"room_name_missing", "room name", inCT, "room name", nil},
		{"room_name_empty", "room name", inCT, "room name", ""},
		{"room_name_81_bytes", "room name", inCT, "room name", strings.Repeat("ñ", 40) + "x"},
		{"room_name_control_char", "room name", inCT, "room name", "Kitchen\ntable"},
		{"room_name_c1_control_char", "room name", inCT, "room name", "Kitchen\u0085table"},
		{"room_name_bidi_override", "room name", inCT, "room name", "Kitchen\u202eelbat"},
		{"room_name_not_utf8", "room name", inCT, "room name", "Kitchen \xff table"},
		{"room_name_utf8_surrogate", "room name", inCT, "room name", "a\xed\xa0\x80b"},
		{"room_name_integer", "room name", inCT, "room name", int64(7)},
		{"session_missing", "session", inCT, "session", nil},
		{"session_bad_hex", "session", inCT, "session", "A1B2C3D4E5F60718293A4B5C6D7E8F90"},
		{"peer_missing", "peer", inCT, "peer", nil},
		{"peer_string", "peer", inCT, "peer", "Ana"},
		{"peer_id_missing", "peer.id", inPeer, "id", nil},
		{"peer_id_empty", "peer.id", inPeer, "id", ""},
		{"peer_id_65_bytes", "peer.id", inPeer, "id", strings.Repeat("a", 65)},
		{"peer_id_bad_character", "peer.id", inPeer, "id", "dev 7Hq2"},
		{"peer_id_slash", "peer.id", inPeer, "id", "../x"},
		{"peer_name_missing", "peer.name", inPeer, "name", nil},
		{"peer_name_65_bytes", "peer.name", inPeer, "name", strings.Repeat("n", 65)},
		{"peer_name_control_char", "peer.name", inPeer, "name", "Ana\x00"},
		{"peer_name_zero_width", "peer.name", inPeer, "name", "A\u200bna"},
		{"sdp_missing", "sdp", inCT, "sdp", nil},
		{"sdp_integer", "sdp", inCT, "sdp", int64(0)},
		{"sdp_empty", "sdp", inCT, "sdp", ""},
		{"sdp_not_v0", "sdp", inCT, "sdp", "o=- 1 2 IN IP4 127.0.0.1\r\nv=0\r\na=fingerprint:" + fakeFingerprint("x") + "\r\n"},
		{"sdp_no_fingerprint_line", "sdp", inCT, "sdp", strings.ReplaceAll(chromiumSDP(RoleOffer, "offer"), "a=fingerprint:", "a=fingerprlnt:")},
		{"sdp_empty_fingerprint_line", "sdp", inCT, "sdp", "v=0\r\na=fingerprint: \r\n"},
		{"sdp_not_utf8", "sdp", inCT, "sdp", "v=0\r\na=fingerprint:sha-256 AA\r\ns=\xc3\x28\r\n"},
		{"sdp_32769_bytes", "sdp", inCT, "sdp", padSDP("big", MaxSDP+1)},
		{"fingerprint_missing", "fingerprint", inCT, "fingerprint", nil},
		{"fingerprint_integer", "fingerprint", inCT, "fingerprint", int64(256)},
		{"created_by_missing", "created by", inTop, "created by", nil},
		{"created_by_empty", "created by", inTop, "created by", ""},
		{"created_by_129_bytes", "created by", inTop, "created by", strings.Repeat("c", 129)},
		{"creation_date_missing", "creation date", inTop, "creation date", nil},
		{"creation_date_string", "creation date", inTop, "creation date", "2026-01-01"},
		{"creation_date_negative", "creation date", inTop, "creation date", int64(-1)},
		{"creation_date_after_9999", "creation date", inTop, "creation date", int64(MaxCreationDate + 1)},
		{"info_piece_length_32768", "info.piece length", inInfo, "piece length", int64(32768)},
	} {
		bad(c.name, CodeBadField, c.field, set(c.d, c.key, c.v))
	}
	bad("info_multi_file_in_chattorrent", CodeBadField, "info.length", mutate(func(top, info, ct, peer map[string]any) {
		info["files"] = []any{map[string]any{"length": info["length"], "path": []string{"x.sdp"}}}
		delete(info, "length")
	}))

	// pieces and fingerprint.
	bad("length_wrong", CodePiecesMismatch, "", mutate(func(top, info, ct, peer map[string]any) { info["length"] = info["length"].(int64) + 1 }))
	bad("pieces_wrong_hash", CodePiecesMismatch, "", mutate(func(top, info, ct, peer map[string]any) {
		p := []byte(info["pieces"].(string))
		p[7] ^= 0x01
		info["pieces"] = string(p)
	}))
	bad("pieces_wrong_count", CodePiecesMismatch, "", mutate(func(top, info, ct, peer map[string]any) {
		info["pieces"] = info["pieces"].(string) + info["pieces"].(string)
	}))
	bad("pieces_empty", CodePiecesMismatch, "", mutate(func(top, info, ct, peer map[string]any) { info["pieces"] = "" }))
	bad("pieces_of_other_sdp", CodePiecesMismatch, "", mutate(func(top, info, ct, peer map[string]any) {
		withSDP(chromiumSDP(RoleOffer, "offer"))(top, info, ct, peer)
		ct["sdp"] = strings.Replace(ct["sdp"].(string), "127.0.0.1", "127.0.0.2", 1) // same length
	}))
	bad("fingerprint_mismatch", CodeFingerprintMismatch, "", mutate(func(top, info, ct, peer map[string]any) {
		ct["fingerprint"] = fakeFingerprint("someone else")
	}))
	bad("fingerprint_mismatch_case", CodeFingerprintMismatch, "", mutate(func(top, info, ct, peer map[string]any) {
		ct["fingerprint"] = strings.ToLower(ct["fingerprint"].(string))
	}))
	bad("fingerprint_mismatch_empty", CodeFingerprintMismatch, "", mutate(func(top, info, ct, peer map[string]any) { ct["fingerprint"] = "" }))
	// The first failing check wins: the bad sdp is reported before the pieces that do not match it.
	bad("order_role_before_room", CodeBadField, "role", mutate(func(top, info, ct, peer map[string]any) { ct["role"] = "x"; ct["room"] = "x" }))
	bad("order_version_before_fields", CodeVersion, "", mutate(func(top, info, ct, peer map[string]any) { ct["v"] = int64(3); ct["role"] = "x" }))
	bad("order_fields_before_pieces", CodeBadField, "created by", mutate(func(top, info, ct, peer map[string]any) { top["created by"] = int64(1); info["pieces"] = "" }))
	bad("order_pieces_before_fingerprint", CodePiecesMismatch, "", mutate(func(top, info, ct, peer map[string]any) { info["pieces"] = ""; ct["fingerprint"] = "x" }))
	if firstErr != nil {
		return nil, firstErr
	}

	// Encode must refuse what Decode would refuse.
	encErr := func(name, code, field string, f func(*vecInput)) {
		in := offerInput()
		f(&in)
		vf.EncodeErrors = append(vf.EncodeErrors, encodeError{Name: name, Input: in, Code: code, Field: field})
	}
	encErr("encode_role_wrong", CodeBadField, "role", func(in *vecInput) { in.Role = "host" })
	encErr("encode_room_uppercase", CodeBadField, "room", func(in *vecInput) { in.Room = strings.ToUpper(in.Room) })
	encErr("encode_room_name_newline", CodeBadField, "room name", func(in *vecInput) { in.RoomName = "a\nb" })
	encErr("encode_room_name_empty", CodeBadField, "room name", func(in *vecInput) { in.RoomName = "" })
	encErr("encode_peer_id_empty", CodeBadField, "peer.id", func(in *vecInput) { in.Peer.ID = "" })
	encErr("encode_sdp_without_fingerprint", CodeBadField, "sdp", func(in *vecInput) {
		in.SDP = strings.ReplaceAll(in.SDP, "a=fingerprint:", "a=x:")
	})
	encErr("encode_sdp_too_long", CodeBadField, "sdp", func(in *vecInput) { in.SDP = padSDP("big", MaxSDP+1) })
	encErr("encode_fingerprint_given_wrong", CodeFingerprintMismatch, "", func(in *vecInput) { in.Fingerprint = "sha-256 00" })
	encErr("encode_created_negative", CodeBadField, "creation date", func(in *vecInput) { in.Created = -1 })
	encErr("encode_created_by_control", CodeBadField, "created by", func(in *vecInput) { in.CreatedBy = "x\ty" })

	js, err := json.MarshalIndent(vf, "", "  ")
	if err != nil {
		return nil, err
	}
	out["vectors.json"] = append(js, '\n')

	var names []safeName
	for _, in := range safeNameInputs() {
		names = append(names, safeName{in, SafeFileName(in)})
	}
	js, err = json.MarshalIndent(names, "", "  ")
	if err != nil {
		return nil, err
	}
	out["safe_names.json"] = append(js, '\n')
	return out, nil
}

func piecesOf(s string, n int) []byte {
	var out []byte
	for i := 0; i < len(s); i += n {
		h := sha1.Sum([]byte(s[i:min(i+n, len(s))]))
		out = append(out, h[:]...)
	}
	return out
}

// swapTopKeys swaps the first two keys of a top-level dictionary whose first two values are
// strings ("chattorrent" is a dictionary, so it swaps "comment" and "created by" after it is
// moved): it rebuilds the bytes by hand, since the encoder always sorts.
func swapTopKeys(b []byte) []byte {
	v, _ := DecodeBencode(b)
	top := v.(map[string]any)
	out := []byte("d")
	out = appendString(out, "comment")
	out = appendString(out, top["comment"].(string))
	out = appendString(out, "chattorrent")
	out, _ = AppendBencode(out, top["chattorrent"])
	for _, k := range []string{"created by", "creation date", "info"} {
		out = appendString(out, k)
		out, _ = AppendBencode(out, top[k])
	}
	return append(out, 'e')
}

func safeNameInputs() []string {
	return []string{
		"Kitchen table",
		"Sala Niño ✓",
		"Sala Nin\u0303o (NFD)",
		"../../etc/passwd",
		"",
		"a/b\\c",
		"a:b*c?d\"e<f>g|h",
		"   ",
		"...",
		"._hidden_.",
		"a..b",
		"__a___b__",
		"tab\there\nnewline",
		"🎉 Party 🎉",
		"👨‍👩‍👧 family",
		"Café ☕ 2024",
		"名前のない部屋",
		"Комната 7",
		"غرفة",
		"x² Ⅻ ½",
		"CON",
		"-dash-",
		strings.Repeat("x", 100),
		strings.Repeat("ñ", 60),
		strings.Repeat("a", 47) + ".bcd",
		strings.Repeat("a", 46) + "_.b",
		strings.Repeat("a", 47) + " b",
		strings.Repeat("🎉", 100),
		"\u200bzero\u200bwidth",
		"right\u202eleft",
	}
}

// TestGenerateVectors checks testdata/ is what the generator makes; with -update it
// rewrites it.
func TestGenerateVectors(t *testing.T) {
	files, err := generateVectors()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v (run: go test ./net/torrent -run TestGenerateVectors -update)", err)
			continue
		}
		if !bytes.Equal(have, b) {
			t.Errorf("testdata/%s differs from the generator (run with -update)", name)
		}
	}
}
