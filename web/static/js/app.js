// The ChatTorrent page: rooms, the seed's offer/answer flow through .torrent files, chat,
// history sync, export. The DOM is built with createElement/textContent only: nothing a
// peer sends is ever inserted as HTML. Element ids are listed in docs/UI.md.

import { STRINGS, pickLang, translator } from './i18n.js';
import { Storage, StorageFullError } from './storage.js';
import { Log, signEntry, fingerprint, toB64url, fromB64url, KNOWN_KINDS, cleanText, MAX_NAME } from './history.js';
import { makeOffer, makeAnswer, applyAnswer, safetyCode, takeEarly, RTCFailure } from './rtc.js';
import { ConsentList, parseAnswerEvent, isolate, consentItems, fillWait, withNames } from './dropconsent.js';
import { Session } from './session.js';
import { workerVerifier } from './verifier.js';
import { FileLink, FileError, parseMeta, metaBody, cleanName, FILE_KINDS, PIECE_SIZE, safeBlobType, opensInline } from './files.js';
import { IndexedMedia } from './media.js';
import { EntryStore } from './entries.js';
import { zip, ZipTooLarge } from './zip.js';
import { initOwner } from './owner.js';
import { proveMember, watchActivity } from './member.js';
import { loadKey, saveKey, exportKey } from './keystore.js';
import { isFull } from './idb.js';
import { hasEd25519 } from './support.js';
import {
  MAX_TORRENT_BYTES, MAX_ROOM_NAME, TorrentError, encodeInvitation, decodeInvitation, safeFileName, invitationFileName,
} from './torrent.js';

const $ = (id) => document.getElementById(id);
const PAGE = 200; // messages shown at once; "show earlier" adds as many again
const store = new Storage();
const entryStore = new EntryStore(store);
let lang = pickLang(store.lang(), navigator.languages || [navigator.language]);
let t = translator(lang);

const state = {
  me: null, // {author, name, privateKey}
  rooms: [], // stored room metadata: {id, name, created, peer: {id, name} | null}
  live: new Map(), // room id → {log, delivered, status, session, pc, hint, safety}
  pending: new Map(), // offer session → {pc, channel, room}
  used: new Set(), // offer sessions already answered and applied
  open: null, // the room shown
  fps: new Map(), // author → fingerprint
  verify: null, // checks entries from peers off the main thread
  box: false, // the page is served by an appliance that can join rooms
  boxRooms: [], // rooms the box keeps: {id, name, entries, last_ts}
  boxStatus: [], // the box's hardware: {feature, ok, detail}
  boxURLs: [], // addresses phones open the box at (text and QR code)
  drop: false, // the box has a drop box for offers
  dropOffers: [], // open offers on it: {id, room, room_name, peer_name, created, expires}
  media: new IndexedMedia(),
  files: new Map(), // root → {state, role, pieces, total, t0, p0, speed, code, conn}
  urls: new Map(), // root → object URL of a complete file
};

// ---------- helpers ----------

function el(tag, props = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') n.className = v;
    else if (k === 'text') n.textContent = v;
    else if (k.startsWith('data-') || k === 'role' || k === 'title' || k === 'datetime' || k.startsWith('aria-')) n.setAttribute(k, v);
    else n[k] = v;
  }
  for (const c of children) if (c) n.append(c);
  return n;
}

/** An element holding a translated sentence whose {placeholders} are peer-given names, each
 * in its own <bdi> (as text). */
function named(tag, props, key, names) {
  const template = (STRINGS[lang] && STRINGS[lang][key]) ?? STRINGS.en[key] ?? key;
  const n = el(tag, props);
  n.append(...withNames(document, template, names));
  return n;
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function randomHex(n) {
  return hex(crypto.getRandomValues(new Uint8Array(n)));
}

function notify(kind, text, code) {
  const n = $('notice');
  n.textContent = text;
  n.dataset.kind = kind;
  if (code) n.dataset.code = code;
  else delete n.dataset.code;
  n.hidden = false;
}

function fail(err) {
  if (err instanceof TorrentError) {
    notify('error', t(`err.${err.code}`, { field: err.field }), err.code);
  } else if (err instanceof StorageFullError) {
    notify('error', t('err.storage-full'), 'storage-full');
  } else if (err instanceof RTCFailure) {
    notify('error', t(`err.${err.code}`, { detail: err.detail }), err.code);
  } else if (err && err.code && STRINGS.en.err[err.code]) {
    notify('error', t(`err.${err.code}`, { detail: err.message }), err.code);
  } else {
    console.warn('chattorrent:', err);
    notify('error', t('err.rtc-failed', { detail: err && err.message ? err.message : String(err) }), 'failed');
  }
}

function download(name, data, type) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function fp(author) {
  if (!state.fps.has(author)) {
    state.fps.set(author, '');
    fingerprint(author).then((f) => {
      state.fps.set(author, f);
      for (const s of document.querySelectorAll('.msg-fp')) if (s.dataset.author === author) s.textContent = f;
      if (author === state.me.author) $('my-fingerprint').textContent = f;
    });
  }
  return state.fps.get(author);
}

// ---------- identity ----------

async function loadIdentity() {
  const saved = store.identity();
  const nameOf = (author) => (saved && saved.author === author && cleanText(saved.name, MAX_NAME)) || `Peer-${author.slice(0, 4)}`;
  let kept = null;
  try {
    kept = await loadKey();
  } catch (err) {
    console.warn('chattorrent: the identity key store is unavailable', err);
  }
  if (kept && (!saved || !saved.author || saved.author === kept.author)) {
    const me = { author: kept.author, name: nameOf(kept.author), privateKey: kept.privateKey };
    if (!saved || saved.jwk || saved.name !== me.name) saveIdentity(me); // (drops a copy an older page kept)
    return me;
  }
  if (saved && saved.jwk && saved.author) {
    // An older page kept the key in localStorage: it moves into IndexedDB, and leaves
    // localStorage once it is there.
    try {
      return await keepKey(saved.author, nameOf(saved.author), saved.jwk);
    } catch (err) {
      console.warn('chattorrent: stored identity unusable, making a new one', err);
    }
  }
  const kp = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const author = toB64url(new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey)));
  const jwk = await crypto.subtle.exportKey('jwk', kp.privateKey);
  return keepKey(author, `Peer-${author.slice(0, 4)}`, jwk);
}

/** Keeps the key in IndexedDB (non-extractable, keystore.js) and the identity's author and
 * name in localStorage. A browser without a working IndexedDB keeps the key as before, as
 * a JWK in localStorage, rather than lose the identity. */
async function keepKey(author, name, jwk) {
  let me;
  try {
    const k = await saveKey(author, jwk);
    me = { author, name, privateKey: k.privateKey };
  } catch (err) {
    if (isFull(err)) throw new StorageFullError(err);
    console.warn('chattorrent: the key stays in localStorage (no IndexedDB)', err);
    const privateKey = await crypto.subtle.importKey('jwk', jwk, { name: 'Ed25519' }, false, ['sign']);
    me = { author, name, privateKey, jwk };
  }
  saveIdentity(me);
  return me;
}

function saveIdentity(me) {
  store.setIdentity(me.jwk ? { author: me.author, name: me.name, jwk: me.jwk } : { author: me.author, name: me.name });
}

