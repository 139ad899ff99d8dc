// node --test web/jstest/ — the strict bencode codec (web/static/js/bencode.js), with the
// same table as net/torrent/bencode_test.go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode, decodeWithSpans, BencodeError, MAX_DEPTH } from '../static/js/bencode.js';

const te = new TextEncoder();
const bytes = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0)); // binary string -> bytes
const str = (u8) => String.fromCharCode(...u8);

// Converts decoded values to plain JSON-able shapes for comparison.
function plain(v) {
  if (v instanceof Uint8Array) return { s: str(v) };
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
  return v;
}

const nest = (n) => {
  let v = [];
  for (let i = 1; i < n; i++) v = [v];
  return v;
};

const ok = [
  ['i0e', 0],
  ['i-1e', -1],
  ['i9007199254740991e', Number.MAX_SAFE_INTEGER],
  ['i9007199254740992e', 9007199254740992n],
  ['i9223372036854775807e', 9223372036854775807n],
  ['i-9223372036854775808e', -9223372036854775808n],
  ['0:', { s: '' }],
  ['3:a\x00b', { s: 'a\x00b' }],
  ['le', []],
  ['de', {}],
  ['l1:ai1eldeee', [{ s: 'a' }, 1, [{}]]],
  ['d1:a1:b1:bi2ee', { a: { s: 'b' }, b: 2 }],
  ['d0:i1e1:ai2ee', { '': 1, a: 2 }],
  ['l'.repeat(16) + 'e'.repeat(16), nest(16)],
];

const bad = [
  ['', 'truncated'],
  ['i', 'truncated'],
  ['i-', 'truncated'],
  ['i12', 'truncated'],
  ['i0', 'truncated'],
  ['3:ab', 'truncated'],
  ['12', 'truncated'],
  ['l', 'truncated'],
  ['d1:a', 'truncated'],
  ['d1:ai1e', 'truncated'],
  ['99999999999999999999999999:x', 'truncated'],
  ['l'.repeat(16), 'truncated'],
  ['x', 'malformed'],
  ['e', 'malformed'],
  ['ie', 'malformed'],
  ['i-e', 'malformed'],
  ['i-0e', 'malformed'],
  ['i-0', 'malformed'],
  ['i01e', 'malformed'],
  ['i-01e', 'malformed'],
  ['i1.5e', 'malformed'],
  ['i+1e', 'malformed'],
  ['i9223372036854775808e', 'malformed'],
  ['i-9223372036854775809e', 'malformed'],
  ['i99999999999999999999', 'malformed'], // out of range is seen before the end
  ['01:a', 'malformed'],
  ['00:', 'malformed'],
  ['1x', 'malformed'],
  ['-1:a', 'malformed'],
  ['i1ei2e', 'malformed'],
  ['d1:b0:1:a0:e', 'malformed'],
  ['d1:a0:1:a0:e', 'malformed'],
  ['d1:b0:1:a', 'malformed'],
  ['di1e0:e', 'malformed'],
  ['dle0:e', 'malformed'],
  ['d1:ae', 'malformed'],
  ['d2:\xff\xfe0:2:\xff\xfd0:e', 'malformed'], // unsorted by bytes, even though both read as U+FFFD
  ['l'.repeat(17) + 'e'.repeat(17), 'malformed'],
  ['d0:'.repeat(17), 'malformed'],
];

test('decode: canonical values, and re-encode byte for byte', () => {
  for (const [input, want] of ok) {
    const got = decode(bytes(input));
    assert.deepEqual(plain(got), want, input);
    assert.equal(str(encode(got)), input, `re-encode ${input}`);
  }
});

test('decode: refuses non-canonical and broken input with the right code', () => {
  for (const [input, code] of bad) {
    assert.throws(() => decode(bytes(input)), (e) => e instanceof BencodeError && e.code === code, `${JSON.stringify(input)} -> ${code}`);
  }
});

test('decode: accepts ArrayBuffer and other views', () => {
  const u8 = bytes('xxd1:ai1eexx');
  assert.deepEqual(plain(decode(u8.subarray(2, 10))), { a: 1 });
  assert.deepEqual(plain(decode(new DataView(u8.buffer, 2, 8))), { a: 1 });
  assert.deepEqual(plain(decode(bytes('le').buffer)), []);
  assert.throws(() => decode('le'), TypeError);
});

test('decodeWithSpans: where each top-level value sits', () => {
  const b = bytes('d1:ali1ee1:bd1:ci2eee');
  const { spans } = decodeWithSpans(b);
  assert.equal(str(b.subarray(...spans.get('a'))), 'li1ee');
  assert.equal(str(b.subarray(...spans.get('b'))), 'd1:ci2ee');
  assert.equal(spans.size, 2);
});

test('encode: sorts keys by UTF-8 bytes, takes strings, bytes, Maps and BigInt', () => {
  const got = encode({ b: 1, a: te.encode('x'), é: ['p', ''], B: -3n });
  assert.equal(new TextDecoder().decode(got), 'd1:Bi-3e1:a1:x1:bi1e2:él1:p0:ee');
  assert.equal(str(encode(new Map([['z', 0], ['\u{1F389}', 1], ['\uFFFF', 2]]))),
    'd1:zi0e3:\xef\xbf\xbfi2e4:\xf0\x9f\x8e\x89i1ee');
  assert.equal(str(encode(-0)), 'i0e');
});

test('encode: refuses what bencode cannot hold', () => {
  for (const v of [1.5, NaN, 2 ** 53, null, undefined, true, 2n ** 63n, () => 1, new Date(0), nest(MAX_DEPTH + 1)]) {
    assert.throws(() => encode(v), (e) => e instanceof TypeError || e instanceof RangeError, String(v));
  }
});
