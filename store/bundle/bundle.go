// Package bundle writes a room's history with its files as one zip, the format the page's
// "export with files" makes (docs/PROTOCOL.md §4): history.json, the verifiable export
// plus a "media" list, and media/<first 12 hex of root>-<name> for every file held.
package bundle

import (
	"archive/zip"
	"encoding/hex"
	"fmt"
	"io"
	"iter"
	"os"
	"time"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/store/history"
)

// Media is one file an entry announces, as listed in history.json.
type Media struct {
	Entry    string `json:"entry"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Size     int64  `json:"size"`
	Root     string `json:"root"`
	Included bool   `json:"included"`
	Path     string `json:"path,omitempty"`
}

// Export is history.json: the verifiable export and its media list.
type Export struct {
	*history.Export
	Media []Media `json:"media"`
}

// Files opens a held file by root; blobs.Store satisfies it. nil: no files are included.
type Files interface {
	Open(root [32]byte) (*os.File, int64, [][32]byte, error)
}

// Source is a room's history to bundle, read once for history.json's entries and once more
// for its media list: each pass must yield the same entries in display order.
// *store.HistoryStream satisfies it.
type Source interface {
	Room() history.ExportRoom
	Entries() iter.Seq2[history.Entry, error]
}

// Write writes x and the files it announces that files holds as a zip to w (see
// WriteStream, which it is for a history already in memory).
func Write(w io.Writer, x *history.Export, files Files, now time.Time) error {
	return write(w, sliceSource{x}, x.Exported, files, now)
}

// WriteStream writes src's history, exported at now, and the files it announces that files
// holds as a zip to w, streamed: history.json goes into its zip entry one entry at a time
// (src is read twice: the entries, then the media list), and the files are opened one at
// a time, each when its turn comes. Memory does not grow with the room; it grows only with
// the number of distinct files included (their paths). A file not held is listed with
// included false; a held file whose size differs from its entry's is left out the same way
// (it cannot be the announced file). A file that goes missing between the media list and
// its copy fails the write: the zip then has no central directory, so no tool takes it for
// whole.
func WriteStream(w io.Writer, src Source, files Files, now time.Time) error {
	return write(w, src, history.ExportTime(now), files, now)
}

// kindSource is a Source that can skip entries by kind cheaply (store.HistoryStream): the
// media list's pass reads only the entries announcing files whole.
type kindSource interface {
	EntriesOfKind(keep func(kind string) bool) iter.Seq2[history.Entry, error]
}

// jsonSource is a Source that yields its entries as their JSON, as json.Marshal writes
// them (store.HistoryStream): history.json is then written without decoding them.
type jsonSource interface {
	EntriesJSON() iter.Seq2[string, error]
}

type sliceSource struct{ x *history.Export }

func (s sliceSource) Room() history.ExportRoom { return s.x.Room }

func (s sliceSource) Entries() iter.Seq2[history.Entry, error] {
	return func(yield func(history.Entry, error) bool) {
		for _, e := range s.x.Entries {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// held is a file to copy into the zip after history.json.
type held struct {
	root [32]byte
	size int64
	path string
}

func write(w io.Writer, src Source, exported string, files Files, now time.Time) error {
	z := zip.NewWriter(w)
	hw, err := z.CreateHeader(&zip.FileHeader{Name: "history.json", Method: zip.Deflate, Modified: now})
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	// The same bytes as json.Encoder with SetIndent("", " ") writes for Export.
	x := history.NewExportWriter(hw, src.Room(), exported, " ")
	if js, ok := src.(jsonSource); ok {
		for e, err := range js.EntriesJSON() {
			if err != nil {
				return fmt.Errorf("bundle: history.json: %w", err)
			}
			if err := x.EntryJSON(e); err != nil {
				return fmt.Errorf("bundle: history.json: %w", err)
			}
		}
	} else {
		for e, err := range src.Entries() {
			if err != nil {
				return fmt.Errorf("bundle: history.json: %w", err)
			}
			if err := x.Entry(e); err != nil {
				return fmt.Errorf("bundle: history.json: %w", err)
			}
		}
	}
	if err := x.Array("media"); err != nil {
		return fmt.Errorf("bundle: history.json: %w", err)
	}
	var include []held
	paths := map[string]bool{}
	announced := src.Entries()
	if k, ok := src.(kindSource); ok {
		announced = k.EntriesOfKind(pieces.IsFileKind)
	}
	for e, err := range announced {
		if err != nil {
			return fmt.Errorf("bundle: history.json: %w", err)
		}
		md, ok := media(e)
		if !ok {
			continue
		}
		if paths[md.Path] { // the same file announced again: included once
			md.Included = true
		} else if h, ok := check(files, md); ok {
			paths[md.Path] = true
			include = append(include, h)
			md.Included = true
		}
		if !md.Included {
			md.Path = ""
		}
		if err := x.Elem(md); err != nil {
			return fmt.Errorf("bundle: history.json: %w", err)
		}
	}
	if err := x.Close(); err != nil {
		return fmt.Errorf("bundle: history.json: %w", err)
	}
	for _, h := range include {
		if err := copyFile(z, files, h, now); err != nil {
			return err
		}
	}
	if err := z.Close(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}

// media is the media list's line for e, with the path the file would have in the zip;
// false when e announces no file (or one whose announcement does not parse: shown as
// unsupported, nothing to include).
func media(e history.Entry) (Media, bool) {
	if !pieces.IsFileKind(e.Kind) {
		return Media{}, false
	}
	m, err := pieces.ParseMeta(e.Kind, e.Body)
	if err != nil {
		return Media{}, false
	}
	return Media{Entry: e.ID, Kind: m.Kind, Name: m.Name, Type: m.Type, Size: m.Size, Root: m.Root,
		Path: "media/" + m.Root[:12] + "-" + torrent.SafeFileName(m.Name)}, true
}

// check reports whether files holds md's file at its announced size; the file is closed
// again at once.
func check(files Files, md Media) (held, bool) {
	var h held
	if files == nil {
		return h, false
	}
	if n, err := hex.Decode(h.root[:], []byte(md.Root)); err != nil || n != len(h.root) {
		return h, false
	}
	f, size, _, err := files.Open(h.root)
	if err != nil {
		return h, false
	}
	f.Close()
	if size != md.Size {
		return h, false
	}
	h.size, h.path = size, md.Path
	return h, true
}

// copyFile copies one held file into the zip, opened only for the copy.
func copyFile(z *zip.Writer, files Files, h held, now time.Time) error {
	f, size, _, err := files.Open(h.root)
	if err != nil {
		return fmt.Errorf("bundle: %s: %w", h.path, err)
	}
	defer f.Close()
	if size != h.size {
		return fmt.Errorf("bundle: %s: the file changed size (%d bytes, listed with %d)", h.path, size, h.size)
	}
	// Media are compressed already: stored, as the page's zip does.
	fw, err := z.CreateHeader(&zip.FileHeader{Name: h.path, Method: zip.Store, Modified: now})
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if _, err := io.Copy(fw, io.LimitReader(f, size)); err != nil {
		return fmt.Errorf("bundle: %s: %w", h.path, err)
	}
	return nil
}
