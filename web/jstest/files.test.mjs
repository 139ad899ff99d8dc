// Files in pieces (docs/PROTOCOL.md section 5): body checks, frames, and two FileLinks
// moving files over an in-memory link — whole, with a lying sender, cut and resumed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileLink } from '../static/js/filelink.js';
import {
  MemoryMedia, PIECE_SIZE, parseMeta, metaBody, encodePiece, encodePieces, PIECES_PER_FRAME, encodeHashes, decodeFrame, checkControl,
  missingRanges, hashBlob, rootOf, fromHex, toHex, numPieces, MAX_RANGES, cleanName, setBit,
} from '../static/js/files.js';
import { sha256Node } from '../static/js/sha256.js';

function content(size, seed = 0) {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7 + seed) % 251;
  return b;
}

/** Two FileLinks joined by queues: what one sends the other receives, in order. */
function linkPair(mediaA, mediaB, announced, opts = {}) {
  const events = { a: [], b: [] };
  const sent = { a: 0, b: 0 };
  let a;
  let b;
  const deliver = (to, data) => queueMicrotask(() => {
    if (opts.cut && opts.cut()) return;
    if (typeof data === 'string') to.onControl(checkControl(JSON.parse(data)));
    else to.onFrame(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  });
  const mk = (media, name, other) => new FileLink({
    media,
    announced,
    // opts.single: the receiver is an older page (or the box's fetcher) that does not ask
    // for pieces frames.
    sendJSON: async (m) => deliver(other(), JSON.stringify(opts.single && m.t === 'want' ? { ...m, multi: undefined } : m)),
    sendFrame: async (f) => {
      sent[name]++;
      const out = opts.tamper && name === 'a' ? opts.tamper(f) : f;
      deliver(other(), out);
      await new Promise((r) => (opts.slow ? setTimeout(r, 1) : setImmediate(r))); // let the receiver run, like a channel's buffer
    },
    onProgress: (p) => events[name].push(p),
    stallMs: opts.stallMs || 200,
  });
  a = mk(mediaA, 'a', () => b);
  b = mk(mediaB, 'b', () => a);
  return { a, b, events, sent };
}

const settle = async (pred, what = '', ms = 10000) => {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
  assert.ok(pred(), `condition not reached: ${what || pred.toString()}`);
};

async function seeded(size, seed) {
  const media = new MemoryMedia();
  const bytes = content(size, seed);
  const root = await media.addLocal(new Blob([bytes]));
  return { media, bytes, root, meta: { kind: 'file', root, size, name: 'x.bin', type: '' } };
}

test('hashes: one piece is its own leaf; padding with zero leaves; known shape', async () => {
  const one = content(100);
  const { leaves, root } = await hashBlob(new Blob([one]));
  assert.equal(leaves.length, 32);
  assert.equal(root, toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', one))));
  const three = content(2 * PIECE_SIZE + 5);
  const h = await hashBlob(new Blob([three]));
  const l = (i) => h.leaves.subarray(i * 32, i * 32 + 32);
  const d = async (x, y) => new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array([...x, ...y])));
  const expect = await d(await d(l(0), l(1)), await d(l(2), new Uint8Array(32)));
  assert.equal(h.root, toHex(expect));
  assert.equal(toHex(await rootOf(h.leaves)), h.root);
});

test('sha256Node: the SHA-256 of 64 bytes at any offset, as WebCrypto computes it', async () => {
  const zero = new Uint8Array(32);
  sha256Node(new Uint8Array(64), 0, zero, 0);
  assert.equal(toHex(zero), 'f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b');
  for (let k = 0; k < 500; k++) {
    const src = crypto.getRandomValues(new Uint8Array(64 + 9));
    const dst = new Uint8Array(32 + 5).fill(0xee);
    sha256Node(src, k % 10, dst, 5);
    const want = new Uint8Array(await crypto.subtle.digest('SHA-256', src.subarray(k % 10, (k % 10) + 64)));
    assert.equal(toHex(dst.subarray(5)), toHex(want));
    assert.deepEqual([...dst.subarray(0, 5)], [0xee, 0xee, 0xee, 0xee, 0xee]); // nothing written before `at`
  }
});

