package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/chattorrent/chattorrent/board"
	"github.com/chattorrent/chattorrent/net/archiver"
	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/web"
)

// hardware runs the box's board: push-to-talk voice notes into a room, the export button
// and USB sticks, the status LED. Every part is optional: what the board lacks was said
// once by board.Open and is listed by Status.
type hardware struct {
	b        *board.Board
	arch     *archiver.Archiver
	st       *store.Store
	blobs    *blobs.Store
	log      *slog.Logger
	maxVoice time.Duration
	blink    *board.Blinker // nil: no LED
	runBlink bool           // Run plays blink (false: its owner does)
	onLED    func(board.Pattern)

	owner    *web.Owner                  // nil: no owner (mic on, push-to-talk automatic)
	activity *web.Activity               // nil: no page is told that the box records
	received func() map[string]time.Time // when each room last got a peer's entry (archiver)

	mu         sync.Mutex
	busy       bool      // recording or exporting
	lastExport string    // what the last export did, for the status page
	lastFailed bool      // and whether it failed
	patternAt  time.Time // when the LED's pattern was last set
}

// ledHold is how long the LED shows "done" or "error" before it goes back to saying
// whether a peer is connected.
const ledHold = 20 * time.Second

func newHardware(b *board.Board, arch *archiver.Archiver, st *store.Store, blobs *blobs.Store, maxVoice time.Duration, log *slog.Logger) *hardware {
	h := &hardware{b: b, arch: arch, st: st, blobs: blobs, log: log.With("component", "hardware"), maxVoice: maxVoice}
	h.received = func() map[string]time.Time { return nil }
	if arch != nil {
		h.received = arch.LastReceived
	}
	if b.LED != nil {
		h.blink = board.NewBlinker(b.LED, board.BlinkerOptions{Logger: log})
		h.runBlink = true
	}
	return h
}

// startLED plays "starting" on the board's LED from now on (serve opens the board first,
// so the LED blinks while the store opens and checks its entries) and returns the Blinker
// with a stop func that turns the LED off; newHardware's Run then takes it over.
func startLED(ctx context.Context, led board.LED, log *slog.Logger) (*board.Blinker, func()) {
	if led == nil {
		return nil, func() {}
	}
	b := board.NewBlinker(led, board.BlinkerOptions{Logger: log})
	b.Set(board.LEDStarting)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Run(ctx)
	}()
	return b, func() { cancel(); <-done }
}

func (h *hardware) pattern(p board.Pattern) {
	if h.blink == nil {
		return
	}
	h.mu.Lock()
	h.patternAt = time.Now()
	h.mu.Unlock()
	h.blink.Set(p)
	if h.onLED != nil {
		h.onLED(p)
	}
}

// idle is the LED's pattern while the box neither records nor exports.
func (h *hardware) idle() board.Pattern {
	if h.arch != nil && h.arch.Peers() > 0 {
		return board.LEDPeerConnected
	}
	return board.LEDServing
}

// followPeers keeps the idle pattern true as peers come and go, and ends "done" and
// "error" after ledHold; recording and exporting set what follows them themselves.
func (h *hardware) followPeers(ctx context.Context) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		h.mu.Lock()
		busy, at := h.busy, h.patternAt
		h.mu.Unlock()
		cur := h.blink.Current()
		switch {
		case busy:
			continue
		case cur == board.LEDDone || cur == board.LEDError:
			if time.Since(at) < ledHold {
				continue
			}
		case cur != board.LEDServing && cur != board.LEDPeerConnected:
			continue
		}
		if want := h.idle(); want != cur {
			h.pattern(want)
		}
	}
}

