// Rooms' histories in IndexedDB, read by cursor: the page never holds a room, only a window
// of it (window.js) and each author's head (history.Log). Every entry is one record keyed
// [room, entry id]: storing an entry twice (two tabs, two peers, a move cut short) keeps one
// copy. Three indexes read a room back:
//   order [room, ts, author, seq]: the display order (history.compareEntries), for the
//     window's pages, the room list's last message and exports;
//   chain [room, author, seq]: an author's chain, for heads (one step per author), the
//     entries at a seq (sync checks) and what a peer lacks (Log.missing, in batches);
//   kind [room, kind]: the file entries of a room (announced files, fetching after a sync).
// Histories earlier pages kept in localStorage (storage.js's chunks) are copied here at
// start (load), then removed there. Tabs tell each other what they store (BroadcastChannel).

import { StorageFullError } from './storage.js';
import { done, isFull, openDB, req } from './idb.js';

const DB = 'chattorrent-history';
const VERSION = 2;
const ENTRIES = 'entries'; // [room, e.id] → e

function range(room) {
  return IDBKeyRange.bound([room, ''], [room, []]); // every string sorts before an array
}

// [room] sorts before every [room, …] and [room, []] after every [room, number or string, …].
function roomRange(room) {
  return IDBKeyRange.bound([room], [room, []]);
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
   * (pages before 2026-12-06) had the entries store without indexes; the upgrade adds them
   * in the one versionchange transaction, which IndexedDB commits or aborts whole. An
   * aborted upgrade (an index that could not be built, a full disk) leaves version 1 as it
   * was: open() then rejects with a StorageUpgradeError, and keeps rejecting with it until
   * the page is loaded again (each try would build the indexes again: about a minute for
   * 100,000 entries, docs/PERFORMANCE.md). onUpgrade('start') and onUpgrade('done') or
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
    let db;
    try {
      db = await openDB(this.name, VERSION, (d, ev, tx) => {
        try {
          const had = d.objectStoreNames.contains(ENTRIES);
          if (had) {
            upgrading = true;
            this.tell('start');
          }
          const s = had ? tx.objectStore(ENTRIES) : d.createObjectStore(ENTRIES);
          if (!s.indexNames.contains('order')) s.createIndex('order', ['room', 'ts', 'author', 'seq']);
          if (!s.indexNames.contains('chain')) s.createIndex('chain', ['room', 'author', 'seq']);
          if (!s.indexNames.contains('kind')) s.createIndex('kind', ['room', 'kind']);
        } catch (err) {
          cause = err;
          tx.abort(); // nothing of the upgrade is kept: the old version stays as it was
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

  async index(name) {
    const db = await this.reader();
    return db.transaction(ENTRIES).objectStore(ENTRIES).index(name);
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
    const db = await this.open();
    const tx = db.transaction(ENTRIES, 'readwrite');
    const s = tx.objectStore(ENTRIES);
    for (const e of this.legacy.entries(room)) {
      if (e && typeof e.id === 'string') s.put(e, [room, e.id]);
    }
    try {
      await done(tx);
    } catch (err) {
      throw storageError(err);
    }
    this.legacy.dropEntries(room);
  }

  /** Stores entries of a room in one transaction: all or none (StorageFullError). My own
   * entries are flushed to disk before this resolves (lost after a power cut, my next entry
   * would take the same seq: a fork); entries from peers (relaxed: true) are not waited for:
   * lost ones come back with the next sync. */
  async append(room, entries, { relaxed = false } = {}) {
    const db = await this.open();
    const tx = db.transaction(ENTRIES, 'readwrite', { durability: relaxed ? 'relaxed' : 'strict' });
    const s = tx.objectStore(ENTRIES);
    for (const e of entries) s.put(e, [room, e.id]);
    try {
      await done(tx);
    } catch (err) {
      throw storageError(err);
    }
    if (this.channel) this.channel.postMessage({ room, entries });
  }

  /** How many entries are stored for room, or in all. */
  async count(room) {
    const db = await this.reader();
    const s = db.transaction(ENTRIES).objectStore(ENTRIES);
    return req(room === undefined ? s.count() : s.count(range(room)));
  }

  /** The entries with these ids (those stored). */
  async getMany(room, ids) {
    const db = await this.reader();
    const s = db.transaction(ENTRIES).objectStore(ENTRIES);
    const got = await Promise.all(ids.map((id) => req(s.get([room, id]))));
    return got.filter(Boolean);
  }

  /** A room as history.Log reads it (its source): heads by cursor, chains in slices. */
  source(room) {
    return new StoredChains(this, room);
  }

  /**
   * A page of the room in display order: up to n entries before key (older, newest of
   * them first in the cursor, returned oldest first), or after key (newer). key null: from
   * the newest (before) or the oldest (after). Resolves {entries, more}: more when the
   * cursor went on past the page.
   */
  async page(room, { before = null, after = null, n }) {
    const idx = await this.index('order');
    const older = after === null;
    let r;
    if (older) r = before ? IDBKeyRange.bound([room], before, false, true) : roomRange(room);
    else r = IDBKeyRange.bound(after, [room, []], true, false);
    const out = [];
    let more = false;
    await new Promise((resolve, reject) => {
      const c = idx.openCursor(r, older ? 'prev' : 'next');
      c.onerror = () => reject(c.error);
      c.onsuccess = () => {
        const cur = c.result;
        if (!cur) return resolve();
        if (out.length === n) {
          more = true;
          return resolve();
        }
        out.push(cur.value);
        cur.continue();
        return undefined;
      };
    });
    if (older) out.reverse();
    return { entries: out, more };
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
    const idx = await this.index('kind');
    const lists = await Promise.all([...kinds].map((k) => req(idx.getAll(IDBKeyRange.only([room, k])))));
    return lists.flat();
  }
}

/** One room's chains in IndexedDB, as history.Log reads them (its source). */
class StoredChains {
  constructor(store, room) {
    this.store = store;
    this.room = room;
  }

  /** Each author's last seq and id, and the room's size (a chain holds seqs 1 to its head:
   * the sum of the heads). Two seeks per author: a forward key cursor finds the next author
   * (continue jumps past the author's chain), a backward one its last entry. No count: an
   * index count walks every key (~0.3 s per 100,000 here). A chain has no hole to look
   * for: a batch is stored in one transaction, transactions commit in order, and a power
   * cut loses the newest, never a middle. */
  async heads() {
    const idx = await this.store.index('chain');
    const room = this.room;
    const heads = new Map();
    let size = 0;
    await new Promise((resolve, reject) => {
      const c = idx.openKeyCursor(IDBKeyRange.bound([room], [room, []]));
      c.onerror = () => reject(c.error);
      c.onsuccess = () => {
        const cur = c.result;
        if (!cur) return resolve();
        const author = cur.key[1];
        const last = idx.openKeyCursor(IDBKeyRange.bound([room, author], [room, author, []]), 'prev');
        last.onerror = () => reject(last.error);
        last.onsuccess = () => {
          const seq = last.result.key[2];
          heads.set(author, { seq, id: last.result.primaryKey[1] });
          size += seq;
          cur.continue([room, author, []]); // [] sorts after every seq: the next author
        };
        return undefined;
      };
    });
    return { heads, size };
  }

  async at(author, seq) {
    const idx = await this.store.index('chain');
    return req(idx.get([this.room, author, seq]));
  }

  /** Up to n entries of author after seq, in seq order. */
  async slice(author, from, n) {
    const idx = await this.store.index('chain');
    return req(idx.getAll(IDBKeyRange.bound([this.room, author, from + 1], [this.room, author, Number.MAX_SAFE_INTEGER]), n));
  }
}
