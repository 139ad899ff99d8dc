// The DataChannel protocol (docs/PROTOCOL.md section 2) between two Sessions over an
// in-memory channel pair, with real signed entries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Log, signEntry, toB64url, computeId } from '../static/js/history.js';
import { Session, decodeMessage, ProtocolError, MAX_MESSAGE, BATCH_ENTRIES, MAX_BAD_ENTRIES, HEADS_PER_PAGE, helloPages } from '../static/js/session.js';

const ROOM = 'ab'.repeat(16);

class FakeChannel extends EventTarget {
  constructor() {
    super();
    this.readyState = 'open';
    this.bufferedAmount = 0;
    this.bufferedAmountLowThreshold = 0;
    this.sent = [];
  }
  send(s) {
    this.sent.push(s);
    if (this.lose > 0) {
      this.lose--; // a WebRTC stack losing a fresh channel's first message
      return;
    }
    const peer = this.peer;
    queueMicrotask(() => peer.dispatchEvent(Object.assign(new Event('message'), { data: s })));
  }
  close() {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    this.dispatchEvent(new Event('close'));
    this.peer.close();
  }
}

function pair() {
  const a = new FakeChannel();
  const b = new FakeChannel();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

async function identity() {
  const kp = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const author = toB64url(new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey)));
  return { author, privateKey: kp.privateKey };
}

async function write(log, me, name, body, ts = Date.now()) {
  const n = log.next(me.author);
  const e = await signEntry({ room: ROOM, name, seq: n.seq, prev: n.prev, ts, kind: 'text', body }, me);
  assert.equal(await log.add(e), true);
  return e;
}

function session(channel, log, me, name, events, stored, more = {}) {
  return new Session({
    channel, room: ROOM, me: { id: me.author, name }, log,
    persist: (es) => stored.push(...es),
    onEvent: (ev) => events.push(ev),
    ...more,
  });
}

const hellos = (ch) => ch.sent.map((s) => JSON.parse(s)).filter((m) => m.t === 'hello');

const settle = async (pred) => {
  for (let i = 0; i < 2000 && !pred(); i++) await new Promise((r) => setTimeout(r, 1));
  assert.ok(pred(), 'condition not reached');
};

test('histories written apart end equal, and only what is lacking crosses', async () => {
  const [ca, cb] = pair();
  const ana = await identity();
  const bruno = await identity();
  const la = new Log(ROOM);
  const lb = new Log(ROOM);
  const anaEntries = [];
  for (let i = 0; i < 30; i++) anaEntries.push(await write(la, ana, 'Ana', `a${i}`, 1000 + i));
  for (const e of anaEntries.slice(0, 10)) await lb.add(e); // B already has A's first 10
  for (let i = 0; i < 5; i++) await write(lb, bruno, 'Bruno', `b${i}`, 2000 + i);
  const ea = [], eb = [], sa = [], sb = [];
  const a = session(ca, la, ana, 'Ana', ea, sa);
  const b = session(cb, lb, bruno, 'Bruno', eb, sb);
  a.start();
  b.start();
  await settle(() => la.size === 35 && lb.size === 35);
  assert.deepEqual(la.entries().map((e) => e.id), lb.entries().map((e) => e.id));
  assert.equal(sb.length, 20, 'B stored exactly the 20 it lacked');
  assert.equal(sa.length, 5);
  assert.equal(a.stats.sent, 20);
  assert.equal(b.stats.sent, 5);
  assert.equal(eb.find((e) => e.type === 'hello').peer.name, 'Ana');
  await settle(() => ea.some((e) => e.type === 'acked'));
  const acked = ea.filter((e) => e.type === 'acked').flatMap((e) => e.ids);
  assert.ok(anaEntries.slice(10).every((e) => acked.includes(e.id)), 'B acked what it stored');
  // Live: a new entry is published and acked.
  const live = await write(la, ana, 'Ana', 'live');
  a.publish(live);
  await settle(() => lb.has(live.id));
});