// Run serves the buttons and sticks until ctx ends.
func (h *hardware) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if h.blink != nil {
		if h.runBlink {
			g.Go(func() error { return h.blink.Run(ctx) })
		}
		g.Go(func() error { return h.followPeers(ctx) })
	}
	h.pattern(h.idle())
	if h.b.PushToTalk != nil && h.b.Mic != nil {
		g.Go(func() error { return h.pushToTalk(ctx) })
	}
	if h.b.ExportButton != nil {
		g.Go(func() error { return h.exportButton(ctx) })
	}
	if h.b.Volumes != nil {
		g.Go(func() error { return h.sticks(ctx) })
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (h *hardware) pushToTalk(ctx context.Context) error {
	for {
		if err := board.WaitPress(ctx, h.b.PushToTalk); err != nil {
			return nil
		}
		if h.micOff() {
			h.log.Warn("push-to-talk: not recording", "err", errMicOff)
			h.pattern(board.LEDError)
			continue
		}
		room, err := h.voiceRoom()
		if err != nil {
			h.log.Warn("voice note not recorded", "err", err)
			h.pattern(board.LEDError)
			continue
		}
		released := make(chan struct{})
		go func() { // the release ends the note
			defer close(released)
			for {
				ev, err := h.b.PushToTalk.Next(ctx)
				if err != nil || !ev.Pressed {
					return
				}
			}
		}()
		if _, err := h.RecordVoice(ctx, room, released, h.maxVoice); err != nil {
			h.log.Warn("voice note failed", "room", room, "err", err)
		}
		<-released
	}
}

// RecordVoice records from the box's microphone until stop closes or max, and posts the
// note into room as the box's own entry.
func (h *hardware) RecordVoice(ctx context.Context, room string, stop <-chan struct{}, max time.Duration) (history.Entry, error) {
	if h.b.Mic == nil {
		return history.Entry{}, errors.New("the box has no microphone")
	}
	if h.micOff() {
		return history.Entry{}, errMicOff
	}
	// A full store is refused before the microphone opens: nobody records for nothing.
	if err := h.st.CheckSpace(voiceNoteBytes(min(max, h.maxVoice))); err != nil {
		h.pattern(board.LEDError)
		return history.Entry{}, err
	}
	h.mu.Lock()
	if h.busy {
		h.mu.Unlock()
		return history.Entry{}, errors.New("the box is busy recording or exporting")
	}
	h.busy = true
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.busy = false
		h.mu.Unlock()
	}()
	h.pattern(board.LEDRecording)
	if h.activity != nil { // the LED and every member's page say the box records
		h.activity.SetRecording(room)
	}
	rec, err := board.Record(ctx, h.b.Mic, stop, min(max, h.maxVoice))
	if h.activity != nil {
		h.activity.SetRecording("")
	}
	if err != nil {
		h.pattern(board.LEDError)
		return history.Entry{}, fmt.Errorf("record: %w", err)
	}
	h.pattern(h.idle())
	if rec.Duration() < 200*time.Millisecond {
		return history.Entry{}, errors.New("the note is too short")
	}
	var wav bytes.Buffer
	if _, err := board.WriteWAV(&wav, rec, h.maxVoice); err != nil {
		return history.Entry{}, err
	}
	name := "voz-caja-" + time.Now().Format("20060102-150405") + ".wav"
	meta := pieces.Meta{Kind: "voice", Size: int64(wav.Len()), Name: name, Type: "audio/wav", Duration: rec.Duration().Milliseconds()}
	e, err := h.arch.PostFile(ctx, room, meta, &wav)
	if err != nil {
		h.pattern(board.LEDError)
		return history.Entry{}, err
	}
	return e, nil
}

func (h *hardware) exportButton(ctx context.Context) error {
	for {
		if err := board.WaitPress(ctx, h.b.ExportButton); err != nil {
			return nil
		}
		sticks := h.mounted()
		if len(sticks) == 0 {
			h.note("export: no USB stick is mounted", true)
			h.pattern(board.LEDError)
			continue
		}
		h.ExportTo(ctx, sticks[0])
	}
}

func (h *hardware) sticks(ctx context.Context) error {
	for {
		path, err := h.b.Volumes.Next(ctx)
		if err != nil {
			return nil
		}
		if h.owner != nil && h.owner.Settings().StickExportOff {
			h.note("a USB stick was inserted: the owner switched the export on insert off (the export button still exports)", false)
			continue
		}
		h.ExportTo(ctx, path)
	}
}

func (h *hardware) mounted() []string {
	if h.b.Volumes == nil {
		return nil
	}
	m, err := h.b.Volumes.Mounted()
	if err != nil {
		h.log.Warn("sticks", "err", err)
	}
	return m
}

// note keeps what the last export did for the status page and logs it (a failure as an
// error: a full or read-only stick).
func (h *hardware) note(s string, failed bool) {
	h.mu.Lock()
	h.lastExport, h.lastFailed = s, failed
	h.mu.Unlock()
	if failed {
		h.log.Error(s)
	} else {
		h.log.Info(s)
	}
}

