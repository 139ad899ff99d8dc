package board

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chattorrent/chattorrent/store/atomicfile"
)

// Errors that Export wraps (errors.Is) when the stick, not the data, is the problem.
var (
	ErrStickFull     = errors.New("the stick is full")
	ErrStickReadOnly = errors.New("the stick is read-only or not writable")
)

// ExportRoom is one room to export.
type ExportRoom struct {
	Name    string      // the room's name; made safe for a file name
	History io.WriterTo // writes the room's verifiable history JSON (see WriterFunc)
	Files   []ExportFile
	// More yields further files, after Files, read only as they are written: a room's
	// files need not be listed in memory first. An error it yields fails the export like
	// a failed history.
	More iter.Seq2[ExportFile, error]
}

// files is Files then More.
func (r ExportRoom) files() iter.Seq2[ExportFile, error] {
	return func(yield func(ExportFile, error) bool) {
		for _, f := range r.Files {
			if !yield(f, nil) {
				return
			}
		}
		if r.More != nil {
			r.More(yield)
		}
	}
}

// ExportFile is a media file of a room, written next to its history.
type ExportFile struct {
	Name string                        // the file's name; made safe and unique in the room
	Open func() (io.ReadCloser, error) // opened once, while it is copied
}

// WriterFunc adapts a func writing to an io.Writer to an io.WriterTo.
type WriterFunc func(w io.Writer) error

// WriteTo implements io.WriterTo.
func (f WriterFunc) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	err := f(cw)
	return cw.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Exporter writes exports. The zero value is ready; Export uses one.
type Exporter struct {
	// Now names the folder. Default time.Now.
	Now func() time.Time
	// Logger gets skipped media files and the result. Default slog.Default().
	Logger *slog.Logger

	// wrap, when set (tests), wraps each destination file's writer: a full disk is
	// simulated by a writer that returns ENOSPC.
	wrap func(io.Writer) io.Writer
}

// Export writes rooms to a new folder dst/chattorrent-YYYYMMDD-HHMMSS (-2, -3... if that
// exists) and returns its path:
//
//	chattorrent-20261125-101500/
//	  <room>/history.json
//	  <room>/<media file>...
//
// Nothing existing is ever overwritten. Folder and file names are made safe (SafeName) and
// unique ignoring case (FAT sticks). Each file is written under a temporary name, fsynced and
// renamed; the directories are fsynced after. A media file that cannot be read is skipped and
// logged. When the stick is full or read-only the error wraps ErrStickFull or ErrStickReadOnly
// (and the system error), and everything this export wrote is removed again: no half-written
// file or half export stays behind.
func Export(ctx context.Context, dst string, rooms []ExportRoom) (string, error) {
	var e Exporter
	return e.Export(ctx, dst, rooms)
}

// Export is the package's Export with e's settings.
func (e *Exporter) Export(ctx context.Context, dst string, rooms []ExportRoom) (dir string, err error) {
	now, log := time.Now, slog.Default()
	if e.Now != nil {
		now = e.Now
	}
	if e.Logger != nil {
		log = e.Logger
	}
	x := &export{e: e, ctx: ctx, log: log.With("component", "board")}
	defer func() {
		if err != nil {
			x.undo()
			err = fmt.Errorf("board: export to %s: %w", dst, classify(err))
			dir = ""
		}
	}()
	if st, err := os.Stat(dst); err != nil {
		return "", err
	} else if !st.IsDir() {
		return "", fmt.Errorf("%s is not a directory", dst)
	}
	base := "chattorrent-" + now().Format("20060102-150405")
	for i := 1; ; i++ {
		name := base
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		dir = filepath.Join(dst, name)
		err := mkdirReadable(dir)
		if err == nil {
			x.made = append(x.made, dir)
			break
		}
		if !errors.Is(err, os.ErrExist) || i >= 1000 {
			return "", err
		}
	}
	used := map[string]bool{}
	for _, r := range rooms {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if err := x.room(dir, unique(used, SafeName(r.Name)), r); err != nil {
			return "", err
		}
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return "", err
	}
	if err := atomicfile.SyncDir(dst); err != nil {
		return "", err
	}
	x.log.Info("board: exported", "dir", dir, "rooms", len(rooms))
	return dir, nil
}

// export is one run of Exporter.Export.
type export struct {
	e    *Exporter
	ctx  context.Context
	log  *slog.Logger
	made []string // files and folders created, in order, removed again on failure
}

