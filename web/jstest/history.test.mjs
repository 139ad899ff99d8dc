// Replays store/history/testdata/vectors.json (written by the Go tests) against
// web/static/js/history.js: both implementations must agree byte for byte and code for code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  Log, HistoryError, checkBatch, checkEntry, computeId, fingerprint, signEntry, signingBytes, idBytes,
  toHex, toB64url, fromB64url,
} from '../static/js/history.js';

const v = JSON.parse(readFileSync(new URL('../../store/history/testdata/vectors.json', import.meta.url)));

async function identityFromSeed(seedHex, pubB64) {
  const d = toB64url(Buffer.from(seedHex, 'hex'));
  const privateKey = await crypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', d, x: pubB64 }, { name: 'Ed25519' }, false, ['sign']);
  return { author: pubB64, privateKey };
}

function fullLog() {
  const l = new Log(v.room);
  return l;
}

test('encodings match Go byte for byte', async () => {
  for (const enc of v.encodings) {
    assert.equal(toHex(signingBytes(enc.entry)), enc.signing_bytes);
    assert.equal(toHex(idBytes(enc.entry)), enc.id_bytes);
    assert.equal(await computeId(enc.entry), enc.entry.id);
  }
});

test('signing with the same key gives the same entry (Ed25519 is deterministic)', async () => {
  for (const enc of v.encodings) {
    const key = v.keys.find((k) => k.public === enc.entry.author);
    const me = await identityFromSeed(key.seed, key.public);
    const { sig, id, ...unsigned } = enc.entry;
    const signed = await signEntry(unsigned, me);
    assert.equal(signed.sig, sig);
    assert.equal(signed.id, id);
  }
});

test('fingerprints', async () => {
  for (const k of v.keys) assert.equal(await fingerprint(k.public), k.fingerprint);
  assert.equal(await fingerprint('nope'), '????-????');
});

test('base64url is strict', () => {
  assert.equal(fromB64url('!!'), null);
  assert.equal(fromB64url('a'), null);
  assert.deepEqual(fromB64url(toB64url(new Uint8Array([1, 2, 3]))), new Uint8Array([1, 2, 3]));
});

for (const c of v.cases) {
  test(`case: ${c.name}`, async () => {
    const l = fullLog();
    for (const e of v.log.slice(0, c.prior)) assert.equal(await l.add(e, v.now), true);
    const before = l.size;
    if (c.code === '' || c.code === undefined) {
      assert.equal(await l.add(c.entry, v.now), true);
    } else if (c.code === 'duplicate') {
      assert.equal(await l.add(c.entry, v.now), false);
      assert.equal(l.size, before);
    } else {
      await assert.rejects(l.add(c.entry, v.now), (err) => {
        assert.ok(err instanceof HistoryError, String(err));
        assert.equal(err.code, c.code, err.message);
        assert.equal(err.field, c.field || '', err.message);
        return true;
      });
      assert.equal(l.size, before, 'a refused entry changed the log');
    }
  });
}

test('a fork keeps the first entry and marks the author', async () => {
  const l = fullLog();
  for (const e of v.log) await l.add(e, v.now);
  const kept = l.head(v.fork.author).id;
  await assert.rejects(l.add(v.fork.entry, v.now), { code: 'fork' });
  assert.ok(l.forked(v.fork.author));
  assert.equal(l.head(v.fork.author).id, kept);
});

test('sync: what a peer with these heads lacks, in order', async () => {
  const l = fullLog();
  for (const e of v.log) await l.add(e, v.now);
  for (const s of v.sync) {
    const got = [];
    for await (const e of l.missing(s.heads)) got.push(e.id);
    assert.deepEqual(got, s.missing);
  }
});

test('the export verifies entry by entry', async () => {
  const l = new Log(v.export.room.id);
  const byChain = [...v.export.entries].sort((a, b) => (a.author < b.author ? -1 : a.author > b.author ? 1 : a.seq - b.seq));
  for (const e of byChain) assert.equal(await l.add(e, v.now), true);
  assert.deepEqual(l.entries().map((e) => e.id), v.export.entries.map((e) => e.id));
});

test('wrong types never throw anything but HistoryError', async () => {
  const base = v.log[0];
  for (const patch of [{ seq: '1' }, { ts: 1.5 }, { body: 5 }, { name: null }, { author: 7 }, { sig: {} }, { id: [] }, { prev: 3 }, { kind: 'TEXT' }]) {
    await assert.rejects(checkEntry({ ...base, ...patch }, v.room, v.now), HistoryError);
  }
  for (const e of [null, 1, 'x', [], undefined]) await assert.rejects(checkEntry(e, v.room, v.now), HistoryError);
});

test('Log.restore rebuilds chains and skips what does not chain', () => {
  const entries = [...v.log, { ...v.log[1], seq: 9 }];
  const l = Log.restore(v.room, entries);
  assert.equal(l.size, v.log.length);
  assert.deepEqual(l.next(v.log[0].author), { seq: l.head(v.log[0].author).seq + 1, prev: l.head(v.log[0].author).id });
});

test('sha256Hex is SHA-256 at every length across the block boundaries', async () => {
  const { sha256Hex } = await import('../static/js/sha256.js');
  const { createHash } = await import('node:crypto');
  for (let n = 0; n <= 300; n++) {
    const b = new Uint8Array(n).map((_, i) => (i * 31 + n) & 255);
    assert.equal(sha256Hex(b), createHash('sha256').update(b).digest('hex'), `length ${n}`);
  }
});

test('an author or sig with non-zero unused bits in its last character is refused, as by fromB64url', async () => {
  const kp = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const author = toB64url(new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey)));
  const e = await signEntry({ room: v.room, name: 'Ana', seq: 1, prev: '', ts: v.now, kind: 'text', body: 'hola' }, { author, privateKey: kp.privateKey });
  await checkEntry(e, v.room, v.now);
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  // Each other value of the last character: its encoding passes exactly where fromB64url
  // decodes it to the same length (the unused bits zero), and then the signature fails.
  for (const [field, bytes] of [['author', 32], ['sig', 64]]) {
    for (const c of abc) {
      const s = e[field].slice(0, -1) + c;
      const canonical = fromB64url(s) !== null && fromB64url(s).length === bytes;
      const bad = { ...e, [field]: s };
      bad.id = await computeId(bad);
      if (s === e[field]) continue;
      const want = canonical ? 'bad-signature' : 'bad-field';
      await assert.rejects(checkEntry(bad, v.room, v.now), (err) => err.code === want, `${field} ending ${c}: want ${want}`);
      const [res] = await checkBatch([bad], v.room, v.now);
      assert.equal(res && res.code, want, `checkBatch: ${field} ending ${c}`);
    }
  }
});
