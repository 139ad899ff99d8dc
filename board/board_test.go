package board_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/board"
	"github.com/chattorrent/chattorrent/board/boardtest"
)

// -hw runs the tests that need a real Raspberry Pi with the wiring of docs/OPERATIONS.md.
var hw = flag.Bool("hw", false, "run hardware tests on a real Pi (buttons, LED, USB microphone)")

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The push-to-talk flow on fakes: a press starts a recording from a WAV-file microphone, the
// source's end or the release stops it, and the note is a valid WAV of the right length.
func TestPushToTalkRecordsWAV(t *testing.T) {
	ctx := testContext(t)

	// A 44.1 kHz WAV file stands in for the microphone: it is converted to 16 kHz.
	src := &board.Recording{SampleRate: 44100, Samples: boardtest.NewToneMic(440, 750*time.Millisecond).Samples}
	var file bytes.Buffer
	if _, err := board.WriteWAV(&file, src, 0); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "voice.wav")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	mic, err := boardtest.NewWAVMic(path)
	if err != nil {
		t.Fatal(err)
	}

	btn := boardtest.NewButton(t, "GPIO17")
	btn.Bounce(true)
	if err := board.WaitPress(ctx, btn); err != nil {
		t.Fatal(err)
	}
	if !btn.Pressed() {
		t.Fatal("button not pressed after a bouncing press")
	}
	rec, err := board.Record(ctx, mic, nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var note bytes.Buffer
	n, err := board.WriteWAV(&note, rec, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	back, err := board.ReadWAV(bytes.NewReader(note.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if int64(note.Len()) != n || back.SampleRate != board.SampleRate || back.Duration() <= 0 {
		t.Fatalf("WAV: %d bytes written, %d long, %d Hz, %v", n, note.Len(), back.SampleRate, back.Duration())
	}
	want := src.Duration() // its samples at 44.1 kHz

	if d := back.Duration(); d < want-5*time.Millisecond || d > want+5*time.Millisecond {
		t.Fatalf("note lasts %v, the source %v", d, want)
	}
	t.Logf("note: %v, %d bytes", back.Duration(), note.Len())
}

// Releasing the button stops a live (real-time) recording.
func TestPushToTalkReleaseStops(t *testing.T) {
	ctx := testContext(t)
	mic := boardtest.NewToneMic(300, time.Second)
	mic.Loop, mic.Realtime = true, true
	btn := boardtest.NewButton(t, "GPIO17")

	btn.Press()
	if err := board.WaitPress(ctx, btn); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // owned: waited for below; ends at the release
		defer close(done)
		defer close(stop)
		<-mic.Opened // the recording has started: let go of the button
		btn.Release()
		ev, err := btn.Next(ctx)
		if err != nil || ev.Pressed {
			t.Errorf("want a release, got %+v, %v", ev, err)
		}
	}()
	rec, err := board.Record(ctx, mic, stop, 20*time.Second)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if d := rec.Duration(); d <= 0 || d >= 20*time.Second {
		t.Fatalf("recording lasts %v", d)
	}
}

func TestRecordMaxLength(t *testing.T) {
	mic := boardtest.NewToneMic(440, 5*time.Second)
	rec, err := board.Record(testContext(t), mic, nil, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Duration() != 1500*time.Millisecond {
		t.Fatalf("max 1.5 s, got %v", rec.Duration())
	}
	var buf bytes.Buffer
	if _, err := board.WriteWAV(&buf, rec, time.Second); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != board.WAVHeaderSize+board.WAVBytesPerSecond {
		t.Fatalf("WAV capped at 1 s: %d bytes", buf.Len())
	}
}

// The voice note's cost, measured: 10 s of 16 kHz mono 16-bit PCM.
func TestWAVBytesPerSecond(t *testing.T) {
	rec, err := board.Record(testContext(t), boardtest.NewToneMic(440, 10*time.Second), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := board.WriteWAV(&buf, rec, 0); err != nil {
		t.Fatal(err)
	}
	perSecond := float64(buf.Len()-board.WAVHeaderSize) / rec.Duration().Seconds()
	t.Logf("WAV: %d bytes for %v: %.0f bytes/s + %d header", buf.Len(), rec.Duration(), perSecond, board.WAVHeaderSize)
	if buf.Len() != 320044 || perSecond != board.WAVBytesPerSecond {
		t.Fatalf("%d bytes, %.0f/s", buf.Len(), perSecond)
	}
}

func TestReadWAVRejects(t *testing.T) {
	for _, in := range []string{"", "RIFF\x00\x00\x00\x00WAVX", "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x03\x00\x01\x00\x80\x3e\x00\x00\x00\xfa\x00\x00\x04\x00\x20\x00data\x00\x00\x00\x00"} {
		if _, err := board.ReadWAV(bytes.NewReader([]byte(in))); !errors.Is(err, board.ErrBadWAV) {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestConverter(t *testing.T) {
	for _, c := range []struct{ rate, channels, in, want int }{
		{48000, 2, 48000, 16000}, {44100, 1, 44100, 16000}, {44100, 2, 4410, 1600},
		{16000, 1, 1000, 1000}, {8000, 1, 800, 1600},
	} {
		conv, err := board.NewConverter(c.rate, c.channels, board.SampleRate)
		if err != nil {
			t.Fatal(err)
		}
		in := make([]int16, c.in*c.channels)
		for i := range in {
			in[i] = 1000
			if i%c.channels == 1 {
				in[i] = 3000 // right channel: the mix is 2000
			}
		}
		var out []int16
		for len(in) > 0 { // in odd chunks, as a device delivers them
			k := min(len(in), 333)
			out = conv.Convert(out, in[:k])
			in = in[k:]
		}
		if len(out) != c.want {
			t.Errorf("%d Hz × %d: %d samples, want %d", c.rate, c.channels, len(out), c.want)
		}
		wantLevel := int16(1000)
		if c.channels == 2 {
			wantLevel = 2000
		}
		if len(out) > 0 && out[len(out)/2] != wantLevel {
			t.Errorf("%d Hz × %d: level %d, want %d", c.rate, c.channels, out[len(out)/2], wantLevel)
		}
	}
}

// A bouncing press and release give exactly one press and one release.
func TestButtonDebounce(t *testing.T) {
	ctx := testContext(t)
	btn := boardtest.NewButton(t, "GPIO22")
	var got []bool
	for _, press := range []bool{true, false} {
		btn.Bounce(press)
		ev, err := btn.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Pressed)
	}
	if got[0] != true || got[1] != false {
		t.Fatalf("events %v, want [true false]", got)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if ev, err := btn.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a third event: %+v, %v", ev, err)
	}
}

// The arecord path, with ALSA's null device (silence; no sound card needed).
func TestArecordNull(t *testing.T) {
	if _, err := exec.LookPath("arecord"); err != nil {
		t.Skip("arecord is not installed (apt-get install alsa-utils): the arecord path is not tested")
	}
	for _, o := range []board.ArecordOptions{
		{Device: "null"},
		{Device: "null", Rate: 48000, Channels: 2}, // converted in Go
	} {
		mic, err := board.NewArecordMic(o)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := board.Record(testContext(t), mic, nil, 300*time.Millisecond)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if rec.Duration() != 300*time.Millisecond {
			t.Fatalf("%+v: recorded %v", o, rec.Duration())
		}
		var buf bytes.Buffer
		if _, err := board.WriteWAV(&buf, rec, 0); err != nil {
			t.Fatal(err)
		}
		if back, err := board.ReadWAV(&buf); err != nil || back.Duration() != rec.Duration() {
			t.Fatalf("WAV back: %v, %v", back, err)
		}
	}
	// A device that does not exist is an error that carries arecord's own message.
	mic, err := board.NewArecordMic(board.ArecordOptions{Device: "hw:99,0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := board.Record(testContext(t), mic, nil, time.Second); err == nil {
		t.Fatal("recording from hw:99,0 worked")
	} else {
		t.Logf("hw:99,0: %v", err)
	}
}

func TestArecordMissing(t *testing.T) {
	_, err := board.NewArecordMic(board.ArecordOptions{Path: "/nonexistent/arecord"})
	if !errors.Is(err, board.ErrAbsent) {
		t.Fatalf("want ErrAbsent, got %v", err)
	}
}

// Open on a machine without the hardware (this one, or CI): each feature says why it is
// absent, nothing fails, and the watcher still works.
func TestOpenReportsAbsence(t *testing.T) {
	if *hw {
		t.Skip("-hw: the hardware is there")
	}
	b, err := board.Open(testContext(t), board.Config{
		PushToTalkPin: "NO_SUCH_PIN", ExportPin: "none", LEDPin: "NO_SUCH_PIN_EITHER",
		Mic: "alsa", MicDevice: "hw:99,0", MountGlobs: []string{filepath.Join(t.TempDir(), "*")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.PushToTalk != nil || b.ExportButton != nil || b.LED != nil || b.Mic != nil || b.Volumes == nil {
		t.Fatalf("board: %+v", b)
	}
	absent := 0
	codes := []string{board.AbsentOff, board.AbsentNoGPIO, board.AbsentNoPin, board.AbsentNoSound, board.AbsentNoArecord, board.AbsentCannotUse}
	for _, st := range b.Status {
		t.Logf("%s: ok=%v code=%s %s", st.Feature, st.OK, st.Code, st.Detail)
		if !st.OK {
			absent++
			if !errors.Is(st.Err, board.ErrAbsent) || st.Detail == "" {
				t.Errorf("%s: %v, %q", st.Feature, st.Err, st.Detail)
			}
			// The page translates the code; an absent feature always has one.
			if !slices.Contains(codes, st.Code) {
				t.Errorf("%s: code %q", st.Feature, st.Code)
			}
			if st.Feature == board.FeatureExportButton && st.Code != board.AbsentOff {
				t.Errorf("export button turned off: code %q, want %q", st.Code, board.AbsentOff)
			}
		} else if st.Code != "" {
			t.Errorf("%s works but has code %q", st.Feature, st.Code)
		}
	}
	if absent != 4 {
		t.Fatalf("%d absent, want 4", absent)
	}
	if _, err := board.Open(testContext(t), board.Config{Mic: "bluetooth"}); err == nil {
		t.Fatal("an unknown Mic was accepted")
	}
}

func TestVolumesInsert(t *testing.T) {
	ctx := testContext(t)
	v := boardtest.NewVolumes(t)
	v.Insert(t, "STICK")
	dir, err := v.Next(ctx)
	if err != nil || filepath.Base(dir) != "STICK" {
		t.Fatalf("%q, %v", dir, err)
	}
	if m, _ := v.Mounted(); len(m) != 1 {
		t.Fatalf("mounted: %v", m)
	}
	// Out and in again counts as a new insert.
	v.Remove(t, "STICK")
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if dir, err := v.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no stick, yet %q, %v", dir, err)
	}
	v.Insert(t, "STICK")
	if dir, err := v.Next(ctx); err != nil || filepath.Base(dir) != "STICK" {
		t.Fatalf("%q, %v", dir, err)
	}
}

func TestVolumesPresentAtStartNotInserted(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "OLD"), 0o755); err != nil {
		t.Fatal(err)
	}
	v, err := board.NewGlobVolumes(board.VolumeOptions{Globs: []string{filepath.Join(root, "*")}, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "NEW"), 0o755); err != nil {
		t.Fatal(err)
	}
	if dir, err := v.Next(testContext(t)); err != nil || filepath.Base(dir) != "NEW" {
		t.Fatalf("%q, %v", dir, err)
	}
	// With RequireMount, a plain directory is no stick.
	v2, err := board.NewGlobVolumes(board.VolumeOptions{Globs: []string{filepath.Join(root, "*")}, RequireMount: true})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := v2.Mounted(); len(m) != 0 {
		t.Fatalf("plain directories taken for mounts: %v", m)
	}
}
