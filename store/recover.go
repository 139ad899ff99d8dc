package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chattorrent/chattorrent/store/atomicfile"
)

// What buntdb v1.3.0 does with a damaged rooms.db (buntdb.go, DB.load and DB.readLoad):
//
//   - A file that ends in the middle of a record (EOF inside it) is accepted: buntdb
//     truncates it to the end of the last whole record.
//   - Anything else that is not a record (garbage after the last record, a record whose
//     length prefix and bytes disagree, or the run of zero bytes a power cut can leave where
//     the kernel extended the file but never wrote the data) makes Open fail with
//     ErrInvalid: the box would not start.
//   - Zero bytes between records are skipped but not counted in the offset buntdb then
//     seeks to for its next write, so its next record would overwrite the end of the file.
//   - A first part shorter than three bytes panics in readLoad.
//
// So before buntdb opens the file, recoverFile scans it with buntdb's grammar and, if
// needed, cuts it back to the end of the last whole record: every whole record before the
// damage is kept. Zero bytes between whole records are squeezed out by rewriting the file
// (to a temporary file, synced, renamed over it); the original is kept under another name.

// maxPart bounds one bulk string of a record: the largest entry JSON is ~100 KB.
const maxPart = 1 << 20

// maxHead is how much of each part readRecord keeps.
const maxHead = 32

// scanResult is where the whole records of a file end.
type scanResult struct {
	good  int64      // offset just past the last whole record (and the zero bytes before it)
	holes [][2]int64 // runs of zero bytes before good: [start, end)
	size  int64      // bytes read
}

// scanAOF reads a buntdb file and finds the end of its last whole, valid record.
func scanAOF(r io.Reader) (scanResult, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var res scanResult
	off := int64(0)
	nulStart := int64(-1)
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			res.size = off
			return res, nil
		}
		if err != nil {
			return res, err
		}
		if c == 0 {
			if nulStart < 0 {
				nulStart = off
			}
			off++
			continue
		}
		_ = br.UnreadByte()
		n, ok, err := readRecord(br)
		off += n
		if err != nil {
			return res, err
		}
		if !ok {
			// Torn or garbage: count what is left so the caller knows the size.
			rest, err := io.Copy(io.Discard, br)
			res.size = off + rest
			return res, err
		}
		if nulStart >= 0 {
			res.holes = append(res.holes, [2]int64{nulStart, off - n})
			nulStart = -1
		}
		res.good = off
	}
}

// readRecord reads one RESP record as buntdb's readLoad does: "*<n>\r\n" and n parts
// "$<len>\r\n<bytes>\r\n", a set, del or flushdb command. It returns the bytes consumed and
// whether they form a valid record; err only for a failing reader.
func readRecord(br *bufio.Reader) (n int64, ok bool, err error) {
	line := func(prefix byte) (int, bool, error) {
		var b []byte
		for len(b) < 16 {
			c, err := br.ReadByte()
			if err == io.EOF {
				return 0, false, nil
			}
			if err != nil {
				return 0, false, err
			}
			n++
			b = append(b, c)
			if c == '\n' {
				break
			}
		}
		if len(b) < 4 || b[0] != prefix || b[len(b)-2] != '\r' || b[len(b)-1] != '\n' {
			return 0, false, nil
		}
		v := 0
		for _, d := range b[1 : len(b)-2] {
			if d < '0' || d > '9' {
				return 0, false, nil
			}
			v = v*10 + int(d-'0')
		}
		return v, true, nil
	}
	count, ok, err := line('*')
	if !ok || err != nil {
		return n, false, err
	}
	if count > 5 {
		return n, false, nil
	}
	parts := make([]string, 0, count)
	for range count {
		size, ok, err := line('$')
		if !ok || err != nil {
			return n, false, err
		}
		if size > maxPart {
			return n, false, nil
		}
		// Keep the start of each part (command names and options are short); skip the rest
		// of long ones (keys, values).
		head := make([]byte, min(size, maxHead))
		m, err := io.ReadFull(br, head)
		n += int64(m)
		if err != nil {
			return n, false, eofIsTorn(err)
		}
		m, err = br.Discard(size - len(head))
		n += int64(m)
		if err != nil {
			return n, false, eofIsTorn(err)
		}
		crlf := make([]byte, 2)
		m, err = io.ReadFull(br, crlf)
		n += int64(m)
		if err != nil {
			return n, false, eofIsTorn(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return n, false, nil
		}
		if size > maxHead && len(parts) >= 3 {
			return n, false, nil // an option of a 5-part set, far too long to be one
		}
		parts = append(parts, string(head))
	}
	return n, validCommand(parts), nil
}

func eofIsTorn(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil
	}
	return err
}

