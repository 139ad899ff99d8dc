package blobs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store/atomicfile"
)

// Store keeps complete files in a directory, each named by its root (64 hex), with its
// leaves beside it (<root>.leaves, n×32 bytes). Files are written to a temporary name,
// synced and renamed: a crash leaves a whole file or none.
type Store struct {
	dir     string
	maxSize int64
}

// ErrNoBlob is returned for a root the store does not hold.
var ErrNoBlob = errors.New("blobs: no such file")

// New opens (creating) dir; files over maxSize bytes are refused (0: no limit).
func New(dir string, maxSize int64) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("blobs: %w", err)
	}
	if maxSize <= 0 {
		maxSize = pieces.MaxSize
	}
	return &Store{dir: dir, maxSize: maxSize}, nil
}

func (b *Store) path(root [32]byte) string { return filepath.Join(b.dir, hex.EncodeToString(root[:])) }

// Put stores size bytes from r and returns their root.
func (b *Store) Put(r io.Reader, size int64) (root [32]byte, err error) {
	if size < 1 || size > b.maxSize {
		return root, fail("bad-size", "%d bytes (limit %d)", size, b.maxSize)
	}
	tmp, err := os.CreateTemp(b.dir, "put-*.part")
	if err != nil {
		return root, fmt.Errorf("blobs: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	lw := &leafWriter{h: sha256.New()}
	n, err := io.Copy(io.MultiWriter(tmp, lw), io.LimitReader(r, size))
	if err != nil {
		return root, fmt.Errorf("blobs: write: %w", err)
	}
	if n != size {
		return root, fmt.Errorf("blobs: %d of %d bytes arrived", n, size)
	}
	lw.flush()
	root = pieces.Root(lw.leaves)
	if err := tmp.Sync(); err != nil {
		return root, fmt.Errorf("blobs: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return root, fmt.Errorf("blobs: %w", err)
	}
	leaves := make([]byte, 0, 32*len(lw.leaves))
	for _, l := range lw.leaves {
		leaves = append(leaves, l[:]...)
	}
	if err := atomicfile.WriteBytes(b.path(root)+".leaves", 0o600, leaves); err != nil {
		return root, err
	}
	if err := os.Rename(tmp.Name(), b.path(root)); err != nil {
		return root, fmt.Errorf("blobs: %w", err)
	}
	return root, atomicfile.SyncDir(b.dir)
}

// leafWriter hashes what passes through it a piece at a time.
type leafWriter struct {
	h      hash.Hash
	n      int
	leaves [][32]byte
}

func (w *leafWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		k := min(len(p), pieces.PieceSize-w.n)
		w.h.Write(p[:k])
		w.n += k
		p = p[k:]
		if w.n == pieces.PieceSize {
			w.flush()
		}
	}
	return total, nil
}

func (w *leafWriter) flush() {
	if w.n == 0 {
		return
	}
	var l [32]byte
	copy(l[:], w.h.Sum(nil))
	w.leaves = append(w.leaves, l)
	w.h.Reset()
	w.n = 0
}

// Open returns the stored file, its size and its leaves; ErrNoBlob when not held.
func (b *Store) Open(root [32]byte) (*os.File, int64, [][32]byte, error) {
	f, err := os.Open(b.path(root))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil, ErrNoBlob
	}
	if err != nil {
		return nil, 0, nil, fmt.Errorf("blobs: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, fmt.Errorf("blobs: %w", err)
	}
	raw, err := os.ReadFile(b.path(root) + ".leaves")
	if err != nil || len(raw) != 32*pieces.NumPieces(fi.Size()) {
		// Missing or damaged: hash the file again.
		leaves, lerr := pieces.Leaves(f, fi.Size())
		if lerr != nil {
			f.Close()
			return nil, 0, nil, lerr
		}
		if pieces.Root(leaves) != root {
			f.Close()
			return nil, 0, nil, fmt.Errorf("blobs: %x does not match its name", root[:4])
		}
		return f, fi.Size(), leaves, nil
	}
	leaves := make([][32]byte, len(raw)/32)
	for i := range leaves {
		copy(leaves[i][:], raw[32*i:])
	}
	return f, fi.Size(), leaves, nil
}

// fail is a pieces.Error: the §5 codes callers map to the wire and the page.
func fail(code, format string, args ...any) error {
	return &pieces.Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}
