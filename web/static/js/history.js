// Verifiable, append-only room history (docs/PROTOCOL.md section 3): entries signed with
// Ed25519 by their author, chained per author, identified by the SHA-256 of their canonical
// bencode. The same rules, check order and error codes as the Go package store/history;
// both replay store/history/testdata/vectors.json. Pure module: no DOM, no storage.

import { sha256Hex } from './sha256.js';
import { fromB64url, isB64urlOf, toB64url, toHex, utf8Len } from './codec.js';

export { fromB64url, toB64url, toHex };

export const MAX_BODY = 16384;
export const MAX_NAME = 64;
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
export const FUTURE_SLACK_MS = 10 * 60 * 1000;
export const KNOWN_KINDS = new Set(['text', 'join']);

const utf8 = new TextEncoder();
const reHex32 = /^[0-9a-f]{32}$/;
const reHex64 = /^[0-9a-f]{64}$/;
const reKind = /^[a-z][a-z0-9-]{0,15}$/;
// Control (Cc) and format (Cf) characters: no name may hold one (docs/PROTOCOL.md section
// 3), as in Go's history.ValidText; store/history/testdata/names_vectors.json holds both.
export const reHidden = /[\p{Cc}\p{Cf}]/u;
const reHiddenAll = /[\p{Cc}\p{Cf}]/gu;

/** Why an entry was refused. code: bad-field, too-large, wrong-room, bad-id, bad-signature,
 * future, gap, broken-chain, fork (docs/PROTOCOL.md section 3). */
export class HistoryError extends Error {
  constructor(code, field = '', msg = '') {
    super(`history: ${code}${field ? ` ${field}` : ''}${msg ? `: ${msg}` : ''}`);
    this.name = 'HistoryError';
    this.code = code;
    this.field = field;
  }
}

const badField = (field, msg) => new HistoryError('bad-field', field, msg);

// The canonical bencode of an entry's fields (keys in byte order: author, body, kind, name,
// prev, room, seq, [sig,] ts), built as one string and encoded once: the same bytes as
// bencode.js would write, several times faster (a sync verifies thousands of entries).
function encodeEntry(e, withSig) {
  const str = (v) => {
    const x = String(v);
    return `${utf8Len(x)}:${x}`;
  };
  const int = (v) => {
    if (!Number.isSafeInteger(v)) throw new RangeError('bencode: not a safe integer');
    return `i${v}e`;
  };
  const text = `d6:author${str(e.author)}4:body${str(e.body)}4:kind${str(e.kind)}4:name${str(e.name)}` +
    `4:prev${str(e.prev)}4:room${str(e.room)}3:seq${int(e.seq)}${withSig ? `3:sig${str(e.sig)}` : ''}2:ts${int(e.ts)}e`;
  return utf8.encode(text);
}

/** The bytes an author signs: canonical bencode of every field but sig and id. */
export function signingBytes(e) {
  return encodeEntry(e, false);
}

/** The bytes an entry's id hashes: canonical bencode of every field but id. */
export function idBytes(e) {
  return encodeEntry(e, true);
}

/** An entry's id: the SHA-256 of idBytes, hashed here (synchronously) rather than by
 * WebCrypto, whose digest is a task hop per call: it was most of a first sync's cost. */
export function entryId(e) {
  return sha256Hex(idBytes(e));
}

export async function computeId(e) {
  return entryId(e);
}

/** The short form of an author key shown beside a name: "abcd-ef01". */
export async function fingerprint(author) {
  const raw = fromB64url(author);
  if (!raw || raw.length !== 32) return '????-????';
  const h = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', raw)).slice(0, 4));
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}

const keyCache = new Map();
async function publicKey(author) {
  let k = keyCache.get(author);
  if (!k) {
    k = crypto.subtle.importKey('raw', fromB64url(author), { name: 'Ed25519' }, false, ['verify']);
    if (keyCache.size > 1000) keyCache.clear();
    keyCache.set(author, k);
  }
  return k;
}