async function importIdentity(file) {
  let data;
  try {
    if (file.size > 4096) throw new Error('too large');
    data = JSON.parse(await file.text());
    if (data.format !== 'chattorrent-identity' || data.v !== 1) throw new Error('format');
    const { jwk } = data;
    if (!jwk || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string' || typeof jwk.x !== 'string') throw new Error('key');
    const raw = fromB64url(jwk.x);
    if (!raw || raw.length !== 32) throw new Error('key');
    await crypto.subtle.importKey('jwk', jwk, { name: 'Ed25519' }, false, ['sign']); // a usable key
    const name = (typeof data.name === 'string' && cleanText(data.name, MAX_NAME)) || state.me.name;
    state.me = await keepKey(jwk.x, name, { kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d });
  } catch (err) {
    if (err instanceof StorageFullError) throw err;
    notify('error', t('err.identity-bad'), 'identity-bad');
    return;
  }
  $('my-name').value = state.me.name;
  fp(state.me.author);
  state.proven = false; // the box lists the rooms of the imported key once it is proven
  loadBoxRooms();
  notify('info', t('identityImported'));
  render();
}

async function exportIdentity() {
  const file = `chattorrent-identity-${safeFileName(state.me.name)}.json`;
  const { kty, crv, x, d } = state.me.jwk || await exportKey(); // the key leaves IndexedDB only here
  const data = { format: 'chattorrent-identity', v: 1, name: state.me.name, jwk: { kty, crv, x, d } };
  download(file, JSON.stringify(data, null, 1), 'application/json');
  notify('info', t('identityExported', { file }));
}

// ---------- rooms ----------

function roomMeta(id) {
  return state.rooms.find((r) => r.id === id);
}

function live(id) {
  let l = state.live.get(id);
  if (!l) {
    l = {
      log: Log.restore(id, entryStore.take(id)),
      delivered: store.delivered(id),
      waiting: false, // an offer or answer of ours is out
      conns: new Map(), // RTCPeerConnection → {pc, session, peer, safety}: a room can have several peers
      hint: '',
      hintImport: '', // the hint when it names the import button (setWaiting)
      shown: PAGE,
    };
    state.live.set(id, l);
  }
  return l;
}

function addRoom(id, name) {
  let r = roomMeta(id);
  if (!r) {
    r = { id, name, created: Date.now(), peer: null };
    store.setRooms([...state.rooms, r]);
    state.rooms.push(r);
  }
  return r;
}

/** Writes one of my own entries: signed, stored, then sent if connected. */
async function write(roomId, kind, body) {
  const l = live(roomId);
  return l.log.queue(async () => {
    const next = l.log.next(state.me.author);
    const e = await signEntry({ room: roomId, name: state.me.name, seq: next.seq, prev: next.prev, ts: Date.now(), kind, body }, state.me);
    await entryStore.append(roomId, [e]); // throws StorageFullError: nothing changed
    l.log.append(e);
    for (const c of l.conns.values()) c.session.publish(e);
    return e;
  });
}

async function ensureJoined(roomId) {
  const l = live(roomId);
  if (!l.log.head(state.me.author)) await write(roomId, 'join', '');
}

/** connected while any peer is (once it said who it is: the status and "Connected with …"
 * change together, nothing moves under a finger between them), waiting while an offer or
 * answer of ours is out. */
function roomStatus(l) {
  for (const c of l.conns.values()) if (c.peer) return 'connected';
  return l.waiting ? 'waiting' : 'offline';
}

function setWaiting(roomId, hint, importHere = false) {
  const l = live(roomId);
  l.waiting = true;
  if (l.conns.size === 0) {
    l.hint = hint;
    // The hint names the import button: the room shows one under it (on a phone the room
    // list, where the other one is, is off screen). Another hint replaces it and the button.
    l.hintImport = importHere ? hint : '';
  }
  render();
}

// ---------- the flow of the seed's guide ----------

async function createRoom() {
  const name = cleanText($('new-room-name').value, MAX_ROOM_NAME);
  if (!name) {
    notify('error', t('err.empty-name'), 'empty-name');
    return;
  }
  const btn = $('create-room');
  btn.disabled = true;
  btn.dataset.busy = '1';
  btn.textContent = t('preparing');
  try {
    const id = randomHex(16);
    const offer = await makeOffer();
    const session = randomHex(16);
    const bytes = await encodeInvitation({
      role: 'offer', room: id, roomName: name, sdp: offer.sdp, session,
      peer: { id: state.me.author, name: state.me.name },
    });
    addRoom(id, name);
    await ensureJoined(id);
    watch(id, offer.pc, offer.channel);
    state.pending.set(session, { pc: offer.pc, channel: offer.channel, room: id, bytes, session });
    const file = invitationFileName(name, 'offer');
    download(file, bytes, 'application/x-bittorrent');
    $('new-room-name').value = '';
    state.open = id;
    setWaiting(id, t('afterOffer', { file }), true);
    notify('info', t('afterOffer', { file }));
  } catch (err) {
    fail(err);
  } finally {
    btn.disabled = false;
    delete btn.dataset.busy;
    btn.textContent = t('createRoom');
  }
}

/** A fresh offer for an existing room (reconnect). */
async function reconnect(roomId) {
  const r = roomMeta(roomId);
  const btn = $('reconnect');
  btn.disabled = true;
  btn.textContent = t('preparing');
  try {
    const offer = await makeOffer();
    const session = randomHex(16);
    const bytes = await encodeInvitation({
      role: 'offer', room: roomId, roomName: r.name, sdp: offer.sdp, session,
      peer: { id: state.me.author, name: state.me.name },
    });
    watch(roomId, offer.pc, offer.channel);
    state.pending.set(session, { pc: offer.pc, channel: offer.channel, room: roomId, bytes, session });
    const file = invitationFileName(r.name, 'offer');
    download(file, bytes, 'application/x-bittorrent');
    setWaiting(roomId, t('afterOffer', { file }), true);
    notify('info', t('afterOffer', { file }));
  } catch (err) {
    fail(err);
  } finally {
    btn.disabled = false;
    btn.textContent = t('reconnect');
  }
}

async function importFile(file) {
  if (!file) return;
  if (file.size > MAX_TORRENT_BYTES) throw new TorrentError('too-large');
  let bytes;
  try {
    bytes = new Uint8Array(await file.arrayBuffer());
  } catch {
    notify('error', t('err.read-failed'), 'read-failed');
    return;
  }
  const inv = await decodeInvitation(bytes);
  if (inv.role === 'offer') return importOffer(inv);
  return importAnswer(inv);
}

async function importOffer(inv, dropId = '') {
  if (state.pending.has(inv.session) || state.used.has(inv.session) || inv.peer.id === state.me.author) {
    throw Object.assign(new Error('own offer'), { code: 'own-offer' });
  }
  const ans = await makeAnswer(inv.sdp);
  const bytes = await encodeInvitation({
    role: 'answer', room: inv.room, roomName: inv.roomName, sdp: ans.sdp, session: inv.session,
    peer: { id: state.me.author, name: state.me.name },
  });
  const r = addRoom(inv.room, inv.roomName);
  r.peer = { id: inv.peer.id, name: inv.peer.name };
  store.setRooms(state.rooms);
  await ensureJoined(inv.room);
  ans.channel.then((ch) => watch(inv.room, ans.pc, ch));
  if (dropId) {
    // Through the box's drop box: the answer goes back to the creator's page, no file.
    const res = await fetch(`/api/drop/offers/${dropId}/answers`, {
      method: 'POST', body: bytes, headers: { ...BOX_HEADERS, 'Content-Type': 'application/x-bittorrent' },
    });
    if (!res.ok) {
      ans.pc.close();
      throw Object.assign(new Error(await apiErrorText(res)), { code: 'box-failed' });
    }
    const { id: answerId } = await res.json();
    // The code the creator's page shows next to our name: we read it out loud to them.
    const code = await safetyCode(ans.sdp, inv.sdp);
    state.open = inv.room;
    followVerdict(inv.room, dropId, answerId, ans.pc, inv.peer.name, code);
    setWaiting(inv.room, t('dropAnswered', { name: isolate(inv.peer.name) }));
    notify('info', t('dropAnswered', { name: isolate(inv.peer.name) }));
    return;
  }
  const file = invitationFileName(inv.roomName, 'answer');
  download(file, bytes, 'application/x-bittorrent');
  state.open = inv.room;
  setWaiting(inv.room, t('afterAnswer', { file }));
  notify('info', t('afterAnswer', { file }));
}

async function importAnswer(inv) {
  if (state.used.has(inv.session)) throw Object.assign(new Error('used'), { code: 'already-used' });
  const p = state.pending.get(inv.session);
  if (!p) throw Object.assign(new Error('no offer'), { code: 'no-pending-offer' });
  if (p.room !== inv.room) throw Object.assign(new Error('other room'), { code: 'wrong-room' });
  await applyAnswer(p.pc, inv.sdp);
  state.pending.delete(inv.session);
  if (p.drop) withdrawOffer(p);
  state.used.add(inv.session);
  const r = roomMeta(inv.room);
  r.peer = { id: inv.peer.id, name: inv.peer.name };
  store.setRooms(state.rooms);
  state.open = inv.room;
  notify('info', t('gotAnswer'));
  render();
}

/** Follows a peer connection and its channel: when the channel opens, a sync session
 * starts; when it closes or fails, that peer is gone. */
function watch(roomId, pc, channel) {
  const opened = () => startSession(roomId, pc, channel);
  if (channel.readyState === 'open') opened();
  else channel.addEventListener('open', opened, { once: true });
  pc.addEventListener('connectionstatechange', () => {
    if (['failed', 'closed'].includes(pc.connectionState)) dropConn(roomId, pc);
  });
}

function startSession(roomId, pc, channel) {
  const l = live(roomId);
  const conn = { pc, session: null, peer: null, safety: '', files: null };
  const arrived = takeEarly(channel);
  conn.session = new Session({
    channel,
    room: roomId,
    me: { id: state.me.author, name: state.me.name },
    log: l.log,
    persist: (entries) => entryStore.append(roomId, entries, { relaxed: true }),
    onEvent: (ev) => onSessionEvent(roomId, conn, ev),
    verify: state.verify,
  });
  conn.files = new FileLink({
    media: state.media,
    sendJSON: (m) => conn.session.send(m),
    sendFrame: (f) => conn.session.sendRaw(f),
    announced: (root) => announced(roomId, root),
    onProgress: (p) => onFileProgress(roomId, conn, p),
  });
  conn.session.files = conn.files;
  l.conns.set(pc, conn);
  l.waiting = false;
  l.hint = '';
  // On loopback the channel can open before setRemoteDescription's promise settles: the
  // code is derived as soon as both descriptions are visible.
  const safety = () => {
    if (!pc.localDescription || !pc.remoteDescription) return false;
    safetyCode(pc.localDescription.sdp, pc.remoteDescription.sdp).then((code) => {
      conn.safety = code;
      render();
    });
    return true;
  };
  if (!safety()) {
    const retry = () => {
      if (safety()) pc.removeEventListener('signalingstatechange', retry);
    };
    pc.addEventListener('signalingstatechange', retry);
  }
  render();
  conn.session.start();
  for (const data of arrived) conn.session.receive(data);
}

/** Forgets a peer connection of the room (closed, failed, or replaced). */
function dropConn(roomId, pc) {
  const l = live(roomId);
  const conn = l.conns.get(pc);
  if (!conn) return;
  l.conns.delete(pc);
  conn.session.close();
  conn.files.close();
  for (const [root, f] of state.files) {
    if (f.conn === conn && f.state === 'running') {
      f.state = 'idle';
      f.conn = null;
      fileChanged(root);
    }
  }
  pc.close();
  if (l.conns.size === 0) l.hint = t('offlineHint');
  if (conn.peer) notify('info', t('disconnected', { name: isolate(conn.peer.name) }));
  render();
}

function onSessionEvent(roomId, conn, ev) {
  const l = live(roomId);
  if (l.conns.get(conn.pc) !== conn) return;
  switch (ev.type) {
    case 'hello': {
      conn.peer = ev.peer;
      // The same peer connected again: the new connection replaces the old one.
      for (const other of [...l.conns.values()]) {
        if (other !== conn && other.peer && other.peer.id === ev.peer.id) dropConn(roomId, other.pc);
      }
      const r = roomMeta(roomId);
      r.peer = ev.peer;
      try {
        store.setRooms(state.rooms);
      } catch (err) {
        fail(err);
      }
      notify('info', t('connectedWith', { name: isolate(ev.peer.name) }));
      render();
      fetchMissing(roomId).catch(fail);
      break;
    }
    case 'added':
      // Pass what this peer brought on to the room's other peers.
      for (const other of l.conns.values()) {
        if (other !== conn) for (const e of ev.entries) other.session.publish(e);
      }
      for (const e of ev.entries) if (FILE_KINDS.has(e.kind)) fetchFile(roomId, e, conn).catch(fail);
      render();
      break;
    case 'acked': {
      const mine = ev.ids.filter((id) => !l.delivered.has(id) && (l.log.get(id) || {}).author === state.me.author);
      if (!mine.length) break;
      for (const id of mine) l.delivered.add(id);
      try {
        store.setDelivered(roomId, l.delivered);
      } catch (err) {
        fail(err);
      }
      render();
      break;
    }
    case 'refused':
      render();
      break;
    case 'peer-refused': {
      // The peer (the box, usually) keeps the connection but did not store some of our
      // entries: a quota (PROTOCOL.md §2). Said once per reason and connection.
      conn.refusedCodes = conn.refusedCodes || new Set();
      if (conn.refusedCodes.has(ev.code)) break;
      conn.refusedCodes.add(ev.code);
      const key = `peerRefused.${ev.code}`;
      const text = t(key, { name: isolate(conn.peer ? conn.peer.name : '') });
      notify('error', text !== key ? text : t('peerRefused.other', { name: isolate(conn.peer ? conn.peer.name : ''), code: ev.code }), `refused-${ev.code}`);
      break;
    }
    case 'error':
      fail(ev.error);
      break;
    case 'closed':
      dropConn(roomId, conn.pc);
      break;
    default:
  }
}

// ---------- the box (when the page is served by a ChatTorrent appliance) ----------

const BOX_HEADERS = { 'X-ChatTorrent': '1' };

/** Asks the box which rooms it keeps; state.box stays false where the page is not served
 * by an appliance (or an old one). */
async function loadBoxRooms() {
  try {
    // The box lists only the rooms this page's key wrote in, once the page proved it
    // holds that key (member.js); a page that did not prove sees none.
    if (!state.proven) state.proven = await proveMember(state.me, BOX_HEADERS).catch(() => false);
    if (state.proven && !state.activity) {
      state.activity = watchActivity((room) => {
        state.boxRecordingRoom = room;
        render();
      });
    }
    const res = await fetch('/api/rooms', { headers: BOX_HEADERS });
    if (!res.ok) return;
    const rooms = await res.json();
    if (!Array.isArray(rooms)) return;
    state.box = true;
    state.boxRooms = rooms.filter((r) => r && typeof r.id === 'string' && /^[0-9a-f]{32}$/.test(r.id) && typeof r.name === 'string');
    // Awaited: the page is ready once the box's parts are listed, so nothing above the
    // controls moves after that (a click aimed at a button then lands on it).
    await fetch('/api/box/status', { headers: BOX_HEADERS }).then((r) => (r.ok ? r.json() : [])).then((st) => {
      state.boxStatus = Array.isArray(st) ? st.filter((f) => f && typeof f.feature === 'string' && typeof f.detail === 'string') : [];
    }).catch(() => {});
  } catch {
    // not a box, or unreachable: the page works without it
  }
  render();
}

/** Asks the box for the addresses phones open it at: shown as text, the first IP address
 * (some Android versions do not resolve ".local") also as a QR code. */
async function loadBoxAddress() {
  try {
    const res = await fetch('/api/box/address');
    if (!res.ok) return;
    const { urls } = await res.json();
    if (!Array.isArray(urls)) return;
    state.boxURLs = urls.filter((u) => typeof u === 'string' && /^https:\/\/[^\s/]{1,200}$/.test(u)).slice(0, 8);
  } catch {
    return; // not a box: nothing to show
  }
  render();
}

const listKeys = new WeakMap();

/** Fills list with build()'s items, but only when key (what they show) changed: render()
 * runs on every event, and swapping a button for an identical new one under a finger (or a
 * test's click) loses the tap. Returns the number of items shown. */
function fillList(list, key, build) {
  if (listKeys.get(list) !== key) {
    list.replaceChildren(...build());
    listKeys.set(list, key);
  }
  return list.children.length;
}

function renderBoxAddress() {
  const urls = state.boxURLs || [];
  $('box-address').hidden = urls.length === 0;
  if (!urls.length) return;
  fillList($('box-urls'), JSON.stringify(urls), () => urls.map((u) => el('li', { class: 'box-url', text: u })));
  const qrURL = urls.find((u) => !u.includes('.local')) || urls[0];
  const img = $('box-qr');
  const src = `/api/box/qr.svg?url=${encodeURIComponent(qrURL)}`;
  if (img.getAttribute('src') !== src) img.src = src;
  img.alt = t('addressQR', { url: qrURL });
  img.dataset.url = qrURL;
}

/** Invites the box into a room: an offer goes to the box over HTTPS, its answer comes back
 * and is applied at once; the box then syncs like any peer and keeps the room. */
async function connectBox(roomId, join = true) {
  const r = roomMeta(roomId);
  const btn = $('keep-on-box');
  btn.disabled = true;
  btn.dataset.busy = '1';
  btn.textContent = t('boxConnecting');
  try {
    if (join) await ensureJoined(roomId);
    const offer = await makeOffer();
    const session = randomHex(16);
    const bytes = await encodeInvitation({
      role: 'offer', room: roomId, roomName: r.name, sdp: offer.sdp, session,
      peer: { id: state.me.author, name: state.me.name },
    });
    const res = await fetch('/api/rooms/connect', {
      method: 'POST', body: bytes, headers: { ...BOX_HEADERS, 'Content-Type': 'application/x-bittorrent' },
    });
    if (!res.ok) {
      const detail = await apiErrorText(res);
      offer.pc.close();
      throw Object.assign(new Error(detail), { code: 'box-failed' });
    }
    const buf = new Uint8Array(await res.arrayBuffer());
    const inv = await decodeInvitation(buf);
    if (inv.role !== 'answer' || inv.session !== session || inv.room !== roomId) {
      offer.pc.close();
      throw Object.assign(new Error('unexpected answer'), { code: 'box-failed' });
    }
    watch(roomId, offer.pc, offer.channel);
    await applyAnswer(offer.pc, inv.sdp);
    notify('info', t('boxKept'));
    // The box lists the room to this page once the page's entries reached it.
    loadBoxRooms();
    for (const ms of [1500, 5000]) setTimeout(loadBoxRooms, ms);
  } finally {
    btn.disabled = false;
    delete btn.dataset.busy;
    btn.textContent = t('keepOnBox');
  }
}

function boxHasMic() {
  return state.boxStatus.some((f) => f.feature === 'microphone' && f.ok);
}

const BOX_VOICE_SECONDS = 10;

/** Records a voice note on the box's microphone into the open room (the box must keep it). */
async function boxRecord(roomId) {
  const btn = $('box-record');
  btn.disabled = true;
  btn.dataset.busy = '1';
  btn.textContent = t('boxRecording', { n: BOX_VOICE_SECONDS });
  try {
    const res = await fetch(`/api/rooms/${roomId}/voice?seconds=${BOX_VOICE_SECONDS}`, { method: 'POST', headers: BOX_HEADERS });
    if (!res.ok) throw Object.assign(new Error(await apiErrorText(res)), { code: 'box-failed' });
  } finally {
    btn.disabled = false;
    delete btn.dataset.busy;
    btn.textContent = t('boxRecord');
  }
}

function featureName(f) {
  const names = (STRINGS[lang] || STRINGS.en).feature || {};
  return names[f] || f;
}

/** What the box says of one of its parts: why it is absent in this page's language when
 * the box gives a known reason code, else its own (English) words. */
function featureDetail(f) {
  if (f.ok || typeof f.code !== 'string') return f.detail;
  const key = `absent.${f.code}`;
  const s = t(key, { detail: f.detail });
  return s === key ? f.detail : s; // a code this page does not know
}

function renderBoxRooms() {
  const section = $('box');
  section.hidden = !state.box;
  if (!state.box) return;
  fillList($('box-status'), JSON.stringify([lang, state.boxStatus]), () => state.boxStatus.map((f) => el('li', { class: `box-feature${f.ok ? '' : ' absent'}`, 'data-feature': f.feature },
    el('span', { class: 'box-feature-name', text: featureName(f.feature) }),
    el('span', { class: 'box-feature-detail', title: f.detail, 'data-code': f.code || '', text: `${f.ok ? '✓' : '✗'} ${featureDetail(f)}` }))));
  const open = state.open;
  $('box-record').hidden = !(open && boxHasMic() && state.boxRooms.some((b) => b.id === open));
  // The box's microphone records into one of my rooms: every member's page says so.
  const rec = state.boxRecordingRoom && roomMeta(state.boxRecordingRoom);
  $('box-recording-now').hidden = !rec;
  setText($('box-recording-now'), rec ? t('boxRecordingNow', { room: isolate(rec.name) }) : '');
  const shown = fillList($('box-rooms'), JSON.stringify([lang, state.boxRooms]), () => state.boxRooms.map((b) => el('li', { class: 'box-room', 'data-room-id': b.id },
    el('span', { class: 'room-name', dir: 'auto', text: b.name }),
    el('span', { class: 'room-last', text: t('boxEntries', { n: b.entries || 0 }) }),
    el('button', { type: 'button', class: 'box-open', 'data-room-id': b.id, text: t('boxOpen') }),
    el('a', { class: 'button box-history', href: `/api/rooms/${b.id}/history.json`, download: `${safeFileName(b.name)}_history.json`, text: t('boxHistory') }),
    el('a', { class: 'button box-zip', href: `/api/rooms/${b.id}/history.zip`, download: `${safeFileName(b.name)}_history.zip`, text: t('boxZip') }))));
  $('box-empty').hidden = shown > 0;
}

/** Opens a room the box keeps: the room is made here and connected to the box, which
 * brings its history. */
async function openBoxRoom(id) {
  const b = state.boxRooms.find((x) => x.id === id);
  if (!b) return;
  addRoom(b.id, b.name);
  state.open = b.id;
  renderNow();
  // The box lists a room only to a key that wrote in it: this identity's entries come
  // back from the box, and a join written now would fork its chain.
  await connectBox(b.id, false);
}

/** The verifiable export (PROTOCOL.md §4), plus a list of the room's media. */
function historyData(roomId) {
  const r = roomMeta(roomId);
  const entries = live(roomId).log.entries();
  const media = [];
  for (const e of entries) {
    const m = FILE_KINDS.has(e.kind) ? metaOf(e) : null;
    if (m) media.push({ entry: e.id, kind: m.kind, name: m.name, type: m.type, size: m.size, root: m.root });
  }
  return { format: 'chattorrent-history', v: 1, room: { id: r.id, name: r.name }, exported: new Date().toISOString(), entries, media };
}

function exportHistory(roomId) {
  const r = roomMeta(roomId);
  const file = `${safeFileName(r.name)}_history.json`;
  download(file, JSON.stringify(historyData(roomId), null, 1), 'application/json');
  notify('info', t('historyExported', { file }));
}

/** The export with the media this page holds, as a zip: history.json and media/. */
async function exportWithMedia(roomId) {
  const r = roomMeta(roomId);
  const data = historyData(roomId);
  const files = [];
  const names = new Set();
  for (const m of data.media) {
    const blob = await state.media.blob(m.root);
    if (!blob) {
      m.included = false;
      continue;
    }
    const name = `media/${m.root.slice(0, 12)}-${safeFileName(m.name)}`;
    m.included = true;
    m.path = name;
    if (names.has(name)) continue; // the same file announced again: included once
    names.add(name);
    files.push({ name, blob });
  }
  files.unshift({ name: 'history.json', blob: new Blob([JSON.stringify(data, null, 1)]) });
  let z;
  try {
    z = await zip(files);
  } catch (err) {
    if (err instanceof ZipTooLarge) throw Object.assign(new Error('4 GiB'), { code: 'file-too-large' });
    throw err;
  }
  const file = `${safeFileName(r.name)}_history.zip`;
  download(file, z, 'application/zip');
  notify('info', t('historyExported', { file }));
}


// ---------- the drop box (the box lists offers; answers come back by SSE) ----------

async function apiErrorText(res) {
  try {
    const j = await res.json();
    // The box's codes this page knows, in its language; else the box's (English) words.
    const known = typeof j.code === 'string' ? t(`boxErr.${j.code}`) : '';
    if (known && known !== `boxErr.${j.code}`) return known;
    return j.error || j.code || res.statusText;
  } catch {
    return res.statusText;
  }
}

/** Follows the box's open offers (state.drop stays false without a drop box). Resolves at
 * the first list (or an error, or after DROP_FIRST_MS): the page counts as ready then, so
 * the list does not appear later and push the controls below it away from where a finger
 * (or a test) aims. */
function watchDrop() {
  if (typeof EventSource === 'undefined') return Promise.resolve();
  const es = new EventSource('/api/drop/events');
  let first;
  const shown = new Promise((resolve) => {
    first = resolve;
    setTimeout(resolve, DROP_FIRST_MS);
  });
  es.addEventListener('error', () => first());
  es.addEventListener('offers', (ev) => {
    first();
    let list;
    try {
      list = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!Array.isArray(list)) return;
    state.drop = true;
    state.dropOffers = list.filter((o) => o && /^[0-9a-f]{16}$/.test(o.id) && /^[0-9a-f]{32}$/.test(o.room)
      && typeof o.room_name === 'string' && typeof o.peer_name === 'string');
    render();
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) state.drop = false;
  };
  return shown;
}

const DROP_FIRST_MS = 10000; // a box under load; without a box the stream fails at once

function myDropIds() {
  return new Set([...state.pending.values()].filter((p) => p.drop).map((p) => p.drop.id));
}

/** Publishes the open room's newest unanswered offer on the box and waits for answers. */
async function publishOffer(roomId) {
  const p = [...state.pending.values()].filter((x) => x.room === roomId && !x.drop && !x.dropRetired).pop();
  if (!p) return;
  const res = await fetch('/api/drop/offers', {
    method: 'POST', body: p.bytes, headers: { ...BOX_HEADERS, 'Content-Type': 'application/x-bittorrent' },
  });
  if (!res.ok) throw Object.assign(new Error(await apiErrorText(res)), { code: 'box-failed' });
  const { id, token } = await res.json();
  p.drop = { id, token, es: null };
  const es = new EventSource(`/api/drop/offers/${id}/answers?token=${encodeURIComponent(token)}`);
  p.drop.es = es;
  es.addEventListener('answer', async (ev) => {
    try {
      // Anyone on the Wi-Fi may answer a published offer: the answer waits for its
      // person's Accept (decideDrop), shown with the sender's name and the safety code.
      const { id: answerId, bytes } = parseAnswerEvent(ev.data);
      const inv = await decodeInvitation(bytes);
      if (inv.role !== 'answer' || inv.session !== p.session) throw Object.assign(new Error('answer'), { code: 'wrong-room' });
      const code = await safetyCode(p.pc.localDescription.sdp, inv.sdp);
      const r = roomMeta(p.room);
      if (!state.pending.has(p.session) || !dropConsent.add({
        answerId, offerId: id, session: p.session, room: p.room, roomName: r ? r.name : inv.roomName, name: inv.peer.name, code, inv,
      })) return;
      notify('info', t('dropAskNotice', { name: isolate(inv.peer.name) }));
      render();
    } catch (err) {
      fail(err);
    }
  });
  es.addEventListener('gone', () => {
    es.close();
    dropConsent.dropOffer(id);
    render();
  });
  notify('info', t('dropPublished'));
  render();
}

const dropConsent = new ConsentList(); // answers waiting for Accept / Reject on this page
const dropWaits = new Map(); // room id → {name, code, state}: our answer sent through the box

/** The creator's verdict on an answer that came through the box: the box is told (it tells
 * the guest's page), and only an accepted answer is applied. A rejected one leaves the
 * offer published for the next answer. */
async function decideDrop(answerId, accept) {
  const item = dropConsent.remove(answerId);
  render();
  if (!item) return;
  const p = state.pending.get(item.session);
  if (!p || !p.drop || p.drop.id !== item.offerId) return; // answered or withdrawn meanwhile
  const res = await fetch(`/api/drop/offers/${item.offerId}/answers/${answerId}/${accept ? 'accept' : 'reject'}`, {
    method: 'POST', headers: { ...BOX_HEADERS, 'X-Drop-Token': p.drop.token },
  });
  if (!res.ok) throw Object.assign(new Error(await apiErrorText(res)), { code: 'box-failed' });
  if (!accept) {
    notify('info', t('dropRejectedByMe', { name: isolate(item.name) }));
    await replaceDropOffer(p);
    return;
  }
  dropConsent.dropOffer(item.offerId);
  await importAnswer(item.inv);
}

/** A rejected answerer holds the published offer's ICE credentials and can keep probing its
 * connection (a script need not close its side), and then the next guest never connects. So
 * a rejection withdraws that offer from the box and publishes a fresh one, with new
 * credentials, for the same room. The .torrent file saved before keeps its own offer. */
async function replaceDropOffer(p) {
  const old = p.drop;
  p.drop = null;
  p.dropRetired = true;
  if (old.es) old.es.close();
  dropConsent.dropOffer(old.id);
  const offer = await makeOffer();
  const session = randomHex(16);
  const r = roomMeta(p.room);
  const bytes = await encodeInvitation({
    role: 'offer', room: p.room, roomName: r ? r.name : '', sdp: offer.sdp, session,
    peer: { id: state.me.author, name: state.me.name },
  });
  watch(p.room, offer.pc, offer.channel);
  state.pending.set(session, { pc: offer.pc, channel: offer.channel, room: p.room, bytes, session });
  await publishOffer(p.room);
  await fetch(`/api/drop/offers/${old.id}`, { method: 'DELETE', headers: { ...BOX_HEADERS, 'X-Drop-Token': old.token } }).catch(() => {});
}

/** The guest's side: follows the creator's verdict on our answer. Rejected, or the offer
 * gone before a verdict: the waiting connection is closed and the page says so. */
function followVerdict(roomId, offerId, answerId, pc, name, code) {
  const w = { name, code, state: 'waiting' };
  dropWaits.set(roomId, w);
  const es = new EventSource(`/api/drop/offers/${offerId}/answers/${answerId}`);
  const end = (outcome) => {
    es.close();
    if (dropWaits.get(roomId) !== w || w.state !== 'waiting') return;
    if (outcome === 'accepted') {
      dropWaits.delete(roomId);
    } else if (pc.connectionState !== 'connected') {
      w.state = outcome;
      pc.close();
      const l = live(roomId);
      l.waiting = false;
      l.hint = t(outcome === 'rejected' ? 'dropRejected' : 'dropGone', { name: isolate(name) });
      notify('error', l.hint, `drop-${outcome}`);
    }
    render();
  };
  es.addEventListener('verdict', (ev) => end(ev.data === '"accepted"' ? 'accepted' : 'rejected'));
  es.addEventListener('gone', () => end('gone'));
  // A stream refused (the offer was accepted and withdrawn before we asked): nothing to
  // tell; the connection opens or not.
  es.addEventListener('error', () => {
    if (es.readyState === EventSource.CLOSED && dropWaits.get(roomId) === w) dropWaits.delete(roomId);
  });
}

function renderDropConsent() {
  const items = dropConsent.items;
  $('drop-consent').hidden = items.length === 0;
  fillList($('drop-answers'), JSON.stringify([lang, dropConsent.key()]), () => consentItems(document, items, t));
  const wait = $('drop-wait');
  const w = state.open && dropWaits.get(state.open);
  const l = w && state.live.get(state.open);
  if (w && w.state === 'waiting' && l && l.conns.size > 0) dropWaits.delete(state.open); // connected: the code is in #safety
  wait.hidden = !w || !dropWaits.has(state.open);
  if (!wait.hidden) fillWait(wait, w, t);
  $('publish-note').hidden = $('publish-offer').hidden;
}

function withdrawOffer(p) {
  if (!p.drop) return;
  if (p.drop.es) p.drop.es.close();
  fetch(`/api/drop/offers/${p.drop.id}`, { method: 'DELETE', headers: { ...BOX_HEADERS, 'X-Drop-Token': p.drop.token } }).catch(() => {});
}

async function joinDrop(id) {
  const res = await fetch(`/api/drop/offers/${id}/torrent`, { headers: BOX_HEADERS });
  if (!res.ok) throw Object.assign(new Error(await apiErrorText(res)), { code: 'box-failed' });
  const buf = new Uint8Array(await res.arrayBuffer());
  const inv = await decodeInvitation(buf);
  if (inv.role !== 'offer') throw new TorrentError('wrong-role');
  await importOffer(inv, id);
}

function renderDrop() {
  renderDropConsent();
  const section = $('drop');
  section.hidden = !state.drop;
  if (!state.drop) return;
  const mine = myDropIds();
  const offers = state.dropOffers.filter((o) => !mine.has(o.id));
  const shown = fillList($('drop-offers'), JSON.stringify([lang, offers]), () => offers.map((o) => el('li', { class: 'drop-offer', 'data-id': o.id },
    el('span', { class: 'room-name', dir: 'auto', text: o.room_name }),
    named('span', { class: 'room-last' }, 'dropBy', { name: o.peer_name }),
    el('button', { type: 'button', class: 'drop-join', 'data-id': o.id, text: t('dropJoin') }))));
  $('drop-empty').hidden = shown > 0;
  const open = state.open;
  const canPublish = !!open && [...state.pending.values()].some((x) => x.room === open && !x.drop);
  $('publish-offer').hidden = !canPublish;
  $('publish-note').hidden = !canPublish;
}

// ---------- files, images and voice notes (docs/PROTOCOL.md section 5) ----------

const DEFAULT_MAX_FILE_MB = 2048;
const MAX_VOICE_MS = 5 * 60 * 1000;

function maxFileBytes() {
  const mb = Number(store.get('max-file-mb', DEFAULT_MAX_FILE_MB));
  return (Number.isFinite(mb) && mb > 0 ? mb : DEFAULT_MAX_FILE_MB) * 1024 * 1024;
}

function formatBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

function formatDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function metaOf(e) {
  try {
    return parseMeta(e.kind, e.body);
  } catch {
    return null;
  }
}

/** The file root announced by an entry of the room, or null: only those are served. */
function announced(roomId, root) {
  for (const e of live(roomId).log.entries()) {
    if (FILE_KINDS.has(e.kind) && e.body.includes(root)) {
      const m = metaOf(e);
      if (m && m.root === root) return m;
    }
  }
  return null;
}

function fileState(root) {
  let f = state.files.get(root);
  if (!f) {
    f = { state: 'unknown', role: '', pieces: 0, total: 0, t0: 0, p0: 0, speed: 0, code: '', conn: null };
    state.files.set(root, f);
  }
  return f;
}

/** Learns from storage what this page holds of a file, once. */
async function loadFileState(root) {
  const f = fileState(root);
  if (f.state !== 'unknown') return f;
  const info = await state.media.info(root);
  if (f.state !== 'unknown') return f;
  if (!info) f.state = 'idle';
  else if (info.complete) f.state = 'complete';
  else f.state = info.cancelled ? 'cancelled' : 'idle';
  fileChanged(root);
  return f;
}

/** Fetches a file announced by entry e from conn (or any connected peer). */
async function fetchFile(roomId, e, conn, manual = false) {
  const meta = metaOf(e);
  if (!meta) return;
  const f = await loadFileState(meta.root);
  if (f.state === 'complete' || f.state === 'running' || f.state === 'preparing') return;
  if (!manual && (f.state === 'cancelled' || meta.size > maxFileBytes())) {
    if (meta.size > maxFileBytes() && f.state !== 'cancelled') {
      f.state = 'too-big';
      fileChanged(meta.root);
    }
    return;
  }
  const l = live(roomId);
  const conns = [...l.conns.values()].filter((c) => c.peer);
  const first = conn && conn.peer ? conn : conns[0];
  if (!first) {
    f.state = 'waiting';
    fileChanged(meta.root);
    return;
  }
  f.tried = new Set([first]);
  f.roomId = roomId;
  f.entry = e;
  startFetch(meta, f, first);
}

function startFetch(meta, f, conn) {
  Object.assign(f, { state: 'running', role: 'recv', conn, t0: performance.now(), p0: -1, speed: 0, code: '', tStart: performance.now() });
  fileChanged(meta.root);
  wakeLock();
  conn.files.fetch(meta).catch((err) => {
    f.state = 'error';
    f.code = err && err.code ? err.code : 'failed';
    fileChanged(meta.root);
    if (err && err.code === 'storage-full') notify('error', t('err.storage-full'), 'storage-full');
    else if (err && err.code === 'storage-error') notify('error', t('err.storage-error', { detail: err.message }), 'storage-error');
  });
}

/** After a connection: fetch every announced file this page lacks (resuming cut ones). */
async function fetchMissing(roomId) {
  for (const e of live(roomId).log.entries()) {
    if (FILE_KINDS.has(e.kind)) await fetchFile(roomId, e, null);
  }
}

function onFileProgress(roomId, conn, p) {
  const f = fileState(p.root);
  const now = performance.now();
  if (p.role === 'send') {
    if (f.role === 'recv' && f.state !== 'complete') return;
    if (p.state === 'running' && (f.sendState !== 'running' || p.pieces < (f.sendPieces || 0))) {
      f.sendT0 = now; // a new transfer to a peer
      f.sendP0 = p.pieces;
    }
    f.sendPieces = p.pieces;
    f.sendTotal = p.total;
    f.sendState = p.state;
    const secs = (now - (f.sendT0 || now)) / 1000;
    f.sendSpeed = secs > 0.2 ? ((p.pieces - f.sendP0) * PIECE_SIZE) / secs : 0;
    f.sendConn = conn;
    fileChanged(p.root, true);
    return;
  }
  if (f.conn && f.conn !== conn) return;
  if (f.p0 < 0) {
    f.p0 = p.pieces;
    f.t0 = now;
  }
  f.pieces = p.pieces;
  f.total = p.total;
  const secs = (now - f.t0) / 1000;
  if (secs > 0.2) f.speed = ((p.pieces - f.p0) * PIECE_SIZE) / secs;
  if (p.state === 'running') {
    fileChanged(p.root, true);
    return;
  }
  if (p.state === 'nope' && f.entry) {
    // This peer does not hold it: try another one of the room's peers.
    const next = [...live(roomId).conns.values()].find((c) => c.peer && !f.tried.has(c));
    if (next) {
      f.tried.add(next);
      startFetch(metaOf(f.entry), f, next);
      return;
    }
    f.state = 'waiting';
  } else {
    f.state = p.state === 'error' ? 'error' : p.state;
    f.code = p.code || '';
    if (f.state === 'complete') f.ms = performance.now() - f.tStart;
    if (f.code === 'storage-full') notify('error', t('err.storage-full'), 'storage-full');
    else if (f.code === 'storage-error') notify('error', t('err.storage-error', { detail: p.detail || '' }), 'storage-error');
  }
  f.conn = null;
  fileChanged(p.root);
  wakeLock();
}

/** A file's state changed: its message is drawn again (progress only: updated in place). */
function fileChanged(root, progressOnly = false) {
  const f = state.files.get(root);
  if (progressOnly && f) {
    for (const n of document.querySelectorAll('.file')) if (n.dataset.root === root) updateProgress(n, f);
    return;
  }
  for (const [id, r] of rendered) if (r.root === root) rendered.delete(id);
  render();
}

function updateProgress(n, f) {
  const bar = n.querySelector('.file-bar');
  const stats = n.querySelector('.file-stats');
  if (f.state === 'running' && f.role === 'recv' && bar && stats) {
    const size = Number(n.dataset.size);
    const done = Math.min(size, f.pieces * PIECE_SIZE);
    const pct = size ? Math.floor((100 * done) / size) : 0;
    bar.max = size;
    bar.value = done;
    const eta = f.speed > 0 ? formatDuration(((size - done) / f.speed) * 1000) : '…';
    stats.textContent = t('fileStats', { pct, done: formatBytes(done), total: formatBytes(size), speed: formatBytes(f.speed), eta });
  }
  // The sender's side: what the receiver has verified so far (its got messages).
  const sending = n.querySelector('.file-sending');
  if (sending && f.sendTotal) {
    const size = Number(n.dataset.size);
    const running = f.sendState === 'running';
    sending.hidden = f.sendState === 'complete';
    const done = Math.min(size, f.sendPieces * PIECE_SIZE);
    const pct = Math.floor((100 * f.sendPieces) / f.sendTotal);
    const [note, sbar, sstats, scancel] = sending.children;
    note.textContent = f.sendState === 'cancelled' ? t('fileCancelled') : t('fileSending', { pct });
    sbar.hidden = !running;
    sbar.max = size;
    sbar.value = done;
    sstats.hidden = !running;
    const eta = f.sendSpeed > 0 ? formatDuration(((size - done) / f.sendSpeed) * 1000) : '…';
    sstats.textContent = t('fileStats', { pct, done: formatBytes(done), total: formatBytes(size), speed: formatBytes(f.sendSpeed || 0), eta });
    scancel.hidden = !running;
  }
}

/** A blob: URL for a held file. Its type comes from the allow-list (safeBlobType), never
 * from the peer as it is: a text/html or SVG blob would open as a page at the box's origin. */
async function fileURL(root, type, kind) {
  if (state.urls.has(root)) return state.urls.get(root);
  const blob = await state.media.blob(root);
  if (!blob) return null;
  const url = URL.createObjectURL(new Blob([blob], { type: safeBlobType(type, kind) }));
  state.urls.set(root, url);
  return url;
}

function renderFile(e, meta, mine) {
  const f = fileState(meta.root);
  if (f.state === 'unknown') loadFileState(meta.root).catch(fail);
  const box = el('div', { class: 'file', 'data-root': meta.root, 'data-size': String(meta.size), 'data-state': f.state });
  const url = state.urls.get(meta.root);
  if (f.state === 'complete' && !url) {
    fileURL(meta.root, meta.type, meta.kind).then((u) => u && fileChanged(meta.root));
  }
  if (f.state === 'complete' && url) {
    // Only allow-listed types are shown or opened in a tab; anything else (text/html, SVG,
    // a type that does not fit the kind) is a download link.
    const inline = opensInline(meta.type, meta.kind);
    if (meta.kind === 'image' && inline) {
      box.append(el('a', { class: 'file-open', href: url, target: '_blank', rel: 'noopener', title: t('fileOpen') },
        el('img', { class: 'msg-image', src: url, alt: meta.name })));
    } else if (meta.kind === 'voice' && inline) {
      box.append(el('span', { class: 'file-note', text: t('voiceLabel', { time: formatDuration(meta.duration || 0) }) }));
      const audio = el('audio', { class: 'msg-audio', controls: true, preload: 'metadata', src: url });
      if (audio.canPlayType(meta.type.split(';')[0]) === '' && audio.canPlayType(meta.type) === '') {
        box.append(el('p', { class: 'file-note voice-unplayable', text: t('voiceUnplayable', { type: meta.type }) }));
      } else box.append(audio);
    }
    box.append(el('div', { class: 'file-row' },
      meta.kind === 'image' && inline ? null : el('span', { class: 'file-name', dir: 'auto', text: `${isolate(meta.name)} · ${formatBytes(meta.size)}` }),
      el('a', { class: 'button file-save', href: url, download: meta.name, text: t('fileSave') })));
    if (mine) {
      box.append(el('div', { class: 'file-sending', hidden: true },
        el('span', { class: 'file-note' }), el('progress', { class: 'file-bar', hidden: true }),
        el('span', { class: 'file-stats', hidden: true }),
        el('button', { type: 'button', class: 'file-cancel-send', 'data-root': meta.root, hidden: true, text: t('fileCancel') })));
    }
  } else {
    box.append(el('span', { class: 'file-name', dir: 'auto', text: `${meta.kind === 'voice' ? t('voiceLabel', { time: formatDuration(meta.duration || 0) }) : isolate(meta.name)} · ${formatBytes(meta.size)}` }));
    if (f.state === 'running' || f.state === 'preparing') {
      box.append(el('progress', { class: 'file-bar', max: meta.size, value: 0 }),
        el('div', { class: 'file-row' }, el('span', { class: 'file-stats', text: '…' }),
          f.state === 'running' ? el('button', { type: 'button', class: 'file-cancel', 'data-root': meta.root, text: t('fileCancel') }) : null));
    } else {
      const note = { cancelled: t('fileCancelled'), waiting: t('fileWaiting'), error: f.code === 'storage-full' ? t('err.storage-full') : t('fileFailed', { code: f.code }),
        'too-big': t('fileTooBig', { max: formatBytes(maxFileBytes()) }) }[f.state];
      if (note) box.append(el('span', { class: 'file-note', text: note }));
      if (['cancelled', 'waiting', 'error', 'too-big', 'idle'].includes(f.state)) {
        box.append(el('button', { type: 'button', class: 'file-fetch', 'data-root': meta.root, 'data-id': e.id, text: t('fileFetch') }));
      }
    }
  }
  queueMicrotask(() => updateProgress(box, f));
  return box;
}

/** Cancels a running transfer of root on both sides. */
async function cancelFile(root) {
  const f = fileState(root);
  if (f.conn) await f.conn.files.cancel(root);
  f.state = 'cancelled';
  f.conn = null;
  fileChanged(root);
  wakeLock();
}

async function sendFiles(list, kindOf = (file) => (opensInline(file.type, 'image') ? 'image' : 'file'), extra = {}) {
  const roomId = state.open;
  if (!roomId) return;
  for (const file of list) {
    if (file.size === 0) throw Object.assign(new Error('empty'), { code: 'file-empty' });
    if (file.size > maxFileBytes()) throw Object.assign(new Error(formatBytes(maxFileBytes())), { code: 'file-too-large' });
    const name = cleanName(file.name);
    notify('info', t('filePreparing', { name, pct: 0 }));
    const root = await state.media.addLocal(file, (done) => {
      notify('info', t('filePreparing', { name, pct: Math.floor((100 * done) / file.size) }));
    });
    const meta = { kind: kindOf(file), root, size: file.size, name, type: (file.type || '').slice(0, 127), ...extra };
    const f = fileState(root);
    f.state = 'complete';
    f.role = 'local';
    await write(roomId, meta.kind, metaBody(meta));
    $('notice').hidden = true;
    render();
  }
}

// Voice notes: MediaRecorder in a format the other phones can play where it is offered.
const recorder = { rec: null, chunks: [], started: 0, timer: 0, stream: null };

function voiceType() {
  if (typeof MediaRecorder === 'undefined') return null;
  return ['audio/mp4', 'audio/webm;codecs=opus', 'audio/webm', 'audio/ogg;codecs=opus'].find((x) => MediaRecorder.isTypeSupported(x)) || '';
}

async function toggleRecording() {
  const btn = $('record');
  if (recorder.rec) {
    recorder.rec.stop();
    return;
  }
  const type = voiceType();
  if (type === null) throw Object.assign(new Error('MediaRecorder'), { code: 'no-mic' });
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    throw Object.assign(new Error(err && err.message ? err.message : String(err)), { code: 'no-mic' });
  }
  const rec = new MediaRecorder(stream, type ? { mimeType: type } : {});
  Object.assign(recorder, { rec, chunks: [], started: performance.now(), stream });
  rec.ondataavailable = (ev) => {
    if (ev.data && ev.data.size) recorder.chunks.push(ev.data);
  };
  rec.onstop = () => {
    const ms = Math.round(performance.now() - recorder.started);
    clearInterval(recorder.timer);
    for (const tr of stream.getTracks()) tr.stop();
    recorder.rec = null;
    delete btn.dataset.recording; // (CSS shows the microphone icon again)
    $('record-time').textContent = '';
    btn.setAttribute('aria-label', t('record'));
    const mime = (rec.mimeType || type || 'audio/webm').split(';')[0];
    const ext = mime.includes('mp4') ? 'm4a' : mime.includes('ogg') ? 'ogg' : 'webm';
    const blob = new Blob(recorder.chunks, { type: mime });
    const name = `voice-${new Date().toISOString().replace(/[:.]/g, '-')}.${ext}`;
    const file = new File([blob], name, { type: mime });
    sendFiles([file], () => 'voice', { duration: ms }).catch(fail);
  };
  rec.start(1000);
  btn.dataset.recording = '1';
  const tick = () => {
    const ms = performance.now() - recorder.started;
    setText($('record-time'), formatDuration(ms)); // beside the stop icon (data-recording)
    btn.setAttribute('aria-label', t('recordStop', { time: formatDuration(ms) }));
    if (ms >= MAX_VOICE_MS && recorder.rec) recorder.rec.stop();
  };
  tick();
  recorder.timer = setInterval(tick, 500);
}

