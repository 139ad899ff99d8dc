// Files in 16 KiB pieces (docs/PROTOCOL.md section 5): the entry body, the BEP 52 hashes
// with 16 KiB leaves, the binary frames, the want/nope/got/cancel messages and MemoryMedia
// (storage for tests). FileLink, which moves files over one peer connection, is in
// filelink.js. Pure module: no DOM. Go: net/pieces.

import { sha256Node } from './sha256.js';

export const PIECE_SIZE = 16384;
export const MAX_HASHES_PER_FRAME = 4096;
export const MAX_RANGES = 256;
export const MAX_FRAME = 1 + 32 + 4 + MAX_HASHES_PER_FRAME * 32;
export const MAX_SIZE = Number.MAX_SAFE_INTEGER;
export const FILE_KINDS = new Set(['image', 'voice', 'file']);
export const PIECES_PER_FRAME = 3; // a pieces frame carries 1..3 pieces: at most 49189 bytes, under 64 KiB
const FRAME_PIECE = 1;
const FRAME_HASHES = 2;
const FRAME_PIECES = 3;
export const HEAD = 37; // type, root, index/offset
export const READ_PIECES = 256; // pieces read from storage at once by a sender (4 MiB)
export const STALL_MS = 5000;

const reHex64 = /^[0-9a-f]{64}$/;
const reControl = /\p{Cc}/u;
// Control (Cc) and format (Cf) characters: refused in file names as in people's names
// (history.js validText; Go: net/pieces, store/history): "photo\u202egpj.exe" would show
// as "photoexe.jpg".
const reHidden = /[\p{Cc}\p{Cf}]/u;
const utf8 = new TextEncoder();

export class FileError extends Error {
  constructor(code, msg) {
    super(`files: ${code}${msg ? `: ${msg}` : ''}`);
    this.name = 'FileError';
    this.code = code;
  }
}

