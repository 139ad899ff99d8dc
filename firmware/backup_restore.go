package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chattorrent/chattorrent/net/cert"
	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/atomicfile"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/web"
)

// A restore reads the backup twice. The first pass checks everything and changes nothing:
// the manifest's format and version, every entry (fields, id, signature, its place in its
// author's chain, no fork with what the box keeps, the count the manifest gives), every
// file's root against its name, the identity, the CA (it parses, is a CA, its key is its
// own, it has not expired), the settings, the end marker (a file cut between two members
// is refused too), and that the store's budget and rooms limit take what is new. Only then
// does the second pass merge the rooms into the store (store.Import: an append-only union)
// and write the files (blobs.PutRoot), and stage the identity, the CA and the settings in
// restorePending with the restoreMarker written last. They take their places at the next
// start (applyRestore), before anything reads them, and the server certificate is then
// issued again from the restored CA; the running box restarts itself for it.
const (
	restorePending = "restore-pending"
	restoreMarker  = "restore.pending"
)

// restoreResult is what a restore did.
type restoreResult = web.RestoreResult

// refuse is a backup refused with its code (web.RestoreError; docs/PROTOCOL.md lists them).
func refuse(status int, code, format string, args ...any) error {
	return &web.RestoreError{Status: status, Code: code, Err: fmt.Errorf("restore: "+format, args...)}
}

func badBackup(code, format string, args ...any) error {
	return refuse(http.StatusUnprocessableEntity, code, format, args...)
}

// backupPlan is what the first pass learned, for the second.
type backupPlan struct {
	m     backupManifest
	rooms map[string]backupRoom
}

// verifyBackup is the first pass over the backup in r: it checks everything and changes
// nothing. A refusal is a *web.RestoreError.
func verifyBackup(r io.Reader, st *store.Store, now time.Time) (*backupPlan, error) {
	v := &backupVerifier{p: &backupPlan{rooms: make(map[string]backupRoom)}, st: st, now: now, seen: make(map[string]bool)}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if v.members == 0 {
				return nil, badBackup("not-a-backup", "the file is empty or not a tar archive")
			}
			return nil, badBackup("truncated", "the file ends before its end marker (%s): it was cut", memberEnd)
		}
		if err != nil {
			if v.members == 0 {
				return nil, badBackup("not-a-backup", "not a backup (not a tar archive: %v)", err)
			}
			return nil, badBackup("truncated", "the file is cut or damaged after %d members: %v", v.members, err)
		}
		if v.members == 0 && hdr.Name != memberManifest {
			return nil, badBackup("not-a-backup", "not a backup: it starts with %q, not %s", hdr.Name, memberManifest)
		}
		if hdr.Typeflag != tar.TypeReg || v.seen[hdr.Name] {
			return nil, badBackup("not-a-backup", "member %q is not a regular file or appears twice", hdr.Name)
		}
		v.seen[hdr.Name] = true
		if hdr.Name == memberEnd {
			if err := v.end(tr, hdr); err != nil {
				return nil, err
			}
			return v.p, v.complete()
		}
		if err := v.member(tr, hdr); err != nil {
			return nil, err
		}
		v.members++
	}
}

// backupVerifier is the first pass's state.
type backupVerifier struct {
	p              *backupPlan
	st             *store.Store
	now            time.Time
	seen           map[string]bool
	caCert, caKey  []byte
	bytesNeeded    int64
	newRooms       int
	files, members int
}

// member checks one member but the end marker.
func (v *backupVerifier) member(tr *tar.Reader, hdr *tar.Header) error {
	name := hdr.Name
	var err error
	switch {
	case name == memberManifest:
		return v.manifest(tr, hdr)
	case name == memberIdentity:
		b, err := readSmall(tr, hdr)
		if err != nil {
			return err
		}
		if _, err := store.ParseIdentity(b); err != nil {
			return badBackup("bad-identity", "the box's identity in the backup does not parse: %v", err)
		}
	case name == memberCACert:
		v.caCert, err = readSmall(tr, hdr)
		return err
	case name == memberCAKey:
		v.caKey, err = readSmall(tr, hdr)
		return err
	case name == memberSettings:
		b, err := readSmall(tr, hdr)
		if err != nil {
			return err
		}
		if !jsonObject(b) {
			return badBackup("bad-settings", "the settings in the backup are not a JSON object")
		}
	case name == memberWiFi:
		b, err := readSmall(tr, hdr)
		if err != nil {
			return err
		}
		if _, err := web.ParseWiFi(b); err != nil {
			return badBackup("bad-settings", "the Wi-Fi settings in the backup are not valid: %v", err)
		}
	case name == memberBoxName:
		b, err := readSmall(tr, hdr)
		if err != nil {
			return err
		}
		if _, err := web.ParseBoxName(b); err != nil {
			return badBackup("bad-settings", "the box name in the backup is not valid: %v", err)
		}
	case strings.HasPrefix(name, roomsPrefix):
		return v.room(tr, name)
	case strings.HasPrefix(name, filesPrefix):
		return v.file(tr, hdr)
	default:
		return badBackup("not-a-backup", "member %q is not part of a backup", name)
	}
	return nil
}

