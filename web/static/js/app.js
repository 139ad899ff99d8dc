// The ChatTorrent page: boot and wiring only. Each feature is a module named for it (see
// docs/ARCHITECTURE.md): state.js and render.js hold the state and draw it; connect.js the
// rooms' peers; composer.js, transfers.js, box.js, drop.js, export.js, settings.js and
// identity.js the features; views/ the room list, the room and its messages. The DOM is
// built with createElement/textContent only: nothing a peer sends is ever inserted as HTML.
// Element ids are listed in docs/UI.md.

import { workerVerifier } from './verifier.js';
import { initOwner } from './owner.js';
import { hasEd25519 } from './support.js';
import { StorageFullError } from './storage.js';
import { StorageUpgradeError } from './entries.js';
import { state, store, entryStore, live } from './state.js';
import { registerView, render, renderNow } from './render.js';
import { $ } from './dom.js';
import { notify, fail } from './notices.js';
import { t } from './lang.js';
import { loadIdentity, fp } from './identity.js';
import { applyStrings, wireLanguage, wireSettings } from './settings.js';
import { fromOtherTab } from './connect.js';
import { loadBoxRooms, loadBoxAddress, openBoxRoom, renderBoxRooms, renderBoxAddress } from './box.js';
import { watchDrop, decideDrop, joinDrop, withdrawAll, renderDrop } from './drop.js';
import { wireComposer } from './composer.js';
import { renderRooms, wireRooms } from './views/rooms.js';
import { renderRoom, wireRoom } from './views/room.js';
import { wireMessages } from './views/messages.js';

/** Moves the rooms' histories still in localStorage to IndexedDB, then reads each room's
 * heads and newest page (live(): never the whole room). Reads of the stored entries wait
 * for the moves (entries.js reader()), which start before this first awaits. */
async function loadHistories(rooms) {
  try {
    await entryStore.load(rooms.map((r) => r.id).filter((id) => !state.live.has(id)));
    await Promise.all(rooms.map((r) => live(r.id).ready));
  } catch (err) {
    // The page still opens (rooms, files, connections); what it cannot store it says so.
    if (err instanceof StorageFullError) notify('error', t('err.storage-full'), 'storage-full');
    else if (err instanceof StorageUpgradeError) notify('error', t('err.storage-upgrade', { detail: err.message }), 'storage-upgrade');
    else {
      console.warn('chattorrent: history storage:', err);
      notify('error', t('err.storage-failed', { detail: err && err.message ? err.message : String(err) }), 'storage-failed');
    }
  }
}

/** An earlier page's stored entries are upgraded in place at the first open (entries.js):
 * about a minute for 100,000 entries, said in #notice meanwhile, so the page does not look frozen. */
function watchUpgrade() {
  entryStore.onUpgrade = (phase) => {
    if (phase === 'start') notify('info', t('storageUpgrading'), 'storage-upgrading');
    else if (phase === 'wait') notify('info', t('storageWaiting'), 'storage-upgrading');
    else if (phase === 'blocked') notify('info', t('storageBlocked'), 'storage-upgrading');
    else if (phase === 'done' && $('notice').dataset.code === 'storage-upgrading') $('notice').hidden = true;
  };
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
  wireLanguage();
  document.body.dataset.unsupported = '1';
  document.body.dataset.ready = '1';
}

/** The box's lists (kept rooms, drop box offers): their buttons. */
function wireBoxLists() {
  const click = (id, selector, fn) => $(id).addEventListener('click', (e) => {
    const b = e.target.closest(selector);
    if (b) Promise.resolve(fn(b)).catch(fail);
  });
  click('drop-answers', '.drop-accept, .drop-reject', (b) => decideDrop(b.dataset.answerId, b.classList.contains('drop-accept')));
  click('drop-offers', '.drop-join', (b) => joinDrop(b.dataset.id));
  click('box-rooms', '.box-open', (b) => openBoxRoom(b.dataset.roomId));
}

/** Follows the rooms another tab of this browser adds. */
function wireOtherTabs() {
  entryStore.onOther = fromOtherTab;
  window.addEventListener('storage', (e) => {
    if (e.key && e.key.startsWith('chattorrent:v1:rooms')) {
      const rooms = store.rooms();
      loadHistories(rooms).then(() => {
        state.rooms = rooms;
        render();
      }, fail);
    }
  });
}

/** Read-only counters for tests and curious people: what crossed on each connection. */
function exposeStats() {
  globalThis.chattorrentStats = () => [...state.live.values()].flatMap((l) => [...l.conns.values()].map((c) => ({
    peer: c.peer && c.peer.name, session: { ...c.session.stats }, files: { ...c.files.stats },
  })));
  globalThis.chattorrentStoredEntries = (room) => entryStore.count(room); // a Promise
  // What the page holds of a room: the window's entries, not the room (window.js).
  globalThis.chattorrentWindow = (room) => {
    const l = state.live.get(room);
    const w = l && l.view;
    return w ? { held: w.entries.length, atStart: w.atStart, atEnd: w.atEnd, before: w.before, size: l.log.size } : null;
  };
  globalThis.chattorrentTransfers = () => [...state.files.entries()].map(([root, f]) => ({ root, state: f.state, pieces: f.pieces, ms: f.ms || 0 }));
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
  watchUpgrade();
  // The rooms are listed at once and the page is usable while their histories are read: an
  // upgrade of the stored entries can take a minute (#notice says so meanwhile); a room's
  // window fills in when its history is read.
  const rooms = store.rooms();
  const histories = loadHistories(rooms);
  state.rooms = rooms;
  $('my-name').value = state.me.name;
  fp(state.me.author);

  registerView(renderRooms, renderBoxRooms, renderBoxAddress, renderDrop, renderRoom);
  wireSettings();
  wireRooms();
  wireRoom();
  wireMessages();
  wireComposer();
  wireBoxLists();
  wireOtherTabs();
  renderNow();
  exposeStats();
  const dropShown = watchDrop();
  window.addEventListener('pagehide', withdrawAll);
  const ownerShown = initOwner(() => t); // the box's owner panel (owner.js)
  await Promise.all([loadBoxRooms(), loadBoxAddress(), dropShown, histories]);
  await ownerShown;
  render();
  document.body.dataset.ready = '1';
}

main().catch(fail);
