// Rooms' histories in IndexedDB, read by cursor: the page never holds a room, only a window
// of it (window.js) and each author's head (history.Log). Since version 3 a record holds a
// run of an author's consecutive entries (runs.js), not one entry: IndexedDB costs per
// record, and a first sync of 100,000 entries stored a record per entry at a third of the
// rate the channel brought them. Store "runs", key [room, author, first seq], indexes:
//   head [room, author, last seq, last id]: each author's head (one step per author), the
//     run holding a seq (sync checks) and an author's chain in order (what a peer lacks);
//   hi [room, hi, lo] and lo [room, lo, hi]: the runs by their highest and lowest order
//     keys ([ts, author, seq]): a page of the display order merges the runs it needs
//     (runs.js Merge), older pages walking hi down, newer ones lo up.
// Store "kinds", key [room, kind, author, seq] → the entry: every entry not of kind text
// again (files, joins: few), for the room's files.
// Storing an entry twice (two tabs, two peers, a move cut short) keeps one copy: what an
// author's stored head covers is dropped in the write's transaction. Histories earlier
// pages kept in localStorage (storage.js's chunks) are copied here at start (load), then
// removed there; versions 1 and 2 (a record per entry) are regrouped into runs in place.
// Tabs tell each other what they store (BroadcastChannel).

import { StorageFullError } from './storage.js';
import { done, isFull, openDB, req } from './idb.js';
import { Merge, RUN_GROW, RUN_MAX, RUN_SPAN_MS, cutRuns, runRecord, storable } from './runs.js';

const DB = 'chattorrent-history';
const VERSION = 3;
const RUNS = 'runs'; // [room, author, first] → run (runs.js runRecord)
const KINDS = 'kinds'; // [room, kind, author, seq] → entry, every kind but text
const OLD = 'entries'; // versions 1 and 2: [room, e.id] → e

function roomRange(room) {
  return IDBKeyRange.bound([room], [room, []]); // [] sorts after every number and string
}

// The runs of a room on the hi or lo index: their second part is an order key (an array),
// and an array sorts after every number, string and shorter array: [[]] after every key.
function orderRange(room) {
  return IDBKeyRange.bound([room], [room, [[]]]);
}

function authorRange(room, author, from = 0) {
  return IDBKeyRange.bound([room, author, from], [room, author, []]);
}

function storageError(err) {
  return isFull(err) ? new StorageFullError(err) : err;
}

/** An upgrade of the stored entries (open) was aborted: the entries are still there in the
 * earlier page's version, untouched. code names the notice (i18n.js err.storage-upgrade). */
export class StorageUpgradeError extends Error {
  constructor(cause) {
    super(`IndexedDB upgrade aborted: ${cause && cause.name ? `${cause.name}: ` : ''}${cause && cause.message ? cause.message : String(cause)}`);
    this.name = 'StorageUpgradeError';
    this.code = 'storage-upgrade';
    this.cause = cause;
  }
}

/** The order index's key of an entry (its place in the display order). */
export function orderKey(e) {
  return [e.room, e.ts, e.author, e.seq];
}

export class EntryStore {
  /** legacy: storage.js's Storage, whose localStorage chunks are moved here. */
  constructor(legacy, name = DB) {
    this.legacy = legacy;
    this.name = name;
    this.db = null;
    this.opening = null; // the open in progress
    this.failed = null; // the StorageUpgradeError of an aborted upgrade, until a reload
    this.moved = Promise.resolve(); // load()'s moves: reads wait for them
    this.onOther = () => {}; // (room, entries) another tab stored
    // ('start' | 'done' | 'failed'): an upgrade of stored entries; 'wait': the open has
    // taken waitMs (another tab upgrading: its open waits for that tab), 'blocked': this
    // upgrade waits for another tab to close; 'done' follows either.
    this.onUpgrade = () => {};
    this.waitMs = 1500;
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(name) : null;
    if (this.channel) {
      this.channel.onmessage = (ev) => {
        const { room, entries } = ev.data || {};
        if (typeof room === 'string' && Array.isArray(entries)) this.onOther(room, entries);
      };
    }
  }

  /** Opens the database, upgrading it in place from an earlier page's version: version 1
   * (pages before 2026-12-06) had the entries store without indexes, version 2 (until
   * 2026-12-07) a record per entry with indexes; the upgrade regroups their records into
   * runs (regroup) in the one versionchange transaction, which IndexedDB commits or aborts
   * whole. An aborted upgrade (an index that could not be built, a full disk) leaves the
   * earlier version as it was: open() then rejects with a StorageUpgradeError, and keeps
   * rejecting with it until the page is loaded again (each try would read every record
   * again, docs/PERFORMANCE.md). onUpgrade('start') and onUpgrade('done') or
   * onUpgrade('failed') bracket an upgrade of stored entries (what onUpgrade throws is
   * logged, never taken for a failed upgrade). */
  async open() {
    if (this.db) return this.db;
    if (this.failed) throw this.failed;
    if (!this.opening) this.opening = this.openOnce();
    try {
      return await this.opening;
    } finally {
      this.opening = null;
    }
  }