test('entry bodies: the checks of section 5', () => {
  const ok = { root: 'ab'.repeat(32), size: 10, name: 'photo.jpg', type: 'image/jpeg' };
  assert.deepEqual(parseMeta('image', JSON.stringify(ok)), { kind: 'image', ...ok });
  assert.equal(parseMeta('voice', JSON.stringify({ ...ok, duration: 1500 })).duration, 1500);
  const bad = [
    ['text', ok, 'bad-kind'], ['file', { ...ok, root: 'AB'.repeat(32) }, 'bad-root'], ['file', { ...ok, size: 0 }, 'bad-size'],
    ['file', { ...ok, size: 1.5 }, 'bad-size'], ['file', { ...ok, name: 'a/b' }, 'bad-name'], ['file', { ...ok, name: '' }, 'bad-name'],
    ['file', { ...ok, name: 'a\u0000' }, 'bad-name'], ['file', { ...ok, name: 'é'.repeat(128) }, 'bad-name'],
    ['file', { ...ok, type: 'x'.repeat(128) }, 'bad-type'], ['file', { ...ok, duration: 5 }, 'bad-duration'],
    ['voice', { ...ok, duration: -1 }, 'bad-duration'],
  ];
  for (const [kind, body, code] of bad) assert.throws(() => parseMeta(kind, JSON.stringify(body)), { code }, `${kind} ${JSON.stringify(body)}`);
  assert.throws(() => parseMeta('file', '{'), { code: 'not-json' });
  assert.throws(() => parseMeta('file', '[]'), { code: 'not-json' });
  assert.equal(metaBody({ kind: 'file', ...ok }), JSON.stringify(ok));
  assert.equal(cleanName('../a\\b\n.txt'), '.._a_b_.txt');
});

test('frames and control messages: round trip and every reject', () => {
  const root = fromHex('cd'.repeat(32));
  const p = decodeFrame(encodePiece(root, 7, new Uint8Array([1, 2, 3])).buffer);
  assert.deepEqual([p.type, p.root, p.index, [...p.data]], ['piece', 'cd'.repeat(32), 7, [1, 2, 3]]);
  const h = decodeFrame(encodeHashes(root, 4096, new Uint8Array(64)));
  assert.deepEqual([h.type, h.offset, h.hashes.length], ['hashes', 4096, 64]);
  const ps = decodeFrame(encodePieces(root, 9, new Uint8Array(PIECES_PER_FRAME * PIECE_SIZE)));
  assert.deepEqual([ps.type, ps.index, ps.data.length], ['pieces', 9, 3 * PIECE_SIZE]);
  const ps1 = decodeFrame(encodePieces(root, 0, new Uint8Array(5)));
  assert.deepEqual([ps1.type, ps1.index, ps1.data.length], ['pieces', 0, 5]);
  assert.deepEqual(checkControl({ t: 'want', root: 'ab'.repeat(32), hashes: false, ranges: [], multi: true }).multi, true);
  assert.deepEqual(checkControl({ t: 'want', root: 'ab'.repeat(32), hashes: false, ranges: [] }).multi, false);
  for (const bad of [new Uint8Array(37), new Uint8Array(38), new Uint8Array(37 + PIECE_SIZE + 1).fill(1), encodeHashes(root, 0, new Uint8Array(33)),
    new Uint8Array(37 + 4097 * 32), encodePieces(root, 0, new Uint8Array(PIECES_PER_FRAME * PIECE_SIZE + 1))]) {
    if (bad[0] === 0 && bad.length === 38) bad[0] = 9; // unknown type
    assert.throws(() => decodeFrame(bad), { code: 'bad-frame' });
  }
  const R = 'ab'.repeat(32);
  assert.deepEqual(checkControl({ t: 'want', root: R, hashes: true, ranges: [[0, 2], [5, 9]] }).ranges, [[0, 2], [5, 9]]);
  for (const m of [{ t: 'want', root: R, hashes: 1, ranges: [] }, { t: 'want', root: R, hashes: true, ranges: [[2, 1]] },
    { t: 'want', root: R, hashes: true, ranges: [[0, 5], [3, 9]] }, { t: 'want', root: R, hashes: true, ranges: [[-1, 2]] },
    { t: 'want', root: R, hashes: true, ranges: new Array(MAX_RANGES + 1).fill(0).map((_, i) => [2 * i, 2 * i + 1]) },
    { t: 'got', root: R, pieces: -1 }, { t: 'nope', root: 'x' }, { t: 'want', root: R, hashes: true, ranges: [], multi: 1 }]) {
    assert.throws(() => checkControl(m), { code: 'bad-message' }, JSON.stringify(m).slice(0, 60));
  }
  const have = new Uint8Array(2);
  for (const i of [0, 1, 4, 9]) setBit(have, i);
  assert.deepEqual(missingRanges(have, 12), [[2, 4], [5, 9], [10, 12]]);
});

test('a file crosses whole and byte-identical; the sender sees the receiver verify it', async () => {
  const size = 40 * PIECE_SIZE + 123;
  const src = await seeded(size, 1);
  const dst = new MemoryMedia();
  const { a, b, events } = linkPair(src.media, dst, (r) => (r === src.root ? src.meta : null));
  await b.fetch(src.meta);
  await settle(() => events.b.some((e) => e.state === 'complete'));
  const got = new Uint8Array(await (await dst.blob(src.root)).arrayBuffer());
  assert.deepEqual(got, src.bytes);
  assert.equal(a.stats.piecesSent, numPieces(size));
  await settle(() => events.a.some((e) => e.role === 'send' && e.state === 'complete'));
});

