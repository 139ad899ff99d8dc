package web

import (
	"encoding/json"
	"net/http"
)

// OwnerBox is what the owner's page shows of the box and the one thing it may undo whole.
type OwnerBox interface {
	// Storage is the space each room and the files take (JSON).
	Storage() (any, error)
	// Logs returns the box's last log lines, oldest first.
	Logs() []string
	// ResetWord is what the owner must type to confirm a factory reset: the box's name.
	ResetWord() string
	// FactoryReset forgets everything (rooms, files, the CA, the identity, the owner,
	// staged releases) at a restart it starts at once.
	FactoryReset() error
}

// The owner's box API (Options.OwnerBox), all owner only:
//
//	GET  /api/owner/storage        rooms with their entries and the bytes in use
//	GET  /api/owner/logs           the last log lines (text/plain)
//	GET  /api/owner/factory-reset  what a reset loses and the word that confirms it
//	POST /api/owner/factory-reset  {confirm: the box's name}: 202, then the box restarts empty
func (o Options) ownerBoxRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/owner/storage", o.ownerOnly(func(w http.ResponseWriter, r *http.Request) {
		st, err := o.OwnerBox.Storage()
		if err != nil {
			o.Logger.Error("owner storage", "err", err)
			fail(w, http.StatusInternalServerError, "internal", "the storage use cannot be read")
			return
		}
		writeJSON(w, http.StatusOK, st)
	}))
	mux.HandleFunc("GET /api/owner/logs", o.ownerOnly(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		for _, l := range o.OwnerBox.Logs() {
			w.Write([]byte(l))
		}
	}))
	mux.HandleFunc("GET /api/owner/factory-reset", o.ownerOnly(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"confirm": o.OwnerBox.ResetWord(), "lost": resetLoses})
	}))
	mux.HandleFunc("POST /api/owner/factory-reset", o.ownerOnly(o.apiFactoryReset))
	if bk, ok := o.OwnerBox.(Backup); ok {
		o.backupRoutes(mux, bk) // backup.go
	}
}

// resetLoses names what a factory reset removes, for the confirmation (the page words it).
var resetLoses = []string{"rooms", "files", "ca", "identity", "owner", "settings", "releases"}

func (o Options) apiFactoryReset(w http.ResponseWriter, r *http.Request) {
	body, err := o.readBody(w, r, 1<<10)
	if o.slowBody(w, r, err) {
		return
	}
	var req struct {
		Confirm string `json:"confirm"`
	}
	if err != nil || json.Unmarshal(body, &req) != nil {
		fail(w, http.StatusBadRequest, "bad-request", "want {confirm}")
		return
	}
	if req.Confirm != o.OwnerBox.ResetWord() {
		fail(w, http.StatusBadRequest, "bad-confirm", "type the box's name to confirm the factory reset")
		return
	}
	if err := o.OwnerBox.FactoryReset(); err != nil {
		o.Logger.Error("factory reset", "err", err)
		fail(w, http.StatusInternalServerError, "internal", "the factory reset could not start: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "resetting"})
}