export function toHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function fromHex(s) {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function numPieces(size) {
  return Math.ceil(size / PIECE_SIZE);
}

export function pieceLength(size, index) {
  return Math.min(PIECE_SIZE, size - index * PIECE_SIZE);
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

/** The merkle root of the leaves (n × 32 bytes), padded with zero leaves to a power of two.
 * (Async for its callers: it was WebCrypto's, a hop per node.) */
export async function rootOf(leaves) {
  let n = leaves.length / 32;
  if (n === 0) throw new FileError('bad-size', 'no pieces');
  let width = 1;
  while (width < n) width *= 2;
  let level = new Uint8Array(width * 32);
  level.set(leaves);
  n = width;
  while (n > 1) {
    const next = new Uint8Array((n / 2) * 32);
    for (let i = 0; i < n / 2; i++) sha256Node(level, i * 64, next, i * 32);
    level = next;
    n /= 2;
  }
  return level;
}

/** Leaves and root of a Blob (or anything with slice().arrayBuffer()), read a MiB at a
 * time. onProgress(bytesDone). */
export async function hashBlob(blob, onProgress = () => {}) {
  const n = numPieces(blob.size);
  if (n === 0) throw new FileError('bad-size', 'empty file');
  const leaves = new Uint8Array(n * 32);
  for (let i = 0; i < n; i += READ_PIECES) {
    const end = Math.min(blob.size, (i + READ_PIECES) * PIECE_SIZE);
    const buf = new Uint8Array(await blob.slice(i * PIECE_SIZE, end).arrayBuffer());
    // The pieces of a read are hashed concurrently: one digest at a time, each a hop to
    // another thread and back, left both threads idle between them.
    const sums = [];
    for (let k = 0; k * PIECE_SIZE < buf.length; k++) sums.push(sha256(buf.subarray(k * PIECE_SIZE, (k + 1) * PIECE_SIZE)));
    (await Promise.all(sums)).forEach((h, k) => leaves.set(h, (i + k) * 32));
    onProgress(end);
  }
  return { leaves, root: toHex(await rootOf(leaves)) };
}

// ---------- the entry body ----------

/** Parses and checks a file entry's body; throws FileError with the vectors' codes. */
export function parseMeta(kind, body) {
  if (!FILE_KINDS.has(kind)) throw new FileError('bad-kind', kind);
  let m;
  try {
    m = JSON.parse(body);
  } catch {
    throw new FileError('not-json');
  }
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new FileError('not-json');
  if (typeof m.root !== 'string' || !reHex64.test(m.root)) throw new FileError('bad-root');
  if (!Number.isSafeInteger(m.size) || m.size < 1) throw new FileError('bad-size');
  if (typeof m.name !== 'string' || m.name === '' || utf8.encode(m.name).length > 255 || /[/\\]/.test(m.name) || reHidden.test(m.name)) {
    throw new FileError('bad-name');
  }
  if (typeof m.type !== 'string' || utf8.encode(m.type).length > 127 || reControl.test(m.type)) throw new FileError('bad-type');
  const meta = { kind, root: m.root, size: m.size, name: m.name, type: m.type };
  if (m.duration !== undefined) {
    if (kind !== 'voice' || !Number.isSafeInteger(m.duration) || m.duration < 0) throw new FileError('bad-duration');
    meta.duration = m.duration;
  }
  return meta;
}

export function metaBody(meta) {
  const o = { root: meta.root, size: meta.size, name: meta.name, type: meta.type };
  if (meta.kind === 'voice' && meta.duration !== undefined) o.duration = meta.duration;
  const body = JSON.stringify(o);
  parseMeta(meta.kind, body);
  return body;
}

/** A name safe to announce: path separators and control characters replaced by '_',
 * format characters (bidi overrides, zero-width) removed, lone surrogates made U+FFFD,
 * capped at 255 bytes at a character boundary. */
export function cleanName(name) {
  let s = String(name || 'file').toWellFormed().replace(/[/\\\p{Cc}]/gu, '_').replace(/\p{Cf}/gu, '').trim() || 'file';
  while (utf8.encode(s).length > 255) s = s.slice(0, /[\udc00-\udfff]/.test(s.at(-1)) ? -2 : -1); // never half a pair
  return s;
}

// ---------- what a file may be opened as ----------

/** The type of a Blob made of bytes nobody vouches for: whatever is not in INLINE_TYPES. */
export const OPAQUE_TYPE = 'application/octet-stream';

/** The only types the page gives a peer's file (docs/SECURITY.md): images it shows, audio
 * and video it plays. Never text/*, anything *xml* or SVG: those open as documents at the
 * box's origin. The value is the kind's family that may show it inline. */
export const INLINE_TYPES = new Map([
  ['image/png', 'image'], ['image/jpeg', 'image'], ['image/gif', 'image'], ['image/webp', 'image'],
  ['audio/wav', 'audio'], ['audio/ogg', 'audio'], ['audio/webm', 'audio'], ['audio/mp4', 'audio'], ['audio/mpeg', 'audio'],
  ['video/mp4', 'video'], ['video/webm', 'video'],
]);

const KIND_FAMILIES = { image: new Set(['image']), voice: new Set(['audio', 'video']) };

/** The type a Blob of a peer's file gets: the essence of type (no parameters, lower case)
 * when it is in INLINE_TYPES and, given a kind, fits it (image: an image type, voice: audio
 * or video, file: any of the list); else OPAQUE_TYPE, which the page offers as a download
 * only. */
export function safeBlobType(type, kind) {
  const essence = typeof type === 'string' ? type.split(';')[0].trim().toLowerCase() : '';
  const family = INLINE_TYPES.get(essence);
  if (!family) return OPAQUE_TYPE;
  if (kind !== undefined && kind !== 'file' && !(KIND_FAMILIES[kind] && KIND_FAMILIES[kind].has(family))) return OPAQUE_TYPE;
  return essence;
}

/** Whether the page may show a file of this kind and type inline (an <img>, an <audio>, a
 * link opening it in a tab): only what safeBlobType lets through. */
export function opensInline(type, kind) {
  return safeBlobType(type, kind) !== OPAQUE_TYPE && kind !== 'file';
}

// ---------- frames ----------

export function encodePiece(root, index, data) {
  const f = new Uint8Array(HEAD + data.length);
  f[0] = FRAME_PIECE;
  f.set(root, 1);
  new DataView(f.buffer).setUint32(33, index);
  f.set(data, HEAD);
  return f;
}

/** A pieces frame: consecutive pieces index, index+1, … (each 16 KiB but a file's last). */
export function encodePieces(root, index, data) {
  const f = encodePiece(root, index, data);
  f[0] = FRAME_PIECES;
  return f;
}

/** The pieces of a decoded pieces frame, as piece frames. */
export function splitPieces(f) {
  const out = [];
  for (let off = 0; off < f.data.length; off += PIECE_SIZE) {
    out.push({ type: 'piece', root: f.root, index: f.index + off / PIECE_SIZE, data: f.data.subarray(off, off + PIECE_SIZE) });
  }
  return out;
}

export function encodeHashes(root, offset, leaves) {
  const f = new Uint8Array(HEAD + leaves.length);
  f[0] = FRAME_HASHES;
  f.set(root, 1);
  new DataView(f.buffer).setUint32(33, offset);
  f.set(leaves, HEAD);
  return f;
}

/** Decodes a binary frame; throws FileError('bad-frame'). */
export function decodeFrame(buf) {
  const b = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  if (b.length > MAX_FRAME) throw new FileError('bad-frame', 'too large');
  if (b.length <= HEAD) throw new FileError('bad-frame', 'too short');
  const root = toHex(b.subarray(1, 33));
  const at = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(33);
  const rest = b.subarray(HEAD);
  switch (b[0]) {
    case FRAME_PIECE:
      if (rest.length > PIECE_SIZE) throw new FileError('bad-frame', 'piece too large');
      return { type: 'piece', root, index: at, data: rest };
    case FRAME_PIECES:
      if (rest.length > PIECES_PER_FRAME * PIECE_SIZE) throw new FileError('bad-frame', 'pieces too large');
      return { type: 'pieces', root, index: at, data: rest };
    case FRAME_HASHES:
      if (rest.length % 32 !== 0) throw new FileError('bad-frame', 'hashes not a multiple of 32 bytes');
      return { type: 'hashes', root, offset: at, hashes: rest };
    default:
      throw new FileError('bad-frame', `type ${b[0]}`);
  }
}

// ---------- control messages ----------

/** Checks a want/nope/got/cancel message (already JSON-parsed); throws FileError. */
export function checkControl(m) {
  if (typeof m.root !== 'string' || !reHex64.test(m.root)) throw new FileError('bad-message', 'root');
  switch (m.t) {
    case 'want': {
      if (typeof m.hashes !== 'boolean' || !Array.isArray(m.ranges) || m.ranges.length > MAX_RANGES
        || (m.multi !== undefined && typeof m.multi !== 'boolean')) {
        throw new FileError('bad-message', 'want');
      }
      let last = -1;
      for (const r of m.ranges) {
        if (!Array.isArray(r) || r.length !== 2 || !Number.isInteger(r[0]) || !Number.isInteger(r[1])
          || r[0] < Math.max(0, last) || r[1] <= r[0] || r[1] > 0xffffffff) {
          throw new FileError('bad-message', 'ranges');
        }
        last = r[1];
      }
      return { t: 'want', root: m.root, hashes: m.hashes, ranges: m.ranges.map((r) => [r[0], r[1]]), multi: m.multi === true };
    }
    case 'got':
      if (!Number.isSafeInteger(m.pieces) || m.pieces < 0) throw new FileError('bad-message', 'got');
      return { t: 'got', root: m.root, pieces: m.pieces };
    case 'nope':
    case 'cancel':
      return { t: m.t, root: m.root };
    default:
      throw new FileError('bad-message', 'type');
  }
}

/** The ranges of pieces not in the bitmap, at most MAX_RANGES (the rest is asked later). */
export function missingRanges(have, n) {
  const out = [];
  let i = 0;
  while (i < n && out.length < MAX_RANGES) {
    while (i < n && bit(have, i)) i++;
    if (i >= n) break;
    const from = i;
    while (i < n && !bit(have, i)) i++;
    out.push([from, i]);
  }
  return out;
}

export function bit(bits, i) {
  return (bits[i >> 3] & (1 << (i & 7))) !== 0;
}

export function setBit(bits, i) {
  bits[i >> 3] |= 1 << (i & 7);
}

export function countBits(bits, n) {
  let c = 0;
  for (let i = 0; i < n; i++) if (bit(bits, i)) c++;
  return c;
}

// ---------- storage ----------

/** In-memory media storage with the interface media.js implements in IndexedDB. */
export class MemoryMedia {
  constructor() {
    this.files = new Map(); // root → {size, leaves, have, pieces: Map, blob}
  }

  async info(root) {
    const f = this.files.get(root);
    if (!f) return null;
    return { size: f.size, leaves: f.leaves, have: f.have.slice(), complete: !!f.blob, cancelled: !!f.cancelled };
  }

  async begin(root, size) {
    if (!this.files.has(root)) this.files.set(root, { size, leaves: null, have: new Uint8Array(Math.ceil(numPieces(size) / 8)), pieces: new Map(), blob: null });
  }

  async setLeaves(root, leaves) {
    this.files.get(root).leaves = leaves;
  }

  async putPieces(root, pieces) {
    const f = this.files.get(root);
    for (const p of pieces) {
      f.pieces.set(p.index, p.data.slice());
      setBit(f.have, p.index);
    }
  }

  async finish(root) {
    const f = this.files.get(root);
    const parts = [];
    for (let i = 0; i < numPieces(f.size); i++) parts.push(f.pieces.get(i));
    f.blob = new Blob(parts);
    f.pieces.clear();
  }

  async addLocal(blob) {
    const { leaves, root } = await hashBlob(blob);
    const n = numPieces(blob.size);
    const have = new Uint8Array(Math.ceil(n / 8)).fill(0xff);
    this.files.set(root, { size: blob.size, leaves, have, pieces: new Map(), blob });
    return root;
  }

  async read(root, start, end) {
    return new Uint8Array(await this.files.get(root).blob.slice(start, end).arrayBuffer());
  }

  async blob(root) {
    const f = this.files.get(root);
    return f && f.blob;
  }

  async setCancelled(root, cancelled) {
    const f = this.files.get(root);
    if (f) f.cancelled = cancelled;
  }
}