test('an ack lists the peer\'s own entries by id and counts the others (n)', async () => {
  const [ca, cb] = pair();
  const ana = await identity();
  const bruno = await identity();
  const la = new Log(ROOM);
  const lb = new Log(ROOM);
  for (let i = 0; i < 5; i++) await write(la, ana, 'Ana', `a${i}`, 1000 + i);
  for (let i = 0; i < 7; i++) await write(la, bruno, 'Bruno', `b${i}`, 2000 + i); // relayed by Ana
  const ea = [], eb = [];
  const a = session(ca, la, ana, 'Ana', ea, []);
  const b = session(cb, lb, await identity(), 'Box', eb, []);
  a.start();
  b.start();
  await settle(() => lb.size === 12 && a.stats.acked === 12);
  const acks = sentOf(cb, 'ack');
  assert.deepEqual(acks.flatMap((m) => m.ids).sort(), la.entries().filter((e) => e.author === ana.author).map((e) => e.id).sort());
  assert.equal(acks.reduce((n, m) => n + (m.n || 0), 0), 7);
  a.close();
  b.close();
});

test('bad frames and refused entries are dropped; the session goes on', async () => {
  const [ca, cb] = pair();
  const ana = await identity();
  const la = new Log(ROOM);
  const lb = new Log(ROOM);
  const eb = [], sb = [];
  const b = session(cb, lb, ana, 'B', eb, sb);
  b.start();
  ca.send(JSON.stringify({ t: 'hello', v: 1, room: ROOM, peer: { id: 'x', name: 'Mallory' }, heads: {} }));
  const good = await write(la, ana, 'Ana', 'good');
  const tampered = { ...good, body: 'evil' };
  for (const frame of ['not json', '[]', '{"t":"nope"}', JSON.stringify({ t: 'entries', entries: 'x' }), 'x'.repeat(MAX_MESSAGE + 1),
    JSON.stringify({ t: 'entries', entries: [tampered, { junk: true }, null] })]) {
    ca.send(frame);
  }
  ca.send(JSON.stringify({ t: 'entries', entries: [good] }));
  await settle(() => lb.has(good.id));
  assert.equal(lb.size, 1);
  assert.equal(b.stats.refused, 3);
  assert.ok(b.stats.dropped >= 5);
  assert.ok(eb.some((e) => e.type === 'refused' && e.code === 'bad-id'));
  assert.equal(b.closed, false);
});

test('a hello for another room ends the session', async () => {
  const [ca, cb] = pair();
  const me = await identity();
  const eb = [];
  const b = session(cb, new Log(ROOM), me, 'B', eb, []);
  b.start();
  ca.send(JSON.stringify({ t: 'hello', v: 1, room: 'cd'.repeat(16), peer: { id: 'x', name: 'X' }, heads: {} }));
  await settle(() => b.closed);
  assert.ok(eb.some((e) => e.type === 'error'));
});

test('decodeMessage validates every field', () => {
  const ok = { t: 'hello', v: 1, room: ROOM, peer: { id: 'abc', name: 'Ana' }, heads: { abc: 3 } };
  assert.equal(decodeMessage(JSON.stringify(ok)).peer.name, 'Ana');
  for (const bad of [
    { ...ok, v: 2 }, { ...ok, room: 'x' }, { ...ok, peer: { id: 'a b', name: 'A' } }, { ...ok, peer: { id: 'a', name: '' } },
    { ...ok, heads: { a: -1 } }, { ...ok, heads: { a: 1.5 } }, { ...ok, heads: [] },
    { t: 'entries', entries: new Array(BATCH_ENTRIES + 1).fill({}) }, { t: 'ack', ids: ['short'] },
  ]) {
    assert.throws(() => decodeMessage(JSON.stringify(bad)), ProtocolError, JSON.stringify(bad).slice(0, 80));
  }
  assert.throws(() => decodeMessage(new ArrayBuffer(4)), ProtocolError);
});

test('a large history goes in batches within the limits', async () => {
  const [ca, cb] = pair();
  const ana = await identity();
  const la = new Log(ROOM);
  for (let i = 0; i < 450; i++) await write(la, ana, 'Ana', 'x'.repeat(600), 1000 + i);
  const lb = new Log(ROOM);
  const a = session(ca, la, ana, 'Ana', [], []);
  const b = session(cb, lb, await identity(), 'B', [], []);
  a.start();
  b.start();
  await settle(() => lb.size === 450);
  const batches = ca.sent.map((s) => JSON.parse(s)).filter((m) => m.t === 'entries');
  assert.ok(batches.length >= 3);
  for (const m of batches) assert.ok(m.entries.length <= BATCH_ENTRIES);
  for (const s of ca.sent) assert.ok(s.length <= MAX_MESSAGE);
});

