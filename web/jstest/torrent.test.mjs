// node --test web/jstest/ — the .torrent invitation (web/static/js/torrent.js) against the
// vectors shared with Go (net/torrent/testdata/, made by net/torrent/vectors_gen_test.go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  MAX_TORRENT_BYTES, TorrentError, decodeInvitation, encodeInvitation, safeFileName, invitationFileName,
} from '../static/js/torrent.js';
import { decode } from '../static/js/bencode.js';

const testdata = new URL('../../net/torrent/testdata/', import.meta.url);
const { vectors, encodeErrors } = JSON.parse(await readFile(new URL('vectors.json', testdata), 'utf8'));
const safeNames = JSON.parse(await readFile(new URL('safe_names.json', testdata), 'utf8'));
const file = async (name) => new Uint8Array(await readFile(new URL(name, testdata)));

const isCode = (code, field = '') => (e) => {
  assert.ok(e instanceof TorrentError, `not a TorrentError: ${e}`);
  assert.equal(e.code, code, e.message);
  assert.equal(e.field, field, e.message);
  return true;
};

test('the vectors cover every error code', () => {
  const codes = new Set(vectors.map((v) => v.code));
  for (const c of ['too-large', 'empty', 'malformed', 'truncated', 'not-torrent', 'not-chattorrent',
    'version', 'bad-field', 'pieces-mismatch', 'fingerprint-mismatch']) {
    assert.ok(codes.has(c), c);
  }
  assert.ok(vectors.length > 90);
});

for (const v of vectors) {
  test(`vector ${v.name}`, async () => {
    const bytes = await file(v.file);
    if (!v.valid) {
      await assert.rejects(decodeInvitation(bytes), isCode(v.code, v.field ?? ''));
      return;
    }
    const got = await decodeInvitation(bytes);
    assert.deepEqual(got, v.expect);
    // ArrayBuffer input gives the same.
    assert.deepEqual(await decodeInvitation(bytes.slice().buffer), v.expect);
    if (v.input) {
      // Go's bytes and JS's bytes for the same fields are identical.
      const enc = await encodeInvitation(v.input);
      assert.ok(enc instanceof Uint8Array);
      assert.ok(Buffer.from(enc).equals(Buffer.from(bytes)), 'encodeInvitation(input) differs from the Go-encoded file');
    }
    // Round trip: encoding what was decoded decodes to the same fields (infoHash aside:
    // info.name and unknown keys are not carried over).
    const again = await decodeInvitation(await encodeInvitation(got));
    assert.deepEqual({ ...again, infoHash: '' }, { ...got, infoHash: '' });
  });
}

for (const v of encodeErrors) {
  test(`encode error ${v.name}`, async () => {
    await assert.rejects(encodeInvitation(v.input), isCode(v.code, v.field ?? ''));
  });
}

test('encodeInvitation: defaults for created, createdBy and fingerprint', async () => {
  const { input } = vectors.find((v) => v.name === 'valid_offer');
  const before = Math.floor(Date.now() / 1000);
  const got = await decodeInvitation(await encodeInvitation({ ...input, created: undefined, createdBy: undefined }));
  assert.ok(got.created >= before && got.created <= before + 60, String(got.created));
  assert.equal(got.createdBy, 'ChatTorrent');
  assert.match(got.fingerprint, /^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  const raw = decode(await encodeInvitation(input));
  assert.equal(new TextDecoder().decode(raw.get('info').get('name')), 'Kitchen_table_offer.sdp');
  assert.equal(new TextDecoder().decode(raw.get('comment')), 'ChatTorrent invitation: open it in ChatTorrent');
});

test('encodeInvitation: wrong argument types are bad-field errors', async () => {
  const { input } = vectors.find((v) => v.name === 'valid_offer');
  await assert.rejects(encodeInvitation({ ...input, room: 7 }), isCode('bad-field', 'room'));
  await assert.rejects(encodeInvitation({ ...input, peer: undefined }), isCode('bad-field', 'peer.id'));
  await assert.rejects(encodeInvitation({ ...input, peer: null }), isCode('bad-field', 'peer'));
  await assert.rejects(encodeInvitation({ ...input, roomName: 'a\uD800b' }), isCode('bad-field', 'room name'));
  await assert.rejects(encodeInvitation({ ...input, created: 1.5 }), isCode('bad-field', 'creation date'));
  await assert.rejects(encodeInvitation(), isCode('bad-field', 'role'));
});

test('decodeInvitation: size limits come before parsing', async () => {
  assert.equal(MAX_TORRENT_BYTES, 65536);
  await assert.rejects(decodeInvitation(new Uint8Array(0)), isCode('empty'));
  await assert.rejects(decodeInvitation(new Uint8Array(MAX_TORRENT_BYTES + 1)), isCode('too-large'));
  await assert.rejects(decodeInvitation(new Uint8Array(MAX_TORRENT_BYTES)), isCode('malformed'));
  await assert.rejects(decodeInvitation('d4:infoe'), TypeError);
});

test('TorrentError: one clear line with code and field', async () => {
  const e = await decodeInvitation(await file('room_uppercase_hex.torrent')).catch((x) => x);
  assert.equal(e.message, 'torrent: bad-field room: want 32 lowercase hex characters');
  assert.ok(e instanceof Error);
  const e2 = new TorrentError('own-offer');
  assert.equal(e2.message, 'torrent: own-offer');
  assert.equal(e2.field, '');
});

test('safeFileName matches Go for every shared vector', () => {
  assert.ok(safeNames.length >= 20);
  for (const { input, output } of safeNames) {
    assert.equal(safeFileName(input), output, JSON.stringify(input));
  }
});

test('safeFileName: hand-checked cases and invitationFileName', () => {
  assert.equal(safeFileName('Sala Niño ✓'), 'Sala_Niño');
  assert.equal(safeFileName('../../etc/passwd'), 'etc_passwd');
  assert.equal(safeFileName(''), 'room');
  assert.equal(safeFileName(undefined), 'room');
  assert.equal(safeFileName('a/b\\c'), 'a_b_c');
  assert.equal(safeFileName('x\uD800y'), 'x_y'); // a lone surrogate, as Go's invalid UTF-8
  assert.equal(safeFileName('ñ'.repeat(60)), 'ñ'.repeat(48));
  assert.equal(invitationFileName('Sala Niño ✓', 'offer'), 'Sala_Niño_offer.torrent');
  assert.equal(invitationFileName('', 'answer'), 'room_answer.torrent');
});
