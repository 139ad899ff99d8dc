// Canonical bencode (BEP 3), strict: the decoder refuses unsorted or duplicate dictionary
// keys, leading zeros, -0, integers outside int64, nesting deeper than 16 and trailing
// bytes (code "malformed"), and tells input that ends early apart (code "truncated").
// The first problem met reading left to right is the one reported, exactly as the Go
// decoder (net/torrent/bencode.go) does. Plain ES module, no dependencies.
//
// Decoded values: integers are numbers (BigInt beyond Number.MAX_SAFE_INTEGER), byte
// strings are Uint8Array, lists are arrays, dictionaries are Map objects keyed by the key
// bytes read as UTF-8 (order and duplicates are checked on the raw bytes).

export const MAX_DEPTH = 16;

const INT64_MAX = (1n << 63n) - 1n;
const utf8Lossy = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

export class BencodeError extends Error {
  /** @param {'malformed'|'truncated'} code */
  constructor(code, msg) {
    super(`bencode: ${code}: ${msg}`);
    this.name = 'BencodeError';
    this.code = code;
  }
}

const isDigit = (c) => c >= 0x30 && c <= 0x39;

function isPlainObject(v) {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

class Decoder {
  constructor(b) {
    this.b = b;
    this.pos = 0;
    this.spans = new Map(); // top-level dictionary key -> [start, end) of its value
  }

  fail(code, msg) {
    return new BencodeError(code, `${msg} at byte ${this.pos}`);
  }

  eof() {
    return this.fail('truncated', 'input ends early');
  }

  value(depth) {
    const b = this.b;
    if (this.pos >= b.length) throw this.eof();
    const c = b[this.pos];
    if (c === 0x69 /* i */) return this.integer();
    if (isDigit(c)) return this.str();
    if (c === 0x6c /* l */) {
      if (depth + 1 > MAX_DEPTH) throw this.fail('malformed', 'nested deeper than 16');
      this.pos++;
      const list = [];
      for (;;) {
        if (this.pos >= b.length) throw this.eof();
        if (b[this.pos] === 0x65 /* e */) {
          this.pos++;
          return list;
        }
        list.push(this.value(depth + 1));
      }
    }
    if (c === 0x64 /* d */) {
      if (depth + 1 > MAX_DEPTH) throw this.fail('malformed', 'nested deeper than 16');
      this.pos++;
      const dict = new Map();
      let prev = null;
      for (;;) {
        if (this.pos >= b.length) throw this.eof();
        const k = b[this.pos];
        if (k === 0x65 /* e */) {
          this.pos++;
          return dict;
        }
        if (!isDigit(k)) throw this.fail('malformed', 'dictionary key is not a string');
        const at = this.pos;
        const key = this.str();
        if (prev !== null) {
          const cmp = compareBytes(key, prev);
          if (cmp === 0) throw new BencodeError('malformed', `duplicate key at byte ${at}`);
          if (cmp < 0) throw new BencodeError('malformed', `key not in sorted order at byte ${at}`);
        }
        prev = key;
        const start = this.pos;
        const v = this.value(depth + 1);
        const name = utf8Lossy.decode(key);
        dict.set(name, v);
        if (depth === 0) this.spans.set(name, [start, this.pos]);
      }
    }
    throw this.fail('malformed', `unexpected byte 0x${c.toString(16).padStart(2, '0')}`);
  }

  integer() {
    const b = this.b;
    this.pos++; // 'i'
    let neg = false;
    if (this.pos < b.length && b[this.pos] === 0x2d /* - */) {
      neg = true;
      this.pos++;
    }
    if (this.pos >= b.length) throw this.eof();
    if (!isDigit(b[this.pos])) throw this.fail('malformed', 'integer without digits');
    if (b[this.pos] === 0x30) {
      if (neg) throw this.fail('malformed', 'negative zero');
      this.pos++;
      if (this.pos >= b.length) throw this.eof();
      if (b[this.pos] !== 0x65) throw this.fail('malformed', 'integer with a leading zero');
      this.pos++;
      return 0;
    }
    const limit = neg ? INT64_MAX + 1n : INT64_MAX;
    let n = 0n;
    for (;;) {
      if (this.pos >= b.length) throw this.eof();
      const c = b[this.pos];
      if (c === 0x65) {
        this.pos++;
        const v = neg ? -n : n;
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      if (!isDigit(c)) throw this.fail('malformed', 'bad byte in integer');
      n = n * 10n + BigInt(c - 0x30);
      if (n > limit) throw this.fail('malformed', 'integer out of range');
      this.pos++;
    }
  }

  str() {
    const b = this.b;
    let n = 0;
    if (b[this.pos] === 0x30) {
      this.pos++;
      if (this.pos >= b.length) throw this.eof();
      if (b[this.pos] !== 0x3a /* : */) throw this.fail('malformed', 'string length with a leading zero');
    } else {
      for (;;) {
        if (this.pos >= b.length) throw this.eof();
        const c = b[this.pos];
        if (c === 0x3a) break;
        if (!isDigit(c)) throw this.fail('malformed', 'bad byte in string length');
        n = n * 10 + (c - 0x30);
        if (n > b.length) n = b.length + 1; // saturate: it cannot fit anyway
        this.pos++;
      }
    }
    this.pos++; // ':'
    if (n > b.length - this.pos) {
      this.pos = b.length;
      throw this.eof();
    }
    const s = b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

function toBytes(bytes) {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new TypeError('bencode: want a Uint8Array or ArrayBuffer');
}

/**
 * Decodes one canonical bencode value that must fill bytes exactly. Byte strings in the
 * result are views into bytes. Throws BencodeError.
 * @param {Uint8Array|ArrayBuffer} bytes
 */
export function decode(bytes) {
  return decodeWithSpans(bytes).value;
}

/**
 * Like decode, and also returns where each value of the top-level dictionary sits in bytes
 * ({value, spans: Map<key, [start, end]>}), e.g. to hash `info` exactly as it was written.
 * @param {Uint8Array|ArrayBuffer} bytes
 */
export function decodeWithSpans(bytes) {
  const d = new Decoder(toBytes(bytes));
  const value = d.value(0);
  if (d.pos !== d.b.length) throw d.fail('malformed', 'trailing bytes after the value');
  return { value, spans: d.spans };
}

/**
 * Encodes value canonically: integers (safe-integer numbers or BigInt), strings (as UTF-8),
 * Uint8Array / ArrayBuffer / views (raw bytes), arrays, and Map or plain objects (keys as
 * UTF-8, sorted by bytes). Throws TypeError or RangeError on anything else.
 * @returns {Uint8Array}
 */
export function encode(value) {
  const parts = [];
  let size = 0;
  const push = (u8) => {
    parts.push(u8);
    size += u8.length;
  };
  const ascii = (s) => push(utf8Encoder.encode(s));
  const bytesOut = (u8) => {
    ascii(`${u8.length}:`);
    push(u8);
  };
  const walk = (v, depth) => {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new RangeError(`bencode: ${v} is not a safe integer`);
      ascii(`i${v === 0 ? 0 : v}e`); // -0 is written as 0
    } else if (typeof v === 'bigint') {
      if (v > INT64_MAX || v < -INT64_MAX - 1n) throw new RangeError('bencode: integer outside int64');
      ascii(`i${v}e`);
    } else if (typeof v === 'string') {
      bytesOut(utf8Encoder.encode(v));
    } else if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
      bytesOut(toBytes(v));
    } else if (Array.isArray(v)) {
      if (depth + 1 > MAX_DEPTH) throw new RangeError('bencode: nested deeper than 16');
      ascii('l');
      for (const e of v) walk(e, depth + 1);
      ascii('e');
    } else if (v instanceof Map || isPlainObject(v)) {
      if (depth + 1 > MAX_DEPTH) throw new RangeError('bencode: nested deeper than 16');
      const entries = [...(v instanceof Map ? v.entries() : Object.entries(v))].map(([k, x]) => {
        if (typeof k !== 'string') throw new TypeError('bencode: dictionary keys must be strings');
        return [utf8Encoder.encode(k), x];
      });
      entries.sort((a, b) => compareBytes(a[0], b[0]));
      ascii('d');
      for (let i = 0; i < entries.length; i++) {
        if (i > 0 && compareBytes(entries[i - 1][0], entries[i][0]) === 0) {
          throw new TypeError('bencode: duplicate dictionary key');
        }
        bytesOut(entries[i][0]);
        walk(entries[i][1], depth + 1);
      }
      ascii('e');
    } else {
      throw new TypeError(`bencode: cannot encode ${v === null ? 'null' : typeof v}`);
    }
  };
  walk(value, 0);
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
