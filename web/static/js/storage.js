// Rooms, histories and the identity in localStorage (the seed's promise: everything
// survives closing the browser). A room's entries are kept in chunks of CHUNK entries, so
// appending rewrites one small chunk, not the whole history. Each write is one setItem:
// when the quota is exceeded it throws StorageFullError and the previous value stays.

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

  /** All stored entries of a room, in the order they were stored. */
  entries(room) {
    const n = this.get(`room:${room}:n`, 0);
    const out = [];
    for (let i = 0; i < n; i++) {
      const c = this.get(`room:${room}:c${i}`, []);
      if (Array.isArray(c)) out.push(...c);
    }
    return out;
  }

  /** Appends entries to a room. The chunk is written before the count, so a failure
   * leaves what was stored before intact. */
  appendEntries(room, entries) {
    let n = this.get(`room:${room}:n`, 0);
    let last = n > 0 ? this.get(`room:${room}:c${n - 1}`, []) : [];
    let idx = n > 0 ? n - 1 : 0;
    let pending = [...entries];
    while (pending.length) {
      if (last.length >= CHUNK) {
        idx++;
        last = [];
      }
      const take = pending.splice(0, CHUNK - last.length);
      last = last.concat(take);
      this.set(`room:${room}:c${idx}`, last);
      if (idx + 1 > n) {
        n = idx + 1;
        this.set(`room:${room}:n`, n);
      }
    }
  }

  delivered(room) {
    const d = this.get(`room:${room}:delivered`, []);
    return new Set(Array.isArray(d) ? d : []);
  }
  setDelivered(room, set) { this.set(`room:${room}:delivered`, [...set]); }
}
