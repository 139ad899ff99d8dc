// The DataChannel protocol of docs/PROTOCOL.md section 2 for one room on one channel:
// hello with heads, each side sends what the other lacks in batches, acks once stored.
// Works on anything shaped like an RTCDataChannel (send, bufferedAmount,
// bufferedAmountLowThreshold, readyState, addEventListener), so node tests use a fake.

import { HistoryError, pick } from './history.js';
import { inlineVerifier } from './verifier.js';
import { checkControl, FileError, MAX_FRAME } from './files.js';

export const VERSION = 1;
export const MAX_MESSAGE = 262144;
export const BATCH_ENTRIES = 200;
export const BATCH_BYTES = 200 * 1024;
export const HIGH_WATER = 1 << 20;
export const LOW_WATER = 256 * 1024;
const MAX_HEADS = 10000; // in one message
// A hello states at most HEADS_PER_PAGE authors; more follow in heads messages, the last
// without more (docs/PROTOCOL.md section 2). A peer's pages count at most MAX_HELLO_HEADS
// authors in all; the rest are ignored (their entries are then sent again: duplicates).
export const HEADS_PER_PAGE = 1000;
export const MAX_HELLO_HEADS = 20000;
// Some WebRTC stacks lose the first message of a fresh channel (it arrives before the
// channel is wired up on the offerer's side). A side that has not heard the peer's hello
// asks again: after HELLO_RETRY_MS, or at once when other messages arrive first.
export const HELLO_RETRY_MS = 2000;
export const HELLO_AGAIN_MAX = 3;
// Limits of one session (docs/OPERATIONS.md, "Limits: the sync session"), as in net/rtc
// (the box's cap on new authors per session is not the page's: a phone joining a room
// wants every author's history at once).
// A peer that sent more entries than this that no honest peer relays (BAD_CODES) is cut.
export const MAX_BAD_ENTRIES = 64;
const BAD_CODES = new Set(['bad-signature', 'bad-id', 'bad-field', 'too-large', 'wrong-room']);
const MAX_REFUSED_IDS = 2000;
const MAX_ACK_OTHERS = 1 << 20; // an ack's n (net/rtc MaxAckOthers)

const rePeerId = /^[A-Za-z0-9_-]{1,64}$/;
const reHex32 = /^[0-9a-f]{32}$/;
const reControl = /\p{Cc}/u;
const reId = /^[0-9a-f]{64}$/;
const reCode = /^[a-z][a-z0-9-]{0,31}$/;

export class ProtocolError extends Error {
  constructor(msg) {
    super(`session: ${msg}`);
    this.name = 'ProtocolError';
  }
}

