// Runs: how entries.js keeps a room's entries in IndexedDB. A record holds a run of one
// author's consecutive entries (up to RUN_MAX), not one entry: IndexedDB's cost is per
// record (docs/PERFORMANCE.md: 337 µs an entry as a record with three indexes, 11.7 µs
// as one of 200 in a record), and a first sync of 100,000 entries could not be stored at
// the rate the channel brings them. The display order (history.compareEntries) is read
// back by merging runs (Merge): each run is indexed by its lowest and highest order key,
// and a page walks those keys, opening only the runs that hold entries of the page.
// Pure logic: no IndexedDB here (web/jstest/runs.test.mjs).

import { compareEntries } from './history.js';

export const RUN_MAX = 256; // entries a run holds at most
export const RUN_GROW = 64; // a stored run shorter than this takes its author's next entries
export const RUN_SPAN_MS = 24 * 3600 * 1000; // a run's entries' ts lie within a day of each other

/** An entry's place in the display order, without its room: [ts, author, seq]. */
export function keyOf(e) {
  return [e.ts, e.author, e.seq];
}

/** Whether e can be stored in a run: the fields its keys are made of are there. Entries are
 * checked before they are stored; this keeps a record an early page stored that would not
 * be (a key IndexedDB refuses) from failing a write or an upgrade whole. */
export function storable(e) {
  return !!e && typeof e === 'object' && typeof e.author === 'string' && typeof e.id === 'string' &&
    Number.isSafeInteger(e.seq) && e.seq >= 1 && Number.isSafeInteger(e.ts);
}

/** Compares order keys [ts, author, seq] (a shorter key, a prefix, sorts first). */
export function cmpKey(a, b) {
  for (let i = 0; i < 3; i++) {
    if (a.length <= i || b.length <= i) return a.length - b.length;
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

/** The record of a run: one author's entries at consecutive seqs, ascending. Its key is
 * [room, author, first]; its indexes read [room, author, last, id] (heads, an author's
 * entry at a seq, slices of a chain) and [room, hi, lo] / [room, lo, hi] (display order). */
export function runRecord(room, entries) {
  let lo = entries[0];
  let hi = entries[0];
  for (const e of entries) {
    if (compareEntries(e, lo) < 0) lo = e;
    if (compareEntries(e, hi) > 0) hi = e;
  }
  const last = entries[entries.length - 1];
  return { room, author: last.author, first: entries[0].seq, last: last.seq, id: last.id, lo: keyOf(lo), hi: keyOf(hi), entries };
}

/** Cuts an author's new entries (ascending seq, none stored) into runs: the first run goes
 * on from grow (the author's last stored run, rewritten with them) when they follow it. A
 * run ends at RUN_MAX entries, at a seq that does not follow, and before an entry whose ts
 * would make it span more than RUN_SPAN_MS (so a page's walk starts a day from its edge). */
export function cutRuns(grow, fresh) {
  const runs = [];
  let cur = grow.length ? [...grow] : [];
  let min = Infinity;
  let max = -Infinity;
  for (const e of cur) {
    min = Math.min(min, e.ts);
    max = Math.max(max, e.ts);
  }
  for (const e of fresh) {
    const prev = cur[cur.length - 1];
    const fits = prev && cur.length < RUN_MAX && e.seq === prev.seq + 1 &&
      Math.max(max, e.ts) - Math.min(min, e.ts) <= RUN_SPAN_MS;
    if (!fits && cur.length) {
      runs.push(cur);
      cur = [];
      min = Infinity;
      max = -Infinity;
    }
    cur.push(e);
    min = Math.min(min, e.ts);
    max = Math.max(max, e.ts);
  }
  if (cur.length) runs.push(cur);
  return runs;
}

/**
 * One page of the display order, merged from runs. The reader walks the runs' index keys:
 * older pages (dir -1) by hi, descending; newer pages (dir 1) by lo, ascending. For each
 * key it asks wants(other end): whether the run holds entries inside the bound (those it
 * does not are passed over without reading them); then reach(edge), which emits the
 * entries no run further on can precede, and says whether the page is full (the walk
 * stops: more); else it reads the run and gives its entries to take(). At the walk's end,
 * finish(). result() is the page in display order and whether entries lie beyond it.
 */
export class Merge {
  /** bound: an order key the page is older (dir -1) or newer (dir 1) than; null: none. */
  constructor(bound, n, dir) {
    this.bound = bound;
    this.n = n;
    this.dir = dir;
    this.open = [];
    this.out = [];
    this.more = false;
  }

  /** Whether key lies inside the bound: for a run's far end (lo when older, hi when
   * newer), whether the run holds entries of the page. */
  wants(key) {
    return this.bound === null || this.dir * cmpKey(key, this.bound) > 0;
  }

  /** Takes a run's entries (those inside the bound). */
  take(entries) {
    const list = entries.filter((e) => this.wants(keyOf(e))).sort(compareEntries);
    if (this.dir < 0) list.reverse();
    if (list.length) this.open.push({ list, i: 0 });
  }

  /** The entry the page takes next, from the open runs (their best head), or null. */
  best() {
    let b = -1;
    for (let k = 0; k < this.open.length; k++) {
      const r = this.open[k];
      if (b < 0 || this.dir * compareEntries(r.list[r.i], this.open[b].list[this.open[b].i]) < 0) b = k;
    }
    return b;
  }

  emit(b) {
    const r = this.open[b];
    this.out.push(r.list[r.i++]);
    if (r.i === r.list.length) this.open.splice(b, 1);
  }

  /** The next run of the walk has this edge (hi when older, lo when newer): nothing not yet
   * open comes before it in the page's direction. Emits what is sure; true when full. */
  reach(edge) {
    for (;;) {
      if (this.out.length === this.n) {
        this.more = true;
        return true;
      }
      const b = this.best();
      if (b < 0) return false;
      const r = this.open[b];
      if (this.dir * cmpKey(keyOf(r.list[r.i]), edge) >= 0) return false;
      this.emit(b);
    }
  }

  finish() {
    for (let b; this.out.length < this.n && (b = this.best()) >= 0;) this.emit(b);
    if (this.open.length) this.more = true;
  }

  /** {entries: the page in display order, more}. */
  result() {
    const entries = this.dir < 0 ? this.out.reverse() : this.out;
    return { entries, more: this.more };
  }
}
