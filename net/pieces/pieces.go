// Package pieces is docs/PROTOCOL.md §5 in Go: a file's BEP 52 hashes over 16 KiB pieces,
// the body of a file entry, and the binary frames and control messages that move pieces
// over a room's DataChannel. web/static/js/files.js is the same in JS; both replay
// testdata/vectors.json. It owns the codec only and imports nothing of this module: the
// files on disk are store/blobs, moving them between peers is net/transfer.
package pieces

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Sizes of §5.
const (
	PieceSize         = 16384
	MaxHashesPerFrame = 4096
	MaxRanges         = 256
	FrameHead         = 1 + 32 + 4 // the bytes before a frame's data: type, root, index
	MaxFrame          = FrameHead + MaxHashesPerFrame*32
	MaxSize           = 1<<53 - 1
	// PiecesPerFrame is the most pieces a pieces frame carries: 49189 bytes, under the
	// 64 KiB every WebRTC stack takes in one message.
	PiecesPerFrame = 3
)

// Frame types.
const (
	FramePiece  byte = 1
	FrameHashes byte = 2
	FramePieces byte = 3 // consecutive pieces from Index, cut every PieceSize bytes
)

// Error carries one of §5's codes: bad-kind, not-json, bad-root, bad-size, bad-name,
// bad-type, bad-duration, bad-frame, bad-message.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return "pieces: " + e.Code
	}
	return "pieces: " + e.Code + ": " + e.Msg
}

func fail(code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Code returns err's §5 code, or "" when it has none.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// NumPieces is the number of pieces of a file of size bytes.
func NumPieces(size int64) int { return int((size + PieceSize - 1) / PieceSize) }

// PieceLen is the length of piece i of a file of size bytes.
func PieceLen(size int64, i int) int { return int(min(PieceSize, size-int64(i)*PieceSize)) }

// Leaves reads size bytes from r and returns the SHA-256 of each piece, a piece at a time.
func Leaves(r io.Reader, size int64) ([][32]byte, error) {
	if size < 1 || size > MaxSize {
		return nil, fail("bad-size", "%d bytes", size)
	}
	out := make([][32]byte, 0, NumPieces(size))
	buf := make([]byte, PieceSize)
	for i := range NumPieces(size) {
		n := PieceLen(size, i)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return nil, fmt.Errorf("pieces: read piece %d: %w", i, err)
		}
		out = append(out, sha256.Sum256(buf[:n]))
	}
	return out, nil
}

// Root is the merkle root of the leaves, padded with zero leaves to a power of two.
func Root(leaves [][32]byte) [32]byte {
	if len(leaves) == 0 {
		return [32]byte{}
	}
	width := 1
	for width < len(leaves) {
		width *= 2
	}
	level := make([][32]byte, width)
	copy(level, leaves)
	var pair [64]byte
	for len(level) > 1 {
		next := level[:len(level)/2]
		for i := range next {
			copy(pair[:32], level[2*i][:])
			copy(pair[32:], level[2*i+1][:])
			next[i] = sha256.Sum256(pair[:])
		}
		level = next
	}
	return level[0]
}

// Meta is a file entry's body.
type Meta struct {
	Kind     string // image, voice or file (the entry's kind)
	Root     string // 64 lowercase hex
	Size     int64
	Name     string
	Type     string
	Duration int64 // ms, voice only; -1 when absent
}

var (
	reRoot    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	reControl = regexp.MustCompile(`\p{Cc}`)
	// reHidden: control (Cc) and format (Cf) characters, refused in file names as in
	// people's names (history.ValidText): "photo\u202egpj.exe" would show as "photoexe.jpg".
	reHidden = regexp.MustCompile(`[\p{Cc}\p{Cf}]`)
)

// IsFileKind says whether an entry kind announces a file.
func IsFileKind(kind string) bool { return kind == "image" || kind == "voice" || kind == "file" }