test('the same author with different entries at one seq: both sides mark it forked and keep their own', async () => {
  const [ca, cb] = pair();
  const ana = await identity();
  const la = new Log(ROOM);
  const common = [];
  for (let i = 0; i < 3; i++) common.push(await write(la, ana, 'Ana', `c${i}`, 1000 + i));
  const lb = new Log(ROOM);
  for (const e of common) await lb.add(e);
  const fa = await write(la, ana, 'Ana', 'device one', 2000);
  const fb = await write(lb, ana, 'Ana', 'device two', 2001);
  const ea = [], eb = [];
  const a = session(ca, la, ana, 'A', ea, []);
  const b = session(cb, lb, await identity(), 'B', eb, []);
  a.start();
  b.start();
  await settle(() => la.forked(ana.author) && lb.forked(ana.author));
  assert.ok(la.has(fa.id) && !la.has(fb.id));
  assert.ok(lb.has(fb.id) && !lb.has(fa.id));
  assert.equal(a.closed || b.closed, false);
});

test('a lost first hello is asked for again when entries arrive before it, and the sync completes', async () => {
  const [ca, cb] = pair();
  const ana = await identity();
  const bruno = await identity();
  const la = new Log(ROOM);
  const lb = new Log(ROOM);
  for (let i = 0; i < 5; i++) await write(la, ana, 'Ana', `a${i}`, 1000 + i);
  for (let i = 0; i < 3; i++) await write(lb, bruno, 'Bruno', `b${i}`, 2000 + i);
  cb.lose = 1; // B's hello never reaches A
  const ea = [];
  const a = session(ca, la, ana, 'Ana', ea, [], { helloRetryMs: 60000 });
  const b = session(cb, lb, bruno, 'Bruno', [], [], { helloRetryMs: 60000 });
  a.start();
  b.start();
  await settle(() => la.size === 8 && lb.size === 8);
  assert.ok(ea.some((e) => e.type === 'hello'));
  assert.deepEqual(hellos(ca).map((h) => h.again === true), [false, true], 'A asked once');
  assert.deepEqual(hellos(cb).map((h) => h.again === true), [false, false], 'B answered once, without asking back');
  a.close();
});

test('a lost first hello with nothing else to carry it is asked for again after the retry time', async () => {
  const [ca, cb] = pair();
  const la = new Log(ROOM);
  const lb = new Log(ROOM);
  const ana = await identity();
  await write(la, ana, 'Ana', 'only A has this');
  cb.lose = 1;
  const a = session(ca, la, ana, 'Ana', [], [], { helloRetryMs: 20 });
  const b = session(cb, lb, await identity(), 'B', [], [], { helloRetryMs: 20 });
  a.start();
  b.start();
  await settle(() => lb.size === 1 && a.peer !== null && b.peer !== null);
  assert.ok(hellos(ca).length <= 1 + 3, 'asks are bounded');
  a.close();
});

test('hellos are bounded when the peer never answers, and a repeated hello without again is dropped', async () => {
  const [ca, cb] = pair();
  cb.lose = Infinity; // nothing from B ever arrives
  const a = session(ca, new Log(ROOM), await identity(), 'Ana', [], [], { helloRetryMs: 5 });
  session(cb, new Log(ROOM), await identity(), 'B', [], [], { helloRetryMs: 5 }).start();
  a.start();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(hellos(ca).length, 1 + 3);
  assert.ok(hellos(ca).slice(1).every((h) => h.again === true));
  a.close();

  const [cc, cd] = pair();
  const c = session(cc, new Log(ROOM), await identity(), 'C', [], []);
  c.start();
  const hi = { t: 'hello', v: 1, room: ROOM, peer: { id: 'x', name: 'X' }, heads: {} };
  cd.send(JSON.stringify(hi));
  cd.send(JSON.stringify(hi));
  await settle(() => c.peer !== null && c.stats.dropped === 1);
  assert.equal(hellos(cc).length, 1, 'a plain second hello is not answered');
  cd.send(JSON.stringify({ ...hi, again: true }));
  await settle(() => hellos(cc).length === 2);
  assert.equal(hellos(cc)[1].again, undefined, 'an answer never asks back');
  c.close();
});

