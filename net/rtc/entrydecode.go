package rtc

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/chattorrent/chattorrent/store/history"
)

// decodeEntry decodes one entry of an entries message, raw being a valid JSON value (split
// from a message json.Valid checked, or decoded by encoding/json). The form EncodeEntries
// writes (exactly the entry's lowercase keys, strings, integers) is read in one pass with
// one string allocation, the fields being parts of it (a string with escapes is unquoted on
// its own); anything else (null, other keys or letter cases, fractions, invalid UTF-8 in an
// unescaped string) goes to json.Unmarshal, whose result and error are the rule:
// FuzzDecodeEntry checks that both agree wherever the fast path answers. Decoding each entry by reflection was the receiver's largest cost in a
// first sync after Ed25519 itself (docs/PERFORMANCE.md).
func decodeEntry(raw json.RawMessage) (history.Entry, error) {
	if e, ok := decodeEntryFast(raw); ok {
		return e, nil
	}
	var e history.Entry
	err := json.Unmarshal(raw, &e)
	return e, err
}

func decodeEntryFast(raw []byte) (e history.Entry, ok bool) {
	s := string(raw)
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return e, false
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return e, skipSpace(s, i+1) == len(s)
	}
	for {
		key, next, ok := plainString(s, i)
		if !ok {
			return e, false
		}
		i = skipSpace(s, next)
		if i >= len(s) || s[i] != ':' {
			return e, false
		}
		i = skipSpace(s, i+1)
		if i >= len(s) {
			return e, false
		}
		switch key {
		case "seq", "ts":
			n, next, ok := plainInt(s, i)
			if !ok {
				return e, false
			}
			if key == "seq" {
				e.Seq = n
			} else {
				e.TS = n
			}
			i = next
		default:
			v, next, ok := plainString(s, i)
			if !ok {
				return e, false
			}
			switch key {
			case "room":
				e.Room = v
			case "author":
				e.Author = v
			case "name":
				e.Name = v
			case "prev":
				e.Prev = v
			case "kind":
				e.Kind = v
			case "body":
				e.Body = v
			case "sig":
				e.Sig = v
			case "id":
				e.ID = v
			default:
				return e, false // another key, or a letter case json matches without regard to
			}
			i = next
		}
		i = skipSpace(s, i)
		if i >= len(s) {
			return e, false
		}
		switch s[i] {
		case ',':
			i = skipSpace(s, i+1)
		case '}':
			return e, skipSpace(s, i+1) == len(s)
		default:
			return e, false
		}
	}
}

// plainString reads a JSON string at s[i]: its contents and the index after it. One
// without escapes that is valid UTF-8 is a part of s; one with escapes (Go's encoder
// writes <, > and & as \u003c...) is unquoted by json.Unmarshal itself; invalid UTF-8 (which
// json would replace) is not read here.
func plainString(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", 0, false
	}
	ascii, escaped := true, false
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			if escaped {
				var v string
				if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
					return "", 0, false
				}
				return v, j + 1, true
			}
			v := s[i+1 : j]
			if !ascii && !utf8.ValidString(v) {
				return "", 0, false
			}
			return v, j + 1, true
		case c == '\\':
			escaped = true
			j++ // the escaped character (a \uXXXX's digits are plain)
		case c < 0x20:
			return "", 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", 0, false
}

// plainInt reads a JSON integer (no fraction, no exponent) at s[i] that fits an int64.
func plainInt(s string, i int) (int64, int, bool) {
	j := i
	if j < len(s) && s[j] == '-' {
		j++
	}
	start := j
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == start || (s[start] == '0' && j-start > 1) {
		return 0, 0, false
	}
	if j < len(s) && (s[j] == '.' || s[j] == 'e' || s[j] == 'E') {
		return 0, 0, false
	}
	n, err := strconv.ParseInt(s[i:j], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return n, j, true
}

// splitDecodeEntries is the receiver's path for an entries message in EncodeEntries' form:
// it splits the message and decodes its entries in one pass, without json.Valid over the
// whole first: each entry is read by decodeEntryFast, which accepts only valid JSON, and
// the separators around them are checked, so a message it accepts is valid JSON. ok is
// false for anything else (another form, an entry the fast path does not read, more than
// MaxBatch entries), which DecodeMessage and decodeEntries then read; where ok is true they
// give the same (FuzzSplitDecodeEntries).
func splitDecodeEntries(data []byte) (Message, entryBatch, bool) {
	if len(data) > MaxMessage || !bytes.HasPrefix(data, []byte(entriesHead)) {
		return Message{}, entryBatch{}, false
	}
	var es []json.RawMessage
	var b entryBatch
	i := len(entriesHead)
	for {
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != '{' || len(es) == MaxBatch {
			return Message{}, entryBatch{}, false
		}
		end := valueEnd(data, i)
		raw := json.RawMessage(data[i:end:end])
		e, ok := decodeEntryFast(raw)
		if !ok {
			return Message{}, entryBatch{}, false
		}
		es = append(es, raw)
		b.es = append(b.es, e)
		b.sizes = append(b.sizes, len(raw))
		i = skipSpace(data, end)
		if i >= len(data) {
			return Message{}, entryBatch{}, false
		}
		if data[i] == ',' {
			i++
			continue
		}
		if data[i] != ']' {
			return Message{}, entryBatch{}, false
		}
		i = skipSpace(data, i+1)
		if i >= len(data) || data[i] != '}' || skipSpace(data, i+1) != len(data) {
			return Message{}, entryBatch{}, false
		}
		return Message{T: TypeEntries, Entries: es}, b, true
	}
}
