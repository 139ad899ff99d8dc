package torrent

import (
	"strings"
	"unicode"
)

// maxSafeName is how many characters (code points) SafeFileName keeps.
const maxSafeName = 48

// SafeFileName turns a room name into something safe as part of a file name on any system:
// every character that is not a Unicode letter (L) or number (N), '.', '-' or '_' becomes
// '_', runs of '_' collapse to one, leading and trailing '_' and '.' go, the rest is cut to
// 48 characters (then trailing '_' and '.' go again), and "room" stands in for nothing.
// No Unicode normalisation is applied: the name is taken as typed.
func SafeFileName(roomName string) string {
	var b strings.Builder
	lastUnderscore := false
	for _, r := range roomName { // invalid UTF-8 arrives as U+FFFD, which is not a letter
		if !(unicode.IsLetter(r) || unicode.IsNumber(r) || r == '.' || r == '-' || r == '_') {
			r = '_'
		}
		if r == '_' {
			if lastUnderscore {
				continue
			}
			lastUnderscore = true
		} else {
			lastUnderscore = false
		}
		b.WriteRune(r)
	}
	s := strings.Trim(b.String(), "_.")
	if rs := []rune(s); len(rs) > maxSafeName {
		s = strings.TrimRight(string(rs[:maxSafeName]), "_.")
	}
	if s == "" {
		return "room"
	}
	return s
}

// FileName is the invitation's file name: "<safe room name>_<role>.torrent".
func FileName(roomName string, role Role) string {
	return SafeFileName(roomName) + "_" + string(role) + ".torrent"
}
