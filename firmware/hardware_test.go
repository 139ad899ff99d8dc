package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/board"
	"github.com/chattorrent/chattorrent/board/boardtest"
	"github.com/chattorrent/chattorrent/net/archiver"
	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/store/testenv"
	"github.com/chattorrent/chattorrent/web"
)

// hwRig is the box without its network: a real buntdb store and blob store, the archiver,
// and a board of fakes (buttons, LED, microphone, sticks: the hardware this machine lacks).
type hwRig struct {
	st    *store.Store
	blobs *blobs.Store
	h     *hardware
	ptt   *boardtest.Button
	exp   *boardtest.Button
	mic   *boardtest.Mic
	vols  *boardtest.Volumes
	room  string
}

func newHWRig(t *testing.T, setup ...func(*hardware)) *hwRig {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := store.LoadIdentity(dir, "Caja")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blobs.New(filepath.Join(dir, "files"), 0)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	arch, err := archiver.New(archiver.Options{Store: st, Identity: id, Blobs: blobs, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	room := strings.Repeat("a", 32)
	if err := st.CreateRoom(room, "Patio"); err != nil {
		t.Fatal(err)
	}
	r := &hwRig{st: st, blobs: blobs, room: room,
		ptt: boardtest.NewButton(t, "ptt"), exp: boardtest.NewButton(t, "export"),
		mic: boardtest.NewToneMic(440, time.Second), vols: boardtest.NewVolumes(t)}
	r.mic.Loop, r.mic.Realtime = true, true
	b := &board.Board{PushToTalk: r.ptt, ExportButton: r.exp, Mic: r.mic, Volumes: r.vols,
		LED: boardtest.NewLED(t, "led")}
	r.h = newHardware(b, arch, st, blobs, 30*time.Second, log)
	for _, f := range setup {
		f(r.h)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hardware.Run: %v", err)
		}
	})
	return r
}

func (r *hwRig) voiceEntries(t *testing.T) []history.Entry {
	t.Helper()
	es, err := r.st.Entries(r.room)
	if err != nil {
		t.Fatal(err)
	}
	var out []history.Entry
	for _, e := range es {
		if e.Kind == "voice" {
			out = append(out, e)
		}
	}
	return out
}

