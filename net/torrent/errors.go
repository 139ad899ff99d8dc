package torrent

// Error codes, the same from Go and JS (docs/PROTOCOL.md, "Error codes").
const (
	CodeTooLarge            = "too-large"
	CodeEmpty               = "empty"
	CodeMalformed           = "malformed"
	CodeTruncated           = "truncated"
	CodeNotTorrent          = "not-torrent"
	CodeNotChatTorrent      = "not-chattorrent"
	CodeVersion             = "version"
	CodeBadField            = "bad-field"
	CodePiecesMismatch      = "pieces-mismatch"
	CodeFingerprintMismatch = "fingerprint-mismatch"
)

// Sentinel errors, one per code. Every error this package returns is an *Error, and
// errors.Is(err, ErrX) is true when its Code is X's.
var (
	ErrTooLarge            = &Error{Code: CodeTooLarge}
	ErrEmpty               = &Error{Code: CodeEmpty}
	ErrMalformed           = &Error{Code: CodeMalformed}
	ErrTruncated           = &Error{Code: CodeTruncated}
	ErrNotTorrent          = &Error{Code: CodeNotTorrent}
	ErrNotChatTorrent      = &Error{Code: CodeNotChatTorrent}
	ErrVersion             = &Error{Code: CodeVersion}
	ErrBadField            = &Error{Code: CodeBadField}
	ErrPiecesMismatch      = &Error{Code: CodePiecesMismatch}
	ErrFingerprintMismatch = &Error{Code: CodeFingerprintMismatch}
)

// Error is why an invitation (or a bencode value) was refused.
type Error struct {
	Code  string // one of the Code constants
	Field string // for bad-field: the key path, e.g. "room", "peer.id", "info.piece length"
	Msg   string // what is wrong, for people
}

// Error returns one line: "torrent: bad-field room: want 32 lowercase hex characters".
func (e *Error) Error() string {
	s := "torrent: " + e.Code
	if e.Field != "" {
		s += " " + e.Field
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Is reports whether target is an *Error with the same code (and, if target names a field,
// the same field).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.Field == "" || t.Field == e.Field)
}

func errf(code, field, msg string) *Error {
	return &Error{Code: code, Field: field, Msg: msg}
}
