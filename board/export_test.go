package board

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

var exportNow = func() time.Time { return time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC) }

func jsonRoom(name, body string, files ...ExportFile) ExportRoom {
	return ExportRoom{Name: name, History: WriterFunc(func(w io.Writer) error {
		_, err := io.WriteString(w, body)
		return err
	}), Files: files}
}

func memFile(name, body string) ExportFile {
	return ExportFile{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
}

// tree lists every file under dir with its content, and fails on leftovers of a write.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.Contains(rel, ".partial-") {
			t.Errorf("half-written file left: %s", rel)
		}
		b, err := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestExportHappyPathAndCollisions(t *testing.T) {
	stick := t.TempDir()
	// Something already on the stick with our first name: kept, never overwritten.
	if err := os.Mkdir(filepath.Join(stick, "chattorrent-20261125-101500"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := &Exporter{Now: exportNow}
	rooms := []ExportRoom{
		jsonRoom("Plaza", `{"room":"Plaza"}`, memFile("photo.jpg", "JPEG"), memFile("PHOTO.JPG", "jpeg2"),
			memFile("history.json", "not the history"), memFile("../../etc/passwd", "x")),
		jsonRoom("plaza", `{"room":"plaza"}`), // the same name ignoring case
		jsonRoom(".hidden/../room\x00\n", `{}`),
	}
	dir, err := e.Export(context.Background(), stick, rooms)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != "chattorrent-20261125-101500-2" {
		t.Fatalf("dir %s", dir)
	}
	got := tree(t, dir)
	want := map[string]string{
		"Plaza/history.json":            `{"room":"Plaza"}`,
		"Plaza/photo.jpg":               "JPEG",
		"Plaza/PHOTO-2.JPG":             "jpeg2",
		"Plaza/history-2.json":          "not the history",
		"Plaza/_.._etc_passwd":          "x",
		"plaza-2/history.json":          `{"room":"plaza"}`,
		"hidden_.._room__/history.json": `{}`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("exported\n%v\nwant\n%v", got, want)
	}
	// Again in the same second: a third folder.
	dir3, err := e.Export(context.Background(), stick, rooms[:1])
	if err != nil || filepath.Base(dir3) != "chattorrent-20261125-101500-3" {
		t.Fatalf("%s, %v", dir3, err)
	}
	// Through the package function too (real clock).
	if d, err := Export(context.Background(), stick, nil); err != nil || !strings.HasPrefix(filepath.Base(d), "chattorrent-") {
		t.Fatalf("%s, %v", d, err)
	}
}

func TestSafeName(t *testing.T) {
	long := strings.Repeat("ñ", 80) + ".json"
	for in, want := range map[string]string{
		"Plaza":           "Plaza",
		"":                "unnamed",
		"...":             "unnamed",
		".bashrc":         "bashrc",
		"a/b\\c":          "a_b_c",
		"x\x00y\x1fz\x7f": "x_y_z_",
		"CON":             "_CON",
		"nul.txt":         "_nul.txt",
		`a<b>c:d"e|f?g*`:  "a_b_c_d_e_f_g_",
		"trailing. ":      "trailing",
		"bad\xffutf8":     "bad_utf8",
		"sala de María":   "sala de María",
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
	got := SafeName(long)
	if len(got) > maxNameBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, ".json") {
		t.Errorf("SafeName(long) = %q (%d bytes)", got, len(got))
	}
	used := map[string]bool{}
	a, b := unique(used, got), unique(used, got)
	if a == b || len(b) > maxNameBytes || !strings.HasSuffix(b, "-2.json") {
		t.Errorf("unique long: %q, %q", a, b)
	}
}

// faultWriter accepts limit bytes, then fails with err (a full or read-only stick).
type faultWriter struct {
	w     io.Writer
	limit int
	err   error
}

func (f *faultWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n, _ := f.w.Write(p[:f.limit])
		f.limit = 0
		return n, f.err
	}
	f.limit -= len(p)
	return f.w.Write(p)
}

func TestExportFullOrReadOnlyLeavesNothing(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		want  error
	}{{syscall.ENOSPC, ErrStickFull}, {syscall.EROFS, ErrStickReadOnly}} {
		stick := t.TempDir()
		before, _ := os.ReadDir(stick)
		e := &Exporter{Now: exportNow, wrap: func(w io.Writer) io.Writer {
			return &faultWriter{w: w, limit: 5000, err: c.errno}
		}}
		rooms := []ExportRoom{
			jsonRoom("small", "{}"),
			jsonRoom("big", strings.Repeat("x", 100000)),
		}
		dir, err := e.Export(context.Background(), stick, rooms)
		if !errors.Is(err, c.want) || !errors.Is(err, c.errno) || dir != "" {
			t.Fatalf("%v: got %q, %v", c.errno, dir, err)
		}
		if !strings.HasPrefix(err.Error(), "board: export to ") {
			t.Fatalf("message %q", err)
		}
		t.Logf("%v", err)
		after, _ := os.ReadDir(stick)
		if len(after) != len(before) {
			t.Fatalf("%v: the stick holds %v after a failed export", c.errno, after)
		}
	}
}