// Keep the screen on while a transfer runs, where the browser offers it.
let lock = null;
async function wakeLock() {
  const busy = [...state.files.values()].some((f) => f.state === 'running');
  try {
    if (busy && !lock && navigator.wakeLock) {
      lock = await navigator.wakeLock.request('screen');
      lock.addEventListener('release', () => {
        lock = null;
      });
    } else if (!busy && lock) {
      await lock.release();
      lock = null;
    }
  } catch {
    // not offered, or the page is hidden
  }
}

// ---------- rendering ----------

function applyStrings() {
  document.documentElement.lang = lang;
  for (const n of document.querySelectorAll('[data-i18n]')) {
    if (!n.dataset.busy) n.textContent = t(n.dataset.i18n);
  }
  for (const n of document.querySelectorAll('[data-i18n-placeholder]')) n.placeholder = t(n.dataset.i18nPlaceholder);
  for (const n of document.querySelectorAll('[data-i18n-label]')) n.setAttribute('aria-label', t(n.dataset.i18nLabel));
  $('lang').value = lang;
}

function lastText(roomId) {
  const h = live(roomId).log;
  const es = h.entries();
  for (let i = es.length - 1; i >= 0; i--) {
    const who = es[i].author === state.me.author ? t('lastYou') : `${isolate(es[i].name)}: `;
    if (es[i].kind === 'text') return who + es[i].body.slice(0, 80);
    if (FILE_KINDS.has(es[i].kind)) {
      const m = metaOf(es[i]);
      if (m) return who + (m.kind === 'voice' ? t('voiceLabel', { time: formatDuration(m.duration || 0) }) : isolate(m.name));
    }
  }
  return '';
}

