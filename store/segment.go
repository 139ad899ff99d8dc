package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The entries' files (docs/ARCHITECTURE.md, "store"): per room, append-only segments of
// checksummed frames, and per author an index of fixed-size records, record seq-1 for the
// entry at seq.
const (
	// roomsDir holds one directory per room that has entries.
	roomsDir = "rooms"
	// segmentMax is the size at which a room's segment is rolled (a frame never spans two).
	segmentMax = 64 << 20
	// frameHeader is a frame's length and CRC32C, before its payload.
	frameHeader = 8
	// maxFrame bounds a frame's payload: an entry's JSON is at most ~100 KB.
	maxFrame = 1 << 20
	// recSize is one index record.
	recSize = 64
)

// crcTable is CRC32C (Castagnoli), which has hardware support on arm64 and amd64.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// loc is where a frame is: its segment, the frame's offset in it and its payload's length.
type loc struct {
	seg, off, n uint32
}

// end is the offset just past the frame.
func (l loc) end() int64 { return int64(l.off) + frameHeader + int64(l.n) }

// after reports whether l ends past m.
func (l loc) after(m loc) bool {
	return l.seg > m.seg || (l.seg == m.seg && l.end() > m.end())
}

// idxRec is one index record: the entry's id and ts, the largest ts of its author up to it,
// and where its frame is.
type idxRec struct {
	id    [32]byte
	ts    int64
	maxTS int64
	loc
}

func (r *idxRec) marshal(b []byte) {
	copy(b[:32], r.id[:])
	binary.LittleEndian.PutUint64(b[32:], uint64(r.ts))
	binary.LittleEndian.PutUint64(b[40:], uint64(r.maxTS))
	binary.LittleEndian.PutUint32(b[48:], r.seg)
	binary.LittleEndian.PutUint32(b[52:], r.off)
	binary.LittleEndian.PutUint32(b[56:], r.n)
	binary.LittleEndian.PutUint32(b[60:], crc32.Checksum(b[:60], crcTable))
}

// parseRec reads a record; ok is false when its CRC does not match.
func parseRec(b []byte) (r idxRec, ok bool) {
	if len(b) < recSize || binary.LittleEndian.Uint32(b[60:]) != crc32.Checksum(b[:60], crcTable) {
		return r, false
	}
	copy(r.id[:], b[:32])
	r.ts = int64(binary.LittleEndian.Uint64(b[32:]))
	r.maxTS = int64(binary.LittleEndian.Uint64(b[40:]))
	r.seg = binary.LittleEndian.Uint32(b[48:])
	r.off = binary.LittleEndian.Uint32(b[52:])
	r.n = binary.LittleEndian.Uint32(b[56:])
	return r, r.n <= maxFrame && r.seg > 0
}

func segName(n uint32) string { return fmt.Sprintf("seg-%06d", n) }

func idxName(num int) string { return fmt.Sprintf("a-%05d.idx", num) }

// parseSegName is the number of a segment file's name.
func parseSegName(name string) (uint32, bool) {
	d, ok := strings.CutPrefix(name, "seg-")
	if !ok || len(d) != 6 {
		return 0, false
	}
	n, err := strconv.ParseUint(d, 10, 32)
	return uint32(n), err == nil && n > 0
}

// frame makes the frame of a payload.
func frame(payload []byte) []byte {
	b := make([]byte, frameHeader+len(payload))
	copy(b[frameHeader:], payload)
	putFrameHeader(b, payload)
	return b
}

// putFrameHeader writes the header of payload's frame at the start of b.
func putFrameHeader(b, payload []byte) {
	binary.LittleEndian.PutUint32(b, uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(payload, crcTable))
}

// errBadFrame is a frame that is not whole or fails its CRC.
var errBadFrame = errors.New("a stored frame is torn or damaged (length or CRC32C)")

// files reads a room's frames and index records for one operation: it keeps the files it
// opened until close.
type files struct {
	dir  string
	segs map[uint32]*os.File
	buf  []byte
}

func newFiles(dir string) *files { return &files{dir: dir, segs: make(map[uint32]*os.File)} }

func (fs *files) close() {
	for _, f := range fs.segs {
		_ = f.Close()
	}
	clear(fs.segs)
}

// frame reads the payload at l into a buffer reused by the next call, checking its
// length and CRC.
func (fs *files) frame(l loc) ([]byte, error) {
	f := fs.segs[l.seg]
	if f == nil {
		var err error
		if f, err = os.Open(filepath.Join(fs.dir, segName(l.seg))); err != nil {
			return nil, fmt.Errorf("read frame: %w", err)
		}
		fs.segs[l.seg] = f
	}
	need := frameHeader + int(l.n)
	if cap(fs.buf) < need {
		fs.buf = make([]byte, need)
	}
	b := fs.buf[:need]
	if _, err := f.ReadAt(b, int64(l.off)); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errBadFrame
		}
		return nil, fmt.Errorf("read frame: %w", err)
	}
	if binary.LittleEndian.Uint32(b) != l.n || binary.LittleEndian.Uint32(b[4:]) != crc32.Checksum(b[frameHeader:], crcTable) {
		return nil, errBadFrame
	}
	return b[frameHeader:], nil
}

// readRec reads the record of seq from an author's index file.
func readRec(f *os.File, seq int64) (idxRec, error) {
	var b [recSize]byte
	if _, err := f.ReadAt(b[:], (seq-1)*recSize); err != nil {
		return idxRec{}, fmt.Errorf("read index record %d: %w", seq, err)
	}
	r, ok := parseRec(b[:])
	if !ok {
		return idxRec{}, fmt.Errorf("index record %d: %w", seq, errBadFrame)
	}
	return r, nil
}

// recReader reads an author's records from seq on, sequentially.
type recReader struct {
	f   *os.File
	br  *bufio.Reader
	b   [recSize]byte
	seq int64 // the seq of the next record read
}

func openRecs(dir string, num int, from, to int64) (*recReader, error) {
	f, err := os.Open(filepath.Join(dir, idxName(num)))
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	sr := io.NewSectionReader(f, (from-1)*recSize, (to-from+1)*recSize)
	return &recReader{f: f, br: bufio.NewReaderSize(sr, 64*recSize), seq: from}, nil
}

func (rr *recReader) next() (idxRec, error) {
	if _, err := io.ReadFull(rr.br, rr.b[:]); err != nil {
		return idxRec{}, fmt.Errorf("read index record %d: %w", rr.seq, err)
	}
	r, ok := parseRec(rr.b[:])
	if !ok {
		return idxRec{}, fmt.Errorf("index record %d: %w", rr.seq, errBadFrame)
	}
	rr.seq++
	return r, nil
}

func (rr *recReader) close() { _ = rr.f.Close() }