// validCommand is buntdb's readLoad's test of a record's parts.
func validCommand(parts []string) bool {
	if len(parts) == 0 {
		return true // buntdb skips an empty command
	}
	cmd := strings.ToLower(parts[0])
	switch {
	case len(cmd) >= 3 && cmd[:3] == "set":
		switch len(parts) {
		case 3:
			return true
		case 5:
			arg := strings.ToLower(parts[3])
			_, err := strconv.ParseInt(parts[4], 10, 64)
			return (arg == "ex" || arg == "ae") && err == nil
		}
		return false
	case len(cmd) >= 3 && cmd[:3] == "del":
		return len(parts) == 2
	case cmd == "flushdb":
		return true
	}
	return false
}

// recoverFile makes path safe for buntdb to open: it creates it (0600) if missing, cuts a
// torn or garbage tail and squeezes out zero bytes between records. Every whole record is
// kept; what is cut is logged, and kept in a side file when it holds more records.
func recoverFile(path string, log *slog.Logger) error {
	_, err := os.Stat(path)
	created := errors.Is(err, os.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if created {
		return syncDir(filepath.Dir(path))
	}
	res, err := scanAOF(f)
	if err != nil {
		return fmt.Errorf("recovery scan: %w", err)
	}
	if res.good < res.size {
		if err := cutTail(f, path, res, log); err != nil {
			return err
		}
	}
	if len(res.holes) > 0 {
		if err := squeeze(f, path, res, log); err != nil {
			return err
		}
	}
	return nil
}

// cutTail truncates f to res.good.
func cutTail(f *os.File, path string, res scanResult, log *slog.Logger) error {
	cut := res.size - res.good
	tail := make([]byte, min(cut, 64<<20))
	if _, err := f.ReadAt(tail, res.good); err != nil && err != io.EOF {
		return fmt.Errorf("recovery: read tail: %w", err)
	}
	kind := "torn or garbage tail"
	if len(bytes.Trim(tail, "\x00")) == 0 {
		kind = "zero-filled tail"
	}
	attrs := []any{"file", path, "kind", kind, "kept_bytes", res.good, "cut_bytes", cut}
	// More records after the damage (not just one torn record): keep the cut bytes.
	trimmed := bytes.TrimLeft(tail, "\x00")
	if cut > int64(len(tail)) || (len(trimmed) > 1 && bytes.Contains(trimmed[1:], []byte("*3\r\n$3\r\nset\r\n"))) {
		side := fmt.Sprintf("%s.cut-%d", path, time.Now().UnixMilli())
		if err := copyTail(f, res.good, side); err != nil {
			return fmt.Errorf("recovery: save the cut tail: %w", err)
		}
		attrs = append(attrs, "saved_to", side)
	}
	if err := f.Truncate(res.good); err != nil {
		return fmt.Errorf("recovery: truncate: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("recovery: fsync: %w", err)
	}
	log.Warn("cut the damaged end of the database; every whole record before it is kept", attrs...)
	return nil
}

func copyTail(f *os.File, from int64, side string) error {
	out, err := os.OpenFile(side, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.NewSectionReader(f, from, 1<<62))
	return errors.Join(err, out.Sync(), out.Close(), syncDir(filepath.Dir(side)))
}

// squeeze rewrites path without the zero-byte holes before res.good (store/atomicfile).
// The original stays as path.before-recovery-<ms> (a hard link: no copy).
func squeeze(f *os.File, path string, res scanResult, log *slog.Logger) error {
	orig := fmt.Sprintf("%s.before-recovery-%d", path, time.Now().UnixMilli())
	if err := os.Link(path, orig); err != nil {
		return fmt.Errorf("recovery: keep the original: %w", err)
	}
	var squeezed int64
	err := atomicfile.WriteFile(path, 0o600, func(out io.Writer) error {
		from := int64(0)
		for _, h := range append(res.holes, [2]int64{res.good, res.good}) {
			if _, err := io.Copy(out, io.NewSectionReader(f, from, h[0]-from)); err != nil {
				return err
			}
			squeezed += h[1] - h[0]
			from = h[1]
		}
		return nil
	})
	if err != nil {
		os.Remove(orig) // path is untouched
		return fmt.Errorf("recovery: %w", err)
	}
	log.Warn("removed zero bytes between records of the database", "file", path,
		"holes", len(res.holes), "zero_bytes", squeezed, "original", orig)
	return nil
}

// syncDir makes a directory's entries (a created or renamed file) durable.
func syncDir(dir string) error { return atomicfile.SyncDir(dir) }