// Room items are kept and updated in place: replacing them under a finger (renders come
// every few ms during a sync) would lose the tap.
const roomItems = new Map(); // room id → li

function setText(n, text) {
  if (n.textContent !== text) n.textContent = text;
}

function renderRooms() {
  const ul = $('rooms');
  const items = [...state.rooms].sort((a, b) => b.created - a.created).map((r) => {
    const status = roomStatus(live(r.id));
    let li = roomItems.get(r.id);
    if (!li) {
      li = el('li', { class: 'room-item', 'data-room-id': r.id, tabIndex: 0, role: 'button' },
        el('span', { class: 'room-name', dir: 'auto' }), el('span', { class: 'room-status' }), el('span', { class: 'room-last' }));
      roomItems.set(r.id, li);
    }
    li.classList.toggle('active', state.open === r.id);
    const [name, st, last] = li.children;
    setText(name, r.name);
    st.dataset.state = status;
    setText(st, t(status));
    setText(last, lastText(r.id));
    return li;
  });
  if (items.length !== ul.children.length || items.some((li, i) => ul.children[i] !== li)) ul.replaceChildren(...items);
  $('rooms-empty').hidden = state.rooms.length > 0;
}

// Formatters are costly to make: one per language.
const formats = new Map();
function formatTime(ts, withDay) {
  const key = `${lang}:${withDay}`;
  let f = formats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(lang, withDay ? { hour: '2-digit', minute: '2-digit', day: 'numeric', month: 'short' } : { hour: '2-digit', minute: '2-digit' });
    formats.set(key, f);
  }
  return f.format(ts);
}

