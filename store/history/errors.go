package history

import "fmt"

// Codes of the reasons an entry is refused. The same codes come from the JS client.
const (
	CodeBadField     = "bad-field"     // a field is missing, of the wrong type or breaks its rule
	CodeTooLarge     = "too-large"     // body over MaxBody
	CodeWrongRoom    = "wrong-room"    // the entry belongs to another room
	CodeBadID        = "bad-id"        // id is not the hash of the entry
	CodeBadSignature = "bad-signature" // the signature does not verify with the author's key
	CodeFuture       = "future"        // ts too far ahead of our clock
	CodeGap          = "gap"           // seq is beyond the author's next: earlier entries are missing
	CodeBrokenChain  = "broken-chain"  // prev is not the id of the author's entry at seq-1
	CodeFork         = "fork"          // another entry is stored at this (author, seq): the first is kept
)

// Error is why an entry was refused.
type Error struct {
	Code  string
	Field string
	Msg   string
	// By is set on an entry refused with its run (CheckBatch): the id of the entry whose
	// refusal (its link or its signature) took the run down. It is empty on that entry itself.
	By string
}

func (e *Error) Error() string {
	if e.By != "" {
		return fmt.Sprintf("history: %s: %s", e.Code, e.Msg)
	}
	if e.Field != "" {
		return fmt.Sprintf("history: %s %s: %s", e.Code, e.Field, e.Msg)
	}
	return fmt.Sprintf("history: %s: %s", e.Code, e.Msg)
}

// Is matches errors by code, so errors.Is(err, history.ErrFork) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Field == "" || t.Field == e.Field)
}

// Sentinels for errors.Is.
var (
	ErrBadField     = &Error{Code: CodeBadField}
	ErrTooLarge     = &Error{Code: CodeTooLarge}
	ErrWrongRoom    = &Error{Code: CodeWrongRoom}
	ErrBadID        = &Error{Code: CodeBadID}
	ErrBadSignature = &Error{Code: CodeBadSignature}
	ErrFuture       = &Error{Code: CodeFuture}
	ErrGap          = &Error{Code: CodeGap}
	ErrBrokenChain  = &Error{Code: CodeBrokenChain}
	ErrFork         = &Error{Code: CodeFork}
)

func fieldErr(field, msg string) error { return &Error{Code: CodeBadField, Field: field, Msg: msg} }