/** An identity: {author, privateKey: CryptoKey}. signEntry fills author, sig and id. */
export async function signEntry(e, identity) {
  const out = { ...e, author: identity.author };
  const sig = await crypto.subtle.sign({ name: 'Ed25519' }, identity.privateKey, signingBytes(out));
  out.sig = toB64url(new Uint8Array(sig));
  out.id = await computeId(out);
  return out;
}

const isInt = (v) => typeof v === 'number' && Number.isSafeInteger(v);
const isStr = (v) => typeof v === 'string';
const byteLen = utf8Len;

/** Whether s is text a name may be: well-formed, at most max bytes of UTF-8, without
 * control or format characters (bidi overrides, zero-width characters, ZWJ included). */
export function validText(s, max) {
  return isStr(s) && byteLen(s) <= max && !reHidden.test(s) && s.isWellFormed();
}

/** A name the user typed made valid: control and format characters removed (a lone
 * surrogate becomes U+FFFD), trimmed, cut to max bytes of UTF-8 at a character boundary;
 * '' when nothing is left. (An emoji sequence joined by ZWJ falls apart into its emoji.) */
export function cleanText(s, max) {
  let out = String(s ?? '').toWellFormed().replace(reHiddenAll, '').trim();
  if (byteLen(out) > max) {
    const cps = Array.from(out).slice(0, max); // a code point is at least one byte
    while (cps.length && byteLen(cps.join('')) > max) cps.pop();
    out = cps.join('').trim();
  }
  return out;
}

// The fields, the room and the id (the part of checkEntry before the signature), at once.
// Throws HistoryError.
function checkFields(e, room) {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) throw badField('', 'not an entry');
  if (!isStr(e.room) || !reHex32.test(e.room)) throw badField('room', 'want 32 lowercase hex characters');
  if (!validText(e.name, MAX_NAME) || e.name === '') throw badField('name', 'want 1 to 64 bytes of text without control or format characters');
  if (!isInt(e.seq) || e.seq < 1) throw badField('seq', 'want 1 to 2^53-1');
  if (!isStr(e.prev)) throw badField('prev', 'want a string');
  if (e.seq === 1 && e.prev !== '') throw badField('prev', 'must be empty at seq 1');
  if (e.seq > 1 && !reHex64.test(e.prev)) throw badField('prev', 'want 64 lowercase hex characters');
  if (!isInt(e.ts) || e.ts < 0) throw badField('ts', 'want milliseconds since 1970');
  if (!isStr(e.kind) || !reKind.test(e.kind)) throw badField('kind', 'want [a-z][a-z0-9-]{0,15}');
  if (!isStr(e.body)) throw badField('body', 'want a string');
  if (byteLen(e.body) > MAX_BODY) throw new HistoryError('too-large', 'body', 'more than 16384 bytes');
  if (!e.body.isWellFormed()) throw badField('body', 'not UTF-8');
  if (!isStr(e.id) || !reHex64.test(e.id)) throw badField('id', 'want 64 lowercase hex characters');
  if (!isB64urlOf(e.author, 32)) throw badField('author', 'want a base64url Ed25519 public key (43 characters)');
  if (!isB64urlOf(e.sig, 64)) throw badField('sig', 'want a base64url Ed25519 signature (86 characters)');
  if (e.room !== room) throw new HistoryError('wrong-room', '', `entry belongs to room ${e.room}`);
  if (entryId(e) !== e.id) throw new HistoryError('bad-id', '', 'id is not the hash of the entry');
}

function checkTime(e, now) {
  if (e.ts > now + FUTURE_SLACK_MS) throw new HistoryError('future', '', 'timestamp is more than 10 minutes ahead');
}

// Verifies the signature of an entry that passed checkFields: null or a HistoryError.
async function verifySig(e) {
  const ok = await crypto.subtle.verify({ name: 'Ed25519' }, await publicKey(e.author), fromB64url(e.sig), signingBytes(e));
  return ok ? null : new HistoryError('bad-signature', '', "signature does not match the author's key");
}

