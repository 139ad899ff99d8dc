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
		switch fi, err := os.Stat(cfg.OwnerResetFile); {
		case err == nil:
			reset = resetByFile(cfg, fi, log)
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

// ownerResetSeen, in the data directory, remembers a reset file the box could not delete
// (the unit's ProtectSystem=strict makes /boot read-only to the service): its size and
// modification time, so the same file resets the owner once, and a new one again.
const ownerResetSeen = "owner-reset.seen"

// resetByFile says why the owner is reset by the reset file fi, or "" when that same file
// already reset it at an earlier start.
func resetByFile(cfg Config, fi fs.FileInfo, log *slog.Logger) string {
	seenPath := filepath.Join(cfg.DataDir, ownerResetSeen)
	err := os.Remove(cfg.OwnerResetFile)
	if err == nil {
		os.Remove(seenPath)
		return "the reset file " + cfg.OwnerResetFile + " was present (now deleted)"
	}
	stamp := fmt.Sprintf("%d %d\n", fi.Size(), fi.ModTime().UnixNano())
	if old, rerr := os.ReadFile(seenPath); rerr == nil && string(old) == stamp {
		log.Warn("owner: the reset file was already applied at an earlier start and cannot be deleted by the service; delete it by hand",
			"file", cfg.OwnerResetFile, "err", err)
		return ""
	}
	if werr := os.WriteFile(seenPath, []byte(stamp), 0o600); werr != nil {
		log.Error("owner: cannot remember the reset file; every start will reset the owner until it is deleted", "err", werr)
	}
	log.Warn("owner: cannot delete the reset file; delete it by hand (it resets the owner only once)", "file", cfg.OwnerResetFile, "err", err)
	return "the reset file " + cfg.OwnerResetFile + " is present"
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
