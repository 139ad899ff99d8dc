package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"

	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/net/transfer"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/history"
)

var pionCPUProfile = flag.String("e2e.pioncpuprofile", "", "BenchmarkPionFile: write the Go side's CPU profile of each phase to PREFIX-product.pprof, PREFIX-raw-before.pprof and PREFIX-raw-after.pprof")

// pionSeed is an honest Go peer: the box's stack (rtc.NewAPI as the appliance sets it up,
// rtc.Session, the real transfer.Seeder over a Blobs store) with a file of its own announced
// in the room.
type pionSeed struct {
	api    *webrtc.API
	key    ed25519.PrivateKey
	author string
	blobs  *blobs.Store
	root   [32]byte
	size   int64
	log    *history.Log
	seeder *transfer.Seeder
}

func newPionSeed(b *testing.B, room string, size int64) *pionSeed {
	b.Helper()
	api, err := rtc.NewAPI(rtc.Options{IncludeLoopback: true, UDPReadBuffer: 4 << 20}) // as firmware/serve.go
	if err != nil {
		b.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	p := &pionSeed{api: api, key: key, author: history.EncodeKey(key.Public().(ed25519.PublicKey)), size: size, log: history.NewLog(room)}
	var body string
	p.blobs, p.root, body, p.seeder = seedFile(b, "pion.bin", size)
	for _, e := range []history.Entry{{Kind: history.KindJoin}, {Kind: "file", Body: body}} {
		e.Author, e.Name, e.TS = p.author, "Pion", time.Now().UnixMilli()
		p.log.Next(&e)
		e.Sign(key)
		if _, err := p.log.Add(e, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

// seedFile puts size random bytes named name into a Blobs of its own and returns it, the
// file's root, the body of the "file" entry that announces it, and a Seeder that serves it
// (and nothing else) to a session.
func seedFile(tb testing.TB, name string, size int64) (*blobs.Store, [32]byte, string, *transfer.Seeder) {
	tb.Helper()
	blobs, err := blobs.New(tb.TempDir(), 0)
	if err != nil {
		tb.Fatal(err)
	}
	path, _ := writeRandom(tb, name, size)
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	root, err := blobs.Put(f, size)
	f.Close()
	if err != nil {
		tb.Fatal(err)
	}
	os.Remove(path)
	body, err := pieces.Meta{Kind: "file", Root: pieces.RootHex(root), Size: size, Name: name, Type: "application/octet-stream"}.Body()
	if err != nil {
		tb.Fatal(err)
	}
	rootHex := pieces.RootHex(root)
	return blobs, root, body, transfer.NewSeeder(transfer.SeederOptions{Blobs: blobs, Announced: func(r string) bool { return r == rootHex }})
}

// join answers the page's offer file like the archiver does and runs the session and the
// seeder under ctx; it returns the answer file for the page to import.
func (p *pionSeed) join(b *testing.B, ctx context.Context, offerPath string) string {
	b.Helper()
	raw, err := os.ReadFile(offerPath)
	if err != nil {
		b.Fatal(err)
	}
	inv, err := torrent.Decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	pc, channels, sdp, err := rtc.Answer(ctx, p.api, inv.SDP)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pc.Close() })
	go func() {
		var dc *webrtc.DataChannel
		select {
		case dc = <-channels:
		case <-ctx.Done():
			return
		}
		conn, err := rtc.Open(ctx, dc)
		if err != nil {
			return
		}
		s, err := rtc.NewSession(rtc.Config{Room: inv.Room, Self: rtc.PeerInfo{ID: p.author, Name: "Pion"},
			History: rtc.NewMemHistory(p.log), Conn: conn, Files: p.seeder})
		if err != nil {
			panic(err)
		}
		go p.seeder.Run(ctx, s)
		s.Run(ctx)
	}()
	out, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleAnswer, Room: inv.Room, RoomName: inv.RoomName,
		SDP: sdp, Session: inv.Session, Peer: torrent.Peer{ID: p.author, Name: "Pion"}})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "Pion_answer.torrent")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// rawPionOfferJS: the page offers a plain peer connection whose one channel is named like
// the product's (so rtc.Answer takes it) and counts the bytes that arrive, first to last.
const rawPionOfferJS = `(async (size) => {
  const pc = new RTCPeerConnection({ iceServers: [] });
  const ch = pc.createDataChannel('chattorrent', { ordered: true });
  ch.binaryType = 'arraybuffer';
  const done = new Promise((resolve) => {
    let got = 0, t0 = 0;
    ch.onmessage = (m) => { if (!t0) t0 = performance.now(); got += m.data.byteLength; if (got >= size) resolve(performance.now() - t0); };
  });
  window.rawPion = { pc, ch, done };
  await pc.setLocalDescription();
  await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); else pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r()); });
  return pc.localDescription.sdp;
})`