// Rendered messages, reused while nothing they show has changed.
const rendered = new Map(); // entry id → {key, li}
let shownNodes = []; // the message nodes now in #messages, in order

function renderMessage(e, l) {
  const mine = e.author === state.me.author;
  const st = mine ? (l.delivered.has(e.id) ? 'delivered' : 'sent') : '';
  const forked = l.log.forked(e.author);
  const meta = FILE_KINDS.has(e.kind) ? metaOf(e) : null;
  const fstate = meta ? `${fileState(meta.root).state}|${state.urls.has(meta.root)}` : '';
  const key = `${lang}|${st}|${forked}|${mine ? state.me.name : ''}|${fstate}`;
  const hit = rendered.get(e.id);
  if (hit && hit.key === key) return hit.li;
  const iso = new Date(e.ts).toISOString();
  let li;
  if (e.kind === 'join') {
    li = el('li', { class: 'msg system', 'data-id': e.id, 'data-author': e.author },
      named('span', { class: 'msg-body' }, 'joined', { name: e.name }),
      el('time', { class: 'msg-time', datetime: iso, text: formatTime(e.ts, false) }));
  } else {
    const head = el('div', { class: 'msg-head' },
      el('span', { class: 'msg-author', dir: 'auto', text: mine ? state.me.name : e.name }),
      el('span', { class: 'msg-fp', 'data-author': e.author, text: fp(e.author) }),
      forked ? el('span', { class: 'msg-forked', title: t('forkedTitle'), text: t('forked') }) : null);
    const known = KNOWN_KINDS.has(e.kind);
    const body = meta ? renderFile(e, meta, mine)
      : el('p', { class: `msg-body${known ? '' : ' unsupported'}`, text: known ? e.body : t('unsupported') });
    const foot = el('div', { class: 'msg-foot' }, el('time', { class: 'msg-time', datetime: iso, text: formatTime(e.ts, true) }));
    if (mine) {
      foot.append(el('span', { class: 'msg-state', 'data-state': st, title: t(st), 'aria-label': t(st), text: st === 'delivered' ? '✓✓' : '✓' }));
    }
    li = el('li', { class: `msg${mine ? ' mine' : ''}`, 'data-id': e.id, 'data-author': e.author }, head, body, foot);
  }
  rendered.set(e.id, { key, li, root: meta ? meta.root : '' });
  return li;
}

