package torrent

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeBencode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any    // when code is ""
		code string // expected error code
	}{
		{"i0e", int64(0), ""},
		{"i-1e", int64(-1), ""},
		{"i9223372036854775807e", int64(9223372036854775807), ""},
		{"i-9223372036854775808e", int64(-9223372036854775808), ""},
		{"0:", "", ""},
		{"3:a\x00b", "a\x00b", ""},
		{"le", []any{}, ""},
		{"de", map[string]any{}, ""},
		{"l1:ai1eldeee", []any{"a", int64(1), []any{map[string]any{}}}, ""},
		{"d1:a1:b1:bi2ee", map[string]any{"a": "b", "b": int64(2)}, ""},
		{"d0:i1e1:ai2ee", map[string]any{"": int64(1), "a": int64(2)}, ""},
		{strings.Repeat("l", 16) + strings.Repeat("e", 16), nest(16), ""},

		{"", nil, CodeTruncated},
		{"i", nil, CodeTruncated},
		{"i-", nil, CodeTruncated},
		{"i12", nil, CodeTruncated},
		{"i0", nil, CodeTruncated},
		{"3:ab", nil, CodeTruncated},
		{"12", nil, CodeTruncated},
		{"l", nil, CodeTruncated},
		{"d1:a", nil, CodeTruncated},
		{"d1:ai1e", nil, CodeTruncated},
		{"99999999999999999999999999:x", nil, CodeTruncated},
		{strings.Repeat("l", 16), nil, CodeTruncated},

		{"x", nil, CodeMalformed},
		{"e", nil, CodeMalformed},
		{"ie", nil, CodeMalformed},
		{"i-e", nil, CodeMalformed},
		{"i-0e", nil, CodeMalformed},
		{"i-0", nil, CodeMalformed},
		{"i01e", nil, CodeMalformed},
		{"i-01e", nil, CodeMalformed},
		{"i1.5e", nil, CodeMalformed},
		{"i+1e", nil, CodeMalformed},
		{"i9223372036854775808e", nil, CodeMalformed},
		{"i-9223372036854775809e", nil, CodeMalformed},
		{"01:a", nil, CodeMalformed},
		{"00:", nil, CodeMalformed},
		{"1x", nil, CodeMalformed},
		{"-1:a", nil, CodeMalformed},
		{"i1ei2e", nil, CodeMalformed},
		{"d1:b0:1:a0:e", nil, CodeMalformed},
		{"d1:a0:1:a0:e", nil, CodeMalformed},
		{"d1:b0:1:a", nil, CodeMalformed}, // order is checked as soon as the key is read
		{"di1e0:e", nil, CodeMalformed},
		{"dle0:e", nil, CodeMalformed},
		{"d1:ae", nil, CodeMalformed},
		{strings.Repeat("l", 17) + strings.Repeat("e", 17), nil, CodeMalformed},
		{strings.Repeat("d0:", 17), nil, CodeMalformed},
	} {
		got, err := DecodeBencode([]byte(tc.in))
		if tc.code != "" {
			var te *Error
			if !errors.As(err, &te) || te.Code != tc.code {
				t.Errorf("DecodeBencode(%q) = %v, %v; want code %s", tc.in, got, err, tc.code)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("DecodeBencode(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
			continue
		}
		again, err := EncodeBencode(got)
		if err != nil || string(again) != tc.in {
			t.Errorf("EncodeBencode(DecodeBencode(%q)) = %q, %v", tc.in, again, err)
		}
	}
}

func nest(n int) any {
	var v any = []any{}
	for range n - 1 {
		v = []any{v}
	}
	return v
}

func TestEncodeBencode(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{map[string]any{"b": 1, "a": []byte("x"), "é": []string{"p", ""}, "B": int64(-3)},
			"d1:Bi-3e1:a1:x1:bi1e2:\xc3\xa9l1:p0:ee"},
		{[]any{}, "le"},
		{"", "0:"},
	} {
		got, err := EncodeBencode(tc.in)
		if err != nil || string(got) != tc.want {
			t.Errorf("EncodeBencode(%#v) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []any{1.5, nil, map[string]any{"a": true}, nest(17)} {
		if _, err := EncodeBencode(in); err == nil {
			t.Errorf("EncodeBencode(%#v) succeeded", in)
		}
	}
}