test('received entries are acknowledged only once stored; a failed store closes the session without an ack', async () => {
  for (const fails of [false, true]) {
    const [ca, cb] = pair();
    const ana = await identity();
    const bruno = await identity();
    const la = new Log(ROOM);
    const lb = new Log(ROOM);
    for (let i = 0; i < 3; i++) await write(la, ana, 'Ana', `a${i}`, 1000 + i);
    let release;
    const gate = new Promise((r) => { release = r; });
    const ea = [], eb = [], sa = [], sb = [];
    const a = session(ca, la, ana, 'Ana', ea, sa);
    const b = session(cb, lb, bruno, 'Bruno', eb, sb, {
      persist: async (es) => {
        await gate; // a slow disk
        if (fails) throw Object.assign(new Error('full'), { code: 'storage-full' });
        sb.push(...es);
      },
    });
    a.start();
    b.start();
    await settle(() => lb.size === 3);
    await new Promise((r) => setTimeout(r, 20));
    const acks = () => cb.sent.map((s) => JSON.parse(s)).filter((m) => m.t === 'ack');
    assert.equal(acks().length, 0, 'no ack before the entries are stored');
    release();
    if (fails) {
      await settle(() => eb.some((e) => e.type === 'error') && b.closed);
      assert.equal(acks().length, 0);
      assert.equal(eb.find((e) => e.type === 'error').error.code, 'storage-full');
    } else {
      await settle(() => acks().length > 0);
      assert.deepEqual(acks().flatMap((m) => m.ids).sort(), la.entries().map((e) => e.id).sort());
      assert.equal(sb.length, 3);
    }
  }
});

// ---- session limits and refusals (docs/OPERATIONS.md, "Limits: the sync session") ----

const peerHello = (heads = {}, tips) => JSON.stringify({ t: 'hello', v: 1, room: ROOM, peer: { id: 'm', name: 'Mallory' }, heads, ...(tips ? { tips } : {}) });
const sentOf = (ch, t) => ch.sent.map((s) => JSON.parse(s)).filter((m) => m.t === t);

test('the shared message vectors (net/rtc/testdata/messages.json) decode as in Go', async () => {
  const { readFile } = await import('node:fs/promises');
  const v = JSON.parse(await readFile(new URL('../../net/rtc/testdata/messages.json', import.meta.url), 'utf8'));
  assert.ok(v.refused.valid.length && v.refused.invalid.length && v.heads.valid.length && v.heads.invalid.length);
  for (const c of v.refused.valid) assert.deepEqual(decodeMessage(c.frame), { t: 'refused', code: c.code, ids: c.ids }, c.frame);
  for (const c of v.heads.valid) {
    const m = decodeMessage(c.frame);
    assert.deepEqual({ heads: m.heads, tips: m.tips, more: m.more }, { heads: c.heads, tips: c.tips, more: c.more }, c.frame);
  }
  assert.ok(v.ack.valid.length && v.ack.invalid.length);
  for (const c of v.ack.valid) assert.deepEqual(decodeMessage(c.frame), { t: 'ack', ids: c.ids, n: c.n }, c.frame);
  for (const f of [...v.refused.invalid, ...v.heads.invalid, ...v.ack.invalid]) assert.throws(() => decodeMessage(f), ProtocolError, f.slice(0, 80));
  const many = JSON.stringify({ t: 'refused', code: 'x', ids: new Array(2001).fill('ab'.repeat(32)) });
  assert.throws(() => decodeMessage(many), ProtocolError);
});

test('a refused message from the peer is reported as peer-refused and the session goes on', async () => {
  const [ca, cb] = pair();
  const ana = await identity();
  const la = new Log(ROOM);
  const mine = await write(la, ana, 'Ana', 'refused by the box');
  const ea = [];
  const a = session(ca, la, ana, 'Ana', ea, []);
  a.start();
  cb.send(peerHello());
  await settle(() => sentOf(ca, 'entries').length === 1);
  cb.send(JSON.stringify({ t: 'refused', code: 'author-rate', ids: [mine.id] }));
  cb.send(JSON.stringify({ t: 'refused', code: 'author-rate', ids: [mine.id] }));
  await settle(() => ea.filter((e) => e.type === 'peer-refused').length === 2);
  assert.deepEqual(ea.find((e) => e.type === 'peer-refused'), { type: 'peer-refused', code: 'author-rate', ids: [mine.id] });
  assert.equal(a.closed, false);
  const live = await write(la, ana, 'Ana', 'still sent');
  a.publish(live);
  await settle(() => sentOf(ca, 'entries').some((m) => m.entries.some((e) => e.id === live.id)));
  a.close();
});

