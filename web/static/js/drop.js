// The drop box (when the box offers one): the box lists open offers; a guest answers one
// through it; the creator's page sees who answered, with the safety code, and accepts or
// rejects (dropconsent.js draws that). Answers and verdicts come back by SSE.

import { safetyCode } from './rtc.js';
import { ConsentList, parseAnswerEvent, isolate, consentItems, fillWait } from './dropconsent.js';
import { TorrentError, decodeInvitation } from './torrent.js';
import { state, live, roomMeta, setWaiting } from './state.js';
import { render } from './render.js';
import { $, el, named, fillList } from './dom.js';
import { notify, fail } from './notices.js';
import { t, lang } from './lang.js';
import { BOX_HEADERS, boxFailed, withdrawOffer } from './boxapi.js';
import { answerOffer, importAnswer, newOffer, keepPending } from './connect.js';

const DROP_FIRST_MS = 10000; // a box under load; without a box the stream fails at once

const dropConsent = new ConsentList(); // answers waiting for Accept / Reject on this page
const dropWaits = new Map(); // room id → {name, code, state}: our answer sent through the box

/** Follows the box's open offers (state.drop stays false without a drop box). Resolves at
 * the first list (or an error, or after DROP_FIRST_MS): the page counts as ready then, so
 * the list does not appear later and push the controls below it away from where a finger
 * (or a test) aims. */
export function watchDrop() {
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

function myDropIds() {
  return new Set([...state.pending.values()].filter((p) => p.drop).map((p) => p.drop.id));
}

/** Publishes the open room's newest unanswered offer on the box and waits for answers. */
export async function publishOffer(roomId) {
  const p = [...state.pending.values()].filter((x) => x.room === roomId && !x.drop && !x.dropRetired).pop();
  if (!p) return;
  const res = await fetch('/api/drop/offers', {
    method: 'POST', body: p.bytes, headers: { ...BOX_HEADERS, 'Content-Type': 'application/x-bittorrent' },
  });
  if (!res.ok) throw await boxFailed(res);
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

/** The creator's verdict on an answer that came through the box: the box is told (it tells
 * the guest's page), and only an accepted answer is applied. A rejected one leaves the
 * offer published for the next answer. */
export async function decideDrop(answerId, accept) {
  const item = dropConsent.remove(answerId);
  render();
  if (!item) return;
  const p = state.pending.get(item.session);
  if (!p || !p.drop || p.drop.id !== item.offerId) return; // answered or withdrawn meanwhile
  const res = await fetch(`/api/drop/offers/${item.offerId}/answers/${answerId}/${accept ? 'accept' : 'reject'}`, {
    method: 'POST', headers: { ...BOX_HEADERS, 'X-Drop-Token': p.drop.token },
  });
  if (!res.ok) throw await boxFailed(res);
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
  const r = roomMeta(p.room);
  keepPending(p.room, await newOffer(p.room, r ? r.name : ''));
  await publishOffer(p.room);
  await fetch(`/api/drop/offers/${old.id}`, { method: 'DELETE', headers: { ...BOX_HEADERS, 'X-Drop-Token': old.token } }).catch(() => {});
}

/** The guest's side: answers an offer of the drop box. The answer goes back to the
 * creator's page through the box (no file), and the page follows the creator's verdict. */
export async function joinDrop(dropId) {
  const res = await fetch(`/api/drop/offers/${dropId}/torrent`, { headers: BOX_HEADERS });
  if (!res.ok) throw await boxFailed(res);
  const buf = new Uint8Array(await res.arrayBuffer());
  const inv = await decodeInvitation(buf);
  if (inv.role !== 'offer') throw new TorrentError('wrong-role');
  const { ans, bytes } = await answerOffer(inv);
  const posted = await fetch(`/api/drop/offers/${dropId}/answers`, {
    method: 'POST', body: bytes, headers: { ...BOX_HEADERS, 'Content-Type': 'application/x-bittorrent' },
  });
  if (!posted.ok) {
    ans.pc.close();
    throw await boxFailed(posted);
  }
  const { id: answerId } = await posted.json();
  // The code the creator's page shows next to our name: we read it out loud to them.
  const code = await safetyCode(ans.sdp, inv.sdp);
  state.open = inv.room;
  followVerdict(inv.room, dropId, answerId, ans.pc, inv.peer.name, code);
  setWaiting(inv.room, t('dropAnswered', { name: isolate(inv.peer.name) }));
  notify('info', t('dropAnswered', { name: isolate(inv.peer.name) }));
}

/** Follows the creator's verdict on our answer. Rejected, or the offer gone before a
 * verdict: the waiting connection is closed and the page says so. */
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

/** Offers held by this page die with it: takes them off the box's list. */
export function withdrawAll() {
  for (const p of state.pending.values()) if (p.drop) withdrawOffer(p, true);
}

function renderDropConsent() {
  const items = dropConsent.items;
  $('drop-consent').hidden = items.length === 0;
  fillList($('drop-answers'), JSON.stringify([lang(), dropConsent.key()]), () => consentItems(document, items, t));
  const wait = $('drop-wait');
  const w = state.open && dropWaits.get(state.open);
  const l = w && state.live.get(state.open);
  if (w && w.state === 'waiting' && l && l.conns.size > 0) dropWaits.delete(state.open); // connected: the code is in #safety
  wait.hidden = !w || !dropWaits.has(state.open);
  if (!wait.hidden) fillWait(wait, w, t);
  $('publish-note').hidden = $('publish-offer').hidden;
}

/** The view: answers waiting for my verdict, the box's open offers, the publish action. */
export function renderDrop() {
  renderDropConsent();
  const section = $('drop');
  section.hidden = !state.drop;
  if (!state.drop) return;
  const mine = myDropIds();
  const offers = state.dropOffers.filter((o) => !mine.has(o.id));
  const shown = fillList($('drop-offers'), JSON.stringify([lang(), offers]), () => offers.map((o) => el('li', { class: 'drop-offer', 'data-id': o.id },
    el('span', { class: 'room-name', dir: 'auto', text: o.room_name }),
    named('span', { class: 'room-last' }, 'dropBy', { name: o.peer_name }),
    el('button', { type: 'button', class: 'drop-join', 'data-id': o.id, text: t('dropJoin') }))));
  $('drop-empty').hidden = shown > 0;
  const open = state.open;
  const canPublish = !!open && [...state.pending.values()].some((x) => x.room === open && !x.drop);
  $('publish-offer').hidden = !canPublish;
  $('publish-note').hidden = !canPublish;
}
