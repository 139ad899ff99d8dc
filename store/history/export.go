package history

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Export format identifiers.
const (
	ExportFormat  = "chattorrent-history"
	ExportVersion = 1
	// MaxExport caps what VerifyExport reads (100,000 typical entries are ~50 MB).
	MaxExport = 256 << 20
)

// Export is a room's history as JSON: everything needed to verify it offline (every entry
// carries its author's public key and signature).
type Export struct {
	Format   string     `json:"format"`
	V        int        `json:"v"`
	Room     ExportRoom `json:"room"`
	Exported string     `json:"exported"`
	Entries  []Entry    `json:"entries"`
}

// ExportRoom names the exported room.
type ExportRoom struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// NewExport makes the export of a log.
func NewExport(l *Log, name string, now time.Time) *Export {
	return &Export{
		Format:   ExportFormat,
		V:        ExportVersion,
		Room:     ExportRoom{ID: l.Room(), Name: name},
		Exported: now.UTC().Format(time.RFC3339),
		Entries:  l.Entries(),
	}
}

// Failure is one entry of an export that does not verify.
type Failure struct {
	Index    int    // position in the export's entries
	ID       string // the id the entry claims
	Err      error
	Unparsed bool // not even an entry: it is not in Export.Entries
}

func (f Failure) String() string {
	return fmt.Sprintf("entry %d (id %.12s): %v", f.Index, f.ID, f.Err)
}

// rawExport keeps entries raw so one malformed entry is reported, not fatal.
type rawExport struct {
	Format   string            `json:"format"`
	V        int               `json:"v"`
	Room     ExportRoom        `json:"room"`
	Exported string            `json:"exported"`
	Entries  []json.RawMessage `json:"entries"`
}

// VerifyExport reads an export and checks every entry: fields, id, signature, room, and
// each author's chain. It returns the failures (none when all pass) or an error when the
// file itself is not an export.
func VerifyExport(r io.Reader, now time.Time) (*Export, []Failure, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxExport+1))
	if err != nil {
		return nil, nil, fmt.Errorf("history: read export: %w", err)
	}
	if len(data) > MaxExport {
		return nil, nil, fmt.Errorf("history: export is larger than %d bytes", MaxExport)
	}
	var raw rawExport
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, fmt.Errorf("history: not a JSON export: %w", err)
	}
	if raw.Format != ExportFormat {
		return nil, nil, fmt.Errorf("history: format is %q, want %q", raw.Format, ExportFormat)
	}
	if raw.V != ExportVersion {
		return nil, nil, fmt.Errorf("history: export version %d is not supported (want %d)", raw.V, ExportVersion)
	}
	x := &Export{Format: raw.Format, V: raw.V, Room: raw.Room, Exported: raw.Exported}
	var fails []Failure
	type indexed struct {
		i int
		e Entry
	}
	var ok []indexed
	for i, m := range raw.Entries {
		var e Entry
		if err := json.Unmarshal(m, &e); err != nil {
			fails = append(fails, Failure{Index: i, Unparsed: true, Err: &Error{Code: CodeBadField, Msg: "not an entry: " + err.Error()}})
			continue
		}
		x.Entries = append(x.Entries, e)
		ok = append(ok, indexed{i, e})
	}
	// Chains are checked in (author, seq) order, whatever the file's order.
	slices.SortStableFunc(ok, func(a, b indexed) int {
		return cmp.Or(cmp.Compare(a.e.Author, b.e.Author), cmp.Compare(a.e.Seq, b.e.Seq))
	})
	l := NewLog(raw.Room.ID)
	for _, it := range ok {
		added, err := l.Add(it.e, now)
		if err == nil && !added {
			err = errors.New("history: duplicate: the same entry appears twice")
		}
		if err != nil {
			fails = append(fails, Failure{Index: it.i, ID: it.e.ID, Err: err})
		}
	}
	slices.SortFunc(fails, func(a, b Failure) int { return cmp.Compare(a.Index, b.Index) })
	return x, fails, nil
}
