package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/chattorrent/chattorrent/board"
	"github.com/chattorrent/chattorrent/web"
)

// defaultOwnerResetFile is where a person who lost the owner's cookie puts an (empty) file
// to make the box forget its owner at the next start: the boot partition of Raspberry Pi
// OS, which any computer can write when the SD card is plugged in.
const defaultOwnerResetFile = "/boot/firmware/chattorrent-reset-owner"

// errMicOff is push-to-talk's and RecordVoice's refusal while the owner switched the
// microphone off.
var errMicOff = errors.New("the box's owner switched its microphone off")

// openOwner loads the box's owner from the data directory, after the reset: the reset file
// present (it is then deleted) or the export button held while the box starts forgets the
// owner. An unclaimed box prints its claim code in the log and on console.
func openOwner(cfg Config, brd *board.Board, console io.Writer, log *slog.Logger) (*web.Owner, error) {
	reset := ""
	if cfg.OwnerResetFile != "" {
		switch _, err := os.Stat(cfg.OwnerResetFile); {
		case err == nil:
			reset = "the reset file " + cfg.OwnerResetFile + " is present"
			if err := os.Remove(cfg.OwnerResetFile); err != nil {
				// A read-only boot partition: every start forgets the owner until it is removed.
				log.Error("owner: could not delete the reset file; delete it by hand", "file", cfg.OwnerResetFile, "err", err)
			}
		case !errors.Is(err, fs.ErrNotExist):
			log.Warn("owner: reset file", "err", err)
		}
	}
	if held, ok := brd.ExportButton.(interface{ Pressed() bool }); ok && held.Pressed() {
		reset = "the export button was held at start"
	}
	if reset != "" {
		if err := os.Remove(filepath.Join(cfg.DataDir, web.OwnerFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("owner reset: %w", err)
		}
		log.Warn("owner: the box forgot its owner: whoever types the new claim code becomes its owner", "why", reset)
	}
	return web.NewOwner(web.OwnerOptions{Dir: cfg.DataDir, Logger: log, Console: console})
}

// voiceRoom is the room a push-to-talk note goes to: the one the owner picked on the box's
// page while the box keeps it; else the room a peer most recently wrote to, by the box's own
// receive time since it started (never an entry's ts: its author chose it); else the only
// room the box keeps. With several rooms and nothing received yet, the owner must pick.
func (h *hardware) voiceRoom() (string, error) {
	rooms, err := h.st.Rooms()
	if err != nil {
		return "", err
	}
	if len(rooms) == 0 {
		return "", errors.New("the box keeps no room yet: invite it into one first")
	}
	kept := make(map[string]bool, len(rooms))
	for _, r := range rooms {
		kept[r.ID] = true
	}
	if h.owner != nil {
		if id := h.owner.Settings().PTTRoom; id != "" && kept[id] {
			return id, nil
		}
	}
	var best string
	var at time.Time
	for id, t := range h.received() {
		if kept[id] && (best == "" || t.After(at)) {
			best, at = id, t
		}
	}
	if best != "" {
		return best, nil
	}
	if len(rooms) == 1 {
		return rooms[0].ID, nil
	}
	return "", errors.New("no member wrote in any room since the box started: the owner picks the push-to-talk room on the box's page")
}

// micOff reports whether the owner switched the box's microphone off.
func (h *hardware) micOff() bool { return h.owner != nil && h.owner.MicOff() }
