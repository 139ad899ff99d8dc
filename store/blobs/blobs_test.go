package blobs

import (
	"runtime"
	"testing"

	"github.com/chattorrent/chattorrent/net/pieces"
)

// TestUsageCountsPartialBlocks: a sparse partial of a big file counts by what it holds, so
// announcements of files nobody sends no longer fill the disk budget.
func TestUsageCountsPartialBlocks(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no st_blocks here: partials count at their full size")
	}
	b, err := New(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var root [32]byte
	root[0] = 1
	p, err := b.OpenPartial(root, 256<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WritePiece(3, make([]byte, pieces.PieceSize)); err != nil {
		t.Fatal(err)
	}
	p.Close()
	used, err := b.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if used < pieces.PieceSize || used > 1<<20 {
		t.Fatalf("Usage %d bytes for one 16 KiB piece of a sparse 256 MiB partial", used)
	}
}
