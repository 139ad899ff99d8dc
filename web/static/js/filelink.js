// FileLink moves files over one peer connection, both ways (docs/PROTOCOL.md section 5):
// asks for missing pieces, checks them against the BEP 52 hashes, serves what it holds.
// Pure module: no DOM; storage is injected (media.js in the page, MemoryMedia in tests).
// The codec it speaks is files.js. Go: net/pieces.

import {
  FileError, HEAD, READ_PIECES, STALL_MS, MAX_HASHES_PER_FRAME, PIECES_PER_FRAME, PIECE_SIZE,
  numPieces, pieceLength, rootOf, sha256, splitPieces, encodePiece, encodePieces, encodeHashes, decodeFrame,
  missingRanges, bit, setBit, countBits, toHex, fromHex,
} from './files.js';

const BATCH_PIECES = 256; // pieces stored per transaction (4 MiB)
const GOT_EVERY = 64; // a got message at most once a MiB verified (in practice once per stored batch)
const MAX_BAD_HASHES = 3;

/**
 * FileLink moves files over one peer connection, both ways.
 * options: media (storage), sendJSON(msg) → Promise, sendFrame(Uint8Array) → Promise (both
 * wait while the channel's buffer is full; sendFrame has copied the frame once it resolves:
 * the sender reuses one buffer), announced(root) → meta | null, or a Promise
 * of it (files announced by entries of this room), onProgress({root, role: 'recv'|'send', pieces, total, state,
 * code}) with state running|complete|cancelled|nope|error.
 */
export class FileLink {
  constructor({ media, sendJSON, sendFrame, announced, onProgress = () => {}, stallMs = STALL_MS }) {
    Object.assign(this, { media, sendJSON, sendFrame, announced, onProgress, stallMs });
    this.recv = new Map(); // root → receive state
    this.sending = new Map(); // root → {cancelled}
    this.closed = false;
    this.stats = { dropped: 0, badPieces: 0, piecesSent: 0, piecesReceived: 0 };
  }

  close() {
    this.closed = true;
    for (const r of this.recv.values()) clearTimeout(r.stall);
    for (const s of this.sending.values()) s.cancelled = true;
  }

  drop(why) {
    this.stats.dropped++;
    console.warn('chattorrent: dropped a file frame:', why);
  }

  // ----- receiving -----

  /** Starts or resumes fetching a file announced in the room; resolves once asked. */
  async fetch(meta) {
    if (this.closed || this.recv.has(meta.root)) return;
    const root = fromHex(meta.root);
    const n = numPieces(meta.size);
    await this.media.begin(meta.root, meta.size);
    const info = await this.media.info(meta.root);
    if (info.complete) return;
    const r = {
      meta, root, n, leaves: info.leaves, have: info.have, done: countBits(info.have, n),
      got: info.have.slice(), held: countBits(info.have, n), // verified, stored or on the way to storage
      hashBuf: null, hashGot: null, badHashes: 0, batch: [], queue: Promise.resolve(), writes: Promise.resolve(),
      stall: 0, lastAsked: -1, sinceGot: 0,
    };
    this.recv.set(meta.root, r);
    await this.media.setCancelled(meta.root, false);
    this.progress(r, 'running');
    await this.ask(r);
  }

  async ask(r) {
    if (this.closed || this.recv.get(r.meta.root) !== r) return;
    const ranges = missingRanges(r.got, r.n);
    if (!r.leaves) {
      r.hashBuf = new Uint8Array(r.n * 32);
      r.hashGot = new Uint8Array(Math.ceil(r.n / 8));
    }
    r.lastAsked = ranges.length ? ranges[ranges.length - 1][1] - 1 : -1;
    this.armStall(r);
    await this.sendJSON({ t: 'want', root: r.meta.root, hashes: !r.leaves, ranges, multi: true });
  }

  armStall(r) {
    clearTimeout(r.stall);
    r.stall = setTimeout(() => {
      r.queue = r.queue.then(() => this.flush(r)).then(() => this.ask(r));
    }, this.stallMs);
    r.stall?.unref?.();
  }

  /** Stops fetching or sending root and tells the peer. */
  async cancel(root) {
    const r = this.recv.get(root);
    if (r) {
      this.recv.delete(root);
      clearTimeout(r.stall);
      r.queue = r.queue.then(() => this.flush(r)); // frames still queued are skipped
      await r.queue;
      await this.media.setCancelled(root, true);
      this.progress(r, 'cancelled');
    }
    const s = this.sending.get(root);
    if (s) s.cancelled = true;
    if (r || s) await this.sendJSON({ t: 'cancel', root });
  }