  async openOnce() {
    let cause = null; // what failed inside the upgrade
    let upgrading = false;
    let waited = false;
    const slow = setTimeout(() => {
      if (waited || upgrading) return; // said already: blocked, or this tab upgrades
      waited = true;
      this.tell('wait');
    }, this.waitMs);
    const fail = (tx) => (err) => {
      cause = cause || err;
      try {
        tx.abort(); // nothing of the upgrade is kept: the old version stays as it was
      } catch {
        // aborted already
      }
    };
    let db;
    try {
      db = await openDB(this.name, VERSION, (d, ev, tx) => {
        try {
          const had = d.objectStoreNames.contains(OLD);
          if (had) {
            upgrading = true;
            this.tell('start');
          }
          if (!d.objectStoreNames.contains(RUNS)) {
            const r = d.createObjectStore(RUNS, { keyPath: ['room', 'author', 'first'] });
            r.createIndex('head', ['room', 'author', 'last', 'id']);
            r.createIndex('hi', ['room', 'hi', 'lo']);
            r.createIndex('lo', ['room', 'lo', 'hi']);
          }
          if (!d.objectStoreNames.contains(KINDS)) d.createObjectStore(KINDS);
          if (had) regroup(d, tx, fail(tx));
        } catch (err) {
          fail(tx)(err);
        }
      }, () => {
        if (this.db === db) this.db = null;
      }, () => {
        waited = true;
        this.tell('blocked');
      });
    } catch (err) {
      if (!upgrading) throw cause || err; // a new database: nothing was there to keep
      this.failed = new StorageUpgradeError(cause || err);
      this.tell('failed');
      throw this.failed;
    } finally {
      clearTimeout(slow);
    }
    if (upgrading || waited) this.tell('done');
    this.db = db;
    return db;
  }

  tell(phase) {
    try {
      this.onUpgrade(phase);
    } catch (err) {
      console.warn('chattorrent: onUpgrade:', err);
    }
  }

  /** The database for a read: once load()'s moves are done, so a room is never read
   * without the entries an earlier page kept in localStorage. */
  async reader() {
    await this.moved;
    return this.open();
  }

  async runs() {
    const db = await this.reader();
    return db.transaction(RUNS).objectStore(RUNS);
  }

  /** Moves the rooms' histories still in localStorage here. When a move fails (the disk is
   * full), the first error is thrown once every room was tried: nothing is lost (the
   * chunks stay), the move is tried again next time. Reads started meanwhile wait for it. */
  load(rooms) {
    const p = this.moveAll(rooms);
    const before = this.moved;
    this.moved = Promise.all([before, p.catch(() => {})]);
    return p;
  }

  async moveAll(rooms) {
    let failed = null;
    for (const room of rooms) {
      try {
        await this.move(room);
      } catch (err) {
        failed = failed || err;
      }
    }
    if (failed) throw failed;
  }

  /** Copies a room's localStorage chunks here in one transaction, then removes them. */
  async move(room) {
    if (!this.legacy || !this.legacy.hasEntries(room)) return;
    await this.write(room, this.legacy.entries(room), 'strict');
    this.legacy.dropEntries(room);
  }

  /** Stores entries of a room in one transaction: all or none (StorageFullError). My own
   * entries are flushed to disk before this resolves (lost after a power cut, my next entry
   * would take the same seq: a fork); entries from peers (relaxed: true) are not waited for:
   * lost ones come back with the next sync. */
  async append(room, entries, { relaxed = false } = {}) {
    await this.write(room, entries, relaxed ? 'relaxed' : 'strict');
    if (this.channel) this.channel.postMessage({ room, entries });
  }