/** Parses and validates one message; throws ProtocolError. */
export function decodeMessage(data) {
  if (typeof data !== 'string') throw new ProtocolError('binary frame on the control channel');
  if (data.length > MAX_MESSAGE) throw new ProtocolError('message too large');
  let m;
  try {
    m = JSON.parse(data);
  } catch {
    throw new ProtocolError('not JSON');
  }
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new ProtocolError('not an object');
  switch (m.t) {
    case 'hello': {
      if (m.v !== VERSION) throw new ProtocolError(`version ${m.v}`);
      if (typeof m.room !== 'string' || !reHex32.test(m.room)) throw new ProtocolError('hello: bad room');
      const p = m.peer;
      if (!p || typeof p.id !== 'string' || !rePeerId.test(p.id)) throw new ProtocolError('hello: bad peer id');
      if (typeof p.name !== 'string' || p.name === '' || new TextEncoder().encode(p.name).length > 64 || reControl.test(p.name)) {
        throw new ProtocolError('hello: bad peer name');
      }
      const { heads, tips, more } = checkHeads(m, 'hello');
      if (m.again !== undefined && typeof m.again !== 'boolean') throw new ProtocolError('hello: bad again');
      if (m.now !== undefined && (!Number.isSafeInteger(m.now) || m.now < 0)) throw new ProtocolError('hello: bad now');
      return { t: 'hello', v: m.v, room: m.room, peer: { id: p.id, name: p.name }, heads, tips, again: m.again === true, more };
    }
    case 'heads':
      return { t: 'heads', ...checkHeads(m, 'heads') };
    case 'entries':
      if (!Array.isArray(m.entries) || m.entries.length > BATCH_ENTRIES) throw new ProtocolError('entries: want a list of at most 200');
      return { t: 'entries', entries: m.entries };
    case 'want':
    case 'nope':
    case 'got':
    case 'cancel':
      try {
        return checkControl(m);
      } catch (err) {
        throw new ProtocolError(err instanceof FileError ? err.message : String(err));
      }
    case 'ack':
      if (!Array.isArray(m.ids) || m.ids.length > 10 * BATCH_ENTRIES || !m.ids.every((x) => typeof x === 'string' && x.length === 64)) {
        throw new ProtocolError('ack: bad ids');
      }
      // n: entries stored besides ids, by authors other than us: a count (PROTOCOL.md §2).
      if (m.n !== undefined && !(Number.isInteger(m.n) && m.n >= 0 && m.n <= MAX_ACK_OTHERS)) throw new ProtocolError('ack: bad n');
      return { t: 'ack', ids: m.ids, n: m.n || 0 };
    case 'refused':
      // The peer refused entries of ours for a reason it names (a quota): the session goes on.
      if (typeof m.code !== 'string' || !reCode.test(m.code)) throw new ProtocolError('refused: bad code');
      if (!Array.isArray(m.ids) || m.ids.length > MAX_REFUSED_IDS || !m.ids.every((x) => typeof x === 'string' && reId.test(x))) {
        throw new ProtocolError('refused: bad ids');
      }
      return { t: 'refused', code: m.code, ids: m.ids };
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(String(m.t)).slice(0, 40)}`);
  }
}

/** The heads, tips and more of a hello or heads message; throws ProtocolError. */
function checkHeads(m, what) {
  const h = m.heads;
  if (h === null || typeof h !== 'object' || Array.isArray(h)) throw new ProtocolError(`${what}: bad heads`);
  const keys = Object.keys(h);
  if (keys.length > MAX_HEADS) throw new ProtocolError(`${what}: too many heads`);
  for (const k of keys) {
    if (!Number.isSafeInteger(h[k]) || h[k] < 0) throw new ProtocolError(`${what}: bad head`);
  }
  let tips = {};
  if (m.tips !== undefined && m.tips !== null) {
    if (typeof m.tips !== 'object' || Array.isArray(m.tips)) throw new ProtocolError(`${what}: bad tips`);
    for (const [k, id] of Object.entries(m.tips)) {
      if (!Object.hasOwn(h, k) || typeof id !== 'string' || !reId.test(id)) throw new ProtocolError(`${what}: bad tip`);
    }
    tips = m.tips;
  }
  if (m.more !== undefined && typeof m.more !== 'boolean') throw new ProtocolError(`${what}: bad more`);
  return { heads: h, tips, more: m.more === true };
}

/** A hello as messages: the first HEADS_PER_PAGE authors (sorted) in the hello, the rest
 * in heads messages; every one but the last says more. */
export function helloPages(hello) {
  const authors = Object.keys(hello.heads).sort();
  if (authors.length <= HEADS_PER_PAGE) return [hello];
  const pages = [];
  for (let i = 0; i < authors.length; i += HEADS_PER_PAGE) {
    const heads = {};
    const tips = {};
    for (const a of authors.slice(i, i + HEADS_PER_PAGE)) {
      heads[a] = hello.heads[a];
      if (Object.hasOwn(hello.tips || {}, a)) tips[a] = hello.tips[a];
    }
    const page = i === 0 ? { ...hello, heads, tips } : { t: 'heads', heads, tips };
    if (i + HEADS_PER_PAGE < authors.length) page.more = true;
    pages.push(page);
  }
  return pages;
}

/**
 * A sync session. options: channel, room, me {id, name}, log (history.Log), persist
 * (entries → void, throws when storage fails; called before anything is acked),
 * onEvent ({type: hello|added|acked|refused|peer-refused|dropped|error|closed, ...}):
 * refused is an entry of the peer's this side refused ({code, entry, author}); peer-refused
 * is the peer refusing entries of ours ({code, ids}: a quota of the box, e.g. 'author-rate').
 */
export class Session {
  constructor({ channel, room, me, log, persist, onEvent = () => {}, now = () => Date.now(), verify = inlineVerifier, helloRetryMs = HELLO_RETRY_MS }) {
    Object.assign(this, { channel, room, me, log, persist, onEvent, now, verify, helloRetryMs });
    this.peer = null;
    this.closed = false;
    this.out = Promise.resolve(log.ready); // a stored room's heads are read first
    this.stats = { sent: 0, received: 0, refused: 0, dropped: 0, acked: 0 };
    this.asked = 0; // hellos re-sent with again
    this.retry = null;
    this.bad = 0; // entries refused with a BAD_CODES code
    this.proofSent = new Set(); // 'author seq' of the entries sent as fork proofs
    this.logged = new Set(); // refusal codes the peer sent, logged once each
    channel.bufferedAmountLowThreshold = LOW_WATER;
    this.onMessage = (ev) => this.receive(ev.data);
    this.onClose = () => this.close();
    channel.addEventListener('message', this.onMessage);
    channel.addEventListener('close', this.onClose);
  }

  start() {
    this.sendHello(false);
    this.armRetry();
  }

  sendHello(again) {
    this.enqueue(() => {
      const m = { t: 'hello', v: VERSION, room: this.room, peer: this.me, heads: this.log.heads(), tips: this.log.tips(), now: this.now() };
      if (again) m.again = true;
      return helloPages(m).reduce((p, page) => p.then(() => this.send(page)), Promise.resolve());
    });
  }

  armRetry() {
    clearTimeout(this.retry);
    if (this.closed || this.peer || this.asked >= HELLO_AGAIN_MAX) return;
    this.retry = setTimeout(() => this.askAgain(), this.helloRetryMs);
    this.retry?.unref?.(); // node: a pending retry does not keep a test process alive
  }

  /** The peer's hello has not arrived: send ours again, asking for theirs. */
  askAgain() {
    if (this.closed || this.peer || this.asked >= HELLO_AGAIN_MAX) return;
    this.asked++;
    this.sendHello(true);
    this.armRetry();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retry);
    this.channel.removeEventListener('message', this.onMessage);
    this.channel.removeEventListener('close', this.onClose);
    try {
      this.channel.close();
    } catch {
      // already closed
    }
    this.onEvent({ type: 'closed' });
  }

  enqueue(fn) {
    this.out = this.out.then(() => (this.closed ? undefined : fn())).catch((err) => {
      this.onEvent({ type: 'error', error: err });
    });
    return this.out;
  }

  send(msg) {
    return this.sendRaw(JSON.stringify(msg));
  }

  /** Sends a string or a binary frame once the channel's buffer has room. */
  async sendRaw(s) {
    while (!this.closed && this.channel.bufferedAmount > HIGH_WATER) {
      await new Promise((resolve) => {
        const done = () => {
          this.channel.removeEventListener('bufferedamountlow', done);
          this.channel.removeEventListener('close', done);
          resolve();
        };
        this.channel.addEventListener('bufferedamountlow', done);
        this.channel.addEventListener('close', done);
      });
    }
    if (!this.closed && this.channel.readyState === 'connecting') {
      await new Promise((resolve) => {
        const done = () => {
          this.channel.removeEventListener('open', done);
          this.channel.removeEventListener('close', done);
          resolve();
        };
        this.channel.addEventListener('open', done);
        this.channel.addEventListener('close', done);
      });
    }
    if (this.closed || this.channel.readyState !== 'open') return;
    this.channel.send(s);
  }

  /** Sends entries (a list or an async iterable: Log.missing) in batches within
   * BATCH_ENTRIES and BATCH_BYTES. */
  async sendEntries(entries) {
    let batch = [];
    let size = 0;
    let count = 0;
    for await (const e of entries) {
      if (this.closed) return;
      count++;
      const n = JSON.stringify(e).length + 1;
      if (batch.length && (batch.length >= BATCH_ENTRIES || size + n > BATCH_BYTES)) {
        await this.send({ t: 'entries', entries: batch });
        batch = [];
        size = 0;
      }
      batch.push(e);
      size += n;
    }
    if (batch.length) await this.send({ t: 'entries', entries: batch });
    this.stats.sent += count;
  }

  /** Sends a newly written local entry, if the peer has said hello (else the sync on its
   * hello carries it). */
  publish(entry) {
    if (this.peer) this.enqueue(() => this.sendEntries([entry]));
  }

  receive(data) {
    if (typeof data !== 'string') {
      const size = data && data.byteLength;
      if (!this.peer || !this.files || !(data instanceof ArrayBuffer) || size > MAX_FRAME) {
        this.stats.dropped++;
        console.warn('chattorrent: dropped a binary frame', this.peer ? '' : 'before hello');
        if (!this.peer) this.askAgain();
        return;
      }
      this.files.onFrame(data);
      return;
    }
    let m;
    try {
      m = decodeMessage(data);
    } catch (err) {
      this.stats.dropped++;
      console.warn('chattorrent: dropped a message:', err.message);
      this.onEvent({ type: 'dropped', error: err });
      return;
    }
    if (m.t === 'hello') return this.onHelloPage(m);
    if (m.t === 'heads') return this.onHeads(m);
    if (!this.peer) {
      this.stats.dropped++;
      console.warn('chattorrent: dropped a message before hello; asking for it again');
      this.askAgain();
      return;
    }
    if (m.t === 'entries') {
      // Checked at once (the worker hashes this batch while earlier ones are chained and
      // stored); taken in order. The link into the stored chain is checkChain's, so a batch
      // checked before the one it follows was taken is as safe.
      const plain = m.entries.map((x) => (x !== null && typeof x === 'object' && !Array.isArray(x) ? pick(x) : x));
      const checked = this.check(plain);
      checked.catch(() => {});
      this.log.queue(() => this.onEntries(plain, checked));
    }
    else if (m.t === 'ack') {
      this.stats.acked += m.ids.length + m.n;
      this.onEvent({ type: 'acked', ids: m.ids });
    }
    else if (m.t === 'refused') this.onRefused(m);
    else if (this.files) this.files.onControl(m);
  }

  /** A hello that may be the first of several pages (more): the rest waits for the last
   * heads message. */
  onHelloPage(m) {
    this.paging = null;
    if (!m.more || m.room !== this.room) return this.onHello(m);
    const heads = Object.assign(Object.create(null), m.heads);
    const tips = Object.assign(Object.create(null), m.tips);
    this.paging = { ...m, heads, tips, n: Object.keys(heads).length };
  }

  onHeads(m) {
    const h = this.paging;
    if (!h) {
      this.stats.dropped++;
      console.warn('chattorrent: dropped heads without a hello');
      if (!this.peer) this.askAgain();
      return;
    }
    for (const [a, seq] of Object.entries(m.heads)) {
      if (h.n >= MAX_HELLO_HEADS) break;
      if (Object.hasOwn(h.heads, a)) continue;
      h.heads[a] = seq;
      h.n++;
      if (Object.hasOwn(m.tips, a)) h.tips[a] = m.tips[a];
    }
    if (m.more) return;
    this.paging = null;
    this.onHello({ ...h, more: false });
  }

  onHello(m) {
    if (m.room !== this.room) {
      this.onEvent({ type: 'error', error: new ProtocolError('the peer is in another room') });
      this.close();
      return;
    }
    if (this.peer) {
      if (!m.again || m.peer.id !== this.peer.id) {
        this.stats.dropped++;
        console.warn('chattorrent: dropped a second hello');
        return;
      }
      // The peer missed our hello (and so maybe what we sent after it): answer again and
      // send what it lacks by the heads it states now.
      this.sendHello(false);
      this.enqueue(() => this.sendEntries(this.log.missing(m.heads)));
      return;
    }
    if (m.again) this.sendHello(false);
    this.peer = m.peer;
    clearTimeout(this.retry);
    this.onEvent({ type: 'hello', peer: m.peer });
    // Where the peer says its entry at its head differs from ours at that seq, its word is
    // no proof: nothing is marked. Ours is sent instead; the peer verifies it and, holding
    // another signed entry there, refuses it as a fork, marks the author and sends its own
    // back (onEntries), with which this side marks the author too.
    this.enqueue(async () => {
      const forks = [];
      for (const [author, id] of Object.entries(m.tips)) {
        if (this.log.idAt(author, m.heads[author]) === id) continue;
        const mine = await this.log.at(author, m.heads[author]);
        if (mine && mine.id !== id && this.claimProof(mine)) forks.push(mine);
      }
      if (forks.length) await this.sendEntries(forks);
    });
    this.enqueue(() => this.sendEntries(this.log.missing(m.heads)));
  }

  /** Whether this side's entry is yet to be sent as a fork proof; records that it is (once
   * per author and seq, so two sides never trade theirs forever). */
  claimProof(mine) {
    const k = `${mine.author} ${mine.seq}`;
    if (this.proofSent.has(k)) return false;
    this.proofSent.add(k);
    return true;
  }

  onRefused(m) {
    if (!this.logged.has(m.code)) {
      this.logged.add(m.code);
      console.warn(`chattorrent: the peer refused entries of ours (${m.code}); logged once per code`);
    }
    this.onEvent({ type: 'peer-refused', code: m.code, ids: m.ids });
  }

  /** Verifies a batch (history.checkBatch: one signature per run of an author's linked
   * entries) against what the log holds now: {known, results}. */
  async check(plain) {
    const known = await this.log.known(plain);
    return { known, results: await this.verify(plain, this.room, this.now(), known) };
  }

  /** Takes a batch checked by check(), in the order batches came. */
  async onEntries(plain, checked) {
    if (this.closed || this.bad > MAX_BAD_ENTRIES) return;
    const fresh = [];
    const stored = []; // ids of the peer's own entries stored
    let others = 0; // and how many of other authors
    const proofs = [];
    const { known, results } = await checked;
    for (const i of seqOrder(plain)) {
      const e = plain[i];
      try {
        if (results[i]) throw Object.assign(new HistoryError(results[i].code, results[i].field, results[i].message), { by: results[i].by || '' });
        if (this.log.checkChain(e, known)) {
          this.log.append(e);
          fresh.push(e);
        }
        // Only the author marks an entry delivered: the peer's own are acked by id, the
        // others by count (PROTOCOL.md §2).
        if (e.author === this.peer.id) stored.push(e.id);
        else others++;
      } catch (err) {
        this.stats.refused++;
        const code = err instanceof HistoryError ? err.code : 'bad-field';
        if (BAD_CODES.has(code) && !err.by) this.bad++; // one refused only with its run is not counted
        if (code === 'fork') {
          // The proof the other way: our own entry at that seq, once.
          const mine = await this.log.at(e.author, e.seq);
          if (mine && mine.id !== e.id && this.claimProof(mine)) proofs.push(mine);
        }
        console.warn(`chattorrent: refused an entry (${code}):`, err.message);
        this.onEvent({ type: 'refused', code, entry: e, author: e && e.author });
      }
    }
    if (this.bad > MAX_BAD_ENTRIES) {
      this.onEvent({ type: 'error', error: new ProtocolError(`the peer sent ${this.bad} forged or malformed entries, at most ${MAX_BAD_ENTRIES}: session ended`) });
      this.close();
      return;
    }
    if (proofs.length) this.enqueue(() => this.sendEntries(proofs));
    const ack = () => {
      if (stored.length || others) this.enqueue(() => this.send(others ? { t: 'ack', ids: stored, n: others } : { t: 'ack', ids: stored }));
    };
    if (!fresh.length) {
      ack();
      return;
    }
    this.stats.received += fresh.length;
    this.onEvent({ type: 'added', entries: fresh });
    // Stored before the peer hears they were; the next batch is checked meanwhile (the
    // writes keep their order: IndexedDB runs them one after another).
    Promise.resolve().then(() => this.persist(fresh)).then(ack, (err) => {
      this.onEvent({ type: 'error', error: err });
      this.close();
    });
  }
}

/** The order to take a batch in: each author's entries in seq order, in the slots that
 * author holds in the batch (as net/rtc's seqOrder), so a batch sent out of order chains. */
export function seqOrder(entries) {
  const slots = new Map();
  entries.forEach((e, i) => {
    const a = e !== null && typeof e === 'object' && Number.isSafeInteger(e.seq) ? e.author : undefined;
    if (a === undefined) return;
    const l = slots.get(a);
    if (l) l.push(i);
    else slots.set(a, [i]);
  });
  const order = entries.map((_, i) => i);
  for (const idx of slots.values()) {
    const sorted = [...idx].sort((x, y) => entries[x].seq - entries[y].seq || x - y);
    idx.forEach((slot, k) => { order[slot] = sorted[k]; });
  }
  return order;
}
