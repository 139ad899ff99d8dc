// Rooms, the identity and settings in localStorage (the seed's promise: everything
// survives closing the browser). Each write is one setItem: when the quota is exceeded it
// throws StorageFullError and the previous value stays. Histories are in IndexedDB
// (entries.js); pages before 2026-12-04 kept a room's entries here, in chunks of CHUNK
// entries: entries.js reads them once with entries(), then removes them.

const P = 'chattorrent:v1:';
export const CHUNK = 200;

export class StorageFullError extends Error {
  constructor(cause) {
    super('storage: the browser storage is full');
    this.name = 'StorageFullError';
    this.code = 'storage-full';
    this.cause = cause;
  }
}

export class Storage {
  constructor(ls = globalThis.localStorage) {
    this.ls = ls;
  }

  get(key, fallback = null) {
    try {
      const s = this.ls.getItem(P + key);
      return s === null ? fallback : JSON.parse(s);
    } catch {
      return fallback;
    }
  }

  set(key, value) {
    try {
      this.ls.setItem(P + key, JSON.stringify(value));
    } catch (err) {
      throw new StorageFullError(err);
    }
  }

  lang() { return this.get('lang'); }
  setLang(l) { this.set('lang', l); }

  identity() { return this.get('identity'); }
  setIdentity(id) { this.set('identity', id); }

  rooms() {
    const r = this.get('rooms', []);
    return Array.isArray(r) ? r.filter((x) => x && typeof x.id === 'string' && typeof x.name === 'string') : [];
  }
  setRooms(rooms) { this.set('rooms', rooms); }

  /** All entries of a room kept here by an earlier page, in the order they were stored. */
  entries(room) {
    const n = this.get(`room:${room}:n`, 0);
    const out = [];
    for (let i = 0; i < n; i++) {
      const c = this.get(`room:${room}:c${i}`, []);
      if (Array.isArray(c)) out.push(...c);
    }
    return out;
  }

  /** Whether a room has entries here (pages before entries.js kept them in localStorage). */
  hasEntries(room) {
    return this.get(`room:${room}:n`, 0) > 0;
  }

  /** Removes a room's entries (once entries.js holds them). */
  dropEntries(room) {
    const n = this.get(`room:${room}:n`, 0);
    for (let i = 0; i < n; i++) this.ls.removeItem(P + `room:${room}:c${i}`);
    this.ls.removeItem(P + `room:${room}:n`); // last: a page stopped halfway removes the rest next time
  }

  /** What peers acknowledged of mine in a room (a Delivered). */
  delivered(room) {
    const d = this.get(`room:${room}:delivered`, []);
    return new Delivered(this.get(`room:${room}:delivered-seq`, 0), Array.isArray(d) ? d : []);
  }

  /** Keeps d's seq (one number, whatever the room's size) and, once d.legacy is empty,
   * removes the ids pages before 2026-12-07 kept. */
  setDelivered(room, d) {
    this.set(`room:${room}:delivered-seq`, d.seq);
    if (!d.legacy.size) this.ls.removeItem(P + `room:${room}:delivered`);
  }
}

/** My entries of a room that a peer acknowledged: those up to seq. A peer stores an
 * author's chain whole, never with a hole (PROTOCOL.md §2), so an ack of my entry at seq k
 * says the peer holds all of mine up to k: one number, not a set of ids growing with the
 * room and written again at every ack. legacy: the ids earlier pages kept instead, until
 * fold() has looked them up. */
export class Delivered {
  constructor(seq = 0, legacy = []) {
    this.seq = Number.isSafeInteger(seq) && seq > 0 ? seq : 0;
    this.legacy = new Set(legacy.filter((x) => typeof x === 'string'));
  }

  has(e) {
    return e.seq <= this.seq || this.legacy.has(e.id);
  }

  /** Takes acknowledged entries (those of author among them count): whether seq moved. */
  take(entries, author) {
    let seq = this.seq;
    for (const e of entries) if (e && e.author === author && Number.isSafeInteger(e.seq)) seq = Math.max(seq, e.seq);
    if (seq === this.seq) return false;
    this.seq = seq;
    return true;
  }

  /** Folds the legacy ids into seq, given their entries as stored (those found). */
  fold(entries, author) {
    this.take(entries, author);
    this.legacy.clear();
  }
}
