// Media storage in IndexedDB with the interface of files.js's MemoryMedia. localStorage
// cannot hold media; IndexedDB keeps Blobs on disk, so a large file is never held in memory:
// verified pieces are stored a batch (up to 1 MiB) per record and transaction, and a
// finished file becomes one Blob composed of slices of those records.

import { FileError, hashBlob, numPieces, pieceLength, PIECE_SIZE, setBit } from './files.js';

const DB = 'chattorrent-media';
const FILES = 'files'; // root → {root, size, leaves, have, blob, cancelled}
const BATCHES = 'batches'; // [root, first index] → {root, first, indexes, blob}

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
  if (err && (err.name === 'QuotaExceededError' || err.name === 'UnknownError')) {
    return new FileError('storage-full', err.message);
  }
  return err;
}

export class IndexedMedia {
  constructor(name = DB) {
    this.name = name;
    this.db = null;
  }

  async open() {
    if (this.db) return this.db;
    const r = indexedDB.open(this.name, 1);
    r.onupgradeneeded = () => {
      const db = r.result;
      db.createObjectStore(FILES, { keyPath: 'root' });
      db.createObjectStore(BATCHES, { keyPath: ['root', 'first'] });
    };
    this.db = await req(r);
    return this.db;
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
    const f = await this.get(root);
    if (!f) return null;
    return {
      size: f.size, leaves: f.leaves ? new Uint8Array(f.leaves) : null, have: new Uint8Array(f.have),
      complete: !!f.blob, cancelled: !!f.cancelled,
    };
  }

  async begin(root, size) {
    if (await this.get(root)) return;
    await this.put({ root, size, leaves: null, have: new Uint8Array(Math.ceil(numPieces(size) / 8)), blob: null, cancelled: false });
  }

  async setLeaves(root, leaves) {
    const f = await this.get(root);
    f.leaves = leaves.slice().buffer;
    await this.put(f);
  }

  async setCancelled(root, cancelled) {
    const f = await this.get(root);
    if (!f || f.cancelled === cancelled) return;
    f.cancelled = cancelled;
    await this.put(f);
  }

  /** Stores verified pieces and marks them held, in one transaction. */
  async putPieces(root, pieces) {
    const db = await this.open();
    const tx = db.transaction([FILES, BATCHES], 'readwrite');
    const files = tx.objectStore(FILES);
    const f = await req(files.get(root));
    const rec = { root, first: pieces[0].index, indexes: pieces.map((p) => p.index), blob: new Blob(pieces.map((p) => p.data)) };
    tx.objectStore(BATCHES).put(rec);
    const have = new Uint8Array(f.have);
    for (const p of pieces) setBit(have, p.index);
    f.have = have;
    files.put(f);
    try {
      await done(tx);
    } catch (err) {
      throw storageError(err);
    }
  }

  /** Joins the stored batches into the file's Blob, in piece order, and drops them. */
  async finish(root) {
    const db = await this.open();
    const f = await this.get(root);
    const range = IDBKeyRange.bound([root, 0], [root, Infinity]);
    const batches = await req(db.transaction(BATCHES).objectStore(BATCHES).getAll(range));
    const n = numPieces(f.size);
    const where = new Array(n);
    for (const b of batches) {
      let off = 0;
      for (const i of b.indexes) {
        const len = pieceLength(f.size, i);
        if (!where[i]) where[i] = b.blob.slice(off, off + len);
        off += len;
      }
    }
    if (where.some((x) => !x) || where.length !== n) throw new FileError('incomplete', root);
    f.blob = new Blob(where);
    const tx = db.transaction([FILES, BATCHES], 'readwrite');
    tx.objectStore(FILES).put(f);
    tx.objectStore(BATCHES).delete(range);
    try {
      await done(tx);
    } catch (err) {
      throw storageError(err);
    }
  }

  /** Hashes a local file and keeps it, to show and to serve. onProgress(bytes). */
  async addLocal(blob, onProgress) {
    const { leaves, root } = await hashBlob(blob, onProgress);
    const have = new Uint8Array(Math.ceil(numPieces(blob.size) / 8)).fill(0xff);
    const old = await this.get(root);
    if (!old || !old.blob) {
      await this.put({ root, size: blob.size, leaves: leaves.buffer, have, blob: new Blob([blob]), cancelled: false });
    }
    return root;
  }

  async read(root, start, end) {
    const f = await this.get(root);
    return new Uint8Array(await f.blob.slice(start, end).arrayBuffer());
  }

  async blob(root) {
    const f = await this.get(root);
    return f && f.blob;
  }

  /** Bytes stored so far for root (for progress after a reload). */
  async held(root) {
    const f = await this.get(root);
    if (!f) return 0;
    if (f.blob) return f.size;
    const have = new Uint8Array(f.have);
    let n = 0;
    for (let i = 0; i < numPieces(f.size); i++) if (have[i >> 3] & (1 << (i & 7))) n++;
    return Math.min(f.size, n * PIECE_SIZE);
  }
}
