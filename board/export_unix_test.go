//go:build unix

package board

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestExportReadableUnderUMask0077: the service runs with UMask=0077, yet the folders and
// files it leaves on a stick are readable by everyone (the phone or laptop it goes to next).
// Not parallel: the umask belongs to the whole process.
func TestExportReadableUnderUMask0077(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	stick := t.TempDir()
	dir, err := (&Exporter{Now: exportNow}).Export(context.Background(), stick,
		[]ExportRoom{jsonRoom("Room", "{}", memFile("photo.jpg", "jpeg"))})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		want := fs.FileMode(0o644)
		if d.IsDir() {
			want = 0o755
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 { // export dir, room dir, history.json, photo.jpg
		t.Fatalf("walked %d entries", n)
	}
}
