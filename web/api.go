package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/chattorrent/chattorrent/net/torrent"
)

// Box is the appliance as a peer (net/archiver behind an adapter in firmware): the page
// invites it into rooms and downloads the histories it keeps.
type Box interface {
	// Connect answers an offer .torrent with an answer .torrent. ctx carries who asks
	// (ProvenAuthors, ClientAddr). Errors the API reports with their own codes:
	// ErrNotOffer, ErrBadSDP, ErrBoxBusy, ErrTooMany, ErrStoreFull, a *torrent.Error.
	Connect(ctx context.Context, offer []byte) ([]byte, error)
	// Rooms lists the rooms the box keeps.
	Rooms() ([]BoxRoom, error)
	// Export returns the room's name and a func writing its verifiable history export
	// (JSON); ErrNoRoom when the box does not keep it. The func streams: it may be called
	// once, and memory should not grow with the room.
	Export(room string) (string, func(io.Writer) error, error)
	// ExportZip returns the room's name and a func writing its export with the files the
	// box holds as a zip (PROTOCOL.md §4), streamed like Export's; ErrNoRoom when the box
	// does not keep it.
	ExportZip(room string) (string, func(io.Writer) error, error)
	// Member reports whether one of authors (identity keys) wrote in the room's stored
	// history; ErrNoRoom when the box does not keep the room.
	Member(room string, authors []string) (bool, error)
}

// BoxHardware is the box's board (microphone, buttons, LED, USB sticks), when the page
// may use it: the status page lists what is there, and a room kept on the box can get a
// voice note from the box's microphone.
type BoxHardware interface {
	Status() []BoxFeature
	// RecordVoice records up to d from the box's microphone and posts it into room.
	RecordVoice(ctx context.Context, room string, d time.Duration) error
}

// BoxFeature is one line of the box's status.
type BoxFeature struct {
	Feature string `json:"feature"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail"`         // English, for the log and as the page's fallback
	Code    string `json:"code,omitempty"` // why it is absent, for the page to translate (board.Absent…)
}

// MaxVoiceSeconds bounds a voice note recorded from the page.
const MaxVoiceSeconds = 120

// BoxRoom is one room the box keeps.
type BoxRoom struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Entries int    `json:"entries"`
	LastTS  int64  `json:"last_ts"`
}

// Errors a Box returns that the API reports with their own status.
var (
	ErrNoRoom   = errors.New("web: the box keeps no such room")
	ErrBoxBusy  = errors.New("web: the box has too many peers right now")
	ErrNotOffer = errors.New("web: the invitation is not an offer")
)

var reRoomID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// apiError is the JSON body of every failed API call.
type apiError struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Error: msg})
}

// sameOrigin is the CSRF guard of every POST: the page sends X-ChatTorrent: 1 (a header a
// cross-site form cannot set, and which a cross-origin fetch may only send after a CORS
// preflight that this server never answers), and a browser's Origin must be this host.
func sameOrigin(r *http.Request) bool {
	if r.Header.Get("X-ChatTorrent") != "1" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser, or a same-origin GET-like request
	}
	u, err := url.Parse(o)
	return err == nil && u.Scheme == "https" && u.Host == r.Host
}

// apiRooms lists the rooms the box keeps of which the request proved a member's key;
// a stranger gets an empty list.
func (o Options) apiRooms(w http.ResponseWriter, r *http.Request) {
	mine := []BoxRoom{}
	if o.local(r) {
		rooms, err := o.Box.Rooms()
		if err != nil {
			o.Logger.Error("rooms", "err", err)
			fail(w, http.StatusInternalServerError, "failed", "the box could not list its rooms")
			return
		}
		writeJSON(w, http.StatusOK, append(mine, rooms...))
		return
	}
	if authors := o.Members.Authors(r); len(authors) > 0 {
		rooms, err := o.Box.Rooms()
		if err != nil {
			o.Logger.Error("rooms", "err", err)
			fail(w, http.StatusInternalServerError, "failed", "the box could not list its rooms")
			return
		}
		for _, b := range rooms {
			if ok, err := o.Box.Member(b.ID, authors); err == nil && ok {
				mine = append(mine, b)
			}
		}
	}
	writeJSON(w, http.StatusOK, mine)
}

