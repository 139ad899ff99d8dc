package blobs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store/atomicfile"
)

// partPrefix names a file being fetched in the Store directory: fetch-<root>.part. It is
// never served (Open looks only at complete names) and becomes <root> only when every
// piece is verified.
const (
	partPrefix = "fetch-"
	partSuffix = ".part"
	// statBlockSize is the unit of st_blocks (POSIX): 512 bytes, whatever the file system.
	statBlockSize = 512
)

// Has says whether the store holds root complete.
func (b *Store) Has(root [32]byte) bool {
	fi, err := os.Stat(b.path(root))
	return err == nil && fi.Mode().IsRegular()
}

// Usage is the bytes the store's directory takes: complete files and their leaves at
// their size, files being fetched by the blocks they really take on disk (a sparse
// partial of a file nobody sends takes next to nothing; on systems without st_blocks,
// their full size).
func (b *Store) Usage() (int64, error) {
	es, err := os.ReadDir(b.dir)
	if err != nil {
		return 0, fmt.Errorf("blobs: %w", err)
	}
	var n int64
	for _, e := range es {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if isPartName(e.Name()) {
			n += diskBytes(fi)
		} else {
			n += fi.Size()
		}
	}
	return n, nil
}

func isPartName(name string) bool {
	return strings.HasPrefix(name, partPrefix) && strings.HasSuffix(name, partSuffix)
}

// ExpirePartials removes the files being fetched that were last written before `before`
// (no verified piece since: their fetch made no progress), except those keep says are in
// use. It returns how many it removed.
func (b *Store) ExpirePartials(before time.Time, keep func(root [32]byte) bool) (int, error) {
	es, err := os.ReadDir(b.dir)
	if err != nil {
		return 0, fmt.Errorf("blobs: %w", err)
	}
	removed := 0
	for _, e := range es {
		name := e.Name()
		if !e.Type().IsRegular() || !isPartName(name) {
			continue
		}
		raw, err := hex.DecodeString(strings.TrimSuffix(strings.TrimPrefix(name, partPrefix), partSuffix))
		if err != nil || len(raw) != 32 {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(before) || (keep != nil && keep([32]byte(raw))) {
			continue
		}
		if err := os.Remove(filepath.Join(b.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("blobs: %w", err)
		}
		removed++
	}
	return removed, nil
}

// Partial is a file being fetched: a sparse temporary file of the full size in the Store
// directory, written a verified piece at a time, renamed to its root by Commit.
type Partial struct {
	b    *Store
	root [32]byte
	size int64
	f    *os.File
	// Existed says the temporary file was there before (an earlier run of the box): its
	// pieces may be verified again instead of fetched.
	Existed bool
}

func (b *Store) partPath(root [32]byte) string {
	return filepath.Join(b.dir, partPrefix+hex.EncodeToString(root[:])+partSuffix)
}

// PartialExists says whether a file being fetched for root is in the directory.
func (b *Store) PartialExists(root [32]byte) bool {
	_, err := os.Stat(b.partPath(root))
	return err == nil
}

// OpenPartial opens (creating, at its full size) the temporary file for root.
func (b *Store) OpenPartial(root [32]byte, size int64) (*Partial, error) {
	if size < 1 || size > b.maxSize {
		return nil, fail("bad-size", "%d bytes (limit %d)", size, b.maxSize)
	}
	path := b.partPath(root)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("blobs: partial: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobs: partial: %w", err)
	}
	if fi.Size() != size {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, fmt.Errorf("blobs: partial: %w", err)
		}
	}
	return &Partial{b: b, root: root, size: size, f: f, Existed: statErr == nil && fi.Size() == size}, nil
}

// WritePiece writes piece i (already verified).
func (p *Partial) WritePiece(i int, data []byte) error {
	if _, err := p.f.WriteAt(data, int64(i)*pieces.PieceSize); err != nil {
		return fmt.Errorf("blobs: partial: write piece %d: %w", i, err)
	}
	return nil
}

// Verified returns, for each leaf, whether the piece already in the file matches it: what
// an earlier run of the box had written.
func (p *Partial) Verified(leaves [][32]byte) ([]bool, error) {
	have := make([]bool, len(leaves))
	buf := make([]byte, pieces.PieceSize)
	for i := range leaves {
		n := pieces.PieceLen(p.size, i)
		if _, err := p.f.ReadAt(buf[:n], int64(i)*pieces.PieceSize); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("blobs: partial: read piece %d: %w", i, err)
		}
		have[i] = sha256.Sum256(buf[:n]) == leaves[i]
	}
	return have, nil
}

// Commit syncs the file, stores its leaves and renames it to its root: from then on the
// store holds it complete. The Partial is closed.
func (p *Partial) Commit(leaves [][32]byte) error {
	if pieces.Root(leaves) != p.root || len(leaves) != pieces.NumPieces(p.size) {
		p.Close()
		return errors.New("blobs: partial: the leaves do not make the root")
	}
	if err := p.f.Sync(); err != nil {
		p.Close()
		return fmt.Errorf("blobs: partial: sync: %w", err)
	}
	if err := p.f.Close(); err != nil {
		return fmt.Errorf("blobs: partial: %w", err)
	}
	p.f = nil
	raw := make([]byte, 0, 32*len(leaves))
	for _, l := range leaves {
		raw = append(raw, l[:]...)
	}
	if err := atomicfile.WriteBytes(p.b.path(p.root)+".leaves", 0o600, raw); err != nil {
		return err
	}
	if err := os.Rename(p.b.partPath(p.root), p.b.path(p.root)); err != nil {
		return fmt.Errorf("blobs: partial: %w", err)
	}
	return atomicfile.SyncDir(p.b.dir)
}

// Close closes the file and keeps it for a later resume.
func (p *Partial) Close() error {
	if p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	if err != nil {
		return fmt.Errorf("blobs: partial: %w", err)
	}
	return nil
}