// Holding the push-to-talk button records a voice note for as long as it is held: the
// LED shows recording, and on release the note is in the room as the box's entry and its
// WAV is in the blob store, whole and verifiable by its root.
func TestPushToTalkPostsVoiceNote(t *testing.T) {
	r := newHWRig(t)
	r.ptt.Press()
	<-r.mic.Opened
	testenv.WaitFor(t, "the recording pattern", func() bool { return r.h.blink.Current() == board.LEDRecording })
	time.Sleep(600 * time.Millisecond) // about this long a note, at the fake mic's real-time pace
	r.ptt.Release()
	testenv.WaitFor(t, "the voice entry", func() bool { return len(r.voiceEntries(t)) == 1 })
	testenv.WaitFor(t, "the serving pattern again", func() bool { return r.h.blink.Current() == board.LEDServing })

	e := r.voiceEntries(t)[0]
	if e.Name != "Caja" {
		t.Errorf("entry by %q, want the box (Caja)", e.Name)
	}
	m, err := pieces.ParseMeta(e.Kind, e.Body)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "audio/wav" || !strings.HasSuffix(m.Name, ".wav") || m.Duration < 500 || m.Duration > 30_000 {
		t.Errorf("meta %+v: want a WAV note lasting about as long as the button was held", m)
	}
	var root [32]byte
	if _, err := hex.Decode(root[:], []byte(m.Root)); err != nil {
		t.Fatalf("root %q: %v", m.Root, err)
	}
	f, size, _, err := r.blobs.Open(root)
	if err != nil {
		t.Fatalf("the note's file is not in the blob store: %v", err)
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if size != m.Size || int64(len(data)) != m.Size {
		t.Errorf("blob is %d bytes (reported %d), entry says %d", len(data), size, m.Size)
	}
	leaves, err := pieces.Leaves(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := pieces.RootHex(pieces.Root(leaves)); got != m.Root {
		t.Errorf("blob root %s, entry says %s", got, m.Root)
	}
	rec, err := board.ReadWAV(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the note is not a WAV file: %v", err)
	}
	if rec.Duration().Milliseconds() != m.Duration {
		t.Errorf("WAV lasts %v, entry says %d ms", rec.Duration(), m.Duration)
	}
}

// Without a room the button does nothing but say so on the LED.
func TestPushToTalkWithoutRoom(t *testing.T) {
	st, blobs, arch := newBoxParts(t, store.Options{})
	log := slog.New(slog.DiscardHandler)
	ptt := boardtest.NewButton(t, "ptt")
	mic := boardtest.NewToneMic(440, time.Second)
	h := newHardware(&board.Board{PushToTalk: ptt, Mic: mic, LED: boardtest.NewLED(t, "led")}, arch, st, blobs, time.Minute, log)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() { cancel(); <-done }()
	ptt.Press()
	testenv.WaitFor(t, "the error pattern", func() bool { return h.blink.Current() == board.LEDError })
	select {
	case <-mic.Opened:
		t.Error("the microphone was opened with no room to post into")
	default:
	}
}

// A stick plugged in gets every room's history (verifiable JSON) and the box's files in a
// new dated folder; the export button exports again to a mounted stick; a read-only stick
// is refused with a note on the status page, and nothing is left behind on it.
func TestSticksExport(t *testing.T) {
	r := newHWRig(t)
	r.ptt.Press()
	<-r.mic.Opened
	time.Sleep(300 * time.Millisecond)
	r.ptt.Release()
	testenv.WaitFor(t, "the voice entry", func() bool { return len(r.voiceEntries(t)) == 1 })

	stick := r.vols.Insert(t, "USB")
	var dirs []string
	// The LED says done first, then the status page (ExportTo): wait for both.
	testenv.WaitFor(t, "the export on the stick", func() bool {
		dirs, _ = filepath.Glob(filepath.Join(stick, "chattorrent-*"))
		return len(dirs) == 1 && r.h.blink.Current() == board.LEDDone && featureDetail(r.h, "last-export", "exported 1 rooms")
	})
	hist := filepath.Join(dirs[0], "Patio", "history.json")
	var out bytes.Buffer
	if err := verifyCmd([]string{hist}, &out, time.Now()); err != nil {
		t.Fatalf("verify %s: %v\n%s", hist, err, out.String())
	}
	wavs, _ := filepath.Glob(filepath.Join(dirs[0], "Patio", "*.wav"))
	if len(wavs) != 1 {
		t.Fatalf("files beside the history: %v, want the voice note", wavs)
	}
	if data, err := os.ReadFile(wavs[0]); err != nil {
		t.Fatal(err)
	} else if _, err := board.ReadWAV(bytes.NewReader(data)); err != nil {
		t.Errorf("exported note: %v", err)
	}
	// The button exports again to the mounted stick, into a second folder.
	r.exp.Press()
	time.Sleep(100 * time.Millisecond) // longer than the debounce: a real press
	r.exp.Release()
	testenv.WaitFor(t, "a second export", func() bool {
		dirs, _ = filepath.Glob(filepath.Join(stick, "chattorrent-*"))
		return len(dirs) == 2
	})

	// A read-only stick and a full one: a clear failure on the status page and the LED,
	// nothing left behind. As root (CI) they are real file systems: tmpfs mounted read-only,
	// and one of two pages; as a user, a directory without write permission.
	cases := []struct{ name, opts, says string }{{"RO", "ro,size=1m", "read-only"}, {"FULL", "size=8k", "full"}}
	if os.Geteuid() != 0 {
		cases = cases[:1]
	}
	for _, c := range cases {
		var stick string
		if os.Geteuid() == 0 {
			stick = tmpfsStick(t, r.vols, c.name, c.opts)
		} else {
			stick = r.vols.Insert(t, c.name)
			if err := os.Chmod(stick, 0o555); err != nil {
				t.Fatal(err)
			}
		}
		testenv.WaitFor(t, "the export failure on "+c.name, func() bool {
			return featureDetail(r.h, "last-export", "failed") && featureDetail(r.h, "last-export", c.name)
		})
		if !featureDetail(r.h, "last-export", c.says) {
			t.Errorf("%s: the status page says %+v, want it to say %q", c.name, r.h.Status(), c.says)
		}
		if r.h.blink.Current() != board.LEDError {
			t.Errorf("%s: LED %q after a failed export, want %q", c.name, r.h.blink.Current(), board.LEDError)
		}
		if left, _ := os.ReadDir(stick); len(left) != 0 {
			t.Errorf("%s: a failed export left %d entries on the stick", c.name, len(left))
		}
	}
}

// tmpfsStick mounts a tmpfs with opts outside the watched folder and links it in as the
// stick name (the watcher then sees it whole, already mounted). Root only.
func tmpfsStick(t *testing.T, v *boardtest.Volumes, name, opts string) string {
	t.Helper()
	mp := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", mp).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs stick: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mp).Run() })
	if err := os.Symlink(mp, filepath.Join(v.Root, name)); err != nil {
		t.Fatal(err)
	}
	return mp
}

func featureDetail(h *hardware, feature, sub string) bool {
	for _, f := range h.Status() {
		if f.Feature == feature && strings.Contains(f.Detail, sub) {
			return true
		}
	}
	return false
}

// A full store refuses a voice note before the microphone opens, and the web API hears
// "store full" (HTTP 507), not a recording failure.
func TestVoiceStoreFull(t *testing.T) {
	st, blobs, arch := newBoxParts(t, store.Options{Limits: store.Limits{StoreBytes: 1}})
	mic := boardtest.NewToneMic(440, time.Second)
	h := newHardware(&board.Board{Mic: mic}, arch, st, blobs, time.Minute, slog.New(slog.DiscardHandler))
	err := hardwareAPI{h}.RecordVoice(t.Context(), strings.Repeat("a", 32), 3*time.Second)
	if !errors.Is(err, web.ErrStoreFull) || !errors.Is(err, store.ErrStoreFull) {
		t.Fatalf("RecordVoice on a full store: %v, want web.ErrStoreFull", err)
	}
	select {
	case <-mic.Opened:
		t.Error("the microphone was opened for a note the store cannot keep")
	default:
	}
}

// newBoxParts opens a store (with opts), the box's identity, its files and an archiver in a
// temporary directory, closed with the test.
func newBoxParts(t *testing.T, opts store.Options) (*store.Store, *blobs.Store, *archiver.Archiver) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := store.LoadIdentity(dir, "Caja")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blobs.New(filepath.Join(dir, "files"), 0)
	if err != nil {
		t.Fatal(err)
	}
	arch, err := archiver.New(archiver.Options{Store: st, Identity: id, Blobs: blobs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return st, blobs, arch
}

// With the owner's "export on insert" off, an inserted stick stays empty (the status page
// says why); the export button still exports to it.
func TestSticksExportOff(t *testing.T) {
	own, err := web.NewOwner(web.OwnerOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := own.SetSettings(web.Settings{StickExportOff: true}); err != nil {
		t.Fatal(err)
	}
	r := newHWRig(t, func(h *hardware) { h.owner = own })
	stick := r.vols.Insert(t, "USB")
	testenv.WaitFor(t, "the note that export on insert is off", func() bool { return featureDetail(r.h, "last-export", "export on insert off") })
	if dirs, _ := filepath.Glob(filepath.Join(stick, "chattorrent-*")); len(dirs) != 0 {
		t.Fatalf("an export on insert while the owner switched it off: %v", dirs)
	}
	r.exp.Press()
	time.Sleep(100 * time.Millisecond)
	r.exp.Release()
	testenv.WaitFor(t, "the button's export", func() bool {
		dirs, _ := filepath.Glob(filepath.Join(stick, "chattorrent-*"))
		return len(dirs) == 1
	})
}