  /** Stores entries as runs, per author: those its stored head covers are dropped; the
   * rest go on the author's last run when it is short (RUN_GROW: one message at a time
   * still makes few records), else into new runs (runs.js cutRuns). */
  async write(room, entries, durability) {
    const byAuthor = new Map();
    for (const e of entries) {
      if (!storable(e)) continue;
      if (!byAuthor.has(e.author)) byAuthor.set(e.author, []);
      byAuthor.get(e.author).push(e);
    }
    if (!byAuthor.size) return;
    const db = await this.open();
    const tx = db.transaction([RUNS, KINDS], 'readwrite', { durability });
    const s = tx.objectStore(RUNS);
    const kinds = tx.objectStore(KINDS);
    const failed = done(tx);
    const put = (grow, fresh) => putRuns(s, kinds, room, grow, fresh);
    for (const [author, list] of byAuthor) {
      list.sort((a, b) => a.seq - b.seq);
      const c = s.index('head').openKeyCursor(authorRange(room, author), 'prev');
      c.onsuccess = () => {
        const cur = c.result;
        const last = cur ? cur.key[2] : 0;
        const fresh = [];
        for (const e of list) if (e.seq > (fresh.length ? fresh[fresh.length - 1].seq : last)) fresh.push(e);
        if (!fresh.length) return;
        const first = cur ? cur.primaryKey[2] : 0;
        if (!cur || fresh[0].seq !== last + 1 || last - first + 1 >= RUN_GROW) {
          put([], fresh);
          return;
        }
        const g = s.get(cur.primaryKey);
        g.onsuccess = () => put(g.result ? g.result.entries : [], fresh);
      };
    }
    try {
      await failed;
    } catch (err) {
      throw storageError(err);
    }
  }

  /** How many entries are stored for room, or in all. A key cursor over the runs: no
   * record is read. */
  async count(room) {
    const idx = (await this.runs()).index('head');
    let n = 0;
    await new Promise((resolve, reject) => {
      const c = idx.openKeyCursor(room === undefined ? null : roomRange(room));
      c.onerror = () => reject(c.error);
      c.onsuccess = () => {
        const cur = c.result;
        if (!cur) return resolve();
        n += cur.key[2] - cur.primaryKey[2] + 1;
        cur.continue();
        return undefined;
      };
    });
    return n;
  }

  /** The newest entry of author whose id is one of ids, looking back at most limit
   * entries of the author's chain (acks name recent entries), or null. */
  async newestOf(room, author, ids, limit = 4096) {
    const want = new Set(ids);
    if (!want.size) return null;
    const idx = (await this.runs()).index('head');
    let seen = 0;
    return new Promise((resolve, reject) => {
      const c = idx.openCursor(authorRange(room, author), 'prev');
      c.onerror = () => reject(c.error);
      c.onsuccess = () => {
        const cur = c.result;
        if (!cur) return resolve(null);
        const list = cur.value.entries;
        for (let i = list.length - 1; i >= 0; i--) if (want.has(list[i].id)) return resolve(list[i]);
        seen += list.length;
        if (seen >= limit) return resolve(null);
        cur.continue();
        return undefined;
      };
    });
  }

  /** A room as history.Log reads it (its source): heads by cursor, chains in slices. */
  source(room) {
    return new StoredChains(this, room);
  }

  /**
   * A page of the room in display order: up to n entries before key (older, returned
   * oldest first), or after key (newer); keys are orderKey()s. key null: from the newest
   * (before) or, after [room], from the oldest. Resolves {entries, more}: more when
   * entries lie beyond the page. The runs are merged (runs.js Merge): older pages walk the
   * hi index down from a day above the key (no run spans more: RUN_SPAN_MS), newer ones
   * the lo index up from a day below it; only the runs holding entries of the page are
   * read.
   */
  async page(room, { before = null, after = null, n }) {
    const older = after === null;
    const bound = older ? (before ? before.slice(1) : null) : after.slice(1);
    const m = new Merge(bound && bound.length ? bound : null, n, older ? -1 : 1);
    const s = await this.runs();
    let r;
    if (older) r = bound ? IDBKeyRange.bound([room], [room, [bound[0] + RUN_SPAN_MS, []]]) : orderRange(room);
    else r = bound.length ? IDBKeyRange.bound([room, [bound[0] - RUN_SPAN_MS]], [room, [[]]]) : orderRange(room);
    await new Promise((resolve, reject) => {
      const c = s.index(older ? 'hi' : 'lo').openKeyCursor(r, older ? 'prev' : 'next');
      c.onerror = () => reject(c.error);
      c.onsuccess = () => {
        const cur = c.result;
        if (!cur) {
          m.finish();
          return resolve();
        }
        const [, edge, far] = cur.key;
        if (!m.wants(far)) return cur.continue();
        if (m.reach(edge)) return resolve();
        const g = s.get(cur.primaryKey);
        g.onerror = () => reject(g.error);
        g.onsuccess = () => {
          if (g.result) m.take(g.result.entries);
          cur.continue();
        };
        return undefined;
      };
    });
    return m.result();
  }

  /** Calls fn(batch) with the room's entries in display order, n at a time (exports):
   * one short transaction per batch, never the room in memory. */
  async each(room, fn, n = 1000) {
    let after = [room];
    for (;;) {
      const p = await this.page(room, { after, n });
      if (p.entries.length) await fn(p.entries);
      if (!p.more) break;
      after = orderKey(p.entries[p.entries.length - 1]);
    }
  }