// ExportTo writes every room's verifiable history and the box's files to a new dated
// folder under dst, and says how it went on the LED and the status page.
func (h *hardware) ExportTo(ctx context.Context, dst string) (string, error) {
	h.pattern(board.LEDExporting)
	rooms, err := h.st.Rooms()
	if err != nil {
		h.pattern(board.LEDError)
		return "", err
	}
	var out []board.ExportRoom
	for _, r := range rooms {
		// A snapshot of the room's history, streamed from the store twice (history.json,
		// then the files its entries announce): nothing of the room is held whole.
		hs, err := h.st.Stream(r.ID)
		if err != nil {
			h.pattern(board.LEDError)
			return "", err
		}
		x := board.ExportRoom{Name: cmpOr(r.Name, r.ID), History: board.WriterFunc(func(w io.Writer) error {
			return hs.WriteJSON(w, time.Now())
		})}
		if h.blobs != nil {
			x.More = func(yield func(board.ExportFile, error) bool) {
				for e, err := range hs.EntriesOfKind(pieces.IsFileKind) {
					if err != nil {
						yield(board.ExportFile{}, err)
						return
					}
					m, err := pieces.ParseMeta(e.Kind, e.Body)
					if err != nil {
						continue
					}
					root := m.Root
					if !yield(board.ExportFile{Name: root[:12] + "-" + m.Name, Open: func() (io.ReadCloser, error) {
						var r [32]byte
						if n, err := hex.Decode(r[:], []byte(root)); err != nil || n != len(r) {
							return nil, fmt.Errorf("file root %q is not 64 hex digits", root)
						}
						f, _, _, err := h.blobs.Open(r)
						return f, err
					}}, nil) {
						return
					}
				}
			}
		}
		out = append(out, x)
	}
	dir, err := board.Export(ctx, dst, out)
	// The LED first, then the status page: whoever reads the page sees the LED already says so.
	if err != nil {
		h.pattern(board.LEDError)
		h.note("export to "+dst+" failed: "+err.Error(), true)
		return "", err
	}
	h.pattern(board.LEDDone)
	h.note(fmt.Sprintf("exported %d rooms to %s", len(out), dir), false)
	return dir, nil
}

func cmpOr(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return a
	}
	return b
}

// Status lists the board's features for the page.
func (h *hardware) Status() []web.BoxFeature {
	out := make([]web.BoxFeature, 0, len(h.b.Status)+1)
	for _, s := range h.b.Status {
		out = append(out, web.BoxFeature{Feature: s.Feature, OK: s.OK, Detail: s.Detail, Code: s.Code})
	}
	h.mu.Lock()
	if h.lastExport != "" {
		out = append(out, web.BoxFeature{Feature: "last-export", OK: !h.lastFailed, Detail: h.lastExport})
	}
	h.mu.Unlock()
	return out
}

// wavMic is a microphone that plays a WAV file (16-bit mono at board.SampleRate): for
// demonstrations and tests on machines without a sound card (--mic wav:FILE).
type wavMic struct{ path string }

func (m wavMic) String() string { return "wav:" + m.path }

func (m wavMic) Open(ctx context.Context) (board.Capture, error) {
	f, err := os.Open(m.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rec, err := board.ReadWAV(io.LimitReader(f, 64<<20))
	if err != nil {
		return nil, err
	}
	if rec.SampleRate != board.SampleRate {
		return nil, fmt.Errorf("wav mic: %d Hz, want %d", rec.SampleRate, board.SampleRate)
	}
	return &wavCapture{samples: rec.Samples}, nil
}

type wavCapture struct{ samples []int16 }

func (c *wavCapture) ReadSamples(p []int16) (int, error) {
	if len(c.samples) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.samples)
	c.samples = c.samples[n:]
	return n, nil
}

func (c *wavCapture) Close() error { return nil }

// hardwareAPI adapts hardware to web.BoxHardware.
type hardwareAPI struct{ h *hardware }

func (a hardwareAPI) Status() []web.BoxFeature { return a.h.Status() }

func (a hardwareAPI) RecordVoice(ctx context.Context, room string, d time.Duration) error {
	_, err := a.h.RecordVoice(ctx, room, nil, d)
	if errors.Is(err, store.ErrStoreFull) {
		return fmt.Errorf("%w: %w", web.ErrStoreFull, err)
	}
	return err
}

// voiceNoteBytes is the size of a WAV note of d (board.WAVBytesPerSecond plus the header):
// what the store's budget is asked for before recording.
func voiceNoteBytes(d time.Duration) int64 {
	return 44 + int64(d)*board.WAVBytesPerSecond/int64(time.Second)
}