func (o Options) apiConnect(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		fail(w, http.StatusForbidden, "forbidden", "cross-site request refused")
		return
	}
	body, err := o.readBody(w, r, torrent.MaxSize)
	if o.slowBody(w, r, err) {
		return
	}
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, torrent.CodeTooLarge, "an invitation is at most 65536 bytes")
		return
	}
	// A room the box keeps is joined only by a member (it would hand the joiner the
	// room's whole history); a room it does not keep is made for whoever invites it.
	var te *torrent.Error
	if inv, err := torrent.Decode(body); err == nil {
		if ok, err := o.Box.Member(inv.Room, o.Members.Authors(r)); err == nil && !ok {
			notFound(w)
			return
		}
	}
	ctx := withClient(withProven(r.Context(), o.Members.Authors(r)), clientAddr(r))
	answer, err := o.Box.Connect(ctx, body)
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "application/x-bittorrent")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(answer)
	case errors.As(err, &te):
		fail(w, http.StatusBadRequest, te.Code, te.Error())
	case errors.Is(err, ErrNotOffer):
		fail(w, http.StatusBadRequest, "not-offer", "send the room's offer (_offer.torrent), not an answer")
	case errors.Is(err, ErrBadSDP):
		fail(w, http.StatusBadRequest, CodeBadSDP, "the offer holds no WebRTC connection the box can answer")
	case errors.Is(err, ErrTooMany):
		o.tooMany(w, r, "opening connections per client", "this device has too many connections opening; wait half a minute")
	case errors.Is(err, ErrBoxBusy):
		fail(w, http.StatusServiceUnavailable, "busy", "the box has too many peers right now; try again in a minute")
	case errors.Is(err, ErrStoreFull):
		fail(w, http.StatusInsufficientStorage, CodeStoreFull, "the box's store is full: it keeps no more rooms or entries")
	default:
		o.Logger.Error("connect", "err", err)
		fail(w, http.StatusInternalServerError, "failed", "the box could not answer")
	}
}

func (o Options) apiStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, o.Hardware.Status())
}

func (o Options) apiVoice(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		fail(w, http.StatusForbidden, "forbidden", "cross-site request refused")
		return
	}
	if o.micRefused(w) {
		return
	}
	id := r.PathValue("id")
	if !reRoomID.MatchString(id) {
		fail(w, http.StatusBadRequest, "bad-room", "a room id is 32 lowercase hex characters")
		return
	}
	secs, err := strconv.Atoi(r.URL.Query().Get("seconds"))
	if err != nil || secs < 1 || secs > MaxVoiceSeconds {
		fail(w, http.StatusBadRequest, "bad-seconds", fmt.Sprintf("seconds wants 1..%d", MaxVoiceSeconds))
		return
	}
	if !o.memberOf(r, id) {
		notFound(w)
		return
	}
	if err := o.Hardware.RecordVoice(r.Context(), id, time.Duration(secs)*time.Second); err != nil {
		if errors.Is(err, ErrStoreFull) {
			fail(w, http.StatusInsufficientStorage, CodeStoreFull, "the box's store is full: it keeps no more entries or files")
			return
		}
		fail(w, http.StatusConflict, "record-failed", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (o Options) apiHistory(w http.ResponseWriter, r *http.Request) {
	o.export(w, r, "history.json", "application/json", o.Box.Export)
}

func (o Options) apiHistoryZip(w http.ResponseWriter, r *http.Request) {
	o.export(w, r, "history.zip", "application/zip", o.Box.ExportZip)
}

// export serves a room's history.json or history.zip, streamed from the store: neither the
// JSON nor the room is held whole. At most MaxConcurrentExports run at once, each one pass
// over the room on the box's CPU; beyond that the answer is 503 busy.
func (o Options) export(w http.ResponseWriter, r *http.Request, file, ctype string, export func(string) (string, func(io.Writer) error, error)) {
	id := r.PathValue("id")
	if !reRoomID.MatchString(id) {
		fail(w, http.StatusBadRequest, "bad-room", "a room id is 32 lowercase hex characters")
		return
	}
	if !o.memberOf(r, id) {
		notFound(w)
		return
	}
	release, ok := o.exports.take()
	if !ok {
		o.refused.note(o.Logger, "concurrent exports", clientAddr(r))
		fail(w, http.StatusServiceUnavailable, "busy", "the box is exporting other rooms right now; try again in a minute")
		return
	}
	defer release()
	name, write, err := export(id)
	switch {
	case errors.Is(err, ErrNoRoom):
		fail(w, http.StatusNotFound, "no-room", "the box keeps no such room")
		return
	case err != nil:
		o.Logger.Error("export", "room", id, "file", file, "err", err)
		fail(w, http.StatusInternalServerError, "failed", "the box could not export the room")
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="`+torrent.SafeFileName(name)+"_"+file+`"`)
	// Streamed: a room may be large, and its files larger. A failure before the first byte
	// (the writers buffer the first kilobytes) is still a 500; one midway cuts the
	// response: the JSON is then unfinished and the zip lacks its central directory, so no
	// tool takes either for whole. Each write waits at most WriteTimeout for a client that
	// stopped reading.
	rc := http.NewResponseController(w)
	sent := &sentWriter{w: deadlineWriter{w: w, rc: rc, timeout: o.WriteTimeout}}
	if err := write(sent); err != nil {
		if !sent.any {
			o.Logger.Error("export", "room", id, "file", file, "err", err)
			w.Header().Del("Content-Disposition")
			fail(w, http.StatusInternalServerError, "failed", "the box could not export the room")
			return
		}
		o.Logger.Warn("export cut", "room", id, "file", file, "err", err)
	}
	// Left set for the last bytes the server flushes: it lifts it once the response is out
	// (HTTP/1.1), or resets a stream that missed it (HTTP/2).
	rc.SetWriteDeadline(time.Now().Add(o.WriteTimeout))
}

// sentWriter notes whether anything was written.
type sentWriter struct {
	w   io.Writer
	any bool
}

func (s *sentWriter) Write(p []byte) (int, error) {
	s.any = s.any || len(p) > 0
	return s.w.Write(p)
}
