// ChatTorrent .torrent invitations (format v1, docs/PROTOCOL.md section 1): a BitTorrent
// metainfo file whose single "file" is the SDP, with ChatTorrent's fields in a
// `chattorrent` dictionary. The same format, checks, check order and error codes as the Go
// package net/torrent; both are tested against net/torrent/testdata/vectors.json.
// Plain ES module, no dependencies; SHA-1 comes from crypto.subtle (browsers in a secure
// context, node 20).

import { BencodeError, decodeWithSpans, encode } from './bencode.js';

export const MAX_TORRENT_BYTES = 65536;

const VERSION = 1;
const PIECE_LENGTH = 16384;
const MAX_SDP = 32768;
export const MAX_ROOM_NAME = 80;
const MAX_PEER_ID = 64;
const MAX_PEER_NAME = 64;
const MAX_CREATED_BY = 128;
const MAX_CREATION_DATE = 253402300799; // 9999-12-31T23:59:59Z
const DEFAULT_CREATED_BY = 'ChatTorrent';
const COMMENT = 'ChatTorrent invitation: open it in ChatTorrent';
const MAX_SAFE_NAME = 48;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Lossy = new TextDecoder('utf-8', { ignoreBOM: true });

/** An invitation was refused. code: one of the codes of docs/PROTOCOL.md; field: for bad-field. */
export class TorrentError extends Error {
  constructor(code, field = '', msg = '') {
    super(`torrent: ${code}${field ? ` ${field}` : ''}${msg ? `: ${msg}` : ''}`);
    this.name = 'TorrentError';
    this.code = code;
    this.field = field;
  }
}

const badField = (field, msg) => new TorrentError('bad-field', field, msg);

const isStr = (v) => v instanceof Uint8Array;
const isInt = (v) => typeof v === 'number' || typeof v === 'bigint';
const isDict = (v) => v instanceof Map;

function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hex(bytes) {
  return Array.from(bytes, (c) => c.toString(16).padStart(2, '0')).join('');
}

async function sha1(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-1', bytes));
}

// pieces: the concatenated SHA-1 of each 16 KiB piece of the sdp bytes.
async function pieces(sdp) {
  const out = new Uint8Array(Math.ceil(sdp.length / PIECE_LENGTH) * 20);
  for (let i = 0, j = 0; i < sdp.length; i += PIECE_LENGTH, j += 20) {
    out.set(await sha1(sdp.subarray(i, Math.min(i + PIECE_LENGTH, sdp.length))), j);
  }
  return out;
}

// sdpFingerprint: the value of the first a=fingerprint line, spaces and tabs around it
// removed, or '' if there is none. Lines end at "\n"; a "\r" before it is dropped.
function sdpFingerprint(sdp) {
  for (let line of sdp.split('\n')) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.startsWith('a=fingerprint:')) {
      return line.slice('a=fingerprint:'.length).replace(/^[ \t]+|[ \t]+$/g, '');
    }
  }
  return '';
}

function missingOr(d, key, field, wrongType) {
  return badField(field, d.has(key) ? wrongType : 'missing');
}

function stringField(d, key, field) {
  const v = d.get(key);
  if (!isStr(v)) throw missingOr(d, key, field, 'want a string');
  return v;
}