// A read-only stick as the kernel reports it: the first mkdir fails. (chmod does not stop
// root, so the real error is injected by a dst that is a file's child.)
func TestExportUnwritableDestination(t *testing.T) {
	stick := t.TempDir()
	if os.Geteuid() != 0 {
		if err := os.Chmod(stick, 0o555); err != nil {
			t.Fatal(err)
		}
		_, err := Export(context.Background(), stick, []ExportRoom{jsonRoom("a", "{}")})
		if !errors.Is(err, ErrStickReadOnly) {
			t.Fatalf("read-only dir: %v", err)
		}
	}
	if _, err := Export(context.Background(), filepath.Join(stick, "missing"), nil); err == nil {
		t.Fatal("export to a missing dir worked")
	}
}

// A media file that cannot be read is skipped; the rest is exported.
func TestExportSkipsUnreadableMedia(t *testing.T) {
	stick := t.TempDir()
	bad := ExportFile{Name: "gone.ogg", Open: func() (io.ReadCloser, error) { return nil, os.ErrNotExist }}
	dir, err := (&Exporter{Now: exportNow}).Export(context.Background(), stick,
		[]ExportRoom{jsonRoom("r", "{}", bad, memFile("ok.txt", "ok"))})
	if err != nil {
		t.Fatal(err)
	}
	got := tree(t, dir)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range got {
			if !yield(k) {
				return
			}
		}
	})
	if fmt.Sprint(keys) != "[r/history.json r/ok.txt]" {
		t.Fatalf("exported %v", keys)
	}
}

func TestExportCancelled(t *testing.T) {
	stick := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Export(ctx, stick, []ExportRoom{jsonRoom("a", "{}")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
	if after, _ := os.ReadDir(stick); len(after) != 0 {
		t.Fatalf("left %v", after)
	}
}

// More's files are written after Files, each opened only when its turn comes; an error
// from More fails the export and removes what it wrote.
func TestExportMoreFiles(t *testing.T) {
	stick := t.TempDir()
	opened := 0
	more := func(n int, fail error) func(yield func(ExportFile, error) bool) {
		return func(yield func(ExportFile, error) bool) {
			for i := range n {
				f := ExportFile{Name: fmt.Sprintf("f%d.txt", i), Open: func() (io.ReadCloser, error) {
					opened++
					if opened != i+2 { // memFile "a.txt" first, then these one by one
						t.Errorf("file %d opened as the %dth", i, opened)
					}
					return io.NopCloser(strings.NewReader(fmt.Sprint(i))), nil
				}}
				if !yield(f, nil) {
					return
				}
			}
			if fail != nil {
				yield(ExportFile{}, fail)
			}
		}
	}
	r := jsonRoom("r", "{}", memFile("a.txt", "a"))
	r.Files[0].Open = func() (io.ReadCloser, error) { opened++; return io.NopCloser(strings.NewReader("a")), nil }
	r.More = more(3, nil)
	dir, err := (&Exporter{Now: exportNow}).Export(context.Background(), stick, []ExportRoom{r})
	if err != nil {
		t.Fatal(err)
	}
	got := tree(t, dir)
	want := map[string]string{"r/history.json": "{}", "r/a.txt": "a", "r/f0.txt": "0", "r/f1.txt": "1", "r/f2.txt": "2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	opened = 0
	r.More = more(2, errors.New("store closed"))
	if _, err := (&Exporter{Now: exportNow}).Export(context.Background(), stick, []ExportRoom{r}); err == nil || !strings.Contains(err.Error(), "store closed") {
		t.Fatalf("More's error: %v", err)
	}
	if entries, _ := os.ReadDir(stick); len(entries) != 1 {
		t.Errorf("a failed export left %d folders, want only the first export's", len(entries))
	}
}
