// The text forms of bytes entries use (base64url without padding, lowercase hex) and the
// UTF-8 length of a string, for history.js and its checks. Pure module.

const reB64url = /^[A-Za-z0-9_-]*$/;

export function toB64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromB64url(s) {
  if (typeof s !== 'string' || !reB64url.test(s) || s.length % 4 === 1) return null;
  const pad = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  let bin;
  try {
    bin = atob(pad);
  } catch {
    return null;
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  // Strict: the text must be the canonical encoding of these bytes.
  return toB64url(out) === s ? out : null;
}

/** Each byte's two lowercase hex digits. */
export const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]];
  return s;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Whether s is the canonical unpadded base64url of exactly n bytes (what fromB64url
 * would decode to n bytes), without decoding it: the right length, the alphabet, and the
 * last character's unused low bits zero. */
export function isB64urlOf(s, n) {
  const len = Math.ceil((n * 8) / 6);
  if (typeof s !== 'string' || s.length !== len || !reB64url.test(s)) return false;
  const unused = len * 6 - n * 8;
  return B64URL.indexOf(s[len - 1]) % (1 << unused) === 0;
}

// UTF-8 length of a string without encoding it (lone surrogates count as U+FFFD, as
// TextEncoder writes them).
export function utf8Len(str) {
  let n = 0;
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length && (str.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
