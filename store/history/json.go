package history

import (
	"encoding/json"
	"strconv"
)

// MarshalJSON is json.Marshal(e), byte for byte (FuzzMarshalJSON), without reflection:
// strings of printable ASCII that json would not escape are written as they are, any other
// string through json.Marshal itself. It was the sender's share of a first sync's CPU, and
// the store's share of storing one.
func MarshalJSON(e Entry) ([]byte, error) {
	return AppendJSON(make([]byte, 0, 160+len(e.Room)+len(e.Author)+len(e.Name)+len(e.Prev)+len(e.Kind)+len(e.Body)+len(e.Sig)+len(e.ID)), e)
}

// AppendJSON appends MarshalJSON(e) to b.
func AppendJSON(b []byte, e Entry) ([]byte, error) {
	var err error
	str := func(key, v string) {
		if err != nil {
			return
		}
		b = append(b, key...)
		if plainASCII(v) {
			b = append(b, '"')
			b = append(b, v...)
			b = append(b, '"')
			return
		}
		var q []byte
		if q, err = json.Marshal(v); err == nil {
			b = append(b, q...)
		}
	}
	str(`{"room":`, e.Room)
	str(`,"author":`, e.Author)
	str(`,"name":`, e.Name)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	str(`,"prev":`, e.Prev)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, e.TS, 10)
	str(`,"kind":`, e.Kind)
	str(`,"body":`, e.Body)
	str(`,"sig":`, e.Sig)
	str(`,"id":`, e.ID)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// plainASCII reports whether json.Marshal writes s as it is between quotes: printable ASCII
// without '"', '\\' and the characters it escapes for HTML ('<', '>', '&').
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
