package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// benchIDBJS stores the N entries benchPrepareJS signed into fresh IndexedDB databases, in
// transactions of 200 (relaxed, as a page stores a peer's batch), three ways: one record
// per entry keyed [room, id] with the page's three indexes (as entries.js stores them), the
// same without indexes, and one record per batch of 200. It returns the time of each.
const benchIDBJS = `(async () => {
  const { entries, room } = window.__bench;
  const open = (name, indexes) => new Promise((resolve, reject) => {
    const r = indexedDB.open(name, 1);
    r.onupgradeneeded = () => {
      const s = r.result.createObjectStore('e');
      if (!indexes) return;
      s.createIndex('order', ['room', 'ts', 'author', 'seq']);
      s.createIndex('chain', ['room', 'author', 'seq']);
      s.createIndex('kind', ['room', 'kind']);
    };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const run = async (label, indexes, batched) => {
    const db = await open('bench-idb-' + label + '-' + Date.now(), indexes);
    const t0 = performance.now();
    for (let i = 0; i < entries.length; i += 200) {
      const tx = db.transaction('e', 'readwrite', { durability: 'relaxed' });
      const s = tx.objectStore('e');
      if (batched) s.put(entries.slice(i, i + 200), [room, i]);
      else for (const e of entries.slice(i, i + 200)) s.put(e, [room, e.id]);
      await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
    }
    const ms = performance.now() - t0;
    db.close();
    return ms;
  };
  return { indexedMs: await run('indexed', true, false), plainMs: await run('plain', false, false), batchMs: await run('batch', false, true) };
})`

// BenchmarkBrowserIndexedDB: what storing a first sync's entries costs the browser itself,
// the bound of BenchmarkBrowserHistory's 100,000-entry sync (docs/PERFORMANCE.md). Per
// entry, in microseconds: a record per entry with the page's three indexes (indexed-us),
// without indexes (plain-us), and a record per batch of 200 entries (batch-us, the
// baseline); x-batch is indexed over batch.
//
//	unshare -n sh -c 'ip link set lo up && go test ./web/e2e/ -run ^$ -bench BrowserIndexedDB -benchtime 1x'
func BenchmarkBrowserIndexedDB(b *testing.B) {
	const n = 20000
	u := newUser(b, "bench", "en-US")
	type result struct{ IndexedMs, PlainMs, BatchMs float64 }
	var r result
	for b.Loop() {
		ctx, cancel := context.WithTimeout(u.ctx, 10*time.Minute)
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf("%s(%d)", benchPrepareJS, n), chromedp.EvalAwaitPromise))
		if err == nil {
			r, err = chromedp.Run(ctx, chromedp.Evaluate[result](benchIDBJS+"()", chromedp.EvalAwaitPromise))
		}
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	us := func(ms float64) float64 { return ms * 1000 / n }
	b.ReportMetric(us(r.IndexedMs), "indexed-us")
	b.ReportMetric(us(r.PlainMs), "plain-us")
	b.ReportMetric(us(r.BatchMs), "batch-us")
	b.ReportMetric(r.IndexedMs/r.BatchMs, "x-batch")
}