/** Checks one entry on its own, in the order of docs/PROTOCOL.md: fields, room, id,
 * signature, time. Throws HistoryError. Says nothing of the author's chain (see Log.add). */
export async function checkEntry(e, room, now = Date.now()) {
  checkFields(e, room);
  const err = await verifySig(e);
  if (err) throw err;
  checkTime(e, now);
}

/** checkEntry without the signature (Go's Entry.CheckUnsigned): fields, room, id, time. */
export async function checkUnsigned(e, room, now = Date.now()) {
  checkFields(e, room);
  checkTime(e, now);
}

const asResult = (err) => (err instanceof HistoryError
  ? { code: err.code, field: err.field, message: err.message, by: err.by || '' }
  : { code: 'bad-field', field: '', message: String(err && err.message), by: '' });

/** Checks many entries on their own (checkEntry each); resolves to one result per entry:
 * null when it passed, else {code, field, message, by}. */
export async function checkEntries(entries, room, now = Date.now()) {
  return Promise.all(entries.map((e) => checkEntry(e, room, now).then(() => null, asResult)));
}

/**
 * Checks a batch of received entries, of any authors in any order, with one Ed25519
 * signature per run of an author's linked entries (Go's history.CheckBatch, the same rules
 * and results; docs/PROTOCOL.md section 3, "Verifying chains"). storedId(author, seq) is the
 * id of the entry stored there, or undefined. Resolves to one result per entry: null when
 * it passes (fields, id, time, and a valid signature of its author covers it), else
 * {code, field, message, by}: by is set on an entry refused only with its run, to the id of
 * the entry at fault. The chain rules against the stored log stay Log.checkChain's.
 */
export async function checkBatch(entries, room, now = Date.now(), storedId = () => undefined) {
  const out = entries.map((e) => {
    try {
      checkFields(e, room);
      checkTime(e, now);
      return null;
    } catch (err) {
      return asResult(err);
    }
  });
  const byAuthor = new Map();
  entries.forEach((e, i) => {
    if (out[i]) return;
    const l = byAuthor.get(e.author);
    if (l) l.push(i);
    else byAuthor.set(e.author, [i]);
  });
  const singles = []; // indices checked on their own signature
  const runs = []; // {run: [indices], fault: {at, err} | null}
  const copies = []; // [a later copy, the first one]
  for (const [author, idx] of byAuthor) {
    idx.sort((a, b) => entries[a].seq - entries[b].seq || a - b);
    const fresh = [];
    for (let k = 0; k < idx.length;) {
      const seq = entries[idx[k]].seq;
      const uniq = [];
      for (; k < idx.length && entries[idx[k]].seq === seq; k++) {
        const i = idx[k];
        const f = uniq.find((u) => entries[u].id === entries[i].id);
        if (f !== undefined) copies.push([i, f]);
        else uniq.push(i);
      }
      const sid = storedId(author, seq);
      if (sid !== undefined) {
        for (const i of uniq) if (entries[i].id !== sid) singles.push(i); // a fork if it verifies
      } else if (uniq.length > 1) singles.push(...uniq);
      else fresh.push(uniq[0]);
    }
    for (let a = 0; a < fresh.length;) {
      let b = a + 1;
      while (b < fresh.length && entries[fresh[b]].seq === entries[fresh[b - 1]].seq + 1) b++;
      runs.push({ run: fresh.slice(a, b), fault: linkFault(entries, fresh.slice(a, b), storedId) });
      a = b;
    }
  }
  const sigs = await Promise.all([
    ...singles.map((i) => verifySig(entries[i])),
    ...runs.map((r) => (r.fault ? null : verifySig(entries[r.run[r.run.length - 1]]))),
  ]);
  singles.forEach((i, k) => { out[i] = sigs[k] && asResult(sigs[k]); });
  runs.forEach((r, k) => {
    const err = sigs[singles.length + k];
    const fault = r.fault || (err && { at: r.run.length - 1, err });
    if (fault) refuseRun(entries, r.run, out, fault);
  });
  for (const [i, f] of copies) out[i] = out[f];
  return out;
}

