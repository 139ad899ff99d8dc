// SHA-256 of the merkle tree's inner nodes (FIPS 180-4): a node is the hash of two 32-byte
// hashes, one 64-byte message. WebCrypto's digest is a task hop to another thread each call
// (about 35 µs); a 256 MiB file's tree has 16,383 nodes, so the page's root check took half
// a second. Here one node costs about a microsecond. Pieces are still hashed by WebCrypto.

import { HEX } from './codec.js';

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
// The second block of a 64-byte message is all padding: 0x80, zeros, the length in bits (512).
const PAD = new Uint32Array(16);
PAD[0] = 0x80000000;
PAD[15] = 512;

const w = new Uint32Array(64);
const h = new Uint32Array(8);

function compress(block) {
  for (let i = 0; i < 16; i++) w[i] = block[i];
  for (let i = 16; i < 64; i++) {
    const a = w[i - 15], b = w[i - 2];
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

const block = new Uint32Array(16);

/** Writes SHA-256(src[from .. from+64]) to dst[at .. at+32]. */
export function sha256Node(src, from, dst, at) {
  for (let i = 0; i < 16; i++) {
    const o = from + 4 * i;
    block[i] = (src[o] << 24) | (src[o + 1] << 16) | (src[o + 2] << 8) | src[o + 3];
  }
  h.set(IV);
  compress(block);
  compress(PAD);
  for (let i = 0; i < 8; i++) {
    const v = h[i], o = at + 4 * i;
    dst[o] = v >>> 24; dst[o + 1] = v >>> 16; dst[o + 2] = v >>> 8; dst[o + 3] = v;
  }
}

const tail = new Uint8Array(128);

/** SHA-256 of a whole message (an entry's id: a few hundred bytes), as 64 lowercase hex
 * characters. Synchronous: WebCrypto's digest is a task hop per call, and its promise
 * made hashing most of a first sync's cost on the page (docs/PERFORMANCE.md). */
export function sha256Hex(bytes) {
  h.set(IV);
  const n = bytes.length;
  const full = n - (n % 64);
  for (let o = 0; o < full; o += 64) {
    for (let i = 0; i < 16; i++) {
      const p = o + 4 * i;
      block[i] = (bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3];
    }
    compress(block);
  }
  // The rest, 0x80, zeros, and the length in bits: one block or two.
  const rest = n - full;
  const len = rest < 56 ? 64 : 128;
  tail.fill(0);
  tail.set(bytes.subarray(full), 0);
  tail[rest] = 0x80;
  const bits = n * 8; // < 2^53: the high word from a division, the low one from a mask
  const hi = Math.floor(bits / 0x100000000);
  tail[len - 8] = hi >>> 24; tail[len - 7] = hi >>> 16; tail[len - 6] = hi >>> 8; tail[len - 5] = hi;
  tail[len - 4] = bits >>> 24; tail[len - 3] = bits >>> 16; tail[len - 2] = bits >>> 8; tail[len - 1] = bits;
  for (let o = 0; o < len; o += 64) {
    for (let i = 0; i < 16; i++) {
      const p = o + 4 * i;
      block[i] = (tail[p] << 24) | (tail[p + 1] << 16) | (tail[p + 2] << 8) | tail[p + 3];
    }
    compress(block);
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    const v = h[i];
    out += HEX[v >>> 24] + HEX[(v >>> 16) & 255] + HEX[(v >>> 8) & 255] + HEX[v & 255];
  }
  return out;
}
