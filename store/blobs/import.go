package blobs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"iter"
	"os"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store/atomicfile"
)

// Held yields the root and size of every complete file the store holds (a backup's media,
// firmware/backup.go), in directory order; partial fetches and leaves are left out. It
// stops at the first error, yielded with a zero root.
func (b *Store) Held() iter.Seq2[Held, error] {
	return func(yield func(Held, error) bool) {
		es, err := os.ReadDir(b.dir)
		if err != nil {
			yield(Held{}, fmt.Errorf("blobs: %w", err))
			return
		}
		for _, e := range es {
			var h Held
			if !e.Type().IsRegular() || len(e.Name()) != 2*len(h.Root) {
				continue
			}
			if n, err := hex.Decode(h.Root[:], []byte(e.Name())); err != nil || n != len(h.Root) {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			h.Size = fi.Size()
			if !yield(h, nil) {
				return
			}
		}
	}
}

// Held is one complete file of the store.
type Held struct {
	Root [32]byte
	Size int64
}

// PutRoot stores size bytes from r as the file named root, written with store/atomicfile
// and checked against root before it takes the name: content that does not hash to root
// leaves nothing behind and is refused. A file held already is read through and kept.
func (b *Store) PutRoot(r io.Reader, size int64, root [32]byte) error {
	if size < 1 || size > b.maxSize {
		return fail("bad-size", "%d bytes (limit %d)", size, b.maxSize)
	}
	if b.Has(root) {
		if _, err := io.CopyN(io.Discard, r, size); err != nil {
			return fmt.Errorf("blobs: read: %w", err)
		}
		return nil
	}
	lw := &leafWriter{h: sha256.New()}
	err := atomicfile.WriteFile(b.path(root), 0o600, func(w io.Writer) error {
		n, err := io.Copy(io.MultiWriter(w, lw), io.LimitReader(r, size))
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("%d of %d bytes arrived", n, size)
		}
		lw.flush()
		if got := pieces.Root(lw.leaves); got != root {
			return fmt.Errorf("the content hashes to %x…, not to its name %x…", got[:6], root[:6])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("blobs: %w", err)
	}
	leaves := make([]byte, 0, 32*len(lw.leaves))
	for _, l := range lw.leaves {
		leaves = append(leaves, l[:]...)
	}
	// The leaves are a cache: Open hashes the file again when they are missing.
	if err := atomicfile.WriteBytes(b.path(root)+".leaves", 0o600, leaves); err != nil {
		return fmt.Errorf("blobs: %w", err)
	}
	return nil
}
