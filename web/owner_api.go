package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
)

// OwnerCookie holds the owner's token: HttpOnly, Secure, SameSite=Strict, Path=/api, so
// no script reads it, it never travels in plain HTTP, another site cannot make the
// browser send it, and no URL ever carries it.
const OwnerCookie = "ct_owner"

// ownerCookieMaxAge is as long as browsers keep a cookie (Chromium caps it at 400 days).
const ownerCookieMaxAge = 400 * 24 * 60 * 60

// The owner's API (Options.Owner):
//
//	GET  /api/owner           {claimed, owner}: anyone; what the page shows
//	POST /api/owner/claim     {code}: claims an unclaimed box (409 once claimed)
//	GET  /api/owner/settings  the box's settings and the rooms push-to-talk may use: owner only
//	PUT  /api/owner/settings  {mic_off, ptt_room, stick_export_off}: owner only
//	GET  /api/owner/network   the box's name and Wi-Fi (never the passphrase): owner only
//	PUT  /api/owner/network   {box_name, ssid, passphrase, country} (wifi.go): owner only
//
// Later owner-only features register on the same mux with ownerOnly (and sameOrigin for
// what changes something), e.g. PUT /api/owner/network.
func (o Options) ownerRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/owner", o.apiOwner)
	mux.HandleFunc("POST /api/owner/claim", o.apiClaim)
	mux.HandleFunc("GET /api/owner/settings", o.ownerOnly(o.apiSettings))
	mux.HandleFunc("PUT /api/owner/settings", o.ownerOnly(o.apiPutSettings))
	mux.HandleFunc("GET /api/owner/network", o.ownerOnly(o.apiNetwork))
	mux.HandleFunc("PUT /api/owner/network", o.ownerOnly(o.apiPutNetwork))
}

// isOwner reports whether r carries the owner's cookie.
func (o Options) isOwner(r *http.Request) bool {
	c, err := r.Cookie(OwnerCookie)
	return err == nil && o.Owner.IsOwner(c.Value)
}

// ownerOnly serves h to the owner only: 401 without an owner's cookie; every method but
// GET and HEAD also needs sameOrigin (403).
func (o Options) ownerOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
			fail(w, http.StatusForbidden, "forbidden", "cross-site request refused")
			return
		}
		if !o.isOwner(r) {
			fail(w, http.StatusUnauthorized, "not-owner", "only the box's owner may do this")
			return
		}
		h(w, r)
	}
}

// micRefused answers 403 mic-off when the owner switched the box's microphone off.
func (o Options) micRefused(w http.ResponseWriter) bool {
	if o.Owner == nil || !o.Owner.MicOff() {
		return false
	}
	fail(w, http.StatusForbidden, "mic-off", "the box's owner switched its microphone off")
	return true
}

type ownerState struct {
	Claimed bool `json:"claimed"`
	Owner   bool `json:"owner"` // the request carries the owner's cookie
}

func (o Options) apiOwner(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, ownerState{Claimed: o.Owner.Claimed(), Owner: o.isOwner(r)})
}

func (o Options) apiClaim(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		fail(w, http.StatusForbidden, "forbidden", "cross-site request refused")
		return
	}
	var req struct {
		Code string `json:"code"`
	}
	body, err := o.readBody(w, r, 1<<10)
	if o.slowBody(w, r, err) {
		return
	}
	if err != nil || json.Unmarshal(body, &req) != nil {
		fail(w, http.StatusBadRequest, "bad-request", "send {\"code\": \"…\"}")
		return
	}
	token, err := o.Owner.Claim(req.Code)
	switch {
	case err == nil:
	case errors.Is(err, ErrClaimed):
		fail(w, http.StatusConflict, "claimed", "the box already has an owner")
		return
	case errors.Is(err, ErrBadCode):
		fail(w, http.StatusForbidden, "bad-code", "wrong code: read it again in the box's log")
		return
	case errors.Is(err, ErrCodeChanged):
		fail(w, http.StatusTooManyRequests, "code-replaced", "too many wrong codes: the box printed a new code in its log")
		return
	case errors.Is(err, ErrClaimLocked):
		fail(w, http.StatusTooManyRequests, "claim-locked", "too many wrong codes: wait half a minute")
		return
	default:
		o.Logger.Error("claim", "err", err)
		fail(w, http.StatusInternalServerError, "failed", "the box could not save its owner")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: OwnerCookie, Value: token, Path: "/api", MaxAge: ownerCookieMaxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, ownerState{Claimed: true, Owner: true})
}

// OwnerRoom is a room the owner may pick for push-to-talk.
type OwnerRoom struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type settingsView struct {
	Settings
	Rooms []OwnerRoom `json:"rooms"` // the rooms the box keeps
}

func (o Options) apiSettings(w http.ResponseWriter, r *http.Request) {
	v := settingsView{Settings: o.Owner.Settings(), Rooms: []OwnerRoom{}}
	if o.Box != nil {
		rooms, err := o.Box.Rooms()
		if err != nil {
			o.Logger.Error("rooms", "err", err)
		}
		for _, b := range rooms {
			v.Rooms = append(v.Rooms, OwnerRoom{ID: b.ID, Name: b.Name})
		}
	}
	writeJSON(w, http.StatusOK, v)
}

func (o Options) apiPutSettings(w http.ResponseWriter, r *http.Request) {
	var s Settings
	body, err := o.readBody(w, r, 4<<10)
	if o.slowBody(w, r, err) {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err != nil || dec.Decode(&s) != nil {
		fail(w, http.StatusBadRequest, "bad-request", "send {\"mic_off\": bool, \"ptt_room\": \"\" or a room id, \"stick_export_off\": bool}")
		return
	}
	if s.PTTRoom != "" {
		var rooms []BoxRoom
		var err error
		if o.Box != nil {
			rooms, err = o.Box.Rooms()
		}
		if err != nil || !reRoomID.MatchString(s.PTTRoom) || !slices.ContainsFunc(rooms, func(b BoxRoom) bool { return b.ID == s.PTTRoom }) {
			fail(w, http.StatusBadRequest, "no-room", "push-to-talk wants a room the box keeps, or automatic")
			return
		}
	}
	if err := o.Owner.SetSettings(s); err != nil {
		o.Logger.Error("settings", "err", err)
		fail(w, http.StatusInternalServerError, "failed", "the box could not save its settings")
		return
	}
	o.apiSettings(w, r)
}