function renderRoom() {
  const panel = $('room');
  const id = state.open;
  document.body.classList.toggle('in-room', !!id);
  if (!id || !roomMeta(id)) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  const r = roomMeta(id);
  const l = live(id);
  $('room-title').textContent = r.name;
  $('room-title').dir = 'auto';
  const st = $('room-status');
  const status = roomStatus(l);
  st.dataset.state = status;
  st.textContent = t(status);
  const peers = [...l.conns.values()].filter((c) => c.peer);
  const names = peers.length ? peers.map((c) => isolate(c.peer.name)).join(', ') : r.peer ? isolate(r.peer.name) : '';
  $('room-peer').textContent = names ? t('with', { name: names }) : '';
  const codes = peers.filter((c) => c.safety);
  const safety = $('safety');
  safety.hidden = codes.length === 0;
  safety.textContent = codes.length === 1 ? t('safetyCode', { code: codes[0].safety })
    : codes.map((c) => `${isolate(c.peer.name)}: ${c.safety}`).join(' · ');
  safety.title = t('safetyTitle');
  const hint = $('room-hint');
  hint.textContent = l.hint;
  hint.hidden = !l.hint;
  $('room-import').hidden = !l.hint || l.hintImport !== l.hint;

  const ol = $('messages');
  const entries = l.log.entries();
  const stick = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 80 || ol.dataset.room !== id;
  ol.dataset.room = id;
  // Only the latest messages are in the DOM, so a long history never freezes the page.
  const shown = entries.slice(-l.shown);
  const nodes = shown.map((e) => renderMessage(e, l));
  if (rendered.size > 4 * nodes.length + 100) {
    const keep = new Set(shown.map((e) => e.id));
    for (const id of rendered.keys()) if (!keep.has(id)) rendered.delete(id);
  }
  const same = nodes.length === shownNodes.length && nodes.every((n, i) => shownNodes[i] === n);
  if (!same) {
    ol.replaceChildren(...nodes);
    shownNodes = nodes;
  }
  const earlier = $('show-earlier');
  earlier.hidden = shown.length === entries.length;
  earlier.textContent = t('showEarlier', { n: entries.length - shown.length });
  $('messages-empty').hidden = entries.length > 0;
  if (stick) ol.scrollTop = ol.scrollHeight;
}