for (const single of [false, true]) {
  test(`a lying sender: bad pieces are dropped and asked for again; the file completes correctly (${single ? 'a piece a frame' : 'pieces frames'})`, async () => {
    const src = await seeded(20 * PIECE_SIZE, 2);
    const dst = new MemoryMedia();
    const lied = new Set();
    const types = new Set();
    const tamper = (f) => {
      if (f[0] !== 1 && f[0] !== 3) return f;
      types.add(f[0]);
      const first = new DataView(f.buffer, f.byteOffset).getUint32(33);
      const count = Math.ceil((f.length - 37) / PIECE_SIZE);
      for (const index of [3, 19]) {
        if (index >= first && index < first + count && !lied.has(index)) {
          lied.add(index);
          const g = f.slice();
          g[37 + (index - first) * PIECE_SIZE + 3] ^= 0xff;
          return g;
        }
      }
      return f;
    };
    const { b, events } = linkPair(src.media, dst, () => src.meta, { tamper, single });
    await b.fetch(src.meta);
    await settle(() => events.b.some((e) => e.state === 'complete'));
    assert.equal(b.stats.badPieces, 2);
    assert.deepEqual([...types], [single ? 1 : 3]);
    assert.deepEqual(new Uint8Array(await (await dst.blob(src.root)).arrayBuffer()), src.bytes);
  });
}

test('hashes that do not match the root are refused, and after 3 tries the transfer stops with an error', async () => {
  const src = await seeded(5 * PIECE_SIZE, 3);
  const tamper = (f) => {
    if (f[0] !== 2) return f;
    const g = f.slice();
    g[50] ^= 1;
    return g;
  };
  const { b, events } = linkPair(src.media, new MemoryMedia(), () => src.meta, { tamper });
  await b.fetch(src.meta);
  await settle(() => events.b.some((e) => e.state === 'error'));
  assert.equal(events.b.find((e) => e.state === 'error').code, 'bad-hashes');
});

test('a cut transfer resumes on a new link from the verified pieces', async () => {
  const n = 300;
  const src = await seeded(n * PIECE_SIZE - 7, 4);
  const dst = new MemoryMedia();
  let delivered = 0;
  let cut = false;
  const first = linkPair(src.media, dst, () => src.meta, { cut: () => cut || (++delivered > 60 && (cut = true)) }); // 3 pieces a frame
  await first.b.fetch(src.meta);
  await settle(() => cut && first.events.b.some((e) => e.pieces >= 128)); // two batches stored
  first.a.close();
  first.b.close();
  const held = (await dst.info(src.root)).have;
  const second = linkPair(src.media, dst, () => src.meta);
  await second.b.fetch(src.meta);
  await settle(() => second.events.b.some((e) => e.state === 'complete'));
  assert.deepEqual(new Uint8Array(await (await dst.blob(src.root)).arrayBuffer()), src.bytes);
  assert.ok(second.a.stats.piecesSent <= n - 128, `resent ${second.a.stats.piecesSent} of ${n}`);
  assert.ok(held.some((x) => x !== 0));
});

test('nope for files not held or not announced; cancel from either side stops the transfer', async () => {
  const src = await seeded(200 * PIECE_SIZE, 5);
  const { b, events } = linkPair(new MemoryMedia(), new MemoryMedia(), () => src.meta);
  await b.fetch(src.meta);
  await settle(() => events.b.some((e) => e.state === 'nope'));

  const two = linkPair(src.media, new MemoryMedia(), () => null);
  await two.b.fetch(src.meta);
  await settle(() => two.events.b.some((e) => e.state === 'nope'));

  const three = linkPair(src.media, new MemoryMedia(), () => src.meta, { slow: true });
  await three.b.fetch(src.meta);
  await settle(() => three.a.stats.piecesSent > 10);
  await three.a.cancel(src.root); // the sender cancels
  await settle(() => three.events.b.some((e) => e.state === 'cancelled'));
  const sentAtCancel = three.a.stats.piecesSent;
  await new Promise((r) => setTimeout(r, 30));
  assert.ok(three.a.stats.piecesSent <= sentAtCancel + 1);

  const four = linkPair(src.media, new MemoryMedia(), () => src.meta, { slow: true });
  await four.b.fetch(src.meta);
  await settle(() => four.b.stats.piecesReceived > 10);
  await four.b.cancel(src.root); // the receiver cancels
  await settle(() => four.events.a.some((e) => e.role === 'send' && e.state === 'cancelled'));
});