func (v *backupVerifier) manifest(tr *tar.Reader, hdr *tar.Header) error {
	b, err := readSmall(tr, hdr)
	if err != nil {
		return err
	}
	p := v.p
	if err := json.Unmarshal(b, &p.m); err != nil || p.m.Format != backupFormat {
		return badBackup("not-a-backup", "not a backup: %s is not a %s manifest", memberManifest, backupFormat)
	}
	if p.m.V != backupVersion {
		return badBackup("bad-version", "the backup's format version is %d; this box reads version %d", p.m.V, backupVersion)
	}
	for _, rm := range p.m.Rooms {
		if _, dup := p.rooms[rm.ID]; dup {
			return badBackup("bad-entry", "the manifest lists room %s twice", rm.ID)
		}
		p.rooms[rm.ID] = rm
	}
	return nil
}

// room checks a room's entries (store.VerifyImport) against the manifest.
func (v *backupVerifier) room(tr *tar.Reader, name string) error {
	id := strings.TrimSuffix(strings.TrimPrefix(name, roomsPrefix), roomsSuffix)
	rm, ok := v.p.rooms[id]
	if !ok || !strings.HasSuffix(name, roomsSuffix) {
		return badBackup("bad-entry", "member %q is no room of the manifest", name)
	}
	lines := &entryLines{r: tr}
	c, err := v.st.VerifyImport(importRoom(rm), lines.all())
	if err != nil {
		if lines.cut {
			return badBackup("truncated", "room %q is cut: %v", rm.Name, err)
		}
		return badBackup("bad-entry", "room %q: %v", rm.Name, err)
	}
	if c.Entries != rm.Entries {
		return badBackup("bad-entry", "room %q holds %d entries, its manifest says %d", rm.Name, c.Entries, rm.Entries)
	}
	v.bytesNeeded += c.Bytes
	if c.NewRoom {
		v.newRooms++
	}
	return nil
}

// file checks a held file's content against the root that names it.
func (v *backupVerifier) file(tr *tar.Reader, hdr *tar.Header) error {
	name := hdr.Name
	short := name[len(filesPrefix):min(len(name), len(filesPrefix)+12)]
	var root [32]byte
	if n, err := hex.Decode(root[:], []byte(strings.TrimPrefix(name, filesPrefix))); err != nil || n != len(root) || len(name) != len(filesPrefix)+64 {
		return badBackup("bad-file", "member %q is not a file named by its root", name)
	}
	if hdr.Size < 1 || hdr.Size > pieces.MaxSize {
		return badBackup("bad-file", "file %s… has %d bytes (limit %d)", short, hdr.Size, int64(pieces.MaxSize))
	}
	leaves, err := pieces.Leaves(tr, hdr.Size)
	if err != nil {
		return badBackup("truncated", "file %s… is cut: %v", short, err)
	}
	if pieces.Root(leaves) != root {
		return badBackup("bad-file", "file %s… does not hash to its name: it was changed", short)
	}
	v.files++
	return nil
}

// end checks the end marker: the members before it, nothing after it.
func (v *backupVerifier) end(tr *tar.Reader, hdr *tar.Header) error {
	b, err := readSmall(tr, hdr)
	if err != nil {
		return err
	}
	var end struct {
		Members int `json:"members"`
	}
	if json.Unmarshal(b, &end) != nil || end.Members != v.members {
		return badBackup("truncated", "the end marker counts %d members, the file holds %d", end.Members, v.members)
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		return badBackup("not-a-backup", "something follows the end marker")
	}
	return nil
}

