// The box (when the page is served by a ChatTorrent appliance): the rooms it keeps for this
// key, its parts (microphone, ...), the addresses phones open it at, keeping a room on it,
// and a voice note from its microphone. Without a box, state.box stays false and the box's
// panel hidden.

import { STRINGS } from './i18n.js';
import { applyAnswer } from './rtc.js';
import { isolate } from './dropconsent.js';
import { proveMember, watchActivity } from './member.js';
import { decodeInvitation, safeFileName } from './torrent.js';
import { state, roomMeta, addRoom } from './state.js';
import { render, renderNow } from './render.js';
import { $, el, fillList, setText } from './dom.js';
import { notify } from './notices.js';
import { t, lang } from './lang.js';
import { BOX_HEADERS, boxFailed } from './boxapi.js';
import { ensureJoined, newOffer, watch, setLabel } from './connect.js';

const BOX_VOICE_SECONDS = 10;

/** Asks the box which rooms it keeps; state.box stays false where the page is not served
 * by an appliance (or an old one). */
export async function loadBoxRooms() {
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
export async function loadBoxAddress() {
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

/** Invites the box into a room: an offer goes to the box over HTTPS, its answer comes back
 * and is applied at once; the box then syncs like any peer and keeps the room. */
export async function connectBox(roomId, join = true) {
  const r = roomMeta(roomId);
  const btn = $('keep-on-box');
  btn.disabled = true;
  btn.dataset.busy = '1';
  setLabel(btn, t('boxConnecting'));
  try {
    if (join) await ensureJoined(roomId);
    const { offer, session, bytes } = await newOffer(roomId, r.name);
    const res = await fetch('/api/rooms/connect', {
      method: 'POST', body: bytes, headers: { ...BOX_HEADERS, 'Content-Type': 'application/x-bittorrent' },
    });
    if (!res.ok) {
      const err = await boxFailed(res);
      offer.pc.close();
      throw err;
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
    setLabel(btn, t('keepOnBox'));
  }
}

function boxHasMic() {
  return state.boxStatus.some((f) => f.feature === 'microphone' && f.ok);
}

/** Records a voice note on the box's microphone into the open room (the box must keep it). */
export async function boxRecord(roomId) {
  const btn = $('box-record');
  btn.disabled = true;
  btn.dataset.busy = '1';
  setLabel(btn, t('boxRecording', { n: BOX_VOICE_SECONDS }));
  try {
    const res = await fetch(`/api/rooms/${roomId}/voice?seconds=${BOX_VOICE_SECONDS}`, { method: 'POST', headers: BOX_HEADERS });
    if (!res.ok) throw await boxFailed(res);
  } finally {
    btn.disabled = false;
    delete btn.dataset.busy;
    setLabel(btn, t('boxRecord'));
  }
}

/** Opens a room the box keeps: the room is made here and connected to the box, which
 * brings its history. */
export async function openBoxRoom(id) {
  const b = state.boxRooms.find((x) => x.id === id);
  if (!b) return;
  addRoom(b.id, b.name);
  state.open = b.id;
  renderNow();
  // The box lists a room only to a key that wrote in it: this identity's entries come
  // back from the box, and a join written now would fork its chain.
  await connectBox(b.id, false);
}

function featureName(f) {
  const names = (STRINGS[lang()] || STRINGS.en).feature || {};
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

/** The view of the box's panel: its rooms, its parts, and the room's box actions. */
export function renderBoxRooms() {
  $('keep-on-box').hidden = !state.box;
  const section = $('box');
  section.hidden = !state.box;
  if (!state.box) return;
  fillList($('box-status'), JSON.stringify([lang(), state.boxStatus]), () => state.boxStatus.map((f) => el('li', { class: `box-feature${f.ok ? '' : ' absent'}`, 'data-feature': f.feature },
    el('span', { class: 'box-feature-name', text: featureName(f.feature) }),
    el('span', { class: 'box-feature-detail', title: f.detail, 'data-code': f.code || '', text: `${f.ok ? '✓' : '✗'} ${featureDetail(f)}` }))));
  const open = state.open;
  $('box-record').hidden = !(open && boxHasMic() && state.boxRooms.some((b) => b.id === open));
  // The box's microphone records into one of my rooms: every member's page says so.
  const rec = state.boxRecordingRoom && roomMeta(state.boxRecordingRoom);
  $('box-recording-now').hidden = !rec;
  setText($('box-recording-now'), rec ? t('boxRecordingNow', { room: isolate(rec.name) }) : '');
  const shown = fillList($('box-rooms'), JSON.stringify([lang(), state.boxRooms]), () => state.boxRooms.map((b) => el('li', { class: 'box-room', 'data-room-id': b.id },
    el('span', { class: 'room-name', dir: 'auto', text: b.name }),
    el('span', { class: 'room-last', text: t('boxEntries', { n: b.entries || 0 }) }),
    el('button', { type: 'button', class: 'box-open', 'data-room-id': b.id, text: t('boxOpen') }),
    el('a', { class: 'button box-history', href: `/api/rooms/${b.id}/history.json`, download: `${safeFileName(b.name)}_history.json`, text: t('boxHistory') }),
    el('a', { class: 'button box-zip', href: `/api/rooms/${b.id}/history.zip`, download: `${safeFileName(b.name)}_history.zip`, text: t('boxZip') }))));
  $('box-empty').hidden = shown > 0;
}

/** The view of the box's addresses (text and QR code). */
export function renderBoxAddress() {
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
