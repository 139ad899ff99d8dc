// The window of a room the page holds: a run of its entries in display order
// (history.compareEntries), read from IndexedDB a page at a time (entries.js), never the
// whole room. It starts at the newest entries; scrolling up reads older pages in front and,
// past MAX, lets go of the newest (then scrolling down reads them again). Entries that
// arrive join it when it reaches the newest. Pure bookkeeping: no DOM, no storage.

import { compareEntries } from './history.js';

export const WINDOW_PAGE = 200; // entries read at a time
export const WINDOW_MAX = 600; // entries held at most

export class EntryWindow {
  constructor({ page = WINDOW_PAGE, max = WINDOW_MAX } = {}) {
    this.page = page;
    this.max = max;
    this.entries = []; // in display order
    this.ids = new Set();
    this.atStart = false; // holds the room's oldest entry
    this.atEnd = false; // holds the room's newest entry
    this.loaded = false;
    this.before = 0; // entries of the room before first() (the "show earlier" count)
  }

  /** The newest page, as read: more when older entries exist; total: the room's size. */
  reset(newest, more, total = newest.length) {
    this.before = more ? Math.max(0, total - newest.length) : 0;
    this.entries = [...newest];
    this.ids = new Set(newest.map((e) => e.id));
    this.atStart = !more;
    this.atEnd = true;
    this.loaded = true;
  }

  first() {
    return this.entries[0] || null;
  }

  last() {
    return this.entries[this.entries.length - 1] || null;
  }

  /** An older page (oldest first), read before first(): more when still older exist.
   * Returns how many of the newest were let go. */
  prepend(older, more) {
    const fresh = older.filter((e) => !this.ids.has(e.id));
    for (const e of fresh) this.ids.add(e.id);
    this.entries = fresh.concat(this.entries);
    this.atStart = !more;
    this.before = more ? Math.max(0, this.before - fresh.length) : 0;
    const drop = Math.max(0, this.entries.length - this.max);
    if (drop) {
      for (const e of this.entries.splice(this.entries.length - drop)) this.ids.delete(e.id);
      this.atEnd = false;
    }
    return drop;
  }

  /** A newer page (oldest first), read after last(): more when still newer exist. Returns
   * how many of the oldest were let go. */
  append(newer, more) {
    const fresh = newer.filter((e) => !this.ids.has(e.id));
    for (const e of fresh) this.ids.add(e.id);
    this.entries = this.entries.concat(fresh);
    this.atEnd = !more;
    return this.trimStart();
  }

  trimStart(keep = this.max) {
    const drop = Math.max(0, this.entries.length - keep);
    if (drop) {
      for (const e of this.entries.splice(0, drop)) this.ids.delete(e.id);
      this.atStart = false;
      this.before += drop;
    }
    return drop;
  }

  /** An entry stored just now (mine, a peer's, another tab's): taken, in its place, when
   * the window reaches the newest and the entry falls inside it. Returns whether taken. */
  add(e) {
    if (!this.loaded || !this.atEnd || this.ids.has(e.id)) return false;
    const list = this.entries;
    if (!this.atStart && list.length && compareEntries(e, list[0]) < 0) return false;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareEntries(list[mid], e) <= 0) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, e);
    this.ids.add(e.id);
    // Following the newest, the window keeps max - page: the oldest go (scrolling up
    // reads them again), and one older page still fits without letting the newest go.
    this.trimStart(this.max - this.page);
    return true;
  }

  /** The entry with this id, if held. */
  get(id) {
    return this.ids.has(id) ? this.entries.find((e) => e.id === id) : undefined;
  }
}
