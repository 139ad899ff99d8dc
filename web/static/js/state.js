// The page's state: the one mutable bag (state), the stores it is kept in, and the small
// accessors every feature shares (a room's metadata, its live log and connections, its
// status, a file's transfer record). Features change it and call render() (render.js).

import { Storage } from './storage.js';
import { EntryStore } from './entries.js';
import { Log } from './history.js';
import { EntryWindow } from './window.js';
import { IndexedMedia } from './media.js';
import { render } from './render.js';

export const store = new Storage(); // localStorage: rooms, identity, settings
export const entryStore = new EntryStore(store); // IndexedDB: the rooms' entries

export const state = {
  me: null, // {author, name, privateKey}
  rooms: [], // stored room metadata: {id, name, created, peer: {id, name} | null}
  live: new Map(), // room id → live(): {log, view, ready, delivered, waiting, conns, hint, hintImport}
  pending: new Map(), // offer session → {pc, channel, room, bytes, session, drop}
  used: new Set(), // offer sessions already answered and applied
  connecting: new Set(), // peer connections whose session has not started (connect.js keepAlive)
  open: null, // the room shown
  fps: new Map(), // author → fingerprint
  verify: null, // checks entries from peers off the main thread
  box: false, // the page is served by an appliance that can join rooms
  proven: false, // the box knows this page holds its key (member.js)
  activity: null, // the box's activity stream (member.js), once proven
  boxRecordingRoom: '', // a room of mine the box's microphone records into now
  boxRooms: [], // rooms the box keeps: {id, name, entries, last_ts}
  boxStatus: [], // the box's hardware: {feature, ok, detail}
  boxURLs: [], // addresses phones open the box at (text and QR code)
  drop: false, // the box has a drop box for offers
  dropOffers: [], // open offers on it: {id, room, room_name, peer_name, created, expires}
  media: new IndexedMedia(),
  files: new Map(), // root → fileState(): a file's transfer record
  urls: new Map(), // root → object URL of a complete file
};

export function roomMeta(id) {
  return state.rooms.find((r) => r.id === id);
}

/** A room's live part: its log (each author's head; the entries stay in IndexedDB), the
 * window of entries the page shows (view), what peers acknowledged, its connections. ready
 * settles once the heads and the newest page are read. */
export function live(id) {
  let l = state.live.get(id);
  if (!l) {
    const log = Log.open(id, entryStore.source(id));
    const view = new EntryWindow();
    l = {
      log,
      view,
      // Queued on the log: nothing is appended between the read and the window's start.
      ready: log.queue(() => readNewest(id, log, view)),
      delivered: store.delivered(id),
      waiting: false, // an offer or answer of ours is out
      conns: new Map(), // RTCPeerConnection → {pc, session, peer, safety}: a room can have several peers
      hint: '',
      hintImport: '', // the hint when it names the import button (setWaiting)
    };
    state.live.set(id, l);
    if (l.delivered.legacy.size) l.ready.then(() => foldDelivered(id, l)).catch((err) => console.warn('chattorrent: delivered marks:', err));
  }
  return l;
}

/** Folds the delivered ids an earlier page kept into one seq (storage.js Delivered). */
async function foldDelivered(id, l) {
  if (!state.me) return;
  const e = await entryStore.newestOf(id, state.me.author, [...l.delivered.legacy], Infinity);
  l.delivered.fold(e ? [e] : [], state.me.author);
  store.setDelivered(id, l.delivered);
  render();
}

async function readNewest(id, log, view) {
  const p = await entryStore.page(id, { n: view.page });
  view.reset(p.entries, p.more, log.size);
  render();
}

/** Brings the room's window back to its newest entries (a room opened again, a message
 * written while the window was scrolled back). */
export function toNewest(id) {
  const l = live(id);
  if (l.view.loaded && !l.view.atEnd) l.ready = l.log.queue(() => readNewest(id, l.log, l.view));
  return l.ready;
}

export function addRoom(id, name) {
  let r = roomMeta(id);
  if (!r) {
    r = { id, name, created: Date.now(), peer: null };
    store.setRooms([...state.rooms, r]);
    state.rooms.push(r);
  }
  return r;
}

/** connected while any peer is (once it said who it is: the status and "Connected with …"
 * change together, nothing moves under a finger between them), waiting while an offer or
 * answer of ours is out. */
export function roomStatus(l) {
  for (const c of l.conns.values()) if (c.peer) return 'connected';
  return l.waiting ? 'waiting' : 'offline';
}

export function setWaiting(roomId, hint, importHere = false) {
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

/** A file's transfer record: state unknown|idle|waiting|preparing|running|complete|
 * cancelled|error|too-big, role recv|send|local; receiving: pieces, total, t0, p0, speed,
 * code, conn; sending: sendState, sendPieces, sendTotal, sendSpeed, sendConn. */
export function fileState(root) {
  let f = state.files.get(root);
  if (!f) {
    f = { state: 'unknown', role: '', pieces: 0, total: 0, t0: 0, p0: 0, speed: 0, code: '', conn: null };
    state.files.set(root, f);
  }
  return f;
}

const DEFAULT_MAX_FILE_MB = 2048;

/** The size above which a file is not fetched unasked (a setting). */
export function maxFileBytes() {
  const mb = Number(store.get('max-file-mb', DEFAULT_MAX_FILE_MB));
  return (Number.isFinite(mb) && mb > 0 ? mb : DEFAULT_MAX_FILE_MB) * 1024 * 1024;
}
