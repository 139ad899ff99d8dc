// Media storage in IndexedDB with the interface of files.js's MemoryMedia. localStorage
// cannot hold media; IndexedDB keeps Blobs on disk, so a large file is never held in memory:
// verified pieces are stored a batch (up to 4 MiB) per record and transaction. A finished
// file is only marked complete: reading it composes one Blob of slices of its batches
// (writing it again as one Blob cost 1.8 s for 64 MiB, a third of the transfer).
//
// Where IndexedDB refuses Blobs (WebKit's private browsing: "UnknownError: Error preparing
// Blob/File data to be stored in object store"), batches are stored as ArrayBuffers
// instead (field buf rather than blob): open() finds out once by storing a one-byte Blob.
// Test-only: `?media=buffers` in the page's URL forces the ArrayBuffer path.

import { FileError, hashBlob, numPieces, pieceLength, PIECE_SIZE, setBit } from './files.js';
import { describe, done, isFull, openDB, req } from './idb.js';

const DB = 'chattorrent-media';
const VERSION = 2;
const FILES = 'files'; // root → {root, size, have, complete, cancelled}: rewritten with every batch
const LEAVES = 'leaves'; // root → {root, leaves}: written once (32 bytes a piece: 2 MiB for 1 GiB)
const BATCHES = 'batches'; // [root, first index] → {root, first, indexes | count, blob | buf}
const PROBE = [' blob-probe', 0]; // the batch key open() tries a Blob at (no root starts with a space)

/** A FileError for a failed storage operation: storage-full for a full disk (quota), else
 * storage-error with the browser's own cause. */
export function storageError(err) {
  if (err instanceof FileError) return err;
  return isFull(err) ? new FileError('storage-full', describe(err)) : new FileError('storage-error', describe(err));
}

/** Whether the page's URL forces the ArrayBuffer path (tests). */
function forcedBuffers() {
  return typeof location !== 'undefined' && new URLSearchParams(location.search).get('media') === 'buffers';
}

/** The batch's bytes as a Blob, stored as one or as an ArrayBuffer. */
export function batchBlob(b) {
  return b.blob || new Blob([b.buf]);
}

/** The batch's size in bytes. */
function batchSize(b) {
  return b.blob ? b.blob.size : b.buf.byteLength;
}

/** The bytes of parts (Uint8Arrays) in one ArrayBuffer. */
export function concatBytes(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out.buffer;
}

export class IndexedMedia {
  constructor(name = DB) {
    this.name = name;
    this.db = null;
    this.blobs = new Map(); // root → the complete file's Blob, composed once
    this.buffers = false; // batches are stored as ArrayBuffers (IndexedDB refuses Blobs here)
    this.opening = null;
  }

  async open() {
    if (this.db) return this.db;
    if (!this.opening) {
      this.opening = this.openOnce().finally(() => {
        this.opening = null;
      });
    }
    return this.opening;
  }

  async openOnce() {
    let db;
    try {
      db = await this.openDB();
      // Once refused, Blobs stay refused for this page (a reopen after an upgrade too).
      this.buffers = this.buffers || forcedBuffers() || !(await blobsStored(db));
    } catch (err) {
      throw storageError(err);
    }
    if (this.buffers) console.warn('chattorrent: media are stored as ArrayBuffers (this browser\'s IndexedDB refuses Blobs)');
    this.db = db;
    return db;
  }

  async openDB() {
    const db = await openDB(this.name, VERSION, (d, ev, tx) => {
      if (ev.oldVersion < 1) {
        d.createObjectStore(FILES, { keyPath: 'root' });
        d.createObjectStore(BATCHES, { keyPath: ['root', 'first'] });
      }
      if (ev.oldVersion < 2) {
        // Version 1 kept the leaves in the file's record, which every stored batch read and
        // wrote again: for a 256 MiB file, 32 MiB more written than the file itself.
        const leaves = d.createObjectStore(LEAVES, { keyPath: 'root' });
        tx.objectStore(FILES).openCursor().onsuccess = (e) => {
          const c = e.target.result;
          if (!c) return;
          const f = c.value;
          if (f.leaves) leaves.put({ root: f.root, leaves: f.leaves });
          delete f.leaves;
          c.update(f);
          c.continue();
        };
      }
    }, () => {
      if (this.db === db) this.db = null;
    });
    return db;
  }