// complete checks, at the end marker, that nothing is missing and that the box takes it.
func (v *backupVerifier) complete() error {
	p, seen, st, newRooms, bytesNeeded := v.p, v.seen, v.st, v.newRooms, v.bytesNeeded
	for _, m := range []string{memberIdentity, memberCACert, memberCAKey} {
		if !seen[m] {
			return badBackup("truncated", "the backup holds no %s", m)
		}
	}
	for id, rm := range p.rooms {
		if !seen[roomsPrefix+id+roomsSuffix] {
			return badBackup("truncated", "room %q of the manifest is missing", rm.Name)
		}
	}
	if v.files != p.m.Files {
		return badBackup("truncated", "the backup holds %d files, its manifest says %d", v.files, p.m.Files)
	}
	if err := checkCA(v.caCert, v.caKey, v.now); err != nil {
		return badBackup("bad-ca", "the certificate authority in the backup: %v", err)
	}
	rooms, err := st.Rooms()
	if err != nil {
		return err
	}
	if l := st.Limits().Rooms; l >= 0 && len(rooms)+newRooms > l {
		return refuse(http.StatusInsufficientStorage, store.CodeRoomsFull, "the box keeps %d rooms and the backup adds %d: past the limit of %d", len(rooms), newRooms, l)
	}
	if err := st.CheckSpace(bytesNeeded); err != nil {
		return refuse(http.StatusInsufficientStorage, store.CodeStoreFull, "the history in the backup (%d bytes more) does not fit in the store's budget: %v", bytesNeeded, err)
	}
	return nil
}

// checkCA checks a CA as net/cert loads one: a PEM CA certificate, not expired, and a PEM
// PKCS #8 key that is its own.
func checkCA(certPEM, keyPEM []byte, now time.Time) error {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return errors.New("no PEM certificate")
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return err
	}
	if !ca.IsCA {
		return errors.New("the certificate is not a CA's")
	}
	if now.After(ca.NotAfter) {
		return fmt.Errorf("it expired on %s", ca.NotAfter.Format(time.DateOnly))
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return errors.New("no PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return err
	}
	signer, ok := k.(crypto.Signer)
	pub, ok2 := ca.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !ok2 || !pub.Equal(signer.Public()) {
		return errors.New("the key is not the CA's")
	}
	return nil
}

// readSmall reads a small member whole.
func readSmall(tr *tar.Reader, hdr *tar.Header) ([]byte, error) {
	if hdr.Size > maxBackupMeta {
		return nil, badBackup("not-a-backup", "%s has %d bytes (limit %d)", hdr.Name, hdr.Size, maxBackupMeta)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return nil, badBackup("truncated", "%s is cut: %v", hdr.Name, err)
	}
	return b, nil
}

func importRoom(rm backupRoom) store.ImportRoom {
	var created time.Time
	if rm.Created != 0 {
		created = time.UnixMilli(rm.Created)
	}
	return store.ImportRoom{ID: rm.ID, Name: rm.Name, Created: created}
}

// entryLines yields a room member's entries, one JSON object a line.
type entryLines struct {
	r   io.Reader
	cut bool // the member ended early (a cut file)
}