  onFrame(buf) {
    let f;
    try {
      f = decodeFrame(buf);
    } catch (err) {
      this.drop(err.message);
      return;
    }
    const r = this.recv.get(f.root);
    if (!r) {
      this.drop('a frame for a file not asked for');
      return;
    }
    if ((r.frames = (r.frames || 0) + 1) % 32 === 0) this.armStall(r);
    if (f.type === 'hashes') {
      r.queue = r.queue.then(() => this.onHashes(r, f)).catch((err) => this.failRecv(r, err));
      return;
    }
    // A pieces frame is its pieces one after another, cut every 16 KiB. Digests run
    // concurrently (each is a hop to another thread); their results are used in arrival order.
    for (const p of f.type === 'piece' ? [f] : splitPieces(f)) {
      const digest = sha256(p.data);
      r.queue = r.queue.then(async () => this.onPiece(r, p, await digest)).catch((err) => this.failRecv(r, err));
    }
  }

  async onHashes(r, f) {
    if (this.recv.get(r.meta.root) !== r) return undefined; // cancelled meanwhile
    if (r.leaves || !r.hashBuf) return this.drop('hashes not asked for');
    const count = f.hashes.length / 32;
    if (f.offset + count > r.n) return this.drop('hashes out of range');
    r.hashBuf.set(f.hashes, f.offset * 32);
    for (let i = f.offset; i < f.offset + count; i++) setBit(r.hashGot, i);
    if (countBits(r.hashGot, r.n) < r.n) return undefined;
    const root = await rootOf(r.hashBuf);
    if (toHex(root) !== r.meta.root) {
      r.badHashes++;
      this.drop('hashes do not match the root');
      r.hashBuf = null;
      if (r.badHashes >= MAX_BAD_HASHES) return this.failRecv(r, new FileError('bad-hashes', 'the peer keeps sending hashes that do not match'));
      return this.ask(r);
    }
    r.leaves = r.hashBuf;
    r.hashBuf = null;
    await this.media.setLeaves(r.meta.root, r.leaves);
    return undefined;
  }

  async onPiece(r, f, h) {
    if (this.recv.get(r.meta.root) !== r) return; // cancelled meanwhile
    const last = f.index === r.lastAsked;
    if (!r.leaves) this.drop('a piece before the hashes');
    else if (f.index >= r.n) this.drop('piece index out of range');
    else if (bit(r.got, f.index)) this.drop('a piece already held');
    else if (f.data.length !== pieceLength(r.meta.size, f.index)) this.bad(r, 'piece of the wrong length');
    else {
      const want = r.leaves.subarray(f.index * 32, f.index * 32 + 32);
      if (h.every((b, i) => b === want[i])) {
        setBit(r.got, f.index);
        r.held++;
        r.batch.push({ index: f.index, data: f.data });
        this.stats.piecesReceived++;
        if (r.batch.length >= BATCH_PIECES) this.flush(r); // stored while the next pieces are checked
      } else this.bad(r, 'piece does not match its hash');
    }
    if (r.held === r.n) {
      await this.flush(r);
      await this.complete(r);
    } else if (last) {
      await this.flush(r);
      await this.ask(r); // the stream is over: ask for what is still missing
    }
  }

  bad(r, why) {
    this.stats.badPieces++;
    this.drop(why);
  }

  /** Stores the batch (after the writes before it) and returns when all writes are done. */
  flush(r) {
    if (r.batch.length) {
      const batch = r.batch;
      r.batch = [];
      r.writes = r.writes.then(async () => {
        await this.media.putPieces(r.meta.root, batch);
        for (const p of batch) setBit(r.have, p.index);
        r.done += batch.length;
        r.sinceGot += batch.length;
        if (this.recv.get(r.meta.root) !== r) return;
        this.progress(r, 'running');
        if (r.sinceGot >= GOT_EVERY) {
          r.sinceGot = 0;
          this.sendJSON({ t: 'got', root: r.meta.root, pieces: r.done }).catch(() => {});
        }
      });
      r.writes.catch((err) => this.failRecv(r, err));
    }
    return r.writes;
  }

  async complete(r) {
    clearTimeout(r.stall);
    await this.media.finish(r.meta.root);
    this.recv.delete(r.meta.root);
    await this.sendJSON({ t: 'got', root: r.meta.root, pieces: r.n });
    this.progress(r, 'complete');
  }