  async get(root) {
    const db = await this.open();
    return req(db.transaction(FILES).objectStore(FILES).get(root));
  }

  async put(rec) {
    const db = await this.open();
    const tx = db.transaction(FILES, 'readwrite');
    tx.objectStore(FILES).put(rec);
    try {
      await done(tx);
    } catch (err) {
      throw storageError(err);
    }
  }

  async info(root) {
    const db = await this.open();
    const tx = db.transaction([FILES, LEAVES]);
    const [f, l] = await Promise.all([req(tx.objectStore(FILES).get(root)), req(tx.objectStore(LEAVES).get(root))]);
    if (!f) return null;
    return {
      size: f.size, leaves: l ? new Uint8Array(l.leaves) : null, have: new Uint8Array(f.have),
      complete: !!f.complete, cancelled: !!f.cancelled,
    };
  }

  async begin(root, size) {
    if (await this.get(root)) return;
    await this.put({ root, size, have: new Uint8Array(Math.ceil(numPieces(size) / 8)), complete: false, cancelled: false });
  }

  async setLeaves(root, leaves) {
    const db = await this.open();
    const tx = db.transaction(LEAVES, 'readwrite');
    tx.objectStore(LEAVES).put({ root, leaves: leaves.slice().buffer });
    try {
      await done(tx);
    } catch (err) {
      throw storageError(err);
    }
  }

  async setCancelled(root, cancelled) {
    const f = await this.get(root);
    if (!f || f.cancelled === cancelled) return;
    f.cancelled = cancelled;
    await this.put(f);
  }

  /** Stores verified pieces and marks them held, in one transaction. */
  async putPieces(root, pieces) {
    return this.storing(async () => {
      const db = await this.open();
      const tx = db.transaction([FILES, BATCHES], 'readwrite');
      const files = tx.objectStore(FILES);
      const f = await req(files.get(root));
      const rec = { root, first: pieces[0].index, indexes: pieces.map((p) => p.index) };
      if (this.buffers) rec.buf = concatBytes(pieces.map((p) => p.data));
      else rec.blob = new Blob(pieces.map((p) => p.data));
      tx.objectStore(BATCHES).put(rec);
      const have = new Uint8Array(f.have);
      for (const p of pieces) setBit(have, p.index);
      f.have = have;
      files.put(f);
      await done(tx);
    });
  }

  /** Runs write (a whole transaction that stores a batch); a Blob refused although the
   * probe at open passed (a browser that refuses some Blobs only) switches this page to
   * ArrayBuffers and writes again, once. Errors leave as storageError's. */
  async storing(write) {
    try {
      return await write();
    } catch (err) {
      if (this.buffers || isFull(err) || err instanceof FileError || !['UnknownError', 'DataCloneError'].includes(err && err.name)) {
        throw storageError(err);
      }
      console.warn('chattorrent: IndexedDB refused a Blob: media are stored as ArrayBuffers from now on:', describe(err));
      this.buffers = true;
      try {
        return await write();
      } catch (err2) {
        throw storageError(err2);
      }
    }
  }