// rawPion sends size bytes from the Go peer to the page over a fresh peer connection, as
// 16 KiB binary messages under the same flow control as the Seeder's frames
// (rtc.DataChannelConn.SendFrame), and returns the page's first-to-last-byte ms.
func (p *pionSeed) rawPion(b *testing.B, u *user, size int64) float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Minute)
	defer cancel()
	offer, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf("%s(%d)", rawPionOfferJS, size), chromedp.EvalAwaitPromise))
	if err != nil {
		b.Fatal(err)
	}
	pc, channels, sdp, err := rtc.Answer(ctx, p.api, offer)
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`window.rawPion.pc.setRemoteDescription({ type: 'answer', sdp: %s }).then(() => true)`, js(sdp)), chromedp.EvalAwaitPromise)); err != nil {
		b.Fatal(err)
	}
	var dc *webrtc.DataChannel
	select {
	case dc = <-channels:
	case <-ctx.Done():
		b.Fatal("the raw channel did not arrive")
	}
	conn, err := rtc.Open(ctx, dc)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	data := make([]byte, pieces.PieceSize)
	rand.Read(data)
	sent := make(chan error, 1)
	go func() {
		for off := int64(0); off < size; off += pieces.PieceSize {
			if err := conn.SendFrame(ctx, data[:min(pieces.PieceSize, size-off)]); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.rawPion.done`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.Fatal(err)
	}
	if err := <-sent; err != nil {
		b.Fatal(err)
	}
	chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.rawPion.pc.close(), true)`))
	return ms
}

// cpuTimes is CPU seconds (user+system) used so far: this Go process, and Chromium's
// processes by kind (browser, renderer, utility: the network service, gpu...).
type cpuTimes struct {
	goSecs   float64
	chromium map[string]float64
	udpDrops int64      // the namespace's UDP RcvbufErrors: datagrams a full socket buffer dropped
	machine  [8]float64 // /proc/stat's first line, seconds: user nice system idle iowait irq softirq steal
}

// machineCPU reads the whole machine's CPU seconds by state from /proc/stat.
func machineCPU() (out [8]float64) {
	bs, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(bs), "\n")
	f := strings.Fields(line)
	for i := range out {
		if i+1 < len(f) {
			v, _ := strconv.ParseFloat(f[i+1], 64)
			out[i] = v / 100 // USER_HZ
		}
	}
	return out
}

func sampleCPU(browserPid int) cpuTimes {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	c := cpuTimes{goSecs: tv(ru.Utime) + tv(ru.Stime), chromium: map[string]float64{}, udpDrops: udpRcvbufErrors(), machine: machineCPU()}
	children, ticks := processTree()
	var walk func(int)
	walk = func(pid int) {
		kind := "browser"
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		// Chromium rewrites its children's command lines: arguments may be joined by spaces.
		for _, a := range strings.FieldsFunc(string(cmd), func(r rune) bool { return r == 0 || r == ' ' }) {
			if t, ok := strings.CutPrefix(a, "--type="); ok {
				kind = t
			}
			if s, ok := strings.CutPrefix(a, "--utility-sub-type="); ok {
				kind = "utility:" + strings.TrimSuffix(strings.TrimPrefix(s, "network.mojom."), "Service")
			}
		}
		c.chromium[kind] += ticks[pid]
		for _, ch := range children[pid] {
			walk(ch)
		}
	}
	walk(browserPid)
	return c
}

// startPageProfile starts a CPU profile of u's page (its main thread), read by topSelf.
func startPageProfile(b *testing.B, u *user) {
	b.Helper()
	if _, err := chromedp.Call(u.ctx, profiler.Enable, cdp.Empty{}); err != nil {
		b.Fatal(err)
	}
	if _, err := chromedp.Call(u.ctx, profiler.SetSamplingInterval, profiler.SetSamplingIntervalParams{Interval: 200}); err != nil {
		b.Fatal(err)
	}
	if _, err := chromedp.Call(u.ctx, profiler.Start, cdp.Empty{}); err != nil {
		b.Fatal(err)
	}
}

// udpRcvbufErrors reads Udp RcvbufErrors from /proc/net/snmp (this network namespace).
func udpRcvbufErrors() int64 {
	bs, _ := os.ReadFile("/proc/net/snmp")
	var head []string
	for line := range strings.Lines(string(bs)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "RcvbufErrors" && i < len(f) {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				return n
			}
		}
	}
	return 0
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// logCPU logs the CPU each side used between two samples, as a share of the wall time.
func logCPU(b *testing.B, phase string, before, after cpuTimes, wall time.Duration) {
	b.Helper()
	w := wall.Seconds()
	parts := []string{fmt.Sprintf("go %.0f%%", 100*(after.goSecs-before.goSecs)/w)}
	var total float64
	for k, v := range after.chromium {
		d := v - before.chromium[k]
		total += d
		if d > 0.01 {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*d/w))
		}
	}
	b.Logf("%s: %.2f s wall; CPU (of one core): %s; chromium total %.0f%%; UDP datagrams dropped (receive buffer full): %d",
		phase, w, strings.Join(parts, ", "), 100*total/w, after.udpDrops-before.udpDrops)
}

var pionRounds = flag.Int("e2e.pionrounds", 3, "BenchmarkPionFile: rounds, each a fresh page and Go peer (raw, product, raw)")