// The first broken link of a run (entries of one author at consecutive seqs, none stored):
// {at, err} or null.
function linkFault(entries, run, storedId) {
  const first = entries[run[0]];
  if (first.seq > 1) {
    const sid = storedId(first.author, first.seq - 1);
    if (sid !== undefined && sid !== first.prev) {
      return { at: 0, err: new HistoryError('broken-chain', 'prev', `prev is not the id of the author's stored entry at seq ${first.seq - 1}`) };
    }
  }
  for (let k = 1; k < run.length; k++) {
    const e = entries[run[k]];
    if (e.prev !== entries[run[k - 1]].id) {
      return { at: k, err: new HistoryError('broken-chain', 'prev', `prev is not the id of the author's entry at seq ${e.seq - 1} in this batch`) };
    }
  }
  return null;
}

function refuseRun(entries, run, out, { at, err }) {
  const culprit = entries[run[at]];
  const msg = err.message.replace(/^history: [a-z-]+( [a-z]+)?: /, '');
  run.forEach((i, k) => {
    out[i] = k === at ? asResult(err) : {
      code: err.code, field: '', by: culprit.id,
      message: `history: ${err.code}: refused with its run (seqs ${entries[run[0]].seq} to ${entries[run[run.length - 1]].seq}): the entry at seq ${culprit.seq}: ${msg}`,
    };
  });
}

/** Only the fields of an entry, in a fresh object (drops anything a peer added). */
export function pick(e) {
  return {
    room: e.room, author: e.author, name: e.name, seq: e.seq, prev: e.prev,
    ts: e.ts, kind: e.kind, body: e.body, sig: e.sig, id: e.id,
  };
}

export function compareEntries(a, b) {
  return a.ts - b.ts || (a.author < b.author ? -1 : a.author > b.author ? 1 : 0) || a.seq - b.seq;
}

/** A room's chains held in memory: the source of a Log in node tests and of a room not
 * yet stored. The page's rooms read theirs from IndexedDB (entries.js, the same methods). */
export class MemoryChains {
  constructor() {
    this.chains = new Map(); // author → entries at seq 1..n
    this.byId = new Map();
  }

  async heads() {
    const heads = new Map();
    for (const [a, c] of this.chains) heads.set(a, { seq: c.length, id: c[c.length - 1].id });
    return { heads, size: this.byId.size };
  }

  append(e) {
    const chain = this.chains.get(e.author);
    if (chain) chain.push(e);
    else this.chains.set(e.author, [e]);
    this.byId.set(e.id, e);
  }

  idAt(author, seq) {
    const c = this.chains.get(author);
    return c && c[seq - 1] ? c[seq - 1].id : undefined;
  }

  async at(author, seq) {
    const c = this.chains.get(author);
    return c ? c[seq - 1] : undefined;
  }

  async slice(author, from, n) {
    return (this.chains.get(author) || []).slice(from, from + n);
  }
}

const RECENT = 4096; // entries a log remembers of those appended last (not yet stored, batches)
const SLICE = 256; // entries read of each author at a time by missing()

/**
 * One room's history: each author's head (seq and id) in memory, the entries in a source
 * (MemoryChains, or entries.js's IndexedDB chains), read when needed: a room of 100,000
 * entries costs the page its authors, not its entries. add() is async (it verifies);
 * callers serialise adds to one log (see Log.queue).
 */
export class Log {
  constructor(room, source = new MemoryChains()) {
    this.room = room;
    this.source = source;
    this.headOf = new Map(); // author → {seq, id}
    this.recent = new Map(); // 'author seq' → entry, the last RECENT appended
    this.forkedAuthors = new Set();
    this.size = 0;
    this.tail = Promise.resolve();
  }

