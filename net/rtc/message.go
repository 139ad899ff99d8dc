package rtc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store/history"
)

// Limits of the DataChannel messages (PROTOCOL.md §2).
const (
	Version       = 1         // the protocol version sent in hello
	MaxMessage    = 262144    // bytes in one text message
	MaxBatch      = 200       // entries in one entries message
	MaxBatchBytes = 200 << 10 // bytes of one entries message as written by this side
	maxPeerField  = 64        // bytes in peer.id and peer.name
	// HeadsPerPage is the most authors one hello or heads message states: with the tips,
	// at most ~176 bytes each, a page stays well under MaxMessage.
	HeadsPerPage = 1000
	// MaxHelloHeads is the most authors a peer's hello states in all its pages; those
	// beyond are ignored (this side then sends their entries again: duplicates, harmless).
	MaxHelloHeads = 20000
)

// Message types.
const (
	TypeHello   = "hello"
	TypeEntries = "entries"
	TypeAck     = "ack"
	TypeRefused = "refused"
	TypeHeads   = "heads"
)

// PeerInfo names the device at the other end.
type PeerInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Hello is the first message of each side.
type Hello struct {
	V     int              `json:"v"`
	Room  string           `json:"room"`
	Peer  PeerInfo         `json:"peer"`
	Heads map[string]int64 `json:"heads"`
	// Tips is, per author in Heads, the id of the entry at that seq (optional).
	Tips map[string]string `json:"tips,omitempty"`
	// Again asks the peer for its hello: this side has not received it (PROTOCOL.md §2).
	Again bool `json:"again,omitempty"`
	// Now is the sender's clock, ms since 1970 (optional): a box without a real-time clock
	// learns the time from the phones (PROTOCOL.md §2).
	Now int64 `json:"now,omitempty"`
	// More says heads messages follow with more of the heads; the last one has no more.
	More bool `json:"more,omitempty"`
}

// Message is one decoded DataChannel message: T says which field is set.
type Message struct {
	T       string
	Hello   *Hello            // hello; heads: only Heads, Tips and More
	Entries []json.RawMessage // each decoded on its own, so one bad entry is refused, not the batch
	IDs     []string          // ack, refused
	Others  int64             // ack: entries stored besides IDs, by authors other than the peer
	Code    string            // refused: why, e.g. "author-rate" (PROTOCOL.md §2)
	Control *pieces.Control   // want, nope, got, cancel (PROTOCOL.md §5)
}

// ErrMalformed is wrapped by every DecodeMessage error.
var ErrMalformed = errors.New("rtc: malformed message")

var (
	rePeerID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	reRoom   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	reCode   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// DecodeMessage parses and validates one text message. Keys are matched exactly; unknown
// keys are ignored. Every error wraps ErrMalformed (or ErrTooLarge); it never panics. An
// entries message's Entries may be parts of data: the caller gives up data (Recv returns
// each message in its own slice).
func DecodeMessage(data []byte) (Message, error) {
	if len(data) > MaxMessage {
		return Message{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data))
	}
	if es, ok := splitEntries(data); ok {
		return entriesMessage(es)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return Message{}, malformed("not a JSON object: %v", err)
	}
	if top == nil {
		return Message{}, malformed("not a JSON object")
	}
	var t string
	if err := str(top, "t", &t); err != nil {
		return Message{}, err
	}
	switch t {
	case TypeHello:
		h, err := decodeHello(top)
		if err != nil {
			return Message{}, err
		}
		return Message{T: t, Hello: h}, nil
	case TypeHeads:
		h := &Hello{}
		var err error
		if h.Heads, h.Tips, err = decodeHeads(top); err != nil {
			return Message{}, err
		}
		if h.More, err = flag(top, "more"); err != nil {
			return Message{}, err
		}
		return Message{T: t, Hello: h}, nil
	case TypeEntries:
		var es []json.RawMessage
		if err := field(top, "entries", &es); err != nil {
			return Message{}, err
		}
		return entriesMessage(es)
	case TypeAck:
		var ids []string
		if err := field(top, "ids", &ids); err != nil {
			return Message{}, err
		}
		for i, id := range ids {
			if !history.IsID(id) {
				return Message{}, malformed("ids[%d] is not an entry id", i)
			}
		}
		var others int64
		if _, ok := top["n"]; ok {
			if err := num(top, "n", &others); err != nil {
				return Message{}, err
			}
			if others < 0 || others > MaxAckOthers {
				return Message{}, malformed("n is %d, wants 0 … %d", others, MaxAckOthers)
			}
		}
		return Message{T: t, IDs: ids, Others: others}, nil
	case TypeRefused:
		var code string
		if err := str(top, "code", &code); err != nil {
			return Message{}, err
		}
		if !reCode.MatchString(code) {
			return Message{}, malformed("code wants [a-z][a-z0-9-]{0,31}")
		}
		var ids []string
		if err := field(top, "ids", &ids); err != nil {
			return Message{}, err
		}
		if len(ids) > ackIDs {
			return Message{}, malformed("%d ids, at most %d", len(ids), ackIDs)
		}
		for i, id := range ids {
			if !history.IsID(id) {
				return Message{}, malformed("ids[%d] is not an entry id", i)
			}
		}
		return Message{T: t, IDs: ids, Code: code}, nil
	case "want", "nope", "got", "cancel":
		c, err := pieces.DecodeControl(data)
		if err != nil {
			return Message{}, malformed("%v", err)
		}
		return Message{T: t, Control: &c}, nil
	default:
		return Message{}, malformed("unknown type %.32q", t)
	}
}

