package mdns

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultName is the host label used when Config.Name is empty.
const DefaultName = "chattorrent"

// maxLabel is the longest DNS label (RFC 1035 §2.3.4).
const maxLabel = 63

// ErrInvalidName is wrapped by every error New returns for a bad Config.Name.
var ErrInvalidName = errors.New("mdns: invalid name")

// normalizeName lowercases name and checks it is one DNS host label:
// 1 to 63 bytes of a-z, 0-9 and '-', neither starting nor ending with '-'.
// An empty name gives DefaultName.
func normalizeName(name string) (string, error) {
	if name == "" {
		return DefaultName, nil
	}
	if len(name) > maxLabel {
		return "", fmt.Errorf("%w %q: %d bytes, a DNS label holds at most %d", ErrInvalidName, name, len(name), maxLabel)
	}
	// Check bytes before lowercasing: strings.ToLower maps some non-ASCII
	// letters to ASCII ones ("İ" to "i").
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' {
			continue
		}
		if c == '.' {
			return "", fmt.Errorf("%w %q: give one label without dots (\"chattorrent\", not \"chattorrent.local\")", ErrInvalidName, name)
		}
		return "", fmt.Errorf("%w %q: byte %q at %d is not a letter, a digit or '-'", ErrInvalidName, name, c, i)
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return "", fmt.Errorf("%w %q: a label may not start or end with '-'", ErrInvalidName, name)
	}
	return strings.ToLower(name), nil
}

// Candidates returns every name Run may take for name (already valid: see Config.Name),
// in the order it tries them: name, name-2 … name-16. The box's certificate covers them
// all, so a box that took "chattorrent-2" on a clash is still served without a warning.
func Candidates(name string) ([]string, error) {
	base, err := normalizeName(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, maxCandidates)
	for n := 1; n <= maxCandidates; n++ {
		out = append(out, candidate(base, n))
	}
	return out, nil
}

// candidate returns the n-th name to try for base: base itself for n <= 1,
// then "base-2", "base-3", … The base is shortened (and any '-' it then ends
// with dropped) so that the result stays within 63 bytes.
func candidate(base string, n int) string {
	if n <= 1 {
		return base
	}
	suffix := "-" + strconv.Itoa(n)
	if len(base)+len(suffix) > maxLabel {
		base = strings.TrimRight(base[:maxLabel-len(suffix)], "-")
	}
	return base + suffix
}

// isCandidate reports whether label is one of the names Run may claim for base.
func isCandidate(base, label string) bool {
	for n := 1; n <= maxCandidates; n++ {
		if candidate(base, n) == label {
			return true
		}
	}
	return false
}