function hexField(d, key, field) {
  const v = stringField(d, key, field);
  if (v.length !== 32 || !v.every((c) => (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) {
    throw badField(field, 'want 32 lowercase hex characters');
  }
  return String.fromCharCode(...v);
}

function strictUTF8(bytes) {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return null;
  }
}

// textField: 1..max bytes of UTF-8 without control (Cc) or format (Cf) characters.
function textField(d, key, field, max) {
  const v = stringField(d, key, field);
  if (v.length < 1 || v.length > max) throw badField(field, `want 1..${max} bytes`);
  const s = strictUTF8(v);
  if (s === null) throw badField(field, 'not UTF-8');
  if (/[\p{Cc}\p{Cf}]/u.test(s)) throw badField(field, 'holds a control or format character');
  return s;
}

// checkSDP returns the sdp as a string or throws bad-field sdp.
function checkSDP(v) {
  if (v.length < 1 || v.length > MAX_SDP) throw badField('sdp', `want 1..${MAX_SDP} bytes`);
  const s = strictUTF8(v);
  if (s === null) throw badField('sdp', 'not UTF-8');
  if (!s.startsWith('v=0')) throw badField('sdp', 'does not start with "v=0"');
  if (sdpFingerprint(s) === '') throw badField('sdp', 'no a=fingerprint line');
  return s;
}

function toBytes(bytes) {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new TypeError('decodeInvitation: want a Uint8Array or ArrayBuffer');
}

/**
 * Parses and checks an invitation file. Throws TorrentError; the checks run in the order of
 * docs/PROTOCOL.md, so the code and field are the ones Go reports for the same bytes.
 * @param {Uint8Array|ArrayBuffer} bytes
 * @returns {Promise<{role: string, room: string, roomName: string, sdp: string, session: string,
 *   peer: {id: string, name: string}, fingerprint: string, created: number, createdBy: string,
 *   infoHash: string}>}
 */
export async function decodeInvitation(bytes) {
  const b = toBytes(bytes);
  if (b.length === 0) throw new TorrentError('empty', '', 'the file is empty');
  if (b.length > MAX_TORRENT_BYTES) throw new TorrentError('too-large', '', 'more than 65536 bytes');
  let top;
  let spans;
  try {
    ({ value: top, spans } = decodeWithSpans(b));
  } catch (e) {
    if (e instanceof BencodeError) throw new TorrentError(e.code, '', e.message.replace(/^bencode: \S+: /, ''));
    throw e;
  }
  if (!isDict(top)) throw new TorrentError('not-torrent', '', 'not a dictionary');
  const info = top.get('info');
  if (!isDict(info)) throw new TorrentError('not-torrent', '', 'no info dictionary');
  if (!isStr(info.get('name')) || !isInt(info.get('piece length')) || !isStr(info.get('pieces')) ||
      !(isInt(info.get('length')) || Array.isArray(info.get('files')))) {
    throw new TorrentError('not-torrent', '', 'info lacks name, piece length, pieces or length');
  }
  const ct = top.get('chattorrent');
  if (!isDict(ct)) throw new TorrentError('not-chattorrent', '', 'no chattorrent dictionary');

  const v = ct.get('v');
  if (!isInt(v)) throw missingOr(ct, 'v', 'v', 'want an integer');
  if (v < 1) throw badField('v', 'want 1');
  if (v > VERSION) throw new TorrentError('version', '', 'format version is newer than this program understands');

  const role = strictUTF8(stringField(ct, 'role', 'role'));
  if (role !== 'offer' && role !== 'answer') throw badField('role', 'want "offer" or "answer"');
  const room = hexField(ct, 'room', 'room');
  const roomName = textField(ct, 'room name', 'room name', MAX_ROOM_NAME);
  const session = hexField(ct, 'session', 'session');
  const peer = ct.get('peer');
  if (!isDict(peer)) throw missingOr(ct, 'peer', 'peer', 'want a dictionary');
  const id = stringField(peer, 'id', 'peer.id');
  if (id.length < 1 || id.length > MAX_PEER_ID || !/^[A-Za-z0-9_-]*$/.test(utf8Lossy.decode(id))) {
    throw badField('peer.id', 'want 1..64 characters of A-Z a-z 0-9 _ -');
  }
  const name = textField(peer, 'name', 'peer.name', MAX_PEER_NAME);
  const sdpBytes = stringField(ct, 'sdp', 'sdp');
  const sdp = checkSDP(sdpBytes);
  const fingerprint = stringField(ct, 'fingerprint', 'fingerprint');

  const createdBy = textField(top, 'created by', 'created by', MAX_CREATED_BY);
  const date = top.get('creation date');
  if (!isInt(date)) throw missingOr(top, 'creation date', 'creation date', 'want an integer');
  if (date < 0 || date > MAX_CREATION_DATE) throw badField('creation date', 'want unix seconds from 1970 to 9999');

  const length = info.get('length');
  if (!isInt(length)) throw badField('info.length', 'want an integer (a single file)');
  if (info.get('piece length') !== PIECE_LENGTH) throw badField('info.piece length', `want ${PIECE_LENGTH}`);
  if (length !== sdpBytes.length) throw new TorrentError('pieces-mismatch', '', 'info.length is not the length of the sdp');
  if (!bytesEqual(info.get('pieces'), await pieces(sdpBytes))) {
    throw new TorrentError('pieces-mismatch', '', 'info.pieces are not the SHA-1 hashes of the sdp');
  }
  if (!bytesEqual(fingerprint, utf8.encode(sdpFingerprint(sdp)))) {
    throw new TorrentError('fingerprint-mismatch', '', 'fingerprint is not the one in the sdp');
  }

  const [start, end] = spans.get('info');
  return {
    role,
    room,
    roomName,
    sdp,
    session,
    peer: { id: utf8Lossy.decode(id), name },
    fingerprint: utf8Lossy.decode(fingerprint),
    created: Number(date),
    createdBy,
    infoHash: hex(await sha1(b.subarray(start, end))),
  };
}

function wantString(v, field) {
  if (typeof v !== 'string') throw badField(field, 'want a string');
  if (!v.isWellFormed()) throw badField(field, 'not UTF-8');
  return v;
}

/**
 * Writes an invitation file. info is computed from the sdp; fingerprint (optional) defaults
 * to the sdp's a=fingerprint value, created (unix seconds) to now, createdBy to
 * "ChatTorrent". The result is checked exactly as decodeInvitation checks it (TorrentError).
 * Gives byte for byte what Go's torrent.Encode gives for the same fields.
 * @returns {Promise<Uint8Array>}
 */
export async function encodeInvitation({ role, room, roomName, sdp, session, peer = {}, fingerprint, created, createdBy } = {}) {
  wantString(role, 'role');
  wantString(room, 'room');
  wantString(roomName, 'room name');
  wantString(session, 'session');
  if (peer === null || typeof peer !== 'object') throw badField('peer', 'want {id, name}');
  wantString(peer.id, 'peer.id');
  wantString(peer.name, 'peer.name');
  wantString(sdp, 'sdp');
  const sdpBytes = utf8.encode(sdp);
  let fp = fingerprint ?? '';
  wantString(fp, 'fingerprint');
  if (fp === '') {
    fp = sdpFingerprint(sdp);
    if (fp === '') checkSDP(sdpBytes);
  }
  const date = created ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(date)) throw badField('creation date', 'want whole unix seconds');
  const by = createdBy || DEFAULT_CREATED_BY;
  wantString(by, 'created by');
  const out = encode({
    comment: COMMENT,
    'created by': by,
    'creation date': date,
    info: {
      length: sdpBytes.length,
      name: `${safeFileName(roomName)}_${role}.sdp`,
      'piece length': PIECE_LENGTH,
      pieces: await pieces(sdpBytes),
    },
    chattorrent: {
      fingerprint: fp,
      peer: { id: peer.id, name: peer.name },
      role,
      room,
      'room name': roomName,
      sdp: sdpBytes,
      session,
      v: VERSION,
    },
  });
  await decodeInvitation(out);
  return out;
}

const SAFE_CHAR = /^[\p{L}\p{N}._-]$/u;

/**
 * The room name made safe for a file name (same rule and result as Go's SafeFileName):
 * characters other than Unicode letters and numbers, '.', '-' and '_' become '_', runs of
 * '_' collapse, leading/trailing '_' and '.' go, the rest is cut to 48 characters (trailing
 * '_' and '.' go again), "room" if nothing is left. No Unicode normalisation.
 */
export function safeFileName(roomName) {
  let out = '';
  let lastUnderscore = false;
  for (let ch of String(roomName ?? '')) {
    if (!SAFE_CHAR.test(ch)) ch = '_';
    if (ch === '_') {
      if (lastUnderscore) continue;
      lastUnderscore = true;
    } else {
      lastUnderscore = false;
    }
    out += ch;
  }
  out = out.replace(/^[_.]+|[_.]+$/g, '');
  const chars = Array.from(out);
  if (chars.length > MAX_SAFE_NAME) out = chars.slice(0, MAX_SAFE_NAME).join('').replace(/[_.]+$/, '');
  return out || 'room';
}

/** `${safeFileName(roomName)}_${role}.torrent` */
export function invitationFileName(roomName, role) {
  return `${safeFileName(roomName)}_${role}.torrent`;
}