func decodeHello(top map[string]json.RawMessage) (*Hello, error) {
	h := &Hello{}
	var v int64
	if err := num(top, "v", &v); err != nil {
		return nil, err
	}
	if v < 1 || v > 1<<31 {
		return nil, malformed("v %d", v)
	}
	h.V = int(v)
	if err := str(top, "room", &h.Room); err != nil {
		return nil, err
	}
	if !reRoom.MatchString(h.Room) {
		return nil, malformed("room is not 32 lowercase hex characters")
	}
	var peer map[string]json.RawMessage
	if err := field(top, "peer", &peer); err != nil {
		return nil, err
	}
	if err := str(peer, "id", &h.Peer.ID); err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	if !rePeerID.MatchString(h.Peer.ID) {
		return nil, malformed("peer.id wants 1..64 of [A-Za-z0-9_-]")
	}
	if err := str(peer, "name", &h.Peer.Name); err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	if !history.ValidText(h.Peer.Name, maxPeerField) || h.Peer.Name == "" {
		return nil, malformed("peer.name wants 1..64 bytes of text")
	}
	var err error
	if h.Heads, h.Tips, err = decodeHeads(top); err != nil {
		return nil, err
	}
	if _, ok := top["now"]; ok {
		if err := num(top, "now", &h.Now); err != nil {
			return nil, err
		}
		if h.Now < 0 || h.Now > history.MaxSeq {
			return nil, malformed("now %d out of range", h.Now)
		}
	}
	if h.Again, err = flag(top, "again"); err != nil {
		return nil, err
	}
	if h.More, err = flag(top, "more"); err != nil {
		return nil, err
	}
	return h, nil
}

// flag decodes an optional boolean.
func flag(top map[string]json.RawMessage, key string) (bool, error) {
	var b bool
	if raw, ok := top[key]; ok {
		if err := json.Unmarshal(raw, &b); err != nil {
			return false, malformed("%s is not a boolean", key)
		}
	}
	return b, nil
}

// decodeHeads decodes heads (required) and tips (optional) of a hello or heads message.
func decodeHeads(top map[string]json.RawMessage) (map[string]int64, map[string]string, error) {
	h := &Hello{}
	var heads map[string]json.RawMessage
	if err := field(top, "heads", &heads); err != nil {
		return nil, nil, err
	}
	h.Heads = make(map[string]int64, len(heads))
	for a := range heads {
		if _, ok := history.DecodeKey(a); !ok {
			return nil, nil, malformed("heads: %.48q is not an author key", a)
		}
		var seq int64
		if err := num(heads, a, &seq); err != nil {
			return nil, nil, fmt.Errorf("heads: %w", err)
		}
		if seq < 0 || seq > history.MaxSeq {
			return nil, nil, malformed("heads: seq %d out of range", seq)
		}
		h.Heads[a] = seq
	}
	if raw, ok := top["tips"]; ok && !bytes.Equal(raw, []byte("null")) {
		var tips map[string]json.RawMessage
		if err := field(top, "tips", &tips); err != nil {
			return nil, nil, err
		}
		h.Tips = make(map[string]string, len(tips))
		for a := range tips {
			if _, ok := h.Heads[a]; !ok {
				return nil, nil, malformed("tips: %.48q has no head", a)
			}
			var id string
			if err := str(tips, a, &id); err != nil {
				return nil, nil, fmt.Errorf("tips: %w", err)
			}
			if !history.IsID(id) {
				return nil, nil, malformed("tips: not an entry id")
			}
			h.Tips[a] = id
		}
	}
	return h.Heads, h.Tips, nil
}

