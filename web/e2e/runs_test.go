package e2e

import (
	"testing"
)

// storedRunsJS drives entries.js (the page's own module, a fresh database) with a room of
// six authors, some of whose clocks go backwards or jump a day or two, stored in batches
// of 1 to 300 entries as live messages and syncs store them: runs are grown and cut. It
// returns what is wrong: pages back from the newest and on from the oldest (pages of 37)
// must be the display order whole; heads, count, at, slice, newestOf and ofKinds must
// agree with the entries; storing entries again (a second tab, a sync after a move) must
// keep one copy; and a room of 10,000 must be far fewer records than entries.
const storedRunsJS = `(async () => {
  const { EntryStore, orderKey } = await import('/js/entries.js');
  const { compareEntries } = await import('/js/history.js');
  const { RUN_SPAN_MS } = await import('/js/runs.js');
  const bad = [];
  let x = 12345;
  const rnd = () => ((x = (x * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const room = 'e2'.repeat(16);
  const other = 'f3'.repeat(16);
  const seqs = new Map(), clocks = new Map(), entries = [];
  for (let i = 0; i < 3000; i++) {
    const author = 'author' + Math.floor(rnd() * 6);
    const seq = (seqs.get(author) || 0) + 1;
    seqs.set(author, seq);
    let ts = clocks.get(author) ?? 1700000000000;
    const s = rnd();
    if (s < 0.1) ts -= Math.floor(rnd() * 60000);
    else if (s < 0.13) ts += RUN_SPAN_MS + Math.floor(rnd() * RUN_SPAN_MS);
    else if (s > 0.2) ts += Math.floor(rnd() * 5000);
    clocks.set(author, ts);
    const kind = i % 97 === 0 ? 'file' : 'text';
    entries.push({ room, author, seq, ts, kind, body: 'b' + i, id: author + '-' + seq, prev: '', sig: '', name: author });
  }
  const s = new EntryStore(null, 'runs-' + Date.now());
  for (let i = 0; i < entries.length;) {
    const n = rnd() < 0.5 ? 1 : 1 + Math.floor(rnd() * 300);
    await s.append(room, entries.slice(i, i + n), { relaxed: n > 1 });
    i += n;
  }
  await s.append(other, [{ room: other, author: 'author0', seq: 1, ts: 1, kind: 'text', body: 'x', id: 'o1' }]);
  // Again, in other batches: nothing is stored twice.
  await s.append(room, entries.slice(1000, 1400), { relaxed: true });
  await s.append(room, entries.slice(2990), { relaxed: true });
  const want = [...entries].sort(compareEntries).map((e) => e.id);
  const ids = (es) => es.map((e) => e.id);
  const back = [];
  for (let before = null, k = 0; ; k++) {
    const p = await s.page(room, { before, n: 37 });
    back.unshift(...ids(p.entries));
    if (!p.more || k > 200) break;
    before = orderKey(p.entries[0]);
  }
  if (back.join() !== want.join()) bad.push('paged back: ' + back.length + ' entries, not the display order of ' + want.length);
  const on = [];
  await s.each(room, (batch) => { on.push(...ids(batch)); }, 37);
  if (on.join() !== want.join()) bad.push('paged on (each): ' + on.length + ' entries, not the display order of ' + want.length);
  const mid = await s.page(room, { after: orderKey(entries[1500]), n: 100 });
  const at = want.indexOf(entries[1500].id);
  if (ids(mid.entries).join() !== want.slice(at + 1, at + 101).join() || !mid.more) bad.push('the page after an entry is not the next 100');
  if ((await s.count(room)) !== 3000) bad.push('count ' + (await s.count(room)));
  if ((await s.count()) !== 3001) bad.push('count of all ' + (await s.count()));
  const src = s.source(room);
  const { heads, size } = await src.heads();
  if (size !== 3000 || heads.size !== 6) bad.push('heads: size ' + size + ', ' + heads.size + ' authors');
  for (const [a, h] of heads) if (h.seq !== seqs.get(a) || h.id !== a + '-' + h.seq) bad.push('head of ' + a + ': ' + JSON.stringify(h));
  for (const e of [entries[0], entries[777], entries[2999]]) {
    const got = await src.at(e.author, e.seq);
    if (!got || got.id !== e.id) bad.push('at ' + e.id + ': ' + (got && got.id));
  }
  if ((await src.at('author1', 100000)) !== undefined) bad.push('at past the head');
  const sl = await src.slice('author2', 40, 300);
  const want2 = entries.filter((e) => e.author === 'author2' && e.seq > 40).slice(0, 300);
  if (ids(sl).join() !== ids(want2).join()) bad.push('slice: ' + sl.length + ' entries');
  const newest = await s.newestOf(room, 'author3', ['author3-5', 'author3-9', 'nobody']);
  if (!newest || newest.id !== 'author3-9') bad.push('newestOf: ' + (newest && newest.id));
  const files = await s.ofKinds(room, new Set(['file', 'image']));
  const wantFiles = entries.filter((e) => e.kind === 'file').map((e) => e.id).sort();
  if (ids(files).sort().join() !== wantFiles.join()) bad.push('ofKinds: ' + files.length + ' of ' + wantFiles.length);
  const db = await s.open();
  const records = await new Promise((resolve) => { const r = db.transaction('runs').objectStore('runs').count(); r.onsuccess = () => resolve(r.result); });
  if (records > 600) bad.push(records + ' records for 3,001 entries');
  db.close();
  return bad;
})()`

// TestStoredRuns: the page's stored entries (entries.js, runs of an author's entries as
// records) read back right in each engine: see storedRunsJS.
func TestStoredRuns(t *testing.T) {
	for _, e := range []engine{chromiumEngine, firefoxEngine} {
		t.Run(e.name, func(t *testing.T) {
			p := e.open(t, "A", "en-US")
			var bad []string
			p.evalJSON(storedRunsJS, &bad)
			for _, b := range bad {
				t.Error(b)
			}
			p.checkConsole()
		})
	}
}
