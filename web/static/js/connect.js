// Rooms and their peers: writing my entries, the seed's offer/answer flow through .torrent
// files (create, reconnect, import), and the life of each peer connection (a sync session
// and a FileLink per connection, docs/PROTOCOL.md). The box and the drop box reuse these.

import { signEntry } from './history.js';
import { makeOffer, makeAnswer, applyAnswer, safetyCode, takeEarly } from './rtc.js';
import { isolate } from './dropconsent.js';
import { Session } from './session.js';
import { FileLink } from './filelink.js';
import { FILE_KINDS } from './files.js';
import { cleanText } from './history.js';
import {
  MAX_TORRENT_BYTES, MAX_ROOM_NAME, TorrentError, encodeInvitation, decodeInvitation, invitationFileName,
} from './torrent.js';
import { state, store, entryStore, live, roomMeta, addRoom, setWaiting, toNewest } from './state.js';
import { render } from './render.js';
import { $, download } from './dom.js';
import { randomHex } from './format.js';
import { notify, fail } from './notices.js';
import { t } from './lang.js';
import { withdrawOffer } from './boxapi.js';
import { announced, fetchFile, fetchMissing, onFileProgress, connGone } from './transfers.js';

/** Writes one of my own entries: signed, stored, then sent if connected. */
export async function write(roomId, kind, body) {
  const l = live(roomId);
  return l.log.queue(async () => {
    const next = l.log.next(state.me.author);
    const e = await signEntry({ room: roomId, name: state.me.name, seq: next.seq, prev: next.prev, ts: Date.now(), kind, body }, state.me);
    await entryStore.append(roomId, [e]); // throws StorageFullError: nothing changed
    l.log.append(e);
    if (!l.view.add(e)) toNewest(roomId); // written while scrolled back: back to the newest
    for (const c of l.conns.values()) c.session.publish(e);
    return e;
  });
}

export async function ensureJoined(roomId) {
  const l = live(roomId);
  await l.ready;
  await l.log.queue(() => {}); // a join being written (a room just created) is seen
  if (!l.log.head(state.me.author)) await write(roomId, 'join', '');
}

/** A new offer for the room, followed (watch) and kept pending until its answer comes:
 * {offer, session, bytes} with bytes the .torrent file. */
export async function newOffer(roomId, roomName) {
  const offer = await makeOffer();
  const session = randomHex(16);
  const bytes = await encodeInvitation({
    role: 'offer', room: roomId, roomName, sdp: offer.sdp, session,
    peer: { id: state.me.author, name: state.me.name },
  });
  return { offer, session, bytes };
}

export function keepPending(roomId, { offer, session, bytes }) {
  watch(roomId, offer.pc, offer.channel);
  state.pending.set(session, { pc: offer.pc, channel: offer.channel, room: roomId, bytes, session });
}

