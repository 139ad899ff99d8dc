package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/chattorrent/chattorrent/board"
	"github.com/chattorrent/chattorrent/board/boardtest"
	"github.com/chattorrent/chattorrent/store/testenv"
)

// TestPushToTalkReachesBrowser: the whole path of the box's button, with fakes only for the
// hardware this machine lacks. A page (real Chromium) invites the box into its room; the
// push-to-talk button (boardtest) is held while the microphone plays a WAV file; the box
// posts the note and seeds it over its real pion peer; the page shows it and it plays.
func TestPushToTalkReachesBrowser(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	switch {
	case runtime.GOARCH != "amd64":
		t.Skip("the browser test runs natively; under qemu-user the rest of the package runs")
	case !testenv.LoopbackOnly():
		testenv.SkipOrFail(t, "opens sockets and starts Chromium: run inside `unshare -n`, see README")
	}
	chromium = testenv.NeedBrowser(t, "Chromium at "+chromium, chromium)

	// The microphone: a WAV file (1 s of 440 Hz, looped at a microphone's pace).
	dir := t.TempDir()
	tone := boardtest.NewToneMic(440, time.Second)
	wavPath := filepath.Join(dir, "tone.wav")
	f, err := os.Create(wavPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := board.WriteWAV(f, &board.Recording{SampleRate: board.SampleRate, Samples: tone.Samples}, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mic, err := boardtest.NewWAVMic(wavPath)
	if err != nil {
		t.Fatal(err)
	}
	mic.Loop, mic.Realtime = true, true
	ptt := boardtest.NewButton(t, "ptt")

	cfg, err := parseConfig([]string{"--data-dir", filepath.Join(dir, "data"), "--https-addr", "127.0.0.1:0", "--http-addr", "",
		"--ready-file", filepath.Join(dir, "ready.json"), "--hostname", "pttbox", "--webrtc-loopback", "--mdns=false",
		"--webrtc-port", "0", "--turn-port", "0"}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	deps := serveDeps{}
	deps.board = &board.Board{PushToTalk: ptt, Mic: mic, LED: boardtest.NewLED(t, "led"),
		Status: []board.FeatureStatus{{Feature: board.FeaturePushToTalk, OK: true, Detail: "fake"}}}
	var ledMu sync.Mutex
	var leds []board.Pattern // what the status LED was told, in order
	deps.onLED = func(p board.Pattern) {
		ledMu.Lock()
		defer ledMu.Unlock()
		if len(leds) == 0 || leds[len(leds)-1] != p {
			leds = append(leds, p)
		}
	}
	ledSays := func() []board.Pattern {
		ledMu.Lock()
		defer ledMu.Unlock()
		return slices.Clone(leds)
	}
	waitLED := func(p board.Pattern) {
		t.Helper()
		// 60 s: a page that closes is noticed when ICE gives up on it (about 30 s).
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if l := ledSays(); len(l) > 0 && l[len(l)-1] == p {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the LED never showed %s: %v", p, ledSays())
			}
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() { done <- serveWith(ctx, cfg, logs, deps) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("box log:\n%s", logs.String())
		}
	}()
	base := "https://" + waitReady(t, cfg.ReadyFile, done).HTTPS

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.IgnoreCertErrors, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true), chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancelAlloc()
	page, cancelPage := chromedp.NewContext(allocCtx)
	defer cancelPage()
	// The first call starts the browser: no timeout on it (chromedp.Run's rule).
	if _, err := chromedp.CallBrowser(page, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: t.TempDir()}); err != nil {
		t.Fatalf("downloads: %v", err)
	}
	// The tab likewise: opened on a context without a timeout (a tab opened under a step's
	// timeout closes when that step ends).
	if err := chromedp.Do(page); err != nil {
		t.Fatalf("tab: %v", err)
	}
	// In a loopback-only namespace Chromium gathers ICE candidates only with this.
	if _, err := chromedp.CallBrowser(page, browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: "microphone"}, Setting: browser.PermissionSettingGranted, Origin: base}); err != nil {
		t.Fatalf("permission: %v", err)
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(page, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	waitJS := func(what, pred string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(page, 60*time.Second)
		defer cancel()
		if _, err := chromedp.Run(sctx, chromedp.Poll[bool](pred, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			dctx, c2 := context.WithTimeout(page, 5*time.Second)
			defer c2()
			st, derr := chromedp.Run(dctx, chromedp.Evaluate[string](`location.href + ' ' + document.title + ' ' + document.body.innerText.slice(0, 400) + ' ' + JSON.stringify(performance.getEntriesByType('resource').map(e => [e.name, e.duration, e.responseStatus]))`))
			t.Logf("page: %s %v", st, derr)
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	step("open", chromedp.Navigate(base+"/"))
	waitJS("page ready", `document.body.dataset.ready === '1'`)
	step("name and room",
		chromedp.Evaluate[chromedp.Void](`(() => { const n = document.getElementById('my-name'); n.value = 'Ana'; n.dispatchEvent(new Event('change')); })()`),
		chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Radio"),
		chromedp.Click(chromedp.CSS("#create-room")))
	waitJS("keep-on-box offered", `!document.getElementById('keep-on-box').hidden`)
	// "Keep on the box" is in the room's actions menu (#room-menu; web/e2e's layout tests
	// drive the menu itself): pressed from script here.
	waitJS("the join shown", `document.querySelectorAll('#messages .msg').length >= 1`)
	step("invite the box", chromedp.Evaluate[chromedp.Void](`document.getElementById('keep-on-box').click()`))
	waitJS("connected to the box", `document.getElementById('room-status').dataset.state === 'connected'`)
	waitLED(board.LEDPeerConnected)

	ptt.Press()
	<-mic.Opened
	waitLED(board.LEDRecording)
	time.Sleep(1500 * time.Millisecond) // the length of the note, at the fake microphone's pace
	ptt.Release()

	waitJS("the note plays", `(() => { const au = document.querySelector('#messages audio.msg-audio'); return !!au && au.readyState >= 1 && au.duration > 1; })()`)
	sctx, cancelEval := context.WithTimeout(page, 10*time.Second)
	defer cancelEval()
	author, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.querySelector('#messages .msg:not(.mine) .msg-author').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "ChatTorrent pttbox"; len(author) < len(want) || author[:len(want)] != want {
		t.Errorf("the note's author %q, want the box (%s)", author, want)
	}

	// The LED: serving with nobody connected, a peer connected, recording, a peer again;
	// and serving once the page is gone.
	waitLED(board.LEDPeerConnected)
	cancelPage()
	waitLED(board.LEDServing)
	if got, want := ledSays(), []board.Pattern{board.LEDServing, board.LEDPeerConnected, board.LEDRecording, board.LEDPeerConnected, board.LEDServing}; !slices.Equal(got, want) {
		t.Errorf("the LED showed %v, want %v", got, want)
	}
}