  async failRecv(r, err) {
    if (this.recv.get(r.meta.root) !== r) return; // already stopped
    clearTimeout(r.stall);
    this.recv.delete(r.meta.root);
    console.warn('chattorrent: file transfer stopped:', err && err.message);
    this.progress(r, 'error', err && err.code ? err.code : 'failed', err && err.message ? String(err.message) : '');
    this.sendJSON({ t: 'cancel', root: r.meta.root }).catch(() => {});
  }

  progress(r, state, code, detail) {
    const p = { root: r.meta.root, role: 'recv', pieces: r.done, total: r.n, state, code };
    if (detail) p.detail = detail; // what failed, in the browser's words (a storage error's cause)
    this.onProgress(p);
  }

  // ----- control from the peer -----

  onControl(m) {
    switch (m.t) {
      case 'want':
        this.serve(m).catch((err) => console.warn('chattorrent: serving a file failed:', err && err.message));
        break;
      case 'nope':
      case 'cancel': {
        const r = this.recv.get(m.root);
        if (r) {
          this.recv.delete(m.root);
          clearTimeout(r.stall);
          r.queue.then(() => this.flush(r)).then(() => this.progress(r, m.t === 'nope' ? 'nope' : 'cancelled'));
        }
        const s = this.sending.get(m.root);
        if (s && m.t === 'cancel') {
          s.cancelled = true;
          this.onProgress({ root: m.root, role: 'send', pieces: s.sent, total: s.total, state: 'cancelled' });
        }
        break;
      }
      case 'got': {
        const s = this.sending.get(m.root);
        if (s) {
          const total = s.total;
          const done = Math.min(m.pieces, total);
          this.onProgress({ root: m.root, role: 'send', pieces: done, total, state: done === total ? 'complete' : 'running' });
          if (done === total && s.finished) this.sending.delete(m.root);
        }
        break;
      }
      default:
    }
  }

  // ----- sending -----

  async serve(m) {
    const meta = await this.announced(m.root);
    const info = meta ? await this.media.info(m.root) : null;
    if (!info || !info.complete || !info.leaves) {
      await this.sendJSON({ t: 'nope', root: m.root });
      return;
    }
    const n = numPieces(info.size);
    const prev = this.sending.get(m.root);
    if (prev) prev.cancelled = true; // a newer want replaces the running one
    const s = { cancelled: false, sent: 0, total: n, finished: false };
    this.sending.set(m.root, s);
    const root = fromHex(m.root);
    if (m.hashes) {
      for (let off = 0; off < n && !s.cancelled && !this.closed; off += MAX_HASHES_PER_FRAME) {
        const end = Math.min(n, off + MAX_HASHES_PER_FRAME);
        await this.sendFrame(encodeHashes(root, off, info.leaves.subarray(off * 32, end * 32)));
      }
    }
    this.onProgress({ root: m.root, role: 'send', pieces: 0, total: n, state: 'running' });
    // Up to PIECES_PER_FRAME pieces a frame when the receiver takes pieces frames (fewer
    // messages: less work a byte for both pages), in one frame buffer reused for every frame:
    // sendFrame copies it before it resolves (as RTCDataChannel.send does).
    const per = m.multi ? PIECES_PER_FRAME : 1;
    const frame = (m.multi ? encodePieces : encodePiece)(root, 0, new Uint8Array(per * PIECE_SIZE));
    const at = new DataView(frame.buffer);
    for (const [from, to0] of m.ranges) {
      const to = Math.min(to0, n);
      const readAt = (i) => this.media.read(m.root, i * PIECE_SIZE, Math.min(info.size, Math.min(to, i + READ_PIECES) * PIECE_SIZE));
      let next = from < to ? readAt(from) : null;
      for (let i = from; i < to && !s.cancelled && !this.closed; i += READ_PIECES) {
        const end = Math.min(to, i + READ_PIECES);
        const bytes = await next;
        next = end < to ? readAt(end) : null; // read ahead while these pieces are sent
        for (let k = i; k < end && !s.cancelled && !this.closed; k += per) {
          const count = Math.min(per, end - k);
          const off = (k - i) * PIECE_SIZE;
          const len = (count - 1) * PIECE_SIZE + pieceLength(info.size, k + count - 1);
          at.setUint32(33, k);
          frame.set(bytes.subarray(off, off + len), HEAD);
          await this.sendFrame(frame.subarray(0, HEAD + len));
          s.sent += count;
          this.stats.piecesSent += count;
        }
      }
    }
    s.finished = true;
  }
}