  /** The complete file as one Blob of slices of its batches, in piece order. */
  async compose(root, f) {
    const db = await this.open();
    const range = IDBKeyRange.bound([root, 0], [root, Infinity]);
    const batches = await req(db.transaction(BATCHES).objectStore(BATCHES).getAll(range));
    const n = numPieces(f.size);
    const where = new Array(n); // piece → [batch, offset in its blob]
    for (const b of batches) {
      if (b.count !== undefined) { // a local file, whole
        if (b.first === 0 && b.count === n) return batchBlob(b);
        continue;
      }
      let off = 0;
      for (const i of b.indexes) {
        if (!where[i]) where[i] = [b, off];
        off += pieceLength(f.size, i);
      }
    }
    // One part per run of pieces lying end to end in one batch: slicing a stored Blob per
    // piece cost more than the transfer itself.
    const parts = [];
    const blobs = new Map(); // batch → its Blob (one per batch stored as an ArrayBuffer)
    const blobOf = (b) => {
      if (!blobs.has(b)) blobs.set(b, batchBlob(b));
      return blobs.get(b);
    };
    for (let i = 0; i < n;) {
      if (!where[i]) throw new FileError('incomplete', `${root}: piece ${i} is not stored`);
      const [b, start] = where[i];
      let end = start + pieceLength(f.size, i);
      let j = i + 1;
      while (j < n && where[j] && where[j][0] === b && where[j][1] === end) {
        end += pieceLength(f.size, j);
        j++;
      }
      const blob = blobOf(b);
      parts.push(start === 0 && end === batchSize(b) ? blob : blob.slice(start, end));
      i = j;
    }
    return new Blob(parts);
  }

  /** Marks a file whose pieces are all stored complete. */
  async finish(root) {
    const f = await this.get(root);
    this.blobs.set(root, await this.compose(root, f)); // checks every piece is there
    f.complete = true;
    await this.put(f);
  }

  /** Hashes a local file and keeps it, to show and to serve. onProgress(bytes). */
  async addLocal(blob, onProgress) {
    const { leaves, root } = await hashBlob(blob, onProgress);
    const n = numPieces(blob.size);
    const old = await this.get(root);
    if (old && old.complete) return root;
    await this.storing(async () => {
      const db = await this.open();
      // Read before the transaction: it commits as soon as the page awaits anything else.
      const batch = { root, first: 0, count: n };
      if (this.buffers) batch.buf = await blob.arrayBuffer();
      else batch.blob = new Blob([blob]);
      const tx = db.transaction([FILES, LEAVES, BATCHES], 'readwrite');
      tx.objectStore(BATCHES).put(batch);
      tx.objectStore(LEAVES).put({ root, leaves: leaves.buffer });
      tx.objectStore(FILES).put({ root, size: blob.size, have: new Uint8Array(Math.ceil(n / 8)).fill(0xff), complete: true, cancelled: false });
      await done(tx);
    });
    return root;
  }

  async read(root, start, end) {
    return new Uint8Array(await (await this.blob(root)).slice(start, end).arrayBuffer());
  }

  async blob(root) {
    if (this.blobs.has(root)) return this.blobs.get(root);
    const f = await this.get(root);
    if (!f || !f.complete) return null;
    const b = await this.compose(root, f);
    this.blobs.set(root, b);
    return b;
  }

  /** Bytes stored so far for root (for progress after a reload). */
  async held(root) {
    const f = await this.get(root);
    if (!f) return 0;
    if (f.complete) return f.size;
    const have = new Uint8Array(f.have);
    let n = 0;
    for (let i = 0; i < numPieces(f.size); i++) if (have[i >> 3] & (1 << (i & 7))) n++;
    return Math.min(f.size, n * PIECE_SIZE);
  }
}

/** Whether db stores a Blob: puts a one-byte Blob at PROBE and deletes it. A full disk is
 * not a refusal of Blobs (the real write will say it is full). */
async function blobsStored(db) {
  try {
    const tx = db.transaction(BATCHES, 'readwrite');
    tx.objectStore(BATCHES).put({ root: PROBE[0], first: PROBE[1], count: 0, blob: new Blob([new Uint8Array(1)]) });
    await done(tx);
  } catch (err) {
    if (isFull(err)) return true;
    console.warn('chattorrent: IndexedDB refuses a Blob here:', describe(err));
    return false;
  }
  try {
    const tx = db.transaction(BATCHES, 'readwrite');
    tx.objectStore(BATCHES).delete(PROBE);
    await done(tx);
  } catch {
    // a one-byte record left behind, harmless
  }
  return true;
}