// BenchmarkPionFile reports a 64 MiB file going from a Go pion peer (the box's stack:
// rtc.Session and the real transfer.Seeder) to Chromium through the real UI (the page fetches
// it on its own: hashes, 16 KiB pieces checked with SHA-256, IndexedDB), against the same
// Go peer sending the same number of bytes as raw 16 KiB messages on a DataChannel to a page
// that only counts them, once before and once after the product (a round's baseline is
// their mean). A single round says little (Chromium's UDP socket drops datagrams in some
// runs and SCTP stalls on retransmitting them): -e2e.pionrounds rounds, each with a fresh
// page and peer, and the median round's ratio with its range. MB/s and the CPU each process
// used are logged; with -e2e.pageprofile also a profile of the page's main thread, which
// costs the product's run CPU the raw runs do not pay. With -e2e.pioncpuprofile=PREFIX the
// Go side's CPU profile of each phase of the first round is written. Run:
//
//	unshare -n sh -c 'ip link set lo up && exec "$@"' sh go test ./web/e2e/ -run '^$' -bench PionFile -benchtime 1x -v
func BenchmarkPionFile(b *testing.B) {
	const size = 64 << 20
	var products, raws, ratios []float64
	for b.Loop() {
		products, raws, ratios = nil, nil, nil
		for round := range max(1, *pionRounds) {
			product, before, after := pionRound(b, size, round)
			products, raws = append(products, product), append(raws, before, after)
			ratios = append(ratios, (before+after)/2/product)
		}
	}
	mb := float64(size) / 1e6
	rate := func(ms float64) float64 { return mb / (ms / 1000) }
	for i, ms := range products {
		b.Logf("round %d: product %.1f MB/s, raw before %.1f and after %.1f MB/s: ratio %.2f", i+1, rate(ms), rate(raws[2*i]), rate(raws[2*i+1]), ratios[i])
	}
	b.ReportMetric(rate(median(products)), "product-MB/s")
	b.ReportMetric(rate(median(raws)), "raw-MB/s")
	b.ReportMetric(median(ratios), "product/raw")
	b.ReportMetric(slices.Min(ratios), "product/raw-min")
	b.ReportMetric(slices.Max(ratios), "product/raw-max")
}

// pionRound is one round of BenchmarkPionFile on a fresh page and Go peer: raw, the
// product, raw again; the page's first-to-last-byte ms of each.
func pionRound(b *testing.B, size int64, round int) (product, rawBefore, rawAfter float64) {
	b.Helper()
	u := newUser(b, fmt.Sprintf("B%d", round+1), "en-US")
	defer u.close()
	u.setName("Bruno")
	u.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Pion"))
	offer, _ := u.download(chromedp.Click(chromedp.CSS("#create-room")))
	rawOffer, err := os.ReadFile(offer)
	if err != nil {
		b.Fatal(err)
	}
	inv, err := torrent.Decode(rawOffer)
	if err != nil {
		b.Fatal(err)
	}
	p := newPionSeed(b, inv.Room, size)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pid := chromedp.FromContext(u.ctx).Browser.Process().Pid
	var prof *os.File
	profile := func(phase string) {
		if *pionCPUProfile == "" || round > 0 {
			return
		}
		var err error
		if prof, err = os.Create(*pionCPUProfile + "-" + phase + ".pprof"); err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			b.Fatal(err)
		}
	}
	stopProfile := func() {
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
			prof = nil
		}
	}
	// Raw first, then the product, then raw again: the baseline brackets the product.
	rawRun := func(phase string) float64 {
		profile(phase)
		c0, t0 := sampleCPU(pid), time.Now()
		ms := p.rawPion(b, u, size)
		c1, wall := sampleCPU(pid), time.Since(t0)
		stopProfile()
		logCPU(b, fmt.Sprintf("round %d %s", round+1, phase), c0, c1, wall)
		return ms
	}
	rawBefore = rawRun("raw-before")

	// The product: the page fetches the announced file as soon as the peer connects.
	for _, u := range profiled(u) {
		startPageProfile(b, u)
	}
	u.importFile(p.join(b, ctx, offer))
	profile("product")
	c0, t0 := sampleCPU(pid), time.Now()
	u.waitLong(`chattorrentTransfers().some(x => x.state === 'complete' && x.ms > 0)`, 10*time.Minute)
	c1, wall := sampleCPU(pid), time.Since(t0)
	stopProfile()
	logCPU(b, fmt.Sprintf("round %d product", round+1), c0, c1, wall)
	for _, u := range profiled(u) {
		topSelf(b, u)
	}
	product = evalJS[float64](u, `chattorrentTransfers().find(x => x.state === 'complete' && x.ms > 0).ms`)
	if n := p.seeder.Served(); n != int64(pieces.NumPieces(size)) {
		b.Errorf("the seeder served %d pieces, want %d", n, pieces.NumPieces(size))
	}

	// Raw: the same Go peer, the same bytes, a page that only counts them.
	rawAfter = rawRun("raw-after")
	u.checkConsole()
	return product, rawBefore, rawAfter
}
