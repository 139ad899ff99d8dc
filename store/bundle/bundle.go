// Package bundle writes a room's history with its files as one zip, the format the page's
// "export with files" makes (docs/PROTOCOL.md §4): history.json, the verifiable export
// plus a "media" list, and media/<first 12 hex of root>-<name> for every file held.
package bundle

import (
	"archive/zip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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

// Files opens a held file by root; pieces.Blobs satisfies it. nil: no files are included.
type Files interface {
	Open(root [32]byte) (*os.File, int64, [][32]byte, error)
}

// Write writes x and the files it announces that files holds as a zip to w. A file not
// held is listed with included false; a held file whose size differs from its entry's is
// left out the same way (it cannot be the announced file).
func Write(w io.Writer, x *history.Export, files Files, now time.Time) error {
	out := Export{Export: x, Media: []Media{}}
	type held struct {
		f    *os.File
		path string
	}
	var open []held
	defer func() {
		for _, h := range open {
			h.f.Close()
		}
	}()
	paths := map[string]bool{}
	for _, e := range x.Entries {
		if !pieces.IsFileKind(e.Kind) {
			continue
		}
		m, err := pieces.ParseMeta(e.Kind, e.Body)
		if err != nil {
			continue // shown as unsupported; nothing to include
		}
		md := Media{Entry: e.ID, Kind: m.Kind, Name: m.Name, Type: m.Type, Size: m.Size, Root: m.Root}
		path := "media/" + m.Root[:12] + "-" + torrent.SafeFileName(m.Name)
		var root [32]byte
		if paths[path] { // the same file announced again: included once
			md.Included, md.Path = true, path
		} else if files != nil {
			if _, err := hex.Decode(root[:], []byte(m.Root)); err == nil {
				if f, size, _, err := files.Open(root); err == nil {
					if size == m.Size {
						open = append(open, held{f, path})
						paths[path] = true
						md.Included, md.Path = true, path
					} else {
						f.Close()
					}
				}
			}
		}
		out.Media = append(out.Media, md)
	}

	z := zip.NewWriter(w)
	hw, err := z.CreateHeader(&zip.FileHeader{Name: "history.json", Method: zip.Deflate, Modified: now})
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	enc := json.NewEncoder(hw)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("bundle: history.json: %w", err)
	}
	for _, h := range open {
		// Media are compressed already: stored, as the page's zip does.
		fw, err := z.CreateHeader(&zip.FileHeader{Name: h.path, Method: zip.Store, Modified: now})
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		if _, err := io.Copy(fw, h.f); err != nil {
			return fmt.Errorf("bundle: %s: %w", h.path, err)
		}
	}
	if err := z.Close(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}
