package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// storeJS writes size bytes in 4 MiB batches of 16 KiB pieces with one method and returns
// the milliseconds it took. The pieces lie in 49189-byte messages, as a pieces frame's.
const storeJS = `(async (how, size) => {
  const [method, batch] = how.split(':');
  const PIECE = 16384, BATCH = Number(batch || 256);
  const msgs = [];
  for (let i = 0; i < BATCH / 3 + 1; i++) msgs.push(crypto.getRandomValues(new Uint8Array(37 + 3 * PIECE)));
  const batchParts = () => {
    const parts = [];
    for (let k = 0; k < BATCH; k++) { const m = msgs[Math.floor(k / 3)]; const o = 37 + (k % 3) * PIECE; parts.push(m.subarray(o, o + PIECE)); }
    return parts;
  };
  const req = (r) => new Promise((res, rej) => { r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const done = (tx) => new Promise((res, rej) => { tx.oncomplete = res; tx.onerror = () => rej(tx.error); tx.onabort = () => rej(tx.error); });
  const name = 'bench-' + method + batch + '-' + Math.random();
  let db;
  if (method.startsWith('idb')) {
    const r = indexedDB.open(name, 1);
    r.onupgradeneeded = () => { r.result.createObjectStore('files', { keyPath: 'root' }); r.result.createObjectStore('batches', { keyPath: ['root', 'first'] }); };
    db = await req(r);
    const tx = db.transaction('files', 'readwrite'); tx.objectStore('files').put({ root: 'x', have: new Uint8Array(size / PIECE / 8) }); await done(tx);
  }
  let cache, worker, handle;
  if (method === 'cache') cache = await caches.open(name);
  if (method.startsWith('opfs')) {
    worker = new Worker('/opfs-bench-worker.js');
        const reply = () => new Promise((r, j) => { worker.onerror = (e) => j(new Error('worker: ' + e.message)); worker.onmessage = (e) => e.data === 0 ? r() : j(new Error(e.data)); });
    const p = reply(); worker.postMessage({ open: name }); await p;
    worker.reply = reply;
  }
  const t0 = performance.now();
  for (let first = 0, b = 0; first * PIECE < size; first += BATCH, b++) {
    const parts = batchParts();
    switch (method) {
    case 'none': break;
    case 'blob': new Blob(parts); break;
    case 'idb-blob-parts': case 'idb-blob-one': case 'idb-buffer': case 'idb-blob-relaxed': {
      let value;
      if (method === 'idb-blob-parts' || method === 'idb-blob-relaxed') value = new Blob(parts);
      else { const one = new Uint8Array(BATCH * PIECE); parts.forEach((p, k) => one.set(p, k * PIECE)); value = method === 'idb-buffer' ? one.buffer : new Blob([one]); }
      const tx = db.transaction(['files', 'batches'], 'readwrite', method === 'idb-blob-relaxed' ? { durability: 'relaxed' } : undefined);
      const files = tx.objectStore('files');
      const f = await req(files.get('x'));
      tx.objectStore('batches').put({ root: 'x', first, indexes: Array.from({ length: BATCH }, (_, k) => first + k), blob: value });
      files.put(f);
      await done(tx);
      break;
    }
    case 'cache': await cache.put('/bench/' + b, new Response(new Blob(parts))); break;
    case 'opfs-flush': case 'opfs': {
      const one = new Uint8Array(BATCH * PIECE); parts.forEach((p, k) => one.set(p, k * PIECE));
      const p = worker.reply(); worker.postMessage({ bufs: [one], at: first * PIECE, flush: method === 'opfs-flush' }, [one.buffer]); await p;
      break;
    }
    case 'opfs-parts': {
      const bufs = parts.map((p) => p.slice());
      const p = worker.reply(); worker.postMessage({ bufs, at: first * PIECE, flush: true }, bufs.map((x) => x.buffer)); await p;
      break;
    }
    default: throw new Error('no method ' + method);
    }
  }
  const ms = performance.now() - t0;
  if (db) { db.close(); indexedDB.deleteDatabase(name); }
  if (cache) await caches.delete(name);
  if (worker) worker.terminate();
  return ms;
})`

// opfsWorkerJS writes the buffers it is sent at their offset in a file of the origin's
// private file system, through a synchronous access handle.
const opfsWorkerJS = `let h;
onmessage = async (e) => {
  try {
    if (e.data.open) {
      const d = await navigator.storage.getDirectory();
      const f = await d.getFileHandle(e.data.open, { create: true });
      h = await f.createSyncAccessHandle();
      postMessage(0);
      return;
    }
    const { bufs, at, flush } = e.data;
    let o = at;
    for (const b of bufs) { h.write(b, { at: o }); o += b.byteLength; }
    if (flush) h.flush();
    postMessage(0);
  } catch (err) { postMessage(String(err)); }
};
`

// BenchmarkBrowserStorage compares ways a page can keep the pieces it receives: each method
// writes 256 MiB in 4 MiB batches of 16 KiB pieces; logged: the time and the CPU seconds of
// the browser's processes. Run:
//
//	unshare -n sh -c 'ip link set lo up && go test ./web/e2e/ -run ^$ -bench BrowserStorage -benchtime 1x -v'
func BenchmarkBrowserStorage(b *testing.B) {
	// The page's policy allows workers from its own origin only: serve one beside a copy of it.
	static := filepath.Join(b.TempDir(), "static")
	if err := os.CopyFS(static, os.DirFS("../static")); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(static, "opfs-bench-worker.js"), []byte(opfsWorkerJS), 0o644); err != nil {
		b.Fatal(err)
	}
	u := newUserAt(b, "S", "en-US", startBox(b, "e2ebox3", "--static-dir", static), noDNS)
	pid := chromedp.FromContext(u.ctx).Browser.Process().Pid
	const size = 256 << 20
	for b.Loop() {
		for range 2 {
			for _, m := range []string{"none", "idb-blob-parts", "idb-blob-parts:512", "idb-blob-parts:1024", "idb-blob-one", "idb-blob-relaxed", "idb-buffer", "cache", "opfs", "opfs-flush", "opfs-parts"} {
				c0 := sampleCPU(pid)
				ms, err := chromedp.Run(u.ctx, chromedp.Evaluate[float64](fmt.Sprintf("%s(%q, %d)", storeJS, m, size), chromedp.EvalAwaitPromise))
				if err != nil {
					b.Fatalf("%s: %v", m, err)
				}
				time.Sleep(time.Second) // late work (blob files written after the transaction) counts too
				b.Logf("%-19s %6.0f ms  CPU %s", m, ms, chromiumCPU(c0, sampleCPU(pid)))
			}
		}
	}
}
