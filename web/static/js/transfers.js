// File transfers (docs/PROTOCOL.md section 5): which peer a file is fetched from, its
// progress and speed, retries with another peer, cancelling, and keeping the screen on
// meanwhile. The record of each file is fileState() (state.js); its view is views/files.js.

import { parseMeta, FILE_KINDS, PIECE_SIZE } from './files.js';
import { compareEntries } from './history.js';
import { state, live, fileState, maxFileBytes, entryStore } from './state.js';
import { fileChanged } from './render.js';
import { notify } from './notices.js';
import { t } from './lang.js';

/** The metadata of a file entry, or null when its body is not valid. */
export function metaOf(e) {
  try {
    return parseMeta(e.kind, e.body);
  } catch {
    return null;
  }
}

/** The room's file entries in display order: those stored (entries.js's kind index) and
 * those taken but perhaps not stored yet. */
async function fileEntries(roomId) {
  const l = live(roomId);
  const byId = new Map();
  for (const e of await entryStore.ofKinds(roomId, FILE_KINDS)) byId.set(e.id, e);
  for (const e of l.log.recent.values()) if (FILE_KINDS.has(e.kind)) byId.set(e.id, e);
  return [...byId.values()].sort(compareEntries);
}

/** The file root announced by an entry of the room, or null: only those are served. */
export async function announced(roomId, root) {
  for (const e of await fileEntries(roomId)) {
    if (e.body.includes(root)) {
      const m = metaOf(e);
      if (m && m.root === root) return m;
    }
  }
  return null;
}

/** Learns from storage what this page holds of a file, once. */
export async function loadFileState(root) {
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
export async function fetchFile(roomId, e, conn, manual = false) {
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
export async function fetchMissing(roomId) {
  for (const e of await fileEntries(roomId)) await fetchFile(roomId, e, null);
}

/** The fetch the person asked for (a file cancelled, failed or too big before). */
export async function refetch(roomId, entryId, root) {
  const entry = live(roomId).view.get(entryId) || (await fileEntries(roomId)).find((e) => e.id === entryId);
  if (!entry) return;
  await state.media.setCancelled(root, false).catch(() => {});
  const f = fileState(root);
  if (f.state !== 'running') f.state = 'idle';
  await fetchFile(roomId, entry, null, true);
}

/** What a FileLink reports of a transfer (p: {root, role, pieces, total, state, code}). */
export function onFileProgress(roomId, conn, p) {
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

/** A connection is gone: what it was fetching waits for another. */
export function connGone(conn) {
  for (const [root, f] of state.files) {
    if (f.conn === conn && f.state === 'running') {
      f.state = 'idle';
      f.conn = null;
      fileChanged(root);
    }
  }
}

/** Cancels a running transfer of root on both sides. */
export async function cancelFile(root) {
  const f = fileState(root);
  if (f.conn) await f.conn.files.cancel(root);
  f.state = 'cancelled';
  f.conn = null;
  fileChanged(root);
  wakeLock();
}

/** Stops sending root to every peer of the room. */
export async function cancelSend(roomId, root) {
  for (const c of live(roomId).conns.values()) await c.files.cancel(root);
  const f = fileState(root);
  f.sendState = 'cancelled';
  fileChanged(root, true);
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
