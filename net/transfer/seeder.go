package transfer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store/blobs"
)

// Sender is how a Seeder answers: an rtc.Session.
type Sender interface {
	SendControl(ctx context.Context, c pieces.Control) error
	SendFrame(ctx context.Context, frame []byte) error
}

// SeederOptions configure a Seeder.
type SeederOptions struct {
	Blobs *blobs.Store
	// Announced says whether an entry of the room announces root (hex): only those are
	// served.
	Announced func(root string) bool
	// Corrupt, a test aid, says whether to flip a byte of piece i (once per piece) before
	// sending it: a lying peer.
	Corrupt func(root string, index int) bool
	Logger  *slog.Logger
}

// Seeder serves the files of Blobs to one peer (PROTOCOL.md §5): hashes, then pieces, in
// the order asked; nope for what it does not hold; cancel stops. Control and Frame make it
// an rtc.FileHandler; Run does the sending.
type Seeder struct {
	opts  SeederOptions
	wants chan pieces.Control

	mu        sync.Mutex
	cancelled map[string]bool
	served    int64
}

// NewSeeder returns a Seeder; Run serves.
func NewSeeder(opts SeederOptions) *Seeder {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Seeder{opts: opts, wants: make(chan pieces.Control, 32), cancelled: make(map[string]bool)}
}

// Control takes a peer's message; it never blocks (a flood of wants is dropped).
func (s *Seeder) Control(c pieces.Control) {
	switch c.T {
	case "want":
		s.mu.Lock()
		delete(s.cancelled, c.Root)
		s.mu.Unlock()
		select {
		case s.wants <- c:
		default:
			s.opts.Logger.Warn("file wants dropped: too many at once", "root", c.Root)
		}
	case "cancel":
		s.mu.Lock()
		s.cancelled[c.Root] = true
		s.mu.Unlock()
	}
}

// Frame drops frames: a Seeder only sends.
func (s *Seeder) Frame([]byte) {}

// Served is the number of pieces sent so far.
func (s *Seeder) Served() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

func (s *Seeder) isCancelled(root string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled[root]
}

// Run serves wants until ctx ends.
func (s *Seeder) Run(ctx context.Context, send Sender) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case w := <-s.wants:
			if err := s.serve(ctx, send, w); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

func (s *Seeder) serve(ctx context.Context, send Sender, w pieces.Control) error {
	var root [32]byte
	raw, _ := hex.DecodeString(w.Root)
	copy(root[:], raw)
	if s.opts.Announced == nil || !s.opts.Announced(w.Root) {
		return send.SendControl(ctx, pieces.Control{T: "nope", Root: w.Root})
	}
	f, size, leaves, err := s.opts.Blobs.Open(root)
	if errors.Is(err, blobs.ErrNoBlob) {
		return send.SendControl(ctx, pieces.Control{T: "nope", Root: w.Root})
	}
	if err != nil {
		s.opts.Logger.Error("file not served", "root", w.Root, "err", err)
		return send.SendControl(ctx, pieces.Control{T: "nope", Root: w.Root})
	}
	defer f.Close()
	if w.Hashes {
		for off := 0; off < len(leaves); off += pieces.MaxHashesPerFrame {
			end := min(len(leaves), off+pieces.MaxHashesPerFrame)
			if err := send.SendFrame(ctx, pieces.EncodeHashes(root, uint32(off), leaves[off:end])); err != nil {
				return err
			}
		}
	}
	// Up to PiecesPerFrame pieces a frame to a receiver that takes pieces frames.
	per, encode := 1, pieces.EncodePiece
	if w.Multi {
		per, encode = pieces.PiecesPerFrame, pieces.EncodePieces
	}
	buf := make([]byte, per*pieces.PieceSize)
	for _, r := range w.Ranges {
		end := int(min(r[1], int64(len(leaves))))
		for i := int(r[0]); i < end; i += per {
			if s.isCancelled(w.Root) {
				return nil
			}
			count := min(per, end-i)
			n := (count-1)*pieces.PieceSize + pieces.PieceLen(size, i+count-1)
			if _, err := f.ReadAt(buf[:n], int64(i)*pieces.PieceSize); err != nil {
				return fmt.Errorf("transfer: read pieces %d…%d: %w", i, i+count-1, err)
			}
			frame := encode(root, uint32(i), buf[:n])
			for k := range count {
				if s.opts.Corrupt != nil && s.opts.Corrupt(w.Root, i+k) {
					frame[pieces.FrameHead+k*pieces.PieceSize+pieces.PieceLen(size, i+k)-1] ^= 0x55
				}
			}
			if err := send.SendFrame(ctx, frame); err != nil {
				return err
			}
			s.mu.Lock()
			s.served += int64(count)
			s.mu.Unlock()
		}
	}
	return nil
}