// field decodes a required key, refusing null (which json would leave as the zero value).
func entriesMessage(es []json.RawMessage) (Message, error) {
	if len(es) > MaxBatch {
		return Message{}, malformed("%d entries, at most %d", len(es), MaxBatch)
	}
	for i, e := range es {
		if len(e) == 0 || e[0] != '{' {
			return Message{}, malformed("entries[%d] is not an object", i)
		}
	}
	return Message{T: TypeEntries, Entries: es}, nil
}

// splitEntries takes an entries message in the form EncodeEntries writes it (entriesHead,
// the entries, entriesTail, whitespace allowed between values) apart with one validating
// scan, the entries being parts of data, instead of decoding it three times (message,
// array, entry) before the entries are decoded: the receiver's JSON work is most of a first
// sync's CPU. ok is false for any other form (another key order, more keys, invalid JSON,
// an empty array), which the general path decodes; where ok is true the general path gives
// the same entries (FuzzDecodeMessage checks it).
func splitEntries(data []byte) (es []json.RawMessage, ok bool) {
	if !bytes.HasPrefix(data, []byte(entriesHead)) || !json.Valid(data) {
		return nil, false
	}
	i := len(entriesHead)
	for {
		i = skipSpace(data, i)
		if i >= len(data) || data[i] == ']' {
			return nil, false // an empty array (or none): the general path
		}
		end := valueEnd(data, i)
		es = append(es, json.RawMessage(data[i:end:end]))
		i = skipSpace(data, end)
		if i >= len(data) {
			return nil, false
		}
		if data[i] == ',' {
			i++
			continue
		}
		// data is valid JSON: after a value in the array comes ',' or ']'.
		i = skipSpace(data, i+1)
		if i >= len(data) || data[i] != '}' || skipSpace(data, i+1) != len(data) {
			return nil, false // more keys after "entries"
		}
		return es, true
	}
}