function renderNow() {
  clearTimeout(renderTimer);
  renderTimer = 0;
  renderRooms();
  renderBoxRooms();
  renderBoxAddress();
  renderDrop();
  renderRoom();
  $('keep-on-box').hidden = !state.box;
}

/** Coalesces the renders of a burst of events (a sync delivers hundreds of entries). */
let renderTimer = 0;
function render() {
  if (!renderTimer) renderTimer = setTimeout(renderNow, 30);
}

// ---------- wiring ----------

function on(id, ev, fn) {
  $(id).addEventListener(ev, (e) => {
    Promise.resolve(fn(e)).catch(fail);
  });
}

/** Entries another tab of this browser stored in a room this page has open (the same person
 * writing in two tabs, or a peer connected to the other tab): into the log when they follow
 * it (files are not fetched: the other tab does), on to this tab's peers; the rest comes with
 * the next sync or reload. */
function fromOtherTab(roomId, entries) {
  const l = state.live.get(roomId);
  if (!l) return;
  const added = [];
  for (const e of entries) {
    try {
      if (l.log.checkChain(e)) {
        l.log.append(e);
        added.push(e);
      }
    } catch {
      // a gap or a fork: the sync sorts it out
    }
  }
  if (!added.length) return;
  for (const c of l.conns.values()) for (const e of added) c.session.publish(e); // as from a peer
  render();
}

/** Reads the histories of the rooms this page has not opened yet (IndexedDB is
 * asynchronous; a room's log is then built synchronously from them, so a room is listed in
 * state.rooms only once its history is read). */
