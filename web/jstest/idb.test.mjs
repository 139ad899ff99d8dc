// IndexedDB helpers (idb.js) and media storage (media.js) against a small in-memory fake of
// IndexedDB: errors carry the failed request's cause (never null), only QuotaExceededError
// means a full disk, and where the database refuses Blobs (WebKit's private browsing) media
// are stored as ArrayBuffers and read back whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req, done, isFull, idbError, describe } from '../static/js/idb.js';

function domError(name, message) {
  const e = new Error(message);
  e.name = name;
  return e;
}

// ---------- a fake IndexedDB, as much of it as idb.js and media.js use ----------

function cmp(a, b) {
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = cmp(a[i], b[i]);
      if (c) return c;
    }
    return a.length - b.length;
  }
  if (typeof a !== typeof b) return typeof a < typeof b ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

class FakeRequest {
  constructor(tx) {
    this.tx = tx;
    this.result = undefined;
    this.error = null;
    this.onsuccess = null;
    this.onerror = null;
  }
}

class FakeTx {
  constructor(db, names, mode) {
    this.db = db;
    this.names = [].concat(names);
    this.mode = mode;
    this.error = null;
    this.pending = 0;
    this.finished = false;
    this.writes = [];
    this.oncomplete = this.onerror = this.onabort = null;
    this.schedule();
  }

  objectStore(name) {
    assert.ok(this.names.includes(name), `store ${name} not in the transaction`);
    return new FakeStore(this, name);
  }

  schedule() {
    setTimeout(() => {
      if (this.finished || this.pending > 0) return;
      this.finished = true;
      for (const [store, key, value] of this.writes) {
        if (value === undefined) this.db.stores.get(store).delete(JSON.stringify(key));
        else this.db.stores.get(store).set(JSON.stringify(key), { key, value });
      }
      this.oncomplete?.({ target: this });
    }, 0);
  }

  request(fn) {
    const r = new FakeRequest(this);
    this.pending++;
    queueMicrotask(() => {
      this.pending--;
      let err = null;
      try {
        r.result = fn();
      } catch (e) {
        err = e;
      }
      if (err) {
        // As browsers do: the request's error event reaches the transaction's onerror while
        // tx.error is still null; the transaction aborts afterwards.
        r.error = err;
        r.onerror?.({ target: r });
        this.onerror?.({ target: r });
        this.finished = true;
        this.error = err;
        this.onabort?.({ target: this });
        return;
      }
      r.onsuccess?.({ target: r });
      this.schedule();
    });
    return r;
  }
}

class FakeStore {
  constructor(tx, name) {
    this.tx = tx;
    this.name = name;
    this.keyPath = tx.db.keyPaths.get(name);
  }

  rows() {
    const m = new Map(this.tx.db.stores.get(this.name));
    for (const [store, key, value] of this.tx.writes) {
      if (store !== this.name) continue;
      if (value === undefined) m.delete(JSON.stringify(key));
      else m.set(JSON.stringify(key), { key, value });
    }
    return [...m.values()].sort((a, b) => cmp(a.key, b.key));
  }

  keyOf(v) {
    return Array.isArray(this.keyPath) ? this.keyPath.map((k) => v[k]) : v[this.keyPath];
  }

  put(v) {
    return this.tx.request(() => {
      const db = this.tx.db;
      if (db.refuseBlobs && Object.values(v).some((x) => x instanceof Blob)) {
        throw domError('UnknownError', 'Error preparing Blob/File data to be stored in object store');
      }
      if (db.full) throw domError('QuotaExceededError', 'quota');
      this.tx.writes.push([this.name, this.keyOf(v), structuredClone(v)]);
    });
  }

  delete(key) {
    return this.tx.request(() => this.tx.writes.push([this.name, key, undefined]));
  }

  get(key) {
    return this.tx.request(() => structuredClone(this.rows().find((r) => cmp(r.key, key) === 0)?.value));
  }

  getAll(range) {
    return this.tx.request(() => this.rows().filter((r) => !range || (cmp(r.key, range.lower) >= 0 && cmp(r.key, range.upper) <= 0))
      .map((r) => structuredClone(r.value)));
  }
}

class FakeDB {
  constructor() {
    this.stores = new Map();
    this.keyPaths = new Map();
    this.version = 0;
    this.refuseBlobs = false;
    this.full = false;
  }

  createObjectStore(name, { keyPath }) {
    this.stores.set(name, new Map());
    this.keyPaths.set(name, keyPath);
  }

  transaction(names, mode = 'readonly') {
    return new FakeTx(this, names, mode);
  }

  close() {}
}

function fakeIndexedDB(db) {
  return {
    open(name, version) {
      const r = new FakeRequest(null);
      setTimeout(() => {
        if (db.version < version) {
          const old = db.version;
          db.version = version;
          r.result = db;
          r.transaction = { objectStore: () => ({ openCursor: () => ({}) }) };
          r.onupgradeneeded?.({ oldVersion: old, target: r });
        }
        r.result = db;
        r.onsuccess?.({ target: r });
      }, 0);
      return r;
    },
  };
}

globalThis.IDBKeyRange = { bound: (lower, upper) => ({ lower, upper }) };

// ---------- idb.js ----------