test('a hello whose tip differs marks nothing; a second signed entry does, and is answered with ours once', async () => {
  const [ca, cb] = pair();
  const ana = await identity();
  const la = new Log(ROOM);
  const mine = [];
  for (let i = 0; i < 3; i++) mine.push(await write(la, ana, 'Ana', `m${i}`, 1000 + i));
  const ea = [];
  const a = session(ca, la, ana, 'A', ea, []);
  a.start();
  cb.send(peerHello({ [ana.author]: 3 }, { [ana.author]: 'e'.repeat(64) }));
  await settle(() => sentOf(ca, 'entries').length === 1);
  assert.deepEqual(sentOf(ca, 'entries')[0].entries.map((e) => e.id), [mine[2].id], 'our entry at that seq, as proof');
  assert.equal(la.forked(ana.author), false, 'not on the peer\'s word');
  assert.ok(!ea.some((e) => e.type === 'refused'));
  // The proof: the same key signed another entry at seq 2.
  const other = await signEntry({ room: ROOM, name: 'Ana', seq: 2, prev: mine[0].id, ts: 5000, kind: 'text', body: 'other device' }, ana);
  cb.send(JSON.stringify({ t: 'entries', entries: [other] }));
  await settle(() => la.forked(ana.author) && sentOf(ca, 'entries').length === 2);
  assert.deepEqual(sentOf(ca, 'entries')[1].entries.map((e) => e.id), [mine[1].id]);
  // Again, and a forged one: no more proofs, nothing new.
  cb.send(JSON.stringify({ t: 'entries', entries: [other, { ...other, body: 'forged' }] }));
  await settle(() => ea.filter((e) => e.type === 'refused').length === 3);
  assert.equal(sentOf(ca, 'entries').length, 2);
  assert.equal(a.closed, false);
  a.close();
});

test('a peer sending more than MAX_BAD_ENTRIES forged entries is cut', async () => {
  const [ca, cb] = pair();
  const ana = await identity();
  const ea = [];
  const a = session(ca, new Log(ROOM), await identity(), 'A', ea, []);
  a.start();
  cb.send(peerHello());
  const good = await signEntry({ room: ROOM, name: 'Ana', seq: 1, prev: '', ts: 1000, kind: 'text', body: 'x' }, ana);
  const forged = [];
  for (let i = 0; i < MAX_BAD_ENTRIES; i++) forged.push({ ...good, body: `forged ${i}` });
  cb.send(JSON.stringify({ t: 'entries', entries: forged }));
  await settle(() => ea.filter((e) => e.type === 'refused').length === MAX_BAD_ENTRIES);
  assert.equal(a.closed, false, 'up to the budget the session goes on');
  cb.send(JSON.stringify({ t: 'entries', entries: [{ ...good, body: 'one more' }] }));
  await settle(() => a.closed);
  assert.match(ea.find((e) => e.type === 'error').error.message, /forged or malformed/);
});

