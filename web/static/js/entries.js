// Rooms' histories in IndexedDB. localStorage held about 10,000 text entries per origin
// (5 M characters in Chromium) before the page said storage-full; IndexedDB's quota is a
// share of the disk. Every entry is one record keyed [room, entry id]: storing an entry
// twice (two tabs, two peers, a move cut short) keeps one copy, and a key range reads a
// room back (in id order: Log.restore orders entries by author and seq). The page reads
// each room once, at start or when another tab adds the room (load), and takes the entries
// into its log (take, synchronous). Histories earlier pages kept in localStorage
// (storage.js's chunks) are copied here, then removed there; an old tab that still writes
// there is copied at the next start. Tabs tell each other what they store (BroadcastChannel).

import { StorageFullError } from './storage.js';
import { done, isFull, openDB, req } from './idb.js';

const DB = 'chattorrent-history';
const VERSION = 1;
const ENTRIES = 'entries'; // [room, e.id] → e

function range(room) {
  return IDBKeyRange.bound([room, ''], [room, []]); // every string sorts before an array
}

function storageError(err) {
  return isFull(err) ? new StorageFullError(err) : err;
}

export class EntryStore {
  /** legacy: storage.js's Storage, whose localStorage chunks are moved here. */
  constructor(legacy, name = DB) {
    this.legacy = legacy;
    this.name = name;
    this.db = null;
    this.rooms = new Map(); // room → its entries as read, until the page takes them
    this.loaded = new Set(); // rooms read (or taken): from then on the page's log is the truth
    this.loading = new Map(); // room → entries other tabs stored while it was being read
    this.onOther = () => {}; // (room, entries) another tab stored for a room this page took
    // Other tabs of this browser say what they stored: a room read but not yet taken gets
    // the entries too, and the page hears of those for the rooms it took.
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(name) : null;
    if (this.channel) {
      this.channel.onmessage = (ev) => {
        const { room, entries } = ev.data || {};
        if (typeof room !== 'string' || !Array.isArray(entries)) return;
        const list = this.rooms.get(room);
        if (list) list.push(...entries);
        else if (this.loaded.has(room)) this.onOther(room, entries);
        else if (this.loading.has(room)) this.loading.get(room).push(...entries);
      };
    }
  }

  async open() {
    if (this.db) return this.db;
    const db = await openDB(this.name, VERSION, (d) => d.createObjectStore(ENTRIES), () => {
      if (this.db === db) this.db = null;
    });
    this.db = db;
    return db;
  }

  /** Reads the rooms' histories, moving any still in localStorage first. When a move
   * fails (the disk is full, IndexedDB cannot be opened), the room is read from what can be
   * read and the first error thrown once every room is read: nothing is lost, the move is
   * tried again next time. */
  async load(rooms) {
    let failed = null;
    for (const room of rooms) {
      if (this.loaded.has(room)) continue;
      const early = [];
      this.loading.set(room, early);
      let old = [];
      let stored = [];
      try {
        await this.move(room);
      } catch (err) {
        failed = failed || err;
        old = this.legacy ? this.legacy.entries(room) : [];
      }
      try {
        const db = await this.open();
        stored = await req(db.transaction(ENTRIES).objectStore(ENTRIES).getAll(range(room)));
      } catch (err) {
        failed = failed || err;
      }
      this.loading.delete(room);
      if (this.loaded.has(room)) continue; // taken meanwhile
      this.loaded.add(room);
      this.rooms.set(room, old.concat(stored, early)); // Log.restore keeps one of each id
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

  /** Hands the room's entries, as read by load and appended since, to the page (once: the
   * page keeps them in its log). A room not loaded has none: it is new to this page. */
  take(room) {
    const list = this.rooms.get(room) || [];
    this.rooms.delete(room);
    this.loaded.add(room);
    return list;
  }

  /** Stores entries of a room in one transaction: all or none (StorageFullError). My own
   * entries are flushed to disk before this resolves (lost after a power cut, my next entry
   * would take the same seq: a fork); entries from peers (relaxed: true) are not waited for,
   * as localStorage never was: lost ones come back with the next sync. */
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
    const list = this.rooms.get(room); // read but not yet taken
    if (list) list.push(...entries);
    if (this.channel) this.channel.postMessage({ room, entries });
  }

  /** How many entries are stored for room, or in all (for tests and the curious). */
  async count(room) {
    const db = await this.open();
    const s = db.transaction(ENTRIES).objectStore(ENTRIES);
    return req(room === undefined ? s.count() : s.count(range(room)));
  }
}