  /** The room's entries of these kinds (its files: few beside its messages). */
  async ofKinds(room, kinds) {
    const db = await this.reader();
    const s = db.transaction(KINDS).objectStore(KINDS);
    const lists = await Promise.all([...kinds].map((k) => req(s.getAll(IDBKeyRange.bound([room, k], [room, k, []])))));
    return lists.flat();
  }
}

/** Writes an author's new entries (fresh) as runs, the first going on from grow (runs.js
 * cutRuns), and those not of kind text again in the kinds store. */
function putRuns(runs, kinds, room, grow, fresh) {
  for (const run of cutRuns(grow, fresh)) runs.put(runRecord(room, run));
  for (const e of fresh) if (e.kind !== 'text') kinds.put(e, [room, String(e.kind), e.author, e.seq]);
}

/** Regroups version 1's or 2's records (one per entry) into runs inside the upgrade's
 * transaction: each author's chain is read in order (version 1 has no index for it: it is
 * built first), cut into runs and written; then the old store is deleted. An entry at a
 * seq already taken (a fork an early page stored) is dropped, the first kept; a record
 * the chain index cannot hold (no author or seq) was never readable and goes, and so does
 * one whose fields could not make a run's keys (runs.js storable). fail(err)
 * aborts the upgrade. */
function regroup(d, tx, fail) {
  const old = tx.objectStore(OLD);
  const idx = old.indexNames.contains('chain') ? old.index('chain') : old.createIndex('chain', ['room', 'author', 'seq']);
  const runs = tx.objectStore(RUNS);
  const kinds = tx.objectStore(KINDS);
  let cur = []; // the run being read: one room and author, consecutive seqs
  const flush = () => {
    if (cur.length) putRuns(runs, kinds, cur[0].room, [], cur);
    cur = [];
  };
  const c = idx.openCursor();
  c.onerror = () => fail(c.error);
  c.onsuccess = () => {
    try {
      const at = c.result;
      if (!at) {
        flush();
        d.deleteObjectStore(OLD);
        return;
      }
      const e = at.value;
      const [room, author, seq] = at.key;
      const prev = cur[cur.length - 1];
      if (prev && prev.room === room && prev.author === author && seq <= prev.seq) {
        at.continue(); // a second entry at a seq: the first is kept
        return;
      }
      if (prev && (prev.room !== room || prev.author !== author || cur.length >= RUN_MAX)) flush();
      if (storable(e) && e.room === room) cur.push(e);
      at.continue();
    } catch (err) {
      fail(err);
    }
  };
}

/** One room's chains in IndexedDB, as history.Log reads it (its source). */
class StoredChains {
  constructor(store, room) {
    this.store = store;
    this.room = room;
  }

  /** Each author's last seq and id, and the room's size (a chain holds seqs 1 to its head:
   * the sum of the heads). Two seeks per author on the head index: a forward key cursor
   * finds the next author (continue jumps past the author's runs), a backward one its last
   * run. No record is read. A chain has no hole to look for: a batch is stored in one
   * transaction, transactions commit in order, and a power cut loses the newest, never a
   * middle. */
  async heads() {
    const idx = (await this.store.runs()).index('head');
    const room = this.room;
    const heads = new Map();
    let size = 0;
    await new Promise((resolve, reject) => {
      const c = idx.openKeyCursor(roomRange(room));
      c.onerror = () => reject(c.error);
      c.onsuccess = () => {
        const cur = c.result;
        if (!cur) return resolve();
        const author = cur.key[1];
        const last = idx.openKeyCursor(authorRange(room, author), 'prev');
        last.onerror = () => reject(last.error);
        last.onsuccess = () => {
          const [, , seq, id] = last.result.key;
          heads.set(author, { seq, id });
          size += seq;
          cur.continue([room, author, []]); // [] sorts after every seq: the next author
        };
        return undefined;
      };
    });
    return { heads, size };
  }

  /** The author's entry at seq: the run whose last is the first at or after seq. */
  async at(author, seq) {
    const idx = (await this.store.runs()).index('head');
    const run = await req(idx.get(authorRange(this.room, author, seq)));
    return run && run.first <= seq ? run.entries[seq - run.first] : undefined;
  }

  /** Up to n entries of author after seq, in seq order. */
  async slice(author, from, n) {
    const idx = (await this.store.runs()).index('head');
    const out = [];
    await new Promise((resolve, reject) => {
      const c = idx.openCursor(authorRange(this.room, author, from + 1));
      c.onerror = () => reject(c.error);
      c.onsuccess = () => {
        const cur = c.result;
        if (!cur) return resolve();
        for (const e of cur.value.entries) if (e.seq > from && out.length < n) out.push(e);
        if (out.length === n) return resolve();
        cur.continue();
        return undefined;
      };
    });
    return out;
  }
}