test('frames nobody asked for, out of range or malformed are dropped; the link goes on', async () => {
  const src = await seeded(4 * PIECE_SIZE, 6);
  const { b, events } = linkPair(src.media, new MemoryMedia(), () => src.meta);
  b.onFrame(new ArrayBuffer(3));
  b.onFrame(encodePiece(fromHex('ee'.repeat(32)), 0, new Uint8Array(10)).buffer);
  assert.equal(b.stats.dropped, 2);
  await b.fetch(src.meta);
  b.onFrame(encodePiece(fromHex(src.root), 99, new Uint8Array(10)).buffer);
  await settle(() => events.b.some((e) => e.state === 'complete'));
  assert.ok(b.stats.dropped >= 3);
});

test('the shared vectors (net/pieces/testdata/vectors.json): hashes, bodies, frames, control messages agree with Go', async () => {
  const { readFile } = await import('node:fs/promises');
  const v = JSON.parse(await readFile(new URL('../../net/pieces/testdata/vectors.json', import.meta.url), 'utf8'));
  for (const f of v.files) {
    const b = new Uint8Array(f.size);
    for (let i = 0; i < f.size; i++) b[i] = (i * 31 + 7) % 251;
    const h = await hashBlob(new Blob([b]));
    assert.equal(h.leaves.length / 32, f.pieces, `pieces of ${f.size}`);
    assert.equal(toHex(h.leaves.subarray(0, 32)), f.first_leaf);
    assert.equal(toHex(h.leaves.subarray(h.leaves.length - 32)), f.last_leaf);
    assert.equal(h.root, f.root, `root of ${f.size}`);
  }
  for (const c of v.bodies) {
    if (c.code === '') assert.doesNotThrow(() => parseMeta(c.kind, c.body), c.body);
    else assert.throws(() => parseMeta(c.kind, c.body), { code: c.code }, `${c.kind} ${c.body.slice(0, 80)}`);
  }
  for (const f of v.frames) {
    const bytes = fromHex(f.hex);
    if (f.type === '') {
      assert.throws(() => decodeFrame(bytes.buffer), { code: 'bad-frame' }, f.hex.slice(0, 40));
      continue;
    }
    const d = decodeFrame(bytes.buffer);
    assert.equal(d.type, f.type);
    assert.equal(d.root, f.root);
    assert.equal(d.type === 'hashes' ? d.offset : d.index, f.index);
    assert.equal((d.data || d.hashes).length, f.length);
  }
  for (const c of v.controls) {
    const m = JSON.parse(c.json);
    if (c.valid) assert.doesNotThrow(() => checkControl(m), c.json.slice(0, 80));
    else assert.throws(() => checkControl(m), { code: 'bad-message' }, c.json.slice(0, 80));
  }
});

test('safeBlobType: only the allow-list keeps its type; text, XML, SVG and unknown types are opaque', async () => {
  const { safeBlobType, opensInline, OPAQUE_TYPE, INLINE_TYPES } = await import('../static/js/files.js');
  for (const ty of ['image/png', 'image/jpeg', 'image/gif', 'image/webp']) {
    assert.equal(safeBlobType(ty, 'image'), ty);
    assert.equal(opensInline(ty, 'image'), true);
  }
  for (const ty of ['audio/wav', 'audio/ogg', 'audio/webm', 'audio/mp4', 'audio/mpeg', 'video/mp4', 'video/webm']) {
    assert.equal(safeBlobType(ty, 'voice'), ty);
  }
  assert.equal(safeBlobType('audio/webm;codecs=opus', 'voice'), 'audio/webm');
  assert.equal(safeBlobType(' IMAGE/PNG ', 'image'), 'image/png');
  for (const ty of ['text/html', 'text/plain', 'image/svg+xml', 'application/xhtml+xml', 'text/xml', 'application/xml',
    'application/pdf', 'application/javascript', 'multipart/x-mixed-replace', '', 'image/png,text/html', 'text/html;image/png', undefined, null, 42]) {
    assert.equal(safeBlobType(ty), OPAQUE_TYPE, String(ty));
    assert.equal(opensInline(ty, 'image'), false, String(ty));
  }
  // The type must fit the kind: an "image" that says audio is a download, and so is any "file".
  assert.equal(safeBlobType('audio/wav', 'image'), OPAQUE_TYPE);
  assert.equal(safeBlobType('image/png', 'voice'), OPAQUE_TYPE);
  assert.equal(safeBlobType('image/png', 'file'), 'image/png');
  assert.equal(opensInline('image/png', 'file'), false);
  for (const ty of INLINE_TYPES.keys()) assert.ok(!/^text\/|xml|svg/.test(ty), ty);
});
