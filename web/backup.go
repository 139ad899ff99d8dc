package web

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// Backup is the owner's full backup and restore (firmware/backup.go behind it). An
// Options.OwnerBox that also satisfies Backup gets the routes below.
type Backup interface {
	// BackupName is the download's file name: chattorrent-<box>-backup-<time>.tar.
	BackupName(now time.Time) string
	// WriteBackup writes the whole backup to w, streamed.
	WriteBackup(w io.Writer, now time.Time) error
	// RestoreLimit is the largest backup an upload may be (bytes).
	RestoreLimit() int64
	// SpoolDir is where an uploaded backup is written before it is read (the data
	// directory: on the card, not in RAM).
	SpoolDir() string
	// Restore checks the backup in f whole and, only if every part checks, merges it into
	// the box. A refused backup changes nothing; its error is a *RestoreError.
	Restore(f *os.File) (RestoreResult, error)
	// RestartAfterRestore restarts the box, which takes the restored identity, CA and
	// settings at its start. Called after the answer when RestoreResult.Restarting.
	RestartAfterRestore()
}

// RestoreResult is what a restore did.
type RestoreResult struct {
	Box        string `json:"box"`        // the backed-up box's name
	Rooms      int    `json:"rooms"`      // rooms in the backup
	Entries    int    `json:"entries"`    // entries the box did not hold and now does
	Files      int    `json:"files"`      // files the box did not hold and now does
	Restarting bool   `json:"restarting"` // the box restarts to take the restored CA and identity (else at its next start)
}

// RestoreError is a backup the box refused, with the API's code for it; nothing changed.
type RestoreError struct {
	Status int    // HTTP status: 413, 422 or 507
	Code   string // "not-a-backup", "bad-version", "truncated", "bad-entry", "bad-file", "bad-ca", "bad-identity", "bad-settings", "too-big", "store-full", "rooms-full"
	Err    error
}

func (e *RestoreError) Error() string { return e.Err.Error() }
func (e *RestoreError) Unwrap() error { return e.Err }

// MaxRestoreTime bounds how long a backup upload may take (a large box over a phone's
// Wi-Fi), instead of BodyReadTimeout.
const MaxRestoreTime = time.Hour

// The owner's backup API (an OwnerBox that is a Backup), owner only:
//
//	GET  /api/owner/backup   the whole box as one tar, streamed (one of the export slots)
//	POST /api/owner/restore  a backup as the body: 200 with what was restored, then the box
//	                         restarts; a refused backup is 413, 422 or 507 with its code
//	                         and changes nothing
func (o Options) backupRoutes(mux *http.ServeMux, bk Backup) {
	busy := new(sync.Mutex)
	mux.HandleFunc("GET /api/owner/backup", o.ownerOnly(func(w http.ResponseWriter, r *http.Request) { o.apiBackup(w, r, bk) }))
	mux.HandleFunc("POST /api/owner/restore", o.ownerOnly(func(w http.ResponseWriter, r *http.Request) {
		if !busy.TryLock() {
			fail(w, http.StatusConflict, "busy", "another backup is being restored")
			return
		}
		defer busy.Unlock()
		o.apiRestore(w, r, bk)
	}))
}

func (o Options) apiBackup(w http.ResponseWriter, r *http.Request, bk Backup) {
	release, ok := o.exports.take()
	if !ok {
		fail(w, http.StatusServiceUnavailable, "busy", "the box is exporting rooms right now; try again in a minute")
		return
	}
	defer release()
	now := time.Now()
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="`+bk.BackupName(now)+`"`)
	rc := http.NewResponseController(w)
	sent := &sentWriter{w: deadlineWriter{w: w, rc: rc, timeout: o.WriteTimeout}}
	if err := bk.WriteBackup(sent, now); err != nil {
		if !sent.any {
			o.Logger.Error("backup", "err", err)
			w.Header().Del("Content-Disposition")
			fail(w, http.StatusInternalServerError, "failed", "the box could not write its backup: "+err.Error())
			return
		}
		// Cut midway: the tar lacks its end marker, so a restore refuses it as truncated.
		o.Logger.Warn("backup cut", "err", err)
	}
	rc.SetWriteDeadline(time.Now().Add(o.WriteTimeout))
}

func (o Options) apiRestore(w http.ResponseWriter, r *http.Request, bk Backup) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(MaxRestoreTime)); err == nil {
		defer rc.SetReadDeadline(time.Time{})
	}
	limit := bk.RestoreLimit()
	if r.ContentLength > limit {
		fail(w, http.StatusRequestEntityTooLarge, "too-big", "the backup is larger than this box takes")
		return
	}
	f, err := os.CreateTemp(bk.SpoolDir(), ".restore-*.upload")
	if err != nil {
		o.Logger.Error("restore", "err", err)
		fail(w, http.StatusInternalServerError, "internal", "the box cannot receive the backup: "+err.Error())
		return
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	_, err = io.Copy(f, http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		fail(w, http.StatusRequestEntityTooLarge, "too-big", "the backup is larger than this box takes")
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		o.slowBody(w, r, err)
		return
	case err != nil:
		fail(w, http.StatusBadRequest, "truncated", "the upload did not arrive whole: "+err.Error())
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		fail(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	res, err := bk.Restore(f)
	var re *RestoreError
	switch {
	case errors.As(err, &re):
		o.Logger.Warn("restore refused", "code", re.Code, "err", err)
		fail(w, re.Status, re.Code, re.Error())
		return
	case err != nil:
		o.Logger.Error("restore", "err", err)
		fail(w, http.StatusInternalServerError, "internal", "the restore failed midway (what the box held is kept): "+err.Error())
		return
	}
	o.Logger.Warn("restored from a backup", "box", res.Box, "rooms", res.Rooms, "entries", res.Entries, "files", res.Files)
	writeJSON(w, http.StatusOK, res)
	if !res.Restarting {
		return
	}
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	bk.RestartAfterRestore()
}