func (l *entryLines) all() iter.Seq2[history.Entry, error] {
	return func(yield func(history.Entry, error) bool) {
		br := bufio.NewReaderSize(l.r, maxBackupLine)
		for n := 1; ; n++ {
			line, err := br.ReadSlice('\n')
			if errors.Is(err, io.EOF) && len(line) == 0 {
				return
			}
			if err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
					l.cut = true
				}
				yield(history.Entry{}, fmt.Errorf("line %d: %w", n, err))
				return
			}
			var e history.Entry
			if err := json.Unmarshal(line, &e); err != nil {
				yield(history.Entry{}, fmt.Errorf("line %d is not an entry: %w", n, err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// importBackup is the second pass: the rooms merged into the store, the files written, the
// identity, the CA and the settings staged for the next start.
func importBackup(r io.Reader, p *backupPlan, st *store.Store, files *blobs.Store, dataDir string) (restoreResult, error) {
	res := restoreResult{Box: p.m.Box, Rooms: len(p.rooms)}
	pending := filepath.Join(dataDir, restorePending)
	if err := os.RemoveAll(pending); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	if err := os.MkdirAll(pending, 0o700); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	stage := map[string]string{memberIdentity: store.IdentityFile, memberCACert: cert.CAFile, memberCAKey: cert.CAKeyFile, memberSettings: web.SettingsFile,
		memberWiFi: web.WiFiFile, memberBoxName: web.BoxNameFile}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("restore: read again: %w", err)
		}
		switch name := hdr.Name; {
		case stage[name] != "":
			b, err := io.ReadAll(io.LimitReader(tr, maxBackupMeta))
			if err != nil {
				return res, fmt.Errorf("restore: %w", err)
			}
			if err := atomicfile.WriteBytes(filepath.Join(pending, stage[name]), 0o600, b); err != nil {
				return res, fmt.Errorf("restore: %w", err)
			}
		case strings.HasPrefix(name, roomsPrefix):
			id := strings.TrimSuffix(strings.TrimPrefix(name, roomsPrefix), roomsSuffix)
			lines := &entryLines{r: tr}
			n, err := st.Import(importRoom(p.rooms[id]), lines.all())
			res.Entries += n
			if err != nil {
				return res, fmt.Errorf("restore: %w", err)
			}
		case strings.HasPrefix(name, filesPrefix):
			var root [32]byte
			hex.Decode(root[:], []byte(strings.TrimPrefix(name, filesPrefix))) // checked by the first pass
			had := files.Has(root)
			if err := files.PutRoot(tr, hdr.Size, root); err != nil {
				return res, fmt.Errorf("restore: %w", err)
			}
			if !had {
				res.Files++
			}
		}
	}
	if err := atomicfile.SyncDir(pending); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	// Last: the marker makes the staged files count.
	if err := atomicfile.WriteBytes(filepath.Join(dataDir, restoreMarker), 0o600, []byte("restored from "+p.m.Box+" "+p.m.Created+"\n")); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	return res, nil
}

// restoreFile verifies the backup in f and, when it checks, imports it (both passes).
func restoreFile(f io.ReadSeeker, st *store.Store, files *blobs.Store, dataDir string, now time.Time) (restoreResult, error) {
	p, err := verifyBackup(f, st, now)
	if err != nil {
		return restoreResult{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return restoreResult{}, fmt.Errorf("restore: %w", err)
	}
	return importBackup(f, p, st, files, dataDir)
}

// applyRestore puts a staged restore's identity, CA and settings in their places, at a
// start before anything reads them: the current CA and server certificate are set aside
// (net/cert.Retire, into retired-ca-<time>/), the current identity is kept beside as
// identity.json.replaced-<time>. Each step is done once: a restore cut by a power loss
// resumes at the next start, and the marker goes last. Nothing staged: nothing done.
func applyRestore(dataDir string, log *slog.Logger) error {
	marker := filepath.Join(dataDir, restoreMarker)
	pending := filepath.Join(dataDir, restorePending)
	// Uploads a stop cut short (web/backup.go spools them here).
	if stale, err := filepath.Glob(filepath.Join(dataDir, ".restore-*.upload")); err == nil {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	if _, err := os.Stat(marker); errors.Is(err, fs.ErrNotExist) {
		// A restore cut before its marker: its staged files do not count.
		if err := os.RemoveAll(pending); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		return nil
	}
	staged := func(name string) bool {
		_, err := os.Stat(filepath.Join(pending, name))
		return err == nil
	}
	move := func(name string) error {
		return os.Rename(filepath.Join(pending, name), filepath.Join(dataDir, name))
	}
	now := time.Now()
	if staged(cert.CAKeyFile) {
		old, err := cert.Retire(dataDir, now)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if old != "" {
			log.Warn("restore: the box's previous CA is kept aside", "dir", old)
		}
		if err := move(cert.CAKeyFile); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if staged(cert.CAFile) {
		for _, f := range []string{cert.LeafFile, cert.LeafKeyFile} {
			if err := os.Remove(filepath.Join(dataDir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("restore: %w", err)
			}
		}
		if err := move(cert.CAFile); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if staged(store.IdentityFile) {
		cur := filepath.Join(dataDir, store.IdentityFile)
		if b, err := os.ReadFile(cur); err == nil {
			staged, _ := os.ReadFile(filepath.Join(pending, store.IdentityFile))
			if !bytes.Equal(b, staged) {
				if err := atomicfile.WriteBytes(fmt.Sprintf("%s.replaced-%d", cur, now.Unix()), 0o600, b); err != nil {
					return fmt.Errorf("restore: keep the old identity: %w", err)
				}
			}
		}
		if err := move(store.IdentityFile); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	// The owner's Wi-Fi and name: chattorrent-settings.path applies a new wifi.conf as
	// root (OPERATIONS.md, "Settings"); the name is read at this start.
	for _, f := range []string{web.SettingsFile, web.WiFiFile, web.BoxNameFile} {
		if !staged(f) {
			continue
		}
		if err := move(f); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if err := atomicfile.SyncDir(dataDir); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.RemoveAll(pending); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	log.Warn("restore: the box's identity, certificate authority and settings are the backup's now; the server certificate is issued again from that CA")
	return nil
}
