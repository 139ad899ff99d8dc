package web

import (
	"errors"
	"net/http"
	"os"
	"sync"
	"time"
)

// Updater stages a signed release the owner uploads (firmware/update behind it).
type Updater interface {
	// Stage reads a release file, verifies it and makes it the next start's program, on
	// trial. A refused release changes nothing; its error is an *UpdateError.
	Stage(r *http.Request) (version string, err error)
	// Status is what the owner sees: the running version, the staged and previous
	// releases, the last outcome (JSON).
	Status() (any, error)
	// Restart stops the box cleanly and starts the staged release.
	Restart()
}

// UpdateError is a release the box refused, with the API's code for it.
type UpdateError struct {
	Status int    // HTTP status: 413, 422 or 501
	Code   string // "not-a-release", "bad-signature", "wrong-platform", "truncated", "too-big", "updates-off"
	Err    error
}

func (e *UpdateError) Error() string { return e.Err.Error() }
func (e *UpdateError) Unwrap() error { return e.Err }

// MaxUploadTime bounds how long a release upload may take (a 25 MiB file over a slow
// phone's Wi-Fi), instead of BodyReadTimeout.
const MaxUploadTime = 10 * time.Minute

// The owner's update API (Options.Update):
//
//	GET  /api/owner/update   the running version and the releases' state: owner only
//	POST /api/owner/update   a release file as the body: owner only; 202, then the box
//	                         restarts into it on trial (rolled back when not healthy
//	                         within a minute)
func (o Options) updateRoutes(mux *http.ServeMux) {
	busy := new(sync.Mutex)
	mux.HandleFunc("GET /api/owner/update", o.ownerOnly(o.apiUpdateStatus))
	mux.HandleFunc("POST /api/owner/update", o.ownerOnly(func(w http.ResponseWriter, r *http.Request) {
		if !busy.TryLock() {
			fail(w, http.StatusConflict, "busy", "another release is being uploaded")
			return
		}
		defer busy.Unlock()
		o.apiUpdate(w, r)
	}))
}

func (o Options) apiUpdateStatus(w http.ResponseWriter, r *http.Request) {
	st, err := o.Update.Status()
	if err != nil {
		o.Logger.Error("update status", "err", err)
		fail(w, http.StatusInternalServerError, "internal", "the update state cannot be read")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"running": o.Version, "state": st})
}

func (o Options) apiUpdate(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(MaxUploadTime)); err == nil {
		defer rc.SetReadDeadline(time.Time{})
	}
	version, err := o.Update.Stage(r)
	var ue *UpdateError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ue):
		o.Logger.Warn("update refused", "code", ue.Code, "err", err)
		fail(w, ue.Status, ue.Code, ue.Error())
		return
	case errors.As(err, &mbe):
		fail(w, http.StatusRequestEntityTooLarge, "too-big", "the release is too big")
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		o.slowBody(w, r, err)
		return
	case err != nil:
		o.Logger.Error("update", "err", err)
		fail(w, http.StatusInternalServerError, "internal", "the release could not be stored: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"version": version, "status": "restarting"})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	o.Update.Restart()
}