// ParseMeta parses and checks a file entry's body (§5), with the same codes as files.js.
func ParseMeta(kind, body string) (Meta, error) {
	if !IsFileKind(kind) {
		return Meta{}, fail("bad-kind", "%.20q", kind)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil || m == nil {
		return Meta{}, fail("not-json", "")
	}
	out := Meta{Kind: kind, Duration: -1}
	if !str(m["root"], &out.Root) || !reRoot.MatchString(out.Root) {
		return Meta{}, fail("bad-root", "")
	}
	if !integer(m["size"], &out.Size) || out.Size < 1 || out.Size > MaxSize {
		return Meta{}, fail("bad-size", "")
	}
	if !str(m["name"], &out.Name) || out.Name == "" || len(out.Name) > 255 || !utf8.ValidString(out.Name) ||
		strings.ContainsAny(out.Name, `/\`) || reHidden.MatchString(out.Name) {
		return Meta{}, fail("bad-name", "")
	}
	if !str(m["type"], &out.Type) || len(out.Type) > 127 || reControl.MatchString(out.Type) {
		return Meta{}, fail("bad-type", "")
	}
	if raw, ok := m["duration"]; ok {
		if kind != "voice" || !integer(raw, &out.Duration) || out.Duration < 0 || out.Duration > MaxSize {
			return Meta{}, fail("bad-duration", "")
		}
	}
	return out, nil
}

// str decodes a JSON string (not null).
func str(raw json.RawMessage, v *string) bool {
	return len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, v) == nil
}

// integer decodes a JSON number that is a whole number (1.0 is not).
func integer(raw json.RawMessage, v *int64) bool {
	s := string(bytes.TrimSpace(raw))
	if s == "" || strings.ContainsAny(s, ".eE") {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}

// Body encodes the entry body for m (fields in §5's order) and checks it.
func (m Meta) Body() (string, error) {
	type body struct {
		Root     string `json:"root"`
		Size     int64  `json:"size"`
		Name     string `json:"name"`
		Type     string `json:"type"`
		Duration *int64 `json:"duration,omitempty"`
	}
	b := body{Root: m.Root, Size: m.Size, Name: m.Name, Type: m.Type}
	if m.Kind == "voice" && m.Duration >= 0 {
		b.Duration = &m.Duration
	}
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return "", fmt.Errorf("pieces: body: %w", err)
	}
	s := strings.TrimSuffix(sb.String(), "\n")
	if _, err := ParseMeta(m.Kind, s); err != nil {
		return "", err
	}
	return s, nil
}

// Frame is a decoded binary frame.
type Frame struct {
	Type   byte
	Root   [32]byte
	Index  uint32 // piece index (the first one's for pieces), or the first leaf's for hashes
	Data   []byte // the piece or pieces, or n×32 bytes of leaves (aliases the input)
	Leaves int    // hashes frames: n
}

// EncodePiece returns a piece frame.
func EncodePiece(root [32]byte, index uint32, data []byte) []byte {
	f := make([]byte, FrameHead+len(data))
	f[0] = FramePiece
	copy(f[1:33], root[:])
	binary.BigEndian.PutUint32(f[33:37], index)
	copy(f[FrameHead:], data)
	return f
}

// EncodePieces returns a pieces frame: data is pieces index, index+1, … laid end to end,
// each PieceSize bytes but a file's last, at most PiecesPerFrame of them.
func EncodePieces(root [32]byte, index uint32, data []byte) []byte {
	f := EncodePiece(root, index, data)
	f[0] = FramePieces
	return f
}

// EncodeHashes returns a hashes frame carrying leaves offset…offset+len(leaves)-1.
func EncodeHashes(root [32]byte, offset uint32, leaves [][32]byte) []byte {
	f := make([]byte, FrameHead, FrameHead+32*len(leaves))
	f[0] = FrameHashes
	copy(f[1:33], root[:])
	binary.BigEndian.PutUint32(f[33:37], offset)
	for _, l := range leaves {
		f = append(f, l[:]...)
	}
	return f
}

// DecodeFrame checks and decodes a binary frame; every error has code bad-frame.
func DecodeFrame(b []byte) (Frame, error) {
	if len(b) > MaxFrame {
		return Frame{}, fail("bad-frame", "%d bytes", len(b))
	}
	if len(b) <= FrameHead {
		return Frame{}, fail("bad-frame", "too short")
	}
	f := Frame{Type: b[0], Index: binary.BigEndian.Uint32(b[33:37]), Data: b[FrameHead:]}
	copy(f.Root[:], b[1:33])
	switch f.Type {
	case FramePiece:
		if len(f.Data) > PieceSize {
			return Frame{}, fail("bad-frame", "piece of %d bytes", len(f.Data))
		}
	case FramePieces:
		if len(f.Data) > PiecesPerFrame*PieceSize {
			return Frame{}, fail("bad-frame", "pieces of %d bytes", len(f.Data))
		}
	case FrameHashes:
		if len(f.Data)%32 != 0 {
			return Frame{}, fail("bad-frame", "hashes not a multiple of 32 bytes")
		}
		f.Leaves = len(f.Data) / 32
	default:
		return Frame{}, fail("bad-frame", "type %d", f.Type)
	}
	return f, nil
}

// Control is a want, nope, got or cancel message.
type Control struct {
	T      string     `json:"t"`
	Root   string     `json:"root"`
	Hashes bool       `json:"hashes,omitempty"`
	Multi  bool       `json:"multi,omitempty"` // want: the receiver takes pieces frames
	Ranges [][2]int64 `json:"ranges,omitempty"`
	Pieces int64      `json:"pieces,omitempty"`
}

// DecodeControl checks a control message; every error has code bad-message.
func DecodeControl(b []byte) (Control, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return Control{}, fail("bad-message", "not a JSON object")
	}
	var c Control
	if !str(m["t"], &c.T) {
		return Control{}, fail("bad-message", "type")
	}
	if !str(m["root"], &c.Root) || !reRoot.MatchString(c.Root) {
		return Control{}, fail("bad-message", "root")
	}
	switch c.T {
	case "want":
		if raw := string(m["hashes"]); raw != "true" && raw != "false" {
			return Control{}, fail("bad-message", "want: hashes")
		}
		c.Hashes = string(m["hashes"]) == "true"
		if raw, ok := m["multi"]; ok {
			if s := string(raw); s != "true" && s != "false" {
				return Control{}, fail("bad-message", "want: multi")
			}
			c.Multi = string(raw) == "true"
		}
		var rs [][]json.RawMessage
		if json.Unmarshal(m["ranges"], &rs) != nil || rs == nil || len(rs) > MaxRanges {
			return Control{}, fail("bad-message", "want: ranges")
		}
		last := int64(0)
		for _, r := range rs {
			var from, to int64
			if len(r) != 2 || !integer(r[0], &from) || !integer(r[1], &to) || from < last || to <= from || to > 1<<32-1 {
				return Control{}, fail("bad-message", "want: ranges")
			}
			c.Ranges = append(c.Ranges, [2]int64{from, to})
			last = to
		}
	case "got":
		if !integer(m["pieces"], &c.Pieces) || c.Pieces < 0 || c.Pieces > MaxSize {
			return Control{}, fail("bad-message", "got: pieces")
		}
	case "nope", "cancel":
	default:
		return Control{}, fail("bad-message", "type %.20q", c.T)
	}
	return c, nil
}

// RootHex formats a root as in entry bodies.
func RootHex(r [32]byte) string { return hex.EncodeToString(r[:]) }
