package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/net/cert"
	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/web"
)

// testBox is a box's data directory with its store and files open.
type testBox struct {
	dir   string
	st    *store.Store
	files *blobs.Store
	id    *store.Identity
}

// newTestBox makes a box in a new data directory: identity, CA and server certificate,
// settings, and rooms with a few entries each (the last room's first entry a picture).
func newTestBox(t *testing.T, host string, rooms ...string) *testBox {
	t.Helper()
	dir := t.TempDir()
	id, err := store.LoadIdentity(dir, "ChatTorrent "+host)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Load(dir, cert.Options{Hostname: host, Addrs: func() ([]netip.Addr, error) { return nil, nil }}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, web.SettingsFile), []byte(`{"mic_off":true,"ptt_room":"","stick_export_off":false}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := web.WriteWiFi(dir, web.WiFi{SSID: "Aula " + host, Passphrase: "clave-" + host, Country: "ES"}); err != nil {
		t.Fatal(err)
	}
	if err := web.WriteBoxName(dir, host); err != nil {
		t.Fatal(err)
	}
	b := &testBox{dir: dir, id: id}
	b.open(t)
	for i, name := range rooms {
		room := fmt.Sprintf("%032x", sha256.Sum256([]byte(host+name)))[:32]
		if err := b.st.CreateRoom(room, name); err != nil {
			t.Fatal(err)
		}
		rh, _ := b.st.RoomHistory(room)
		es := []history.Entry{{Kind: history.KindText, Body: "hola " + name}, {Kind: history.KindText, Body: "adiós"}}
		if i == len(rooms)-1 {
			photo := bytes.Repeat([]byte(host+"photo"), 9000)
			root, err := b.files.Put(bytes.NewReader(photo), int64(len(photo)))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := pieces.Meta{Kind: "image", Root: pieces.RootHex(root), Size: int64(len(photo)), Name: "foto.jpg", Type: "image/jpeg", Duration: -1}.Body()
			es = append(es, history.Entry{Kind: "image", Body: body})
		}
		for _, e := range es {
			e.Author, e.Name, e.TS = id.Author(), id.Name, time.Now().UnixMilli()
			if _, err := rh.Write(e, id.Sign); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b
}

func (b *testBox) open(t *testing.T) {
	t.Helper()
	st, files, err := offlineStore(b.dir, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b.st, b.files = st, files
	t.Cleanup(func() { st.Close() })
}

func (b *testBox) backup(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := writeBackup(&buf, backupSource{dataDir: b.dir, box: "caja-a", st: b.st, files: b.files}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// exports is every room's verifiable export, as JSON lines, without the export time.
func (b *testBox) exports(t *testing.T) string {
	t.Helper()
	rooms, err := b.st.Rooms()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, r := range rooms {
		h, err := b.st.Stream(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.WriteJSON(&out, time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	return out.String()
}

// tree is every file under dir with its content, for "nothing changed".
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasSuffix(p, ".lock") {
			b, _ := os.ReadFile(p)
			out[p] = string(b)
		}
		return nil
	})
	return out
}

// TestBackupRestoreRoundTrip: box A's backup restored into box B (its own room and its own
// CA): B keeps its room and holds A's rooms entry for entry, A's picture, A's CA (the
// server certificate issued again from it), A's identity and settings.
func TestBackupRestoreRoundTrip(t *testing.T) {
	a := newTestBox(t, "caja-a", "Campamento", "Cocina")
	b := newTestBox(t, "caja-b", "Propia")
	data := a.backup(t)
	own := b.exports(t)

	res, err := restoreFile(bytes.NewReader(data), b.st, b.files, b.dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Box != "caja-a" || res.Rooms != 2 || res.Entries != 5 || res.Files != 1 {
		t.Errorf("restored: %+v", res)
	}
	if err := applyRestore(b.dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if got, want := b.exports(t), a.exports(t)+own; len(got) != len(want) || !strings.Contains(got, a.exports(t)) || !strings.Contains(got, own) {
		t.Errorf("B's rooms after the restore:\n%s\nwant A's and B's own:\n%s", got, want)
	}
	for _, f := range []string{cert.CAFile, cert.CAKeyFile, store.IdentityFile, web.SettingsFile, web.WiFiFile, web.BoxNameFile} {
		wa, _ := os.ReadFile(filepath.Join(a.dir, f))
		wb, _ := os.ReadFile(filepath.Join(b.dir, f))
		if !bytes.Equal(wa, wb) {
			t.Errorf("%s differs after the restore", f)
		}
	}
	for _, f := range []string{cert.LeafFile, restoreMarker, restorePending} {
		if _, err := os.Stat(filepath.Join(b.dir, f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is left after the restore: %v", f, err)
		}
	}
	for h, err := range a.files.Held() {
		if err != nil || !b.files.Has(h.Root) {
			t.Errorf("A's file %x is not on B: %v", h.Root[:4], err)
		}
	}
	// The next start issues B's server certificate from A's CA.
	cb, err := cert.Load(b.dir, cert.Options{Hostname: "caja-a", Addrs: func() ([]netip.Addr, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(filepath.Join(a.dir, cert.CAFile))
	if !bytes.Equal(cb.CAPEM(), ca) || cb.Leaf().CheckSignatureFrom(cb.CA()) != nil {
		t.Error("B does not serve a certificate from A's CA")
	}
	// A second restore of the same backup adds nothing and loses nothing.
	res, err = restoreFile(bytes.NewReader(data), b.st, b.files, b.dir, time.Now())
	if err != nil || res.Entries != 0 || res.Files != 0 {
		t.Errorf("the same backup again: %+v %v", res, err)
	}
}

// members splits a backup into its members, to make bad ones.
func members(t *testing.T, data []byte) ([]*tar.Header, [][]byte) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var hs []*tar.Header
	var bs [][]byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hs, bs
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		hs, bs = append(hs, h), append(bs, b)
	}
}

func rebuild(hs []*tar.Header, bs [][]byte, change func(name string, b []byte) []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, h := range hs {
		b := change(h.Name, bytes.Clone(bs[i]))
		if b == nil {
			continue
		}
		h.Size = int64(len(b))
		tw.WriteHeader(h)
		tw.Write(b)
	}
	tw.Close()
	return buf.Bytes()
}

// TestRestoreRefusesBadBackups: a cut file (inside a member and between two), a tampered
// entry, a file whose content is not its root's, a foreign CA key, a newer format version,
// something that is not a backup: each refused with its code, and the box unchanged byte
// for byte (store, files, CA, identity, settings; nothing staged).
func TestRestoreRefusesBadBackups(t *testing.T) {
	a := newTestBox(t, "caja-a", "Campamento", "Cocina")
	b := newTestBox(t, "caja-b", "Propia")
	data := a.backup(t)
	hs, bs := members(t, data)
	other := newTestBox(t, "caja-c")
	otherKey, _ := os.ReadFile(filepath.Join(other.dir, cert.CAKeyFile))
	endAt := 0
	for i, h := range hs {
		if h.Name == memberEnd {
			endAt = i
		}
	}
	var boundary bytes.Buffer // whole members up to the end marker, without it
	tw := tar.NewWriter(&boundary)
	for i := range endAt {
		tw.WriteHeader(hs[i])
		tw.Write(bs[i])
	}
	tw.Flush()

	cases := []struct {
		name, code string
		data       []byte
	}{
		{"cut inside a room", "truncated", data[:len(data)/2]},
		{"cut between members", "truncated", boundary.Bytes()},
		{"tampered entry", "bad-entry", rebuild(hs, bs, func(n string, b []byte) []byte {
			if strings.HasPrefix(n, roomsPrefix) {
				return bytes.Replace(b, []byte("adiós"), []byte("ADIÓS"), 1)
			}
			return b
		})},
		{"wrong file hash", "bad-file", rebuild(hs, bs, func(n string, b []byte) []byte {
			if strings.HasPrefix(n, filesPrefix) {
				b[100] ^= 1
			}
			return b
		})},
		{"foreign CA key", "bad-ca", rebuild(hs, bs, func(n string, b []byte) []byte {
			if n == memberCAKey {
				return otherKey
			}
			return b
		})},
		{"bad Wi-Fi passphrase", "bad-settings", rebuild(hs, bs, func(n string, b []byte) []byte {
			if n == memberWiFi {
				return bytes.Replace(b, []byte("PASSPHRASE=clave"), []byte("PASSPHRASE=\x01ñ"), 1)
			}
			return b
		})},
		{"bad box name", "bad-settings", rebuild(hs, bs, func(n string, b []byte) []byte {
			if n == memberBoxName {
				return []byte("caja;reboot\n")
			}
			return b
		})},
		{"newer version", "bad-version", rebuild(hs, bs, func(n string, b []byte) []byte {
			if n == memberManifest {
				return bytes.Replace(b, []byte(`"v": 1`), []byte(`"v": 2`), 1)
			}
			return b
		})},
		{"a room missing", "truncated", rebuild(hs, bs, func(n string, b []byte) []byte {
			if strings.HasPrefix(n, roomsPrefix) {
				return nil
			}
			if n == memberEnd {
				return []byte(fmt.Sprintf(`{"members":%d}`, endAt-2))
			}
			return b
		})},
		{"not a backup", "not-a-backup", []byte("PK\x03\x04 a zip, not a backup")},
		{"another tar", "not-a-backup", rebuild(hs[1:2], bs[1:2], func(_ string, b []byte) []byte { return b })},
	}
	before := tree(t, b.dir)
	for _, c := range cases {
		_, err := restoreFile(bytes.NewReader(c.data), b.st, b.files, b.dir, time.Now())
		var re *web.RestoreError
		if !errors.As(err, &re) || re.Code != c.code {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
			continue
		}
		if after := tree(t, b.dir); len(after) != len(before) {
			t.Errorf("%s: %d files after, %d before", c.name, len(after), len(before))
		} else {
			for p, v := range before {
				if after[p] != v {
					t.Errorf("%s changed %s", c.name, p)
				}
			}
		}
	}
}

// TestApplyRestoreResumes: a restore cut by a power loss after the CA key took its place
// finishes at the next start; one cut before its marker leaves the box as it was.
func TestApplyRestoreResumes(t *testing.T) {
	a := newTestBox(t, "caja-a", "Campamento")
	b := newTestBox(t, "caja-b")
	if _, err := restoreFile(bytes.NewReader(a.backup(t)), b.st, b.files, b.dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	// As if cut after the first step: the key moved, the rest still staged.
	if _, err := cert.Retire(b.dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(b.dir, restorePending, cert.CAKeyFile), filepath.Join(b.dir, cert.CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if err := applyRestore(b.dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{cert.CAFile, cert.CAKeyFile, store.IdentityFile} {
		wa, _ := os.ReadFile(filepath.Join(a.dir, f))
		wb, _ := os.ReadFile(filepath.Join(b.dir, f))
		if !bytes.Equal(wa, wb) {
			t.Errorf("%s is not A's after the resumed restore", f)
		}
	}
	// Staged without a marker: dropped, nothing replaced.
	c := newTestBox(t, "caja-c")
	os.MkdirAll(filepath.Join(c.dir, restorePending), 0o700)
	os.WriteFile(filepath.Join(c.dir, restorePending, cert.CAFile), []byte("x"), 0o600)
	before, _ := os.ReadFile(filepath.Join(c.dir, cert.CAFile))
	if err := applyRestore(c.dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(c.dir, cert.CAFile))
	if _, err := os.Stat(filepath.Join(c.dir, restorePending)); !bytes.Equal(before, after) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a restore without its marker: CA changed %v, pending left %v", !bytes.Equal(before, after), err)
	}
}

// TestBackupCommands: "chattorrent backup" and "chattorrent restore" with the box stopped,
// and both refuse while it runs (the store's lock).
func TestBackupCommands(t *testing.T) {
	a := newTestBox(t, "caja-a", "Campamento")
	a.st.Close()
	out := filepath.Join(t.TempDir(), "a.tar")
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"backup", "-data-dir", a.dir, "-o", out}, &stdout, &stderr); err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr.String())
	}
	b := newTestBox(t, "caja-b")
	if err := run(t.Context(), []string{"restore", "-data-dir", b.dir, out}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "running") {
		t.Errorf("restore while the box holds its store: %v", err)
	}
	b.st.Close()
	if err := run(t.Context(), []string{"restore", "-data-dir", b.dir, out}, &stdout, &stderr); err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr.String())
	}
	b.open(t)
	a.open(t)
	if got, want := b.exports(t), a.exports(t); got != want {
		t.Errorf("B after the restore command:\n%s\nwant\n%s", got, want)
	}
	ca, _ := os.ReadFile(filepath.Join(a.dir, cert.CAFile))
	if cb, _ := os.ReadFile(filepath.Join(b.dir, cert.CAFile)); !bytes.Equal(ca, cb) {
		t.Error("B's CA is not A's after the restore command")
	}
}

// TestBackupCommandFlagsHaveEnv: every flag of backup and restore names its CHATTORRENT_*
// variable in -h, and the variable sets it.
func TestBackupCommandFlagsHaveEnv(t *testing.T) {
	for cmd, vars := range map[string][]string{
		"backup":  {"CHATTORRENT_DATA_DIR", "CHATTORRENT_BACKUP_FILE"},
		"restore": {"CHATTORRENT_DATA_DIR", "CHATTORRENT_STORE_BUDGET"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{cmd, "-h"}, &stdout, &stderr); err != nil {
			t.Fatalf("%s -h: %v", cmd, err)
		}
		flags := strings.Count(stderr.String(), "\n  -")
		if flags != len(vars) {
			t.Errorf("%s has %d flags, want %d:\n%s", cmd, flags, len(vars), stderr.String())
		}
		for _, v := range vars {
			if !strings.Contains(stderr.String(), v) {
				t.Errorf("%s -h does not name %s:\n%s", cmd, v, stderr.String())
			}
		}
	}
	a := newTestBox(t, "caja-a", "Campamento")
	a.st.Close()
	out := filepath.Join(t.TempDir(), "por-variable.tar")
	t.Setenv("CHATTORRENT_DATA_DIR", a.dir)
	t.Setenv("CHATTORRENT_BACKUP_FILE", out)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"backup"}, &stdout, &stderr); err != nil {
		t.Fatalf("backup from the variables: %v\n%s", err, stderr.String())
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("the backup at CHATTORRENT_BACKUP_FILE: %v %v", fi, err)
	}
}