test('a room with more authors than one hello can state: the heads go in pages and both sides hear them all', async () => {
  const n = 2 * HEADS_PER_PAGE + 500; // one hello would be ~440 KB, over MAX_MESSAGE
  const la = new Log(ROOM);
  const lb = new Log(ROOM);
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  for (let i = 0; i < n; i++) {
    // Entries never sent (both hold them): only their chain fields matter here.
    const e = { room: ROOM, author: toB64url(crypto.getRandomValues(new Uint8Array(32))), name: `m${i}`, seq: 1, prev: '', ts: 1000 + i,
      kind: 'text', body: 'hi', sig: 'A'.repeat(86), id: hex(crypto.getRandomValues(new Uint8Array(32))) };
    la.append(e);
    lb.append(e);
  }
  const bruno = await identity();
  const only = await write(lb, bruno, 'Bruno', 'the one A lacks');
  const hello = { t: 'hello', v: 1, room: ROOM, peer: { id: 'a', name: 'A' }, heads: la.heads(), tips: la.tips() };
  assert.ok(JSON.stringify(hello).length > MAX_MESSAGE);
  const pages = helloPages(hello);
  assert.equal(pages.length, 3);
  assert.deepEqual(pages.map((p) => [p.t, p.more === true]), [['hello', true], ['heads', true], ['heads', false]]);
  for (const p of pages) assert.ok(JSON.stringify(p).length <= MAX_MESSAGE);
  assert.deepEqual(decodeMessage(JSON.stringify(pages[1])).t, 'heads');

  const [ca, cb] = pair();
  const ea = [], eb = [], sa = [], sb = [];
  const a = session(ca, la, await identity(), 'A', ea, sa);
  const b = session(cb, lb, bruno, 'B', eb, sb);
  a.start();
  b.start();
  await settle(() => la.has(only.id) && a.peer && b.peer);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(sentOf(ca, 'heads').length, 2);
  assert.deepEqual(sentOf(cb, 'entries').flatMap((m) => m.entries).map((e) => e.id), [only.id], 'B sent only what A lacked');
  assert.equal(sentOf(ca, 'entries').length, 0, 'A sent nothing: B holds it all');
  assert.equal(a.stats.dropped + b.stats.dropped, 0);
  for (const s of [...ca.sent, ...cb.sent]) assert.ok(s.length <= MAX_MESSAGE);
  a.close();
});

test('heads without a hello are dropped; a paged hello from Go decodes page by page', () => {
  const [ca, cb] = pair();
  const ea = [];
  const a = new Session({ channel: ca, room: ROOM, me: { id: 'a', name: 'A' }, log: new Log(ROOM), persist: () => {}, onEvent: (e) => ea.push(e) });
  cb.send(JSON.stringify({ t: 'heads', heads: {} }));
  return settle(() => a.stats.dropped === 1).then(() => {
    assert.equal(a.peer, null);
    assert.throws(() => decodeMessage(JSON.stringify({ t: 'heads', heads: {}, more: 'yes' })), ProtocolError);
    assert.throws(() => decodeMessage(JSON.stringify({ t: 'heads', heads: { a: 1 }, tips: { b: 'e'.repeat(64) } })), ProtocolError);
    a.close();
  });
});

test('a batch with one forged link is refused for that run only, counted once, and the session goes on', async () => {
  const [ca, cb] = pair();
  const ana = await identity();
  const bruno = await identity();
  const ea = [];
  const stored = [];
  const la = new Log(ROOM);
  const a = session(ca, la, await identity(), 'A', ea, stored);
  a.start();
  cb.send(peerHello());
  const chain = async (me, name, n) => {
    const out = [];
    for (let i = 1; i <= n; i++) {
      out.push(await signEntry({ room: ROOM, name, seq: i, prev: i > 1 ? out[i - 2].id : '', ts: 1000 + i, kind: 'text', body: `${name} ${i}` }, me));
    }
    return out;
  };
  const run = await chain(ana, 'Ana', 40);
  const other = await chain(bruno, 'Bruno', 5);
  const forged = { ...run[20], body: 'not what Ana wrote' }; // id recomputed, signature kept
  forged.id = await computeId(forged);
  const batch = [...run.slice(0, 20), forged, ...run.slice(21), ...other].reverse(); // out of order too
  cb.send(JSON.stringify({ t: 'entries', entries: batch }));
  await settle(() => ea.filter((e) => e.type === 'refused').length === run.length && la.size === other.length);
  assert.ok(ea.filter((e) => e.type === 'refused').every((e) => e.code === 'broken-chain'));
  assert.equal(a.bad, 0, 'a broken link is not a bad entry (an honest peer after a fork sends one too)');
  // A bad signature on the last entry of a long run: refused whole, counted once.
  const last = { ...run[39], sig: run[38].sig };
  last.id = await computeId(last);
  cb.send(JSON.stringify({ t: 'entries', entries: [...run.slice(0, 39), last] }));
  await settle(() => ea.filter((e) => e.type === 'refused' && e.code === 'bad-signature').length === run.length);
  assert.equal(a.bad, 1);
  cb.send(JSON.stringify({ t: 'entries', entries: run }));
  await settle(() => la.size === other.length + run.length);
  assert.equal(a.closed, false);
  a.close();
});
