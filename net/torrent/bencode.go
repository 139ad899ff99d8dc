package torrent

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// MaxDepth is how deeply lists and dictionaries may nest in bencode this package decodes.
const MaxDepth = 16

// DecodeBencode decodes one canonical bencode value that must fill b exactly.
//
// Values come back as int64, string (raw bytes), []any and map[string]any. Non-canonical
// input (unsorted or duplicate keys, leading zeros, -0), trailing bytes, nesting deeper than
// MaxDepth and integers outside int64 fail with code malformed; input that ends early fails
// with code truncated. The first problem met reading left to right is the one reported.
func DecodeBencode(b []byte) (any, error) {
	d := decoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.pos != len(b) {
		return nil, d.fail(CodeMalformed, "trailing bytes after the value")
	}
	return v, nil
}

type decoder struct {
	b   []byte
	pos int
}

func (d *decoder) fail(code, msg string) *Error {
	return errf(code, "", fmt.Sprintf("%s at byte %d", msg, d.pos))
}

func (d *decoder) eof() *Error {
	return d.fail(CodeTruncated, "input ends early")
}

func (d *decoder) value(depth int) (any, error) {
	if d.pos >= len(d.b) {
		return nil, d.eof()
	}
	switch c := d.b[d.pos]; {
	case c == 'i':
		return d.integer()
	case c >= '0' && c <= '9':
		return d.str()
	case c == 'l':
		if depth+1 > MaxDepth {
			return nil, d.fail(CodeMalformed, "nested deeper than 16")
		}
		d.pos++
		list := []any{}
		for {
			if d.pos >= len(d.b) {
				return nil, d.eof()
			}
			if d.b[d.pos] == 'e' {
				d.pos++
				return list, nil
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
	case c == 'd':
		if depth+1 > MaxDepth {
			return nil, d.fail(CodeMalformed, "nested deeper than 16")
		}
		d.pos++
		dict := map[string]any{}
		first, prev := true, ""
		for {
			if d.pos >= len(d.b) {
				return nil, d.eof()
			}
			c := d.b[d.pos]
			if c == 'e' {
				d.pos++
				return dict, nil
			}
			if c < '0' || c > '9' {
				return nil, d.fail(CodeMalformed, "dictionary key is not a string")
			}
			at := d.pos
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			if !first && k == prev {
				return nil, errf(CodeMalformed, "", fmt.Sprintf("duplicate key %q at byte %d", k, at))
			}
			if !first && k < prev {
				return nil, errf(CodeMalformed, "", fmt.Sprintf("key %q not in sorted order at byte %d", k, at))
			}
			first, prev = false, k
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			dict[k] = v
		}
	default:
		return nil, d.fail(CodeMalformed, fmt.Sprintf("unexpected byte 0x%02x", c))
	}
}

// integer reads i<digits>e with an optional minus, refusing leading zeros, -0 and values
// outside int64.
func (d *decoder) integer() (int64, error) {
	d.pos++ // 'i'
	neg := false
	if d.pos < len(d.b) && d.b[d.pos] == '-' {
		neg = true
		d.pos++
	}
	if d.pos >= len(d.b) {
		return 0, d.eof()
	}
	if c := d.b[d.pos]; c < '0' || c > '9' {
		return 0, d.fail(CodeMalformed, "integer without digits")
	}
	if d.b[d.pos] == '0' {
		if neg {
			return 0, d.fail(CodeMalformed, "negative zero")
		}
		d.pos++
		if d.pos >= len(d.b) {
			return 0, d.eof()
		}
		if d.b[d.pos] != 'e' {
			return 0, d.fail(CodeMalformed, "integer with a leading zero")
		}
		d.pos++
		return 0, nil
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var n uint64
	for {
		if d.pos >= len(d.b) {
			return 0, d.eof()
		}
		c := d.b[d.pos]
		if c == 'e' {
			d.pos++
			if neg {
				return int64(-n), nil // n ≤ 2^63; -2^63 wraps to itself
			}
			return int64(n), nil
		}
		if c < '0' || c > '9' {
			return 0, d.fail(CodeMalformed, "bad byte in integer")
		}
		digit := uint64(c - '0')
		if n > (limit-digit)/10 {
			return 0, d.fail(CodeMalformed, "integer out of range")
		}
		n = n*10 + digit
		d.pos++
	}
}

// str reads <length>:<bytes>. A length longer than what is left is truncated input.
func (d *decoder) str() (string, error) {
	n := 0
	if d.b[d.pos] == '0' {
		d.pos++
		if d.pos >= len(d.b) {
			return "", d.eof()
		}
		if d.b[d.pos] != ':' {
			return "", d.fail(CodeMalformed, "string length with a leading zero")
		}
	} else {
		for {
			if d.pos >= len(d.b) {
				return "", d.eof()
			}
			c := d.b[d.pos]
			if c == ':' {
				break
			}
			if c < '0' || c > '9' {
				return "", d.fail(CodeMalformed, "bad byte in string length")
			}
			n = n*10 + int(c-'0')
			if n > len(d.b) {
				n = len(d.b) + 1 // saturate: it cannot fit anyway
			}
			d.pos++
		}
	}
	d.pos++ // ':'
	if n > len(d.b)-d.pos {
		d.pos = len(d.b)
		return "", d.eof()
	}
	s := string(d.b[d.pos : d.pos+n])
	d.pos += n
	return s, nil
}

// EncodeBencode encodes v canonically (dictionary keys sorted by bytes). It accepts int,
// int64, string, []byte, []any, []string and map[string]any, nested.
func EncodeBencode(v any) ([]byte, error) {
	return AppendBencode(nil, v)
}

// AppendBencode appends the canonical bencode of v to dst; see EncodeBencode.
func AppendBencode(dst []byte, v any) ([]byte, error) {
	return appendValue(dst, v, 0)
}

func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case int:
		return appendInt(dst, int64(v)), nil
	case int64:
		return appendInt(dst, v), nil
	case string:
		return appendString(dst, v), nil
	case []byte:
		return appendString(dst, string(v)), nil
	case []string:
		if depth+1 > MaxDepth {
			return nil, fmt.Errorf("torrent: bencode: nested deeper than %d", MaxDepth)
		}
		dst = append(dst, 'l')
		for _, s := range v {
			dst = appendString(dst, s)
		}
		return append(dst, 'e'), nil
	case []any:
		if depth+1 > MaxDepth {
			return nil, fmt.Errorf("torrent: bencode: nested deeper than %d", MaxDepth)
		}
		dst = append(dst, 'l')
		for _, e := range v {
			var err error
			if dst, err = appendValue(dst, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, 'e'), nil
	case map[string]any:
		if depth+1 > MaxDepth {
			return nil, fmt.Errorf("torrent: bencode: nested deeper than %d", MaxDepth)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, 'd')
		for _, k := range keys {
			dst = appendString(dst, k)
			var err error
			if dst, err = appendValue(dst, v[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, 'e'), nil
	default:
		return nil, fmt.Errorf("torrent: bencode: cannot encode %T", v)
	}
}

func appendInt(dst []byte, n int64) []byte {
	dst = append(dst, 'i')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, 'e')
}

func appendString(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}