async function loadHistories(rooms) {
  try {
    await entryStore.load(rooms.map((r) => r.id).filter((id) => !state.live.has(id)));
  } catch (err) {
    // The page still opens (rooms, files, connections); what it cannot store it says so.
    if (err instanceof StorageFullError) notify('error', t('err.storage-full'), 'storage-full');
    else {
      console.warn('chattorrent: history storage:', err);
      notify('error', t('err.storage-failed', { detail: err && err.message ? err.message : String(err) }), 'storage-failed');
    }
  }
}

/** Registers the service worker (sw.js) that lets the page open without the box. A
 * browser without one (Firefox's private windows, an insecure origin) goes on without. */
function registerWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js', { scope: '/', updateViaCache: 'none' }).catch((err) => {
    console.warn('chattorrent: no service worker, the page needs the box to open:', err && err.message ? err.message : err);
  });
}

/** Without Ed25519 (support.js) nothing works: the page shows which browsers it needs instead
 * of the app, in the chosen language, and starts nothing else (no key, no verify worker, no
 * connections), so there is nothing to fail and nothing in the console. */
function showUnsupported() {
  $('unsupported').hidden = false;
  document.querySelector('.layout').hidden = true;
  document.querySelector('.topbar .me').hidden = true;
  on('lang', 'change', () => {
    lang = $('lang').value === 'es' ? 'es' : 'en';
    t = translator(lang);
    store.setLang(lang);
    applyStrings();
  });
  document.body.dataset.unsupported = '1';
  document.body.dataset.ready = '1';
}

async function main() {
  registerWorker();
  applyStrings();
  if (!globalThis.crypto || !crypto.subtle) {
    notify('error', t('err.no-crypto'), 'no-crypto');
    return;
  }
  if (!(await hasEd25519())) {
    showUnsupported();
    return;
  }
  state.verify = workerVerifier();
  state.me = await loadIdentity();
  const rooms = store.rooms();
  await loadHistories(rooms);
  state.rooms = rooms;
  entryStore.onOther = fromOtherTab;
  $('my-name').value = state.me.name;
  fp(state.me.author);

  on('lang', 'change', () => {
    lang = $('lang').value === 'es' ? 'es' : 'en';
    t = translator(lang);
    store.setLang(lang);
    applyStrings();
    render();
  });
  on('my-name', 'change', () => {
    const name = cleanText($('my-name').value, MAX_NAME);
    if (!name) {
      $('my-name').value = state.me.name;
      return;
    }
    $('my-name').value = name;
    state.me.name = name;
    saveIdentity(state.me);
    render();
  });
  on('create-room', 'click', createRoom);
  on('new-room-name', 'keydown', (e) => {
    if (e.key === 'Enter') createRoom();
  });
  // The import button of the room list, and the one under the waiting room's hint.
  for (const [button, id] of [['import-button', 'import-file'], ['room-import', 'room-import-file']]) {
    on(button, 'keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        $(id).click();
      }
    });
    on(id, 'change', async () => {
      const input = $(id);
      const file = input.files && input.files[0];
      input.value = '';
      await importFile(file);
    });
  }
  on('rooms', 'click', (e) => {
    const li = e.target.closest('.room-item');
    if (!li) return;
    state.open = li.dataset.roomId;
    render();
    $('composer-input').focus();
  });
  on('rooms', 'keydown', (e) => {
    const li = e.target.closest('.room-item');
    if (li && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      state.open = li.dataset.roomId;
      render();
    }
  });
  on('back', 'click', () => {
    state.open = null;
    render();
  });
  on('reconnect', 'click', () => reconnect(state.open));
  on('show-earlier', 'click', () => {
    const ol = $('messages');
    const fromBottom = ol.scrollHeight - ol.scrollTop;
    live(state.open).shown += PAGE;
    renderNow();
    ol.scrollTop = ol.scrollHeight - fromBottom;
  });
  on('export-history', 'click', () => exportHistory(state.open));
  on('export-media', 'click', () => exportWithMedia(state.open));
  on('keep-on-box', 'click', () => connectBox(state.open));
  on('box-record', 'click', () => boxRecord(state.open));
  on('publish-offer', 'click', () => publishOffer(state.open));
  on('drop-answers', 'click', (e) => {
    const b = e.target.closest('.drop-accept, .drop-reject');
    if (b) return decideDrop(b.dataset.answerId, b.classList.contains('drop-accept'));
    return undefined;
  });
  on('drop-offers', 'click', (e) => {
    const b = e.target.closest('.drop-join');
    if (b) return joinDrop(b.dataset.id);
    return undefined;
  });
  on('box-rooms', 'click', (e) => {
    const b = e.target.closest('.box-open');
    if (b) return openBoxRoom(b.dataset.roomId);
    return undefined;
  });
  on('composer', 'submit', async (e) => {
    e.preventDefault();
    const input = $('composer-input');
    const body = input.value.trim();
    if (!body || !state.open) return;
    if (new TextEncoder().encode(body).length > 16384) {
      notify('error', t('err.bad-field', { field: 'body' }), 'too-large');
      return;
    }
    await write(state.open, 'text', body);
    input.value = '';
    render();
  });
  on('composer-input', 'keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
  });
  on('attach-file', 'change', async () => {
    const input = $('attach-file');
    const list = [...(input.files || [])];
    input.value = '';
    await sendFiles(list);
  });
  on('attach', 'keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      $('attach-file').click();
    }
  });
  on('record', 'click', toggleRecording);
  on('composer-input', 'paste', async (e) => {
    const list = [...((e.clipboardData && e.clipboardData.files) || [])];
    if (!list.length) return;
    e.preventDefault();
    await sendFiles(list);
  });
  const roomPanel = $('room');
  roomPanel.addEventListener('dragover', (e) => {
    if (e.dataTransfer && [...e.dataTransfer.types].includes('Files')) {
      e.preventDefault();
      roomPanel.classList.add('dropping');
    }
  });
  roomPanel.addEventListener('dragleave', () => roomPanel.classList.remove('dropping'));
  on('room', 'drop', async (e) => {
    roomPanel.classList.remove('dropping');
    const list = [...((e.dataTransfer && e.dataTransfer.files) || [])];
    if (!list.length) return;
    e.preventDefault();
    await sendFiles(list);
  });
  on('messages', 'click', async (e) => {
    const cancel = e.target.closest('.file-cancel');
    if (cancel) return cancelFile(cancel.dataset.root);
    const cancelSend = e.target.closest('.file-cancel-send');
    if (cancelSend) {
      // Stop sending this file to every peer of the room.
      for (const c of live(state.open).conns.values()) await c.files.cancel(cancelSend.dataset.root);
      const f = fileState(cancelSend.dataset.root);
      f.sendState = 'cancelled';
      fileChanged(cancelSend.dataset.root, true);
    }
    const fetchBtn = e.target.closest('.file-fetch');
    if (fetchBtn) {
      const entry = live(state.open).log.get(fetchBtn.dataset.id);
      if (entry) {
        await state.media.setCancelled(fetchBtn.dataset.root, false).catch(() => {});
        const f = fileState(fetchBtn.dataset.root);
        if (f.state !== 'running') f.state = 'idle';
        await fetchFile(state.open, entry, null, true);
      }
    }
    return undefined;
  });
  $('max-file-mb').value = String(Math.round(maxFileBytes() / 1048576));
  on('max-file-mb', 'change', () => {
    const mb = Math.floor(Number($('max-file-mb').value));
    if (!Number.isFinite(mb) || mb < 1) {
      $('max-file-mb').value = String(Math.round(maxFileBytes() / 1048576));
      return;
    }
    store.set('max-file-mb', mb);
    render();
  });
  on('identity-export', 'click', exportIdentity);
  on('identity-file', 'change', async () => {
    const input = $('identity-file');
    const file = input.files && input.files[0];
    input.value = '';
    if (file) await importIdentity(file);
  });
  window.addEventListener('storage', (e) => {
    // Another tab of this browser changed the rooms: show them.
    if (e.key && e.key.startsWith('chattorrent:v1:rooms')) {
      const rooms = store.rooms();
      loadHistories(rooms).then(() => {
        state.rooms = rooms;
        render();
      }, fail);
    }
  });
  renderNow();
  // Read-only counters for tests and curious people: what crossed on each connection.
  globalThis.chattorrentStats = () => [...state.live.values()].flatMap((l) => [...l.conns.values()].map((c) => ({
    peer: c.peer && c.peer.name, session: { ...c.session.stats }, files: { ...c.files.stats },
  })));
  globalThis.chattorrentStoredEntries = (room) => entryStore.count(room); // a Promise
  globalThis.chattorrentTransfers = () => [...state.files.entries()].map(([root, f]) => ({ root, state: f.state, pieces: f.pieces, ms: f.ms || 0 }));
  const dropShown = watchDrop();
  window.addEventListener('pagehide', () => {
    // Offers held by this page die with it: take them off the box's list.
    for (const p of state.pending.values()) {
      if (p.drop) fetch(`/api/drop/offers/${p.drop.id}`, { method: 'DELETE', keepalive: true, headers: { ...BOX_HEADERS, 'X-Drop-Token': p.drop.token } }).catch(() => {});
    }
  });
  const ownerShown = initOwner(() => t); // the box's owner panel (owner.js)
  await Promise.all([loadBoxRooms(), loadBoxAddress(), dropShown]);
  await ownerShown;
  document.body.dataset.ready = '1';
}

main().catch(fail);

