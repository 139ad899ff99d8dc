package main

import (
	"archive/tar"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chattorrent/chattorrent/net/cert"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/web"
)

// The owner's full backup (docs/PROTOCOL.md, "The box's backup"): one tar, streamed, with
// everything a new card needs to be the same box: the rooms and their signed entries, the
// files the box holds, the CA (certificate and private key: phones that installed it keep
// trusting the box) and the box's identity (it stays the same member of its rooms), and
// the owner's settings. Not the owner's cookie: whoever restores stays the owner.
//
// Members, in this order:
//
//	manifest.json          backupManifest: format, version, box, time, rooms, files
//	identity.json          the box's key pair (store.IdentityFile)
//	ca/ca.crt, ca/ca.key   the box's certificate authority (PEM)
//	settings.json          the owner's settings (web.SettingsFile), when the box has them
//	wifi.conf, boxname     the owner's Wi-Fi and box name (web.WiFiFile, web.BoxNameFile),
//	                       when set: the restored CA vouches for that name
//	rooms/<room id>.jsonl  a room's entries, one JSON object a line, in display order
//	files/<64 hex root>    one held file, named by its root (BEP 52)
//	end.json               {"members": N}: how many members came before it
const (
	backupFormat  = "chattorrent-backup"
	backupVersion = 1

	memberManifest = "manifest.json"
	memberIdentity = "identity.json"
	memberCACert   = "ca/" + cert.CAFile
	memberCAKey    = "ca/" + cert.CAKeyFile
	memberSettings = "settings.json"
	memberWiFi     = web.WiFiFile
	memberBoxName  = web.BoxNameFile
	memberEnd      = "end.json"
	roomsPrefix    = "rooms/"
	roomsSuffix    = ".jsonl"
	filesPrefix    = "files/"

	// maxBackupMeta bounds the small members (manifest, identity, CA, settings, end).
	maxBackupMeta = 1 << 20
	// maxBackupLine bounds one entry's line: a 16 KiB body JSON-escaped at worst 6 bytes a
	// byte, plus the other fields.
	maxBackupLine = 128 << 10
)

// backupManifest is manifest.json.
type backupManifest struct {
	Format  string       `json:"format"`
	V       int          `json:"v"`
	Box     string       `json:"box"`
	Created string       `json:"created"` // RFC 3339, UTC
	Rooms   []backupRoom `json:"rooms"`
	Files   int          `json:"files"`
	Version string       `json:"version"` // the program that wrote it
}

// backupRoom is a room's metadata in the manifest.
type backupRoom struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Created int64  `json:"created"` // ms since 1970
	Entries int    `json:"entries"`
}

// backupSource is what a backup is made of: the box's data directory, its open store and
// files, and its name.
type backupSource struct {
	dataDir string
	box     string
	st      *store.Store
	files   *blobs.Store
}

// backupFileName names a backup as the owner's download and the CLI save it.
func backupFileName(box string, now time.Time) string {
	return "chattorrent-" + safeBoxName(box) + "-backup-" + now.UTC().Format("20060102-150405") + ".tar"
}

// safeBoxName keeps [a-z0-9-] of a box name for a file name.
func safeBoxName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, s)
	if s == "" {
		return "box"
	}
	return s
}

// writeBackup writes the whole backup to w, streamed: each room is taken as a
// store.HistoryStream (its authors' heads noted once, a few bytes each) and read twice,
// once for its member's size (a tar header comes first) and once for its bytes; each file
// is copied from its blob. Memory grows with the number of rooms and held files (their
// names), never with the history.
func writeBackup(w io.Writer, src backupSource, now time.Time) error {
	if err := writeBackupTar(w, src, now); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

func writeBackupTar(w io.Writer, src backupSource, now time.Time) error {
	rooms, err := src.st.Rooms()
	if err != nil {
		return err
	}
	m := backupManifest{Format: backupFormat, V: backupVersion, Box: src.box, Created: now.UTC().Format(time.RFC3339), Version: version}
	streams := make([]*store.HistoryStream, 0, len(rooms))
	for _, r := range rooms {
		h, err := src.st.Stream(r.ID)
		if err != nil {
			return err
		}
		streams = append(streams, h)
		m.Rooms = append(m.Rooms, backupRoom{ID: r.ID, Name: r.Name, Created: r.Created.UnixMilli(), Entries: h.Len()})
	}
	var held []blobs.Held
	for h, err := range src.files.Held() {
		if err != nil {
			return err
		}
		held = append(held, h)
	}
	m.Files = len(held)

	tw := tar.NewWriter(w)
	n := 0
	small := func(name string, b []byte) error {
		n++
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	mb, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	if err := small(memberManifest, append(mb, '\n')); err != nil {
		return err
	}
	for _, f := range []struct {
		member, file string
		optional     bool
	}{
		{memberIdentity, store.IdentityFile, false},
		{memberCACert, cert.CAFile, false},
		{memberCAKey, cert.CAKeyFile, false},
		{memberSettings, web.SettingsFile, true},
		{memberWiFi, web.WiFiFile, true},
		{memberBoxName, web.BoxNameFile, true},
	} {
		b, err := os.ReadFile(filepath.Join(src.dataDir, f.file))
		if f.optional && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := small(f.member, b); err != nil {
			return err
		}
	}
	var line []byte
	for _, h := range streams {
		var size int64
		for js, err := range h.EntriesJSON() {
			if err != nil {
				return err
			}
			size += int64(len(js)) + 1
		}
		n++
		hdr := &tar.Header{Name: roomsPrefix + h.Room().ID + roomsSuffix, Mode: 0o600, Size: size, ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		// The second pass yields the same entries (HistoryStream): the same size. Should it
		// not, tar refuses the write and the backup fails rather than lies.
		for js, err := range h.EntriesJSON() {
			if err != nil {
				return err
			}
			line = append(append(line[:0], js...), '\n') // one buffer for every line: no garbage per entry
			if _, err := tw.Write(line); err != nil {
				return fmt.Errorf("room %s: %w", h.Room().ID, err)
			}
		}
	}
	for _, h := range held {
		if err := copyHeld(tw, src.files, h, now); err != nil {
			return err
		}
		n++
	}
	if err := small(memberEnd, fmt.Appendf(nil, "{\"members\":%d}\n", n)); err != nil {
		return err
	}
	return tw.Close()
}

// copyHeld copies one held file into the tar.
func copyHeld(tw *tar.Writer, files *blobs.Store, h blobs.Held, now time.Time) error {
	f, size, _, err := files.Open(h.Root)
	if err != nil {
		return err
	}
	defer f.Close()
	name := filesPrefix + hex.EncodeToString(h.Root[:])
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, io.LimitReader(f, size)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// jsonObject reports whether b is one JSON object.
func jsonObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 1 && b[0] == '{' && json.Valid(b)
}
