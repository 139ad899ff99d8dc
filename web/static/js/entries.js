// Rooms' histories in IndexedDB. localStorage held about 10,000 text entries per origin
// (5 M characters in Chromium) before the page said storage-full; IndexedDB's quota is a
// share of the disk. Every entry is one record with an automatic key, added in the order it
// was stored (two tabs appending to one room never overwrite each other); an index on the
// room reads a room back in that order. The page reads each room once, at start or when
// another tab adds the room (load), and takes them into its log (take, synchronous). Histories stored by earlier pages in
// localStorage (storage.js's chunks) are moved here once, then removed from localStorage.

import { StorageFullError } from './storage.js';

const DB = 'chattorrent-history';
const VERSION = 1;
const ENTRIES = 'entries'; // auto key → {room, e}
const MOVED = 'moved'; // room → {room}: its localStorage chunks were copied here

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('aborted'));
  });
}

function storageError(err) {
  if (err && (err.name === 'QuotaExceededError' || err.name === 'UnknownError')) return new StorageFullError(err);
  return err;
}

export class EntryStore {
  /** legacy: storage.js's Storage, whose localStorage chunks are moved here. */
  constructor(legacy, name = DB) {
    this.legacy = legacy;
    this.name = name;
    this.db = null;
    this.rooms = new Map(); // room → its entries as read, until the page takes them
    this.loaded = new Set(); // rooms read (or taken): from then on the page's log is the truth
  }

  async open() {
    if (this.db) return this.db;
    const r = indexedDB.open(this.name, VERSION);
    r.onupgradeneeded = () => {
      const db = r.result;
      db.createObjectStore(ENTRIES, { autoIncrement: true }).createIndex('room', 'room');
      db.createObjectStore(MOVED, { keyPath: 'room' });
    };
    r.onblocked = () => console.warn('chattorrent: history storage upgrade waits for another tab to close');
    const db = await req(r);
    db.onversionchange = () => {
      db.close();
      if (this.db === db) this.db = null;
    };
    this.db = db;
    return db;
  }

  /** Reads the rooms' histories, moving any still in localStorage first. When a move
   * fails (the disk is full), the room is read from both places and the error thrown once
   * every room is read: nothing is lost, the move is tried again next time. */
  async load(rooms) {
    let failed = null;
    for (const room of rooms) {
      if (this.loaded.has(room)) continue;
      let old = [];
      try {
        await this.move(room);
      } catch (err) {
        failed = failed || err;
        old = this.legacy.entries(room);
      }
      const db = await this.open();
      const recs = await req(db.transaction(ENTRIES).objectStore(ENTRIES).index('room').getAll(room));
      if (this.loaded.has(room)) continue; // taken meanwhile
      this.loaded.add(room);
      this.rooms.set(room, old.concat(recs.map((x) => x.e)));
    }
    if (failed) throw failed;
  }

  /** Copies a room's localStorage chunks here in one transaction, then removes them. */
  async move(room) {
    if (!this.legacy || !this.legacy.hasEntries(room)) return;
    const db = await this.open();
    const tx = db.transaction([ENTRIES, MOVED], 'readwrite');
    const moved = await req(tx.objectStore(MOVED).get(room));
    if (!moved) {
      // A page closed between the commit and the removal already copied them.
      for (const e of this.legacy.entries(room)) tx.objectStore(ENTRIES).add({ room, e });
      tx.objectStore(MOVED).put({ room });
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

  /** Stores entries of a room in one transaction: all or none (StorageFullError). */
  async append(room, entries) {
    const db = await this.open();
    const tx = db.transaction(ENTRIES, 'readwrite');
    const s = tx.objectStore(ENTRIES);
    for (const e of entries) s.add({ room, e });
    try {
      await done(tx);
    } catch (err) {
      throw storageError(err);
    }
    const list = this.rooms.get(room); // read but not yet taken
    if (list) list.push(...entries);
  }

  /** How many entries are stored for room, or in all (for tests and the curious). */
  async count(room) {
    const db = await this.open();
    const s = db.transaction(ENTRIES).objectStore(ENTRIES);
    return req(room === undefined ? s.count() : s.index('room').count(room));
  }
}