  /** A log over a stored room: its heads read before anything queued runs (ready). */
  static open(room, source) {
    const l = new Log(room, source);
    l.ready = l.queue(async () => {
      const { heads, size } = await source.heads();
      for (const [a, h] of heads) if (!l.headOf.has(a)) l.headOf.set(a, h);
      l.size += size;
    });
    return l;
  }

  /** Rebuilds a log in memory from entries this device stored itself (already checked
   * once): only the chain rules are applied, entries out of chain are skipped. */
  static restore(room, entries) {
    const l = new Log(room);
    const sorted = [...entries].sort((a, b) => (a.author < b.author ? -1 : a.author > b.author ? 1 : a.seq - b.seq));
    for (const e of sorted) {
      if (e.room !== room || l.source.byId.has(e.id)) continue;
      const h = l.headOf.get(e.author);
      if (e.seq !== (h ? h.seq : 0) + 1 || (e.seq > 1 && h.id !== e.prev)) continue;
      l.append(e);
    }
    return l;
  }

  /** Whether the entry is held (a log in memory only: node tests). */
  has(id) {
    return this.source.byId.has(id);
  }

  /** Every entry in display order (a log in memory only: node tests). */
  entries() {
    const out = [];
    const runs = [...this.source.chains.values()].map((c) => ({ c, i: 0 }));
    while (runs.length) {
      let best = 0;
      for (let r = 1; r < runs.length; r++) if (compareEntries(runs[r].c[runs[r].i], runs[best].c[runs[best].i]) < 0) best = r;
      out.push(runs[best].c[runs[best].i++]);
      if (runs[best].i === runs[best].c.length) runs.splice(best, 1);
    }
    return out;
  }

  /** Takes an entry that follows its author's head (checked, or my own). The caller stores
   * it (the source of a stored room); a log in memory keeps it. */
  append(e) {
    this.headOf.set(e.author, { seq: e.seq, id: e.id });
    const k = `${e.author} ${e.seq}`;
    this.recent.delete(k);
    this.recent.set(k, e);
    if (this.recent.size > RECENT) this.recent.delete(this.recent.keys().next().value);
    if (this.source.append) this.source.append(e);
    this.size++;
  }

