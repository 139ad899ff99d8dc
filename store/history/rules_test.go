package history

import (
	"regexp"
	"strings"
	"testing"
)

// isHex and isKind say what the regexps they replaced said.
func TestFieldRulesMatchRegexps(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	kind := regexp.MustCompile(`^[a-z][a-z0-9-]{0,15}$`)
	inputs := []string{"", "a", "text", "join", "poll-2", "-x", "9x", "Text", "a_b", "é", "abcdefghijklmnop", "abcdefghijklmnopq",
		strings.Repeat("0", 32), strings.Repeat("f", 64), strings.Repeat("F", 64), strings.Repeat("g", 32),
		strings.Repeat("a", 63) + "/", strings.Repeat("a", 63) + ":", strings.Repeat("a", 63) + "`", strings.Repeat("0", 65),
		strings.Repeat("0", 31) + "\n", strings.Repeat("ab", 16)}
	for c := range 256 {
		inputs = append(inputs, string(rune(c)), "a"+string(rune(c)), strings.Repeat("0", 31)+string(byte(c)))
	}
	for _, s := range inputs {
		if isHex(s, 32) != hex32.MatchString(s) || isHex(s, 64) != hex64.MatchString(s) || isKind(s) != kind.MatchString(s) {
			t.Errorf("%q: isHex32 %v, isHex64 %v, isKind %v", s, isHex(s, 32), isHex(s, 64), isKind(s))
		}
	}
}