func skipSpace[T string | []byte](b T, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just after the JSON value starting at b[i], b being valid JSON.
func valueEnd(b []byte, i int) int {
	depth, inString := 0, false
	for j := i; j < len(b); j++ {
		c := b[j]
		switch {
		case inString:
			switch c {
			case '\\':
				j++
			case '"':
				inString = false
				if depth == 0 {
					return j + 1
				}
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return j // the end of the enclosing array: a scalar ended before it
			}
			if depth--; depth == 0 {
				return j + 1
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return j // the end of a scalar
		}
	}
	return len(b)
}

func field(m map[string]json.RawMessage, key string, v any) error {
	raw, ok := m[key]
	if !ok {
		return malformed("%s is missing", key)
	}
	if bytes.Equal(raw, []byte("null")) {
		return malformed("%s is null", key)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return malformed("%s: %v", key, err)
	}
	return nil
}

func str(m map[string]json.RawMessage, key string, s *string) error {
	if raw, ok := m[key]; ok && (len(raw) == 0 || raw[0] != '"') {
		return malformed("%s is not a string", key)
	}
	return field(m, key, s)
}

// num decodes an integer written without fraction or exponent.
func num(m map[string]json.RawMessage, key string, n *int64) error {
	raw, ok := m[key]
	if !ok {
		return malformed("%s is missing", key)
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return malformed("%s is not an integer", key)
	}
	*n = v
	return nil
}

// EncodeHello writes a hello message. It fails when the heads do not fit in MaxMessage.
func EncodeHello(h Hello) ([]byte, error) {
	if h.Heads == nil {
		h.Heads = map[string]int64{}
	}
	b, err := json.Marshal(struct {
		T string `json:"t"`
		Hello
	}{TypeHello, h})
	if err != nil {
		return nil, fmt.Errorf("rtc: encode hello: %w", err)
	}
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("rtc: encode hello: %w: %d bytes (%d authors)", ErrTooLarge, len(b), len(h.Heads))
	}
	return b, nil
}

// EncodeHelloPages writes a hello as one message or, when it states more than HeadsPerPage
// authors, as a hello with the first page of heads and more: true, then heads messages, the
// last without more (PROTOCOL.md §2). Authors go in sorted order.
func EncodeHelloPages(h Hello) ([][]byte, error) {
	if len(h.Heads) <= HeadsPerPage {
		h.More = false
		b, err := EncodeHello(h)
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
	authors := slices.Sorted(maps.Keys(h.Heads))
	var out [][]byte
	for i := 0; i < len(authors); i += HeadsPerPage {
		page := authors[i:min(i+HeadsPerPage, len(authors))]
		heads := make(map[string]int64, len(page))
		var tips map[string]string
		for _, a := range page {
			heads[a] = h.Heads[a]
			if id, ok := h.Tips[a]; ok {
				if tips == nil {
					tips = make(map[string]string, len(page))
				}
				tips[a] = id
			}
		}
		more := i+HeadsPerPage < len(authors)
		var b []byte
		var err error
		if i == 0 {
			first := h
			first.Heads, first.Tips, first.More = heads, tips, more
			b, err = EncodeHello(first)
		} else {
			b, err = json.Marshal(struct {
				T     string            `json:"t"`
				Heads map[string]int64  `json:"heads"`
				Tips  map[string]string `json:"tips,omitempty"`
				More  bool              `json:"more,omitempty"`
			}{TypeHeads, heads, tips, more})
			if err == nil && len(b) > MaxMessage {
				err = fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("rtc: encode hello page %d: %w", i/HeadsPerPage, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// EncodeAck writes an ack message for ids, which must fit in MaxMessage (ackIDs ids do),
// and others (0 … MaxAckOthers) entries stored besides them (PROTOCOL.md §2).
func EncodeAck(ids []string, others int64) ([]byte, error) {
	if others < 0 || others > MaxAckOthers {
		return nil, fmt.Errorf("rtc: encode ack: n is %d, wants 0 … %d", others, MaxAckOthers)
	}
	if ids == nil {
		ids = []string{}
	}
	b, err := json.Marshal(struct {
		T   string   `json:"t"`
		IDs []string `json:"ids"`
		N   int64    `json:"n,omitempty"`
	}{TypeAck, ids, others})
	if err != nil {
		return nil, fmt.Errorf("rtc: encode ack: %w", err)
	}
	return b, nil
}

// EncodeRefused writes a refused message: the entries with these ids (at most ackIDs,
// possibly none when the refused entries had no valid id) were refused for code.
func EncodeRefused(code string, ids []string) ([]byte, error) {
	if !reCode.MatchString(code) {
		return nil, fmt.Errorf("rtc: encode refused: code %.40q wants [a-z][a-z0-9-]{0,31}", code)
	}
	if ids == nil {
		ids = []string{}
	}
	b, err := json.Marshal(struct {
		T    string   `json:"t"`
		Code string   `json:"code"`
		IDs  []string `json:"ids"`
	}{TypeRefused, code, ids})
	if err != nil {
		return nil, fmt.Errorf("rtc: encode refused: %w", err)
	}
	return b, nil
}

// ackIDs is the most ids one ack carries (~67 bytes each: well under MaxMessage).
const ackIDs = 2000

// MaxAckOthers is the most entries one ack counts besides its ids (its n): a count, which
// only moves Stats.Acked.
const MaxAckOthers = 1 << 20

const (
	entriesHead = `{"t":"entries","entries":[`
	entriesTail = `]}`
)

// batch builds one entries message from entries already encoded as JSON.
type batch struct {
	buf     bytes.Buffer
	n       int
	scratch []byte // the entry being encoded (fillBatch), reused
}

func (b *batch) reset() {
	b.buf.Reset()
	b.buf.WriteString(entriesHead)
	b.n = 0
}

// fits reports whether one more encoded entry stays within MaxBatch and MaxBatchBytes.
func (b *batch) fits(e []byte) bool {
	return b.n < MaxBatch && b.buf.Len()+1+len(e)+len(entriesTail) <= MaxBatchBytes
}

func (b *batch) add(e []byte) {
	if b.n > 0 {
		b.buf.WriteByte(',')
	}
	b.buf.Write(e)
	b.n++
}

// bytes closes the message; the batch must be reset before it is reused.
func (b *batch) bytes() []byte {
	b.buf.WriteString(entriesTail)
	return b.buf.Bytes()
}

// EncodeEntries writes entries as messages of at most MaxBatch entries and MaxBatchBytes
// each, in order. An entry too large for any message is an error (a checked entry never
// is: its body is at most 16 KiB).
func EncodeEntries(es []history.Entry) ([][]byte, error) {
	var out [][]byte
	var b batch
	b.reset()
	for _, e := range es {
		raw, err := history.MarshalJSON(e)
		if err != nil {
			return nil, fmt.Errorf("rtc: encode entry %.12s: %w", e.ID, err)
		}
		if !b.fits(raw) && b.n > 0 {
			out = append(out, bytes.Clone(b.bytes()))
			b.reset()
		}
		if !b.fits(raw) {
			return nil, fmt.Errorf("rtc: encode entry %.12s: %w: %d bytes", e.ID, ErrTooLarge, len(raw))
		}
		b.add(raw)
	}
	if b.n > 0 {
		out = append(out, bytes.Clone(b.bytes()))
	}
	return out, nil
}
