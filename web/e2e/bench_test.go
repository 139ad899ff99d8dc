package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// benchHistoryJS runs in a real page, with the page's own modules: it signs N entries,
// measures how fast the page verifies them, then syncs them over a real DataChannel
// between two peer connections with the product's Session (verification in the worker),
// and sends the very same messages raw over a second DataChannel of the same connection.
const benchHistoryJS = `(async (N) => {
  const h = await import('/js/history.js');
  const S = await import('/js/session.js');
  const V = await import('/js/verifier.js');
  const kp = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const author = h.toB64url(new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey)));
  const me = { author, privateKey: kp.privateKey };
  const room = 'ab'.repeat(16);
  const la = new h.Log(room);
  for (let i = 0; i < N; i++) {
    const n = la.next(author);
    la.append(await h.signEntry({ room, name: 'Bench', seq: n.seq, prev: n.prev, ts: 1700000000000 + i, kind: 'text', body: 'message number ' + i }, me));
  }
  const entries = la.entries();
  const sample = entries.slice(0, Math.min(N, 5000));
  let t0 = performance.now();
  await h.checkEntries(sample, room, Date.now());
  const verifyPerSec = sample.length / ((performance.now() - t0) / 1000);

  const pa = new RTCPeerConnection({ iceServers: [] });
  const pb = new RTCPeerConnection({ iceServers: [] });
  pa.onicecandidate = (e) => e.candidate && pb.addIceCandidate(e.candidate);
  pb.onicecandidate = (e) => e.candidate && pa.addIceCandidate(e.candidate);
  const ca = pa.createDataChannel('chattorrent', { ordered: true });
  const ra = pa.createDataChannel('raw', { ordered: true });
  const remote = {};
  const bothOpen = new Promise((resolve) => {
    pb.ondatachannel = (ev) => {
      remote[ev.channel.label] = ev.channel;
      if (remote.chattorrent && remote.raw) resolve();
    };
  });
  await pa.setLocalDescription();
  await pb.setRemoteDescription(pa.localDescription);
  await pb.setLocalDescription();
  await pa.setRemoteDescription(pb.localDescription);
  await bothOpen;
  const open = (c) => c.readyState === 'open' ? null : new Promise((r) => c.addEventListener('open', r, { once: true }));
  await Promise.all([ca, ra, remote.chattorrent, remote.raw].map(open));

  // Raw: the same entries messages, same batching and flow control, no checks, no storage.
  const msgs = [];
  let batch = [], size = 0, bytes = 0;
  for (const e of entries) {
    const n = JSON.stringify(e).length + 1;
    if (batch.length && (batch.length >= S.BATCH_ENTRIES || size + n > S.BATCH_BYTES)) { msgs.push(JSON.stringify({ t: 'entries', entries: batch })); batch = []; size = 0; }
    batch.push(e); size += n;
  }
  if (batch.length) msgs.push(JSON.stringify({ t: 'entries', entries: batch }));
  for (const m of msgs) bytes += m.length;
  ra.bufferedAmountLowThreshold = S.LOW_WATER;
  const rawDone = new Promise((resolve) => {
    let got = 0;
    remote.raw.onmessage = (ev) => { got += ev.data.length; if (got >= bytes) resolve(); };
  });
  t0 = performance.now();
  for (const m of msgs) {
    while (ra.bufferedAmount > S.HIGH_WATER) await new Promise((r) => ra.addEventListener('bufferedamountlow', r, { once: true }));
    ra.send(m);
  }
  await rawDone;
  const rawMs = performance.now() - t0;

  // The product: two Sessions, the receiver checks every entry in the worker and keeps it.
  const long = [];
  const obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) long.push(e.duration); });
  obs.observe({ type: 'longtask' });
  const lb = new h.Log(room);
  const synced = new Promise((resolve) => {
    const sb = new S.Session({ channel: remote.chattorrent, room, me: { id: 'receiver', name: 'B' }, log: lb,
      persist: () => {}, verify: V.workerVerifier(), onEvent: (ev) => { if (ev.type === 'added' && lb.size >= N) resolve(); } });
    sb.start();
  });
  const sa = new S.Session({ channel: ca, room, me: { id: 'sender', name: 'A' }, log: la, persist: () => {} });
  t0 = performance.now();
  sa.start();
  await synced;
  const syncMs = performance.now() - t0;
  obs.disconnect();
  pa.close(); pb.close();
  return { verifyPerSec, rawMs, syncMs, bytes, longTasks: long.length, longestTask: long.length ? Math.max(...long) : 0 };
})`

// BenchmarkBrowserHistory reports, from a real Chromium page: entries verified per second
// on the page, and the time to sync 10k and 100k entries between two peer connections with
// the product's protocol, as a ratio against sending the same bytes raw over the same
// connection (x-raw; 1 would be free). Run it in a namespace:
//
//	unshare -n sh -c 'ip link set lo up && go test ./web/e2e/ -run ^$ -bench BrowserHistory -benchtime 1x'
func BenchmarkBrowserHistory(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			u := newUser(b, "bench", "en-US")
			type result struct {
				VerifyPerSec, RawMs, SyncMs, LongestTask float64
				Bytes, LongTasks                         int
			}
			var r result
			for b.Loop() {
				ctx, cancel := context.WithTimeout(u.ctx, 10*time.Minute)
				var err error
				r, err = chromedp.Run(ctx, chromedp.Evaluate[result](fmt.Sprintf("%s(%d)", benchHistoryJS, n), chromedp.EvalAwaitPromise))
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(r.VerifyPerSec, "verified/s")
			b.ReportMetric(r.SyncMs, "sync-ms")
			b.ReportMetric(r.RawMs, "raw-ms")
			b.ReportMetric(r.SyncMs/r.RawMs, "x-raw")
			b.ReportMetric(float64(r.Bytes)/1e6, "MB")
			b.ReportMetric(float64(r.LongTasks), "longtasks")
			b.ReportMetric(r.LongestTask, "longest-ms")
		})
	}
}