export async function createRoom() {
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
    const o = await newOffer(id, name);
    addRoom(id, name);
    await ensureJoined(id);
    keepPending(id, o);
    const file = invitationFileName(name, 'offer');
    download(file, o.bytes, 'application/x-bittorrent');
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
export async function reconnect(roomId) {
  const r = roomMeta(roomId);
  const btn = $('reconnect');
  btn.disabled = true;
  btn.dataset.busy = '1';
  setLabel(btn, t('preparing'));
  try {
    const o = await newOffer(roomId, r.name);
    keepPending(roomId, o);
    const file = invitationFileName(r.name, 'offer');
    download(file, o.bytes, 'application/x-bittorrent');
    setWaiting(roomId, t('afterOffer', { file }), true);
    notify('info', t('afterOffer', { file }));
  } catch (err) {
    fail(err);
  } finally {
    btn.disabled = false;
    delete btn.dataset.busy;
    setLabel(btn, t('reconnect'));
  }
}

/** A button's words: its .label child when it has an icon beside them, else its text. */
export function setLabel(btn, text) {
  const label = btn.querySelector('.label');
  (label || btn).textContent = text;
}

/** A .torrent file the person chose: an offer is answered, an answer applied. */
export async function importFile(file) {
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

/** Answers an offer: the room is made here and followed; {ans, bytes} with bytes the
 * answer's .torrent file. */
export async function answerOffer(inv) {
  if (state.pending.has(inv.session) || state.used.has(inv.session) || inv.peer.id === state.me.author) {
    throw Object.assign(new Error('own offer'), { code: 'own-offer' });
  }
  const ans = await makeAnswer(inv.sdp);
  keepAlive(ans.pc);
  const bytes = await encodeInvitation({
    role: 'answer', room: inv.room, roomName: inv.roomName, sdp: ans.sdp, session: inv.session,
    peer: { id: state.me.author, name: state.me.name },
  });
  const r = addRoom(inv.room, inv.roomName);
  r.peer = { id: inv.peer.id, name: inv.peer.name };
  store.setRooms(state.rooms);
  await ensureJoined(inv.room);
  ans.channel.then((ch) => watch(inv.room, ans.pc, ch));
  return { ans, bytes };
}

async function importOffer(inv) {
  const { bytes } = await answerOffer(inv);
  const file = invitationFileName(inv.roomName, 'answer');
  download(file, bytes, 'application/x-bittorrent');
  state.open = inv.room;
  setWaiting(inv.room, t('afterAnswer', { file }));
  notify('info', t('afterAnswer', { file }));
}

export async function importAnswer(inv) {
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
export function watch(roomId, pc, channel) {
  keepAlive(pc);
  const opened = () => startSession(roomId, pc, channel);
  if (channel.readyState === 'open') opened();
  else channel.addEventListener('open', opened, { once: true });
  pc.addEventListener('connectionstatechange', () => {
    if (['failed', 'closed'].includes(pc.connectionState)) dropConn(roomId, pc);
  });
}

/** Gecko collects, and so closes, an RTCPeerConnection nothing refers to (its own
 * listeners do not count): an answerer's connection before its channel arrives, an
 * offerer's between the answer and the channel's opening. The page holds each here until
 * its session starts (then the room's conns hold it) or it fails. */
function keepAlive(pc) {
  if (state.connecting.has(pc)) return;
  state.connecting.add(pc);
  pc.addEventListener('connectionstatechange', () => {
    if (!['failed', 'closed'].includes(pc.connectionState) || !state.connecting.has(pc)) return;
    state.connecting.delete(pc);
    // Never connected: say so, instead of "connecting…" for ever.
    if (pc.connectionState === 'failed') notify('error', t('err.connect-failed'), 'connect-failed');
  });
}

function startSession(roomId, pc, channel) {
  state.connecting.delete(pc);
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
  connGone(conn);
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
      for (const e of ev.entries) {
        l.view.add(e);
        if (FILE_KINDS.has(e.kind)) fetchFile(roomId, e, conn).catch(fail);
      }
      render();
      break;
    case 'acked':
      markDelivered(roomId, ev.ids).catch(fail);
      break;
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

/** Entries another tab of this browser stored in a room this page has open (the same person
 * writing in two tabs, or a peer connected to the other tab): into the log when they follow
 * it (files are not fetched: the other tab does), on to this tab's peers; the rest comes with
 * the next sync or reload. */
export function fromOtherTab(roomId, entries) {
  const l = state.live.get(roomId);
  if (!l) return;
  l.log.queue(async () => {
    const known = await l.log.known(entries);
    const added = [];
    for (const e of entries) {
      try {
        if (l.log.checkChain(e, known)) {
          l.log.append(e);
          l.view.add(e);
          added.push(e);
        }
      } catch {
        // a gap or a fork: the sync sorts it out
      }
    }
    if (!added.length) return;
    for (const c of l.conns.values()) for (const e of added) c.session.publish(e); // as from a peer
    render();
  }).catch(fail);
}

/** A peer acknowledged entries: mine among them are marked delivered (read from the
 * window, else from storage: the page does not hold the room). */
async function markDelivered(roomId, ids) {
  const l = live(roomId);
  if (!ids.length) return;
  const got = [];
  const rest = [];
  for (const id of ids) {
    const e = l.view.get(id);
    if (e) got.push(e);
    else rest.push(id);
  }
  if (rest.length) {
    const e = await entryStore.newestOf(roomId, state.me.author, rest);
    if (e) got.push(e);
  }
  if (!l.delivered.take(got, state.me.author)) return;
  try {
    store.setDelivered(roomId, l.delivered);
  } catch (err) {
    fail(err);
  }
  render();
}