test('req and done reject with the failed request\'s error, not tx.error (null then)', async () => {
  const db = new FakeDB();
  db.createObjectStore('s', { keyPath: 'k' });
  db.refuseBlobs = true;
  const tx = db.transaction('s', 'readwrite');
  const r = tx.objectStore('s').put({ k: 1, blob: new Blob(['x']) });
  const [a, b] = await Promise.allSettled([req(r), done(tx)]);
  for (const x of [a, b]) {
    assert.equal(x.status, 'rejected');
    assert.ok(x.reason, 'an error, not null');
    assert.equal(x.reason.name, 'UnknownError');
    assert.match(x.reason.message, /Blob\/File/);
  }
  assert.equal(isFull(b.reason), false, 'a refused Blob is not a full disk');
});

test('done never rejects with null: an abort with no cause still says what failed', async () => {
  const tx = {};
  const p = done(tx);
  tx.onabort({ target: tx });
  const err = await p.catch((e) => e);
  assert.ok(err instanceof Error);
  assert.match(err.message, /IndexedDB: transaction \(aborted\) failed/);
  const tx2 = { error: null };
  const p2 = done(tx2);
  tx2.onerror({ target: { error: null } });
  assert.ok((await p2.catch((e) => e)) instanceof Error);
  const r = { error: null };
  const p3 = req(r);
  r.onerror({ target: r });
  assert.ok((await p3.catch((e) => e)) instanceof Error);
});

test('isFull: QuotaExceededError only', () => {
  assert.equal(isFull(domError('QuotaExceededError', 'x')), true);
  assert.equal(isFull(domError('UnknownError', 'x')), false);
  assert.equal(isFull(domError('InvalidStateError', 'x')), false);
  assert.equal(isFull(null), false);
  assert.equal(idbError(null, 'x').name, 'UnknownError');
  const e = domError('DataError', 'bad key');
  assert.equal(idbError(e, 'x'), e);
  assert.equal(describe(e), 'DataError: bad key');
});

// ---------- media.js on the fake ----------

const { IndexedMedia, storageError } = await import('../static/js/media.js');
const { PIECE_SIZE } = await import('../static/js/files.js');

function content(size) {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) % 251;
  return b;
}

async function roundTrip(refuseBlobs) {
  const db = new FakeDB();
  db.refuseBlobs = refuseBlobs;
  globalThis.indexedDB = fakeIndexedDB(db);
  const m = new IndexedMedia('t');
  await m.open();
  assert.equal(m.buffers, refuseBlobs);
  assert.equal(db.stores.get('batches').size, 0, 'the probe is not left behind');
  const bytes = content(2 * PIECE_SIZE + 1000);
  const root = await m.addLocal(new Blob([bytes]));
  const fresh = new IndexedMedia('t'); // as after a reload
  const back = await fresh.blob(root);
  assert.deepEqual(new Uint8Array(await back.arrayBuffer()), bytes);
  for (const { value } of db.stores.get('batches').values()) {
    assert.equal(value.blob === undefined, refuseBlobs);
    assert.equal(value.buf instanceof ArrayBuffer, refuseBlobs);
  }
  // Pieces from a peer, a batch at a time, read back whole.
  const m2 = new IndexedMedia('t');
  const other = content(3 * PIECE_SIZE).map((x) => x ^ 0x5a);
  const root2 = 'ab'.repeat(32);
  await m2.begin(root2, other.length);
  await m2.putPieces(root2, [0, 1].map((index) => ({ index, data: other.subarray(index * PIECE_SIZE, (index + 1) * PIECE_SIZE) })));
  await m2.putPieces(root2, [{ index: 2, data: other.subarray(2 * PIECE_SIZE) }]);
  await m2.finish(root2);
  assert.deepEqual(new Uint8Array(await (await new IndexedMedia('t').blob(root2)).arrayBuffer()), other);
}

test('media stored as Blobs where the database takes them', () => roundTrip(false));

test('media stored as ArrayBuffers where the database refuses Blobs (private browsing)', () => roundTrip(true));

test('a storage failure says its cause; only a quota error is storage-full', async () => {
  assert.equal(storageError(domError('QuotaExceededError', 'q')).code, 'storage-full');
  const e = storageError(domError('UnknownError', 'Error preparing Blob/File data'));
  assert.equal(e.code, 'storage-error');
  assert.match(e.message, /UnknownError: Error preparing Blob\/File data/);
  const db = new FakeDB();
  globalThis.indexedDB = fakeIndexedDB(db);
  const m = new IndexedMedia('t');
  await m.open();
  db.full = true;
  await assert.rejects(m.addLocal(new Blob([content(10)])), (err) => err.code === 'storage-full');
  globalThis.indexedDB = { open() { throw domError('InvalidStateError', 'IndexedDB is not available'); } };
  await assert.rejects(new IndexedMedia('u').open(), (err) => err.code === 'storage-error' && /InvalidStateError/.test(err.message));
});

test('a Blob refused after the probe passed: the page switches to ArrayBuffers and writes again', async () => {
  const db = new FakeDB();
  globalThis.indexedDB = fakeIndexedDB(db);
  const m = new IndexedMedia('t');
  await m.open();
  assert.equal(m.buffers, false);
  db.refuseBlobs = true; // as a browser that takes a one-byte Blob but not a large one
  const bytes = content(PIECE_SIZE + 5);
  const root = await m.addLocal(new Blob([bytes]));
  assert.equal(m.buffers, true);
  assert.deepEqual(new Uint8Array(await (await new IndexedMedia('t').blob(root)).arrayBuffer()), bytes);
  // Another failure is not retried: it says its cause.
  const m2 = new IndexedMedia('t');
  await m2.open();
  db.full = true;
  await assert.rejects(m2.begin('cd'.repeat(32), 10), (err) => err.code === 'storage-full');
});