func (x *export) room(parent, name string, r ExportRoom) error {
	dir := filepath.Join(parent, name)
	if err := mkdirReadable(dir); err != nil {
		return err
	}
	x.made = append(x.made, dir)
	used := map[string]bool{}
	history := unique(used, "history.json")
	if r.History != nil {
		if err := x.file(dir, history, func(w io.Writer) error {
			_, err := r.History.WriteTo(w)
			return err
		}); err != nil {
			return fmt.Errorf("room %q: %w", r.Name, err)
		}
	}
	for f, err := range r.files() {
		if err != nil {
			return fmt.Errorf("room %q: %w", r.Name, err)
		}
		if err := x.ctx.Err(); err != nil {
			return err
		}
		name := unique(used, SafeName(f.Name))
		err := x.file(dir, name, func(w io.Writer) error {
			rc, err := f.Open()
			if err != nil {
				return &sourceError{err}
			}
			defer rc.Close()
			_, err = io.Copy(w, readerOnly{r: rc})
			return err
		})
		var se *sourceError
		if errors.As(err, &se) {
			x.log.Warn("board: export skips a media file", "room", r.Name, "file", f.Name, "err", se.err)
			continue
		}
		if err != nil {
			return fmt.Errorf("room %q: %w", r.Name, err)
		}
	}
	return atomicfile.SyncDir(dir)
}

// sourceError marks a failure to read what is exported (not to write the stick).
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "read: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// readerOnly tags the reader's errors as sourceErrors (and hides WriterTo/ReaderFrom so
// that io.Copy goes through Write, where the stick's errors come from).
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// ctxWriter stops a long copy when ctx ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// file writes name in dir through a temporary file: write, fsync, close, rename.
func (x *export) file(dir, name string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(dir, ".partial-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes 0600: the phone or laptop the stick goes to next must read it.
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	var w io.Writer = f
	if x.e.wrap != nil {
		w = x.e.wrap(w)
	}
	if err := write(ctxWriter{ctx: x.ctx, w: w}); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	final := filepath.Join(dir, name)
	if err := renameNoReplace(tmp, final); err != nil {
		return err
	}
	x.made = append(x.made, final)
	return nil
}

// mkdirReadable makes dir with mode 0755 whatever the umask (the service runs with
// UMask=0077): on an ext4 or exFAT-with-permissions stick, the export is for other users.
// A FAT stick ignores both calls' modes.
func mkdirReadable(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.Remove(dir)
		return err
	}
	return nil
}

// undo removes what this export created, newest first (only what it created).
func (x *export) undo() {
	for i := len(x.made) - 1; i >= 0; i-- {
		if err := os.Remove(x.made[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			x.log.Warn("board: export: cannot remove a partial file", "path", x.made[i], "err", err)
		}
	}
	x.made = nil
}

// classify prefixes err with ErrStickFull or ErrStickReadOnly when it is one of those.
func classify(err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", ErrStickFull, err)
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("%w: %w", ErrStickReadOnly, err)
	}
	return err
}

// maxNameBytes caps a file name well below the 255 of FAT, exFAT and ext4.
const maxNameBytes = 100

// SafeName makes s usable as one file name on any stick (FAT, exFAT, NTFS, ext4): path
// separators, control characters and the characters Windows forbids (<>:"|?*) become "_",
// invalid UTF-8 too; leading dots and spaces and trailing dots and spaces go; names Windows
// reserves (CON, NUL, COM1...) get a "_" in front; at most 100 bytes, keeping the extension.
// An empty result is "unnamed".
func SafeName(s string) string {
	s = strings.ToValidUTF8(s, "_")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || unicode.IsControl(r) || strings.ContainsRune(`/\<>:"|?*`, r) {
			return '_'
		}
		return r
	}, s)
	s = strings.TrimLeft(s, ". ")
	s = strings.TrimRight(s, ". ")
	if s == "" {
		return "unnamed"
	}
	stem, ext := splitExt(s)
	switch strings.ToUpper(stem) {
	case "CON", "PRN", "AUX", "NUL",
		"COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
		"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9":
		stem = "_" + stem
	}
	return capName(stem, ext, maxNameBytes)
}

// splitExt splits "a.b.json" into "a.b" and ".json"; an extension is at most 10 bytes.
func splitExt(s string) (stem, ext string) {
	i := strings.LastIndexByte(s, '.')
	if i <= 0 || len(s)-i > 10 {
		return s, ""
	}
	return s[:i], s[i:]
}

// capName joins stem and ext in at most max bytes, cutting the stem on a rune boundary.
func capName(stem, ext string, max int) string {
	if len(stem)+len(ext) <= max {
		return stem + ext
	}
	cut := max - len(ext)
	for cut > 0 && !utf8.RuneStart(stem[cut]) {
		cut--
	}
	stem = strings.TrimRight(stem[:cut], ". ")
	if stem == "" {
		stem = "unnamed"
	}
	return stem + ext
}

// unique returns name, or name-2, name-3... (before the extension) so that no two names in
// used are equal ignoring case, and records it.
func unique(used map[string]bool, name string) string {
	stem, ext := splitExt(name)
	for i := 1; ; i++ {
		n := name
		if i > 1 {
			suffix := "-" + strconv.Itoa(i)
			n = capName(stem, suffix+ext, maxNameBytes) // the suffix is never cut
		}
		if key := strings.ToLower(n); !used[key] {
			used[key] = true
			return n
		}
	}
}
