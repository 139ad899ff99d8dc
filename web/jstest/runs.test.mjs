import test from 'node:test';
import assert from 'node:assert/strict';
import { compareEntries } from '../static/js/history.js';
import { Merge, RUN_GROW, RUN_MAX, RUN_SPAN_MS, cmpKey, cutRuns, keyOf, runRecord, storable } from '../static/js/runs.js';

const room = 'ab'.repeat(16);

// A deterministic generator (the same runs every time).
function rng(seed) {
  let x = seed >>> 0;
  return () => {
    x = (x * 1664525 + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

// Entries of several authors; some clocks go backwards, some authors write a day apart.
function history(seed, n, authors = 5) {
  const r = rng(seed);
  const seqs = new Map();
  const clocks = new Map();
  const out = [];
  for (let i = 0; i < n; i++) {
    const author = `author${Math.floor(r() * authors)}`;
    const seq = (seqs.get(author) || 0) + 1;
    seqs.set(author, seq);
    let ts = clocks.get(author) ?? 1_700_000_000_000;
    const step = r();
    if (step < 0.1) ts -= Math.floor(r() * 60_000); // the clock went back
    else if (step < 0.15) ts += RUN_SPAN_MS + Math.floor(r() * RUN_SPAN_MS); // a day or two later
    else if (step < 0.2) ts += 0; // the same millisecond
    else ts += Math.floor(r() * 5000);
    clocks.set(author, ts);
    out.push({ room, author, seq, ts, id: `${author}-${seq}`, kind: 'text', body: '' });
  }
  return out;
}

// Stores entries as entries.js write() does, in batches: per author, the fresh ones go on a
// short last run, else into new runs. Returns the records.
function store(entries, seed) {
  const r = rng(seed);
  const runs = new Map(); // author → records, ascending
  for (let i = 0; i < entries.length;) {
    const size = r() < 0.5 ? 1 : 1 + Math.floor(r() * 300);
    const batch = entries.slice(i, i + size);
    i += size;
    const byAuthor = new Map();
    for (const e of batch) {
      if (!byAuthor.has(e.author)) byAuthor.set(e.author, []);
      byAuthor.get(e.author).push(e);
    }
    for (const [author, fresh] of byAuthor) {
      const list = runs.get(author) || [];
      const last = list[list.length - 1];
      let grow = [];
      if (last && last.entries.length < RUN_GROW && fresh[0].seq === last.last + 1) grow = list.pop().entries;
      for (const run of cutRuns(grow, fresh)) list.push(runRecord(room, run));
      runs.set(author, list);
    }
  }
  return [...runs.values()].flat();
}

// entries.js page(), over records in memory: the same walk (index order, the range a day
// beyond the bound, runs passed over by their index key) and the same Merge.
function page(records, { before = null, after = null, n }) {
  const older = after === null;
  const bound = older ? before : after;
  const m = new Merge(bound && bound.length ? bound : null, n, older ? -1 : 1);
  let keys = records.map((rec) => ({ edge: older ? rec.hi : rec.lo, far: older ? rec.lo : rec.hi, rec }));
  keys.sort((a, b) => cmpKey(a.edge, b.edge) || cmpKey(a.far, b.far));
  if (older) {
    keys.reverse();
    if (bound) keys = keys.filter((k) => k.edge[0] <= bound[0] + RUN_SPAN_MS);
  } else if (bound.length) keys = keys.filter((k) => k.edge[0] >= bound[0] - RUN_SPAN_MS);
  let read = 0;
  for (const k of keys) {
    if (!m.wants(k.far)) continue;
    if (m.reach(k.edge)) return { ...m.result(), read };
    m.take(k.rec.entries);
    read++;
  }
  m.finish();
  return { ...m.result(), read };
}

test('runs: cut at RUN_MAX, at a seq that does not follow, and before a day is spanned', () => {
  const e = (seq, ts) => ({ author: 'a', seq, ts });
  const long = Array.from({ length: RUN_MAX + 10 }, (_, i) => e(i + 1, i));
  assert.deepEqual(cutRuns([], long).map((r) => r.length), [RUN_MAX, 10]);
  assert.deepEqual(cutRuns([e(1, 0), e(2, 1)], [e(3, 2), e(5, 3)]).map((r) => r.map((x) => x.seq)), [[1, 2, 3], [5]]);
  assert.deepEqual(cutRuns([], [e(1, 0), e(2, RUN_SPAN_MS), e(3, RUN_SPAN_MS + 1)]).map((r) => r.length), [2, 1]);
  // A clock that goes back counts too: the span is max - min.
  assert.deepEqual(cutRuns([], [e(1, RUN_SPAN_MS), e(2, 0), e(3, -1)]).map((r) => r.length), [2, 1]);
  const rec = runRecord(room, [{ author: 'a', seq: 4, ts: 9, id: 'x' }, { author: 'a', seq: 5, ts: 3, id: 'y' }]);
  assert.deepEqual([rec.first, rec.last, rec.id, rec.lo, rec.hi], [4, 5, 'y', [3, 'a', 5], [9, 'a', 4]]);
});

test('runs: cmpKey orders as compareEntries, a prefix first', () => {
  const r = rng(7);
  const es = Array.from({ length: 200 }, () => ({ ts: Math.floor(r() * 5), author: `a${Math.floor(r() * 3)}`, seq: Math.floor(r() * 4) }));
  for (const a of es) for (const b of es.slice(0, 20)) assert.equal(Math.sign(cmpKey(keyOf(a), keyOf(b))), Math.sign(compareEntries(a, b)));
  assert.ok(cmpKey([], [0, 'a', 1]) < 0);
  assert.ok(cmpKey([5], [5, 'a', 1]) < 0);
});

test('runs: paging back from the newest and on from the oldest gives the display order, whole', () => {
  for (const seed of [1, 2, 3, 4]) {
    const entries = history(seed, 3000, 2 + seed);
    const records = store(entries, seed + 100);
    assert.ok(records.length < entries.length / 4, `${records.length} records for ${entries.length} entries`);
    for (const rec of records) {
      const ts = rec.entries.map((e) => e.ts);
      assert.ok(Math.max(...ts) - Math.min(...ts) <= RUN_SPAN_MS, 'a run spans at most a day');
      assert.ok(rec.entries.every((e, i) => e.seq === rec.first + i));
    }
    const want = [...entries].sort(compareEntries).map((e) => e.id);
    for (const n of [1, 37, 200]) {
      const back = [];
      let before = null;
      for (;;) {
        const p = page(records, { before, n });
        assert.ok(p.entries.length <= n);
        back.unshift(...p.entries.map((e) => e.id));
        if (!p.more) break;
        assert.equal(p.entries.length, n);
        before = keyOf(p.entries[0]);
      }
      assert.deepEqual(back, want, `seed ${seed}, pages of ${n} back`);
      const on = [];
      let after = [];
      for (;;) {
        const p = page(records, { after, n });
        on.push(...p.entries.map((e) => e.id));
        if (!p.more) break;
        after = keyOf(p.entries[p.entries.length - 1]);
      }
      assert.deepEqual(on, want, `seed ${seed}, pages of ${n} on`);
    }
  }
});

test('runs: a page reads the runs it needs, not the room', () => {
  // One author writing steadily, stored in batches of 200 (a first sync): the newest page
  // of 200 reads at most two runs of the 500.
  const entries = Array.from({ length: 100_000 }, (_, i) => ({ room, author: 'a', seq: i + 1, ts: 1_700_000_000_000 + i, id: `a${i}` }));
  const records = [];
  for (let i = 0; i < entries.length; i += 200) records.push(...cutRuns([], entries.slice(i, i + 200)).map((r) => runRecord(room, r)));
  assert.equal(records.length, 500);
  const p = page(records, { n: 200 });
  assert.ok(p.read <= 2, `read ${p.read}`);
  assert.deepEqual(p.entries.map((e) => e.seq), entries.slice(-200).map((e) => e.seq));
  const mid = page(records, { before: keyOf(entries[50_000]), n: 200 });
  assert.ok(mid.read <= 2, `read ${mid.read}`);
  assert.deepEqual(mid.entries.map((e) => e.seq), entries.slice(49_800, 50_000).map((e) => e.seq));
});

test('runs: only entries whose keys can be made are stored', () => {
  const e = { author: 'a', id: 'x', seq: 1, ts: 5 };
  assert.ok(storable(e));
  for (const bad of [null, 'e', { ...e, ts: undefined }, { ...e, ts: 1.5 }, { ...e, seq: 0 }, { ...e, author: 1 }, { ...e, id: null }]) {
    assert.ok(!storable(bad), JSON.stringify(bad));
  }
});