  /** Runs fn after every earlier queued call: adds to one log never interleave. */
  queue(fn) {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => {});
    return run;
  }

  /** Checks e against this room and its author's chain. Resolves true for a new entry
   * (not yet appended: call append once it is stored), false for one already held; throws
   * HistoryError for a refused one (a fork marks the author). */
  async check(e, now = Date.now()) {
    await checkEntry(e, this.room, now);
    return this.checkChain(e, await this.known([e]));
  }

  /** The id held at author and seq, if this log knows it without reading (known: from
   * this.known()). */
  idAt(author, seq, known = {}) {
    const k = `${author} ${seq}`;
    if (known[k] !== undefined) return known[k];
    const r = this.recent.get(k);
    if (r) return r.id;
    const h = this.headOf.get(author);
    if (h && h.seq === seq) return h.id;
    return this.source.idAt ? this.source.idAt(author, seq) : undefined;
  }

  /** The chain rules alone, for an entry that passed checkEntry (perhaps in a worker).
   * known: the ids held at the entry's seq and the one before (this.known(batch)). */
  checkChain(e, known = {}) {
    const h = this.headOf.get(e.author);
    const top = h ? h.seq : 0;
    if (e.seq <= top) {
      const held = this.idAt(e.author, e.seq, known);
      if (held === undefined || held === e.id) return false; // held (or not provably another)
      this.forkedAuthors.add(e.author);
      throw new HistoryError('fork', '', 'another entry is stored at this author and seq; keeping the first');
    }
    if (e.seq > top + 1) throw new HistoryError('gap', '', 'entries before this one are missing');
    if (e.seq > 1 && h.id !== e.prev) {
      throw new HistoryError('broken-chain', '', "prev is not the author's previous entry");
    }
    return true;
  }

  /** check then append. */
  async add(e, now = Date.now()) {
    if (!(await this.check(e, now))) return false;
    this.append(pick(e));
    return true;
  }

  forked(author) {
    return this.forkedAuthors.has(author);
  }

  /** The author's entry at seq, or undefined (read from the source). */
  async at(author, seq) {
    if (!Number.isSafeInteger(seq) || seq < 1) return undefined;
    const r = this.recent.get(`${author} ${seq}`);
    if (r) return r;
    const h = this.headOf.get(author);
    if (!h || seq > h.seq) return undefined;
    return this.source.at(author, seq);
  }

  /** What checkBatch and checkChain need to know for these entries: the ids held at each
   * entry's seq and the one before, as {"author seq": id} (a plain object a worker can
   * receive). */
  async known(entries) {
    const known = Object.create(null);
    const want = new Set();
    for (const e of entries) {
      if (e === null || typeof e !== 'object' || typeof e.author !== 'string' || !Number.isSafeInteger(e.seq)) continue;
      const h = this.headOf.get(e.author);
      for (const seq of [e.seq, e.seq - 1]) if (h && seq >= 1 && seq <= h.seq) want.add(`${e.author} ${seq}`);
    }
    await Promise.all([...want].map(async (k) => {
      const i = k.lastIndexOf(' ');
      const author = k.slice(0, i);
      const seq = Number(k.slice(i + 1));
      const id = this.idAt(author, seq); // the head or a recent entry: nothing to read
      if (id !== undefined) {
        known[k] = id;
        return;
      }
      const e = await this.at(author, seq);
      if (e) known[k] = e.id;
    }));
    return known;
  }

  /** Per author, the id of the last entry: sent beside the heads (PROTOCOL.md section 2). */
  tips() {
    const t = {};
    for (const [a, h] of this.headOf) t[a] = h.id;
    return t;
  }

  heads() {
    const o = {};
    for (const [a, h] of this.headOf) o[a] = h.seq;
    return o;
  }

  /** The author's last seq and id, or null. */
  head(author) {
    return this.headOf.get(author) || null;
  }

  /** The chain fields of the next entry by author. */
  next(author) {
    const h = this.head(author);
    return h ? { seq: h.seq + 1, prev: h.id } : { seq: 1, prev: '' };
  }

  /** What a peer with these heads lacks, oldest first, each author's entries in seq order
   * even where the author's clock went backwards (a merge by ts of the per-author runs),
   * read from the source SLICE entries of an author at a time: an async iterable. */
  async* missing(heads = {}) {
    const runs = [];
    for (const [a, h] of this.headOf) {
      const from = Math.max(Number.isSafeInteger(heads[a]) ? heads[a] : 0, 0);
      if (from < h.seq) runs.push({ a, end: h.seq, next: from, buf: [], i: 0 });
    }
    const fill = async (r) => {
      if (r.i < r.buf.length) return true;
      if (r.next >= r.end) return false;
      r.buf = await this.source.slice(r.a, r.next, Math.min(SLICE, r.end - r.next));
      for (let k = 0; k < r.buf.length; k++) {
        if (r.buf[k].seq !== r.next + k + 1) r.buf.length = k; // a hole: stop at it
      }
      // Entries appended but not stored yet (a peer's batch on its way to the disk).
      for (let e; r.buf.length < SLICE && (e = this.recent.get(`${r.a} ${r.next + r.buf.length + 1}`));) r.buf.push(e);
      r.i = 0;
      r.next += r.buf.length;
      if (!r.buf.length) r.next = r.end;
      return r.buf.length > 0;
    };
    const live = [];
    for (const r of runs) if (await fill(r)) live.push(r);
    while (live.length) {
      let best = 0;
      for (let k = 1; k < live.length; k++) {
        if (compareEntries(live[k].buf[live[k].i], live[best].buf[live[best].i]) < 0) best = k;
      }
      const r = live[best];
      yield r.buf[r.i++];
      if (!(await fill(r))) live.splice(best, 1);
    }
  }
}
