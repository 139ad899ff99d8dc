// The view of a room's messages (#messages): the room's window (window.js: at most
// WINDOW_MAX entries read from IndexedDB by cursor, never the room), each drawn once and
// reused while nothing it shows has changed (the cache key), files through views/files.js.
// Scrolling near the top reads an older page (the position kept), near the bottom of a
// window that let go of the newest a newer one.

import { KNOWN_KINDS } from '../history.js';
import { FILE_KINDS } from '../files.js';
import { state, fileState, live, entryStore } from '../state.js';
import { onFileChange, renderNow } from '../render.js';
import { orderKey } from '../entries.js';
import { $, el, named } from '../dom.js';
import { formatTime } from '../format.js';
import { on, fail } from '../notices.js';
import { t, lang } from '../lang.js';
import { fp } from '../identity.js';
import { metaOf, cancelFile, cancelSend, refetch } from '../transfers.js';
import { renderFile, updateProgress } from './files.js';

// Rendered messages, reused while nothing they show has changed.
const rendered = new Map(); // entry id → {key, li, root}
let shownNodes = []; // the message nodes now in #messages, in order

/** A file's state changed: its progress is updated in place, or its message drawn again. */
function fileChangedHook(root, progressOnly) {
  const f = state.files.get(root);
  if (progressOnly && f) {
    for (const n of document.querySelectorAll('.file')) if (n.dataset.root === root) updateProgress(n, f);
    return true;
  }
  for (const [id, r] of rendered) if (r.root === root) rendered.delete(id);
  return false;
}

function renderMessage(e, l) {
  const mine = e.author === state.me.author;
  const st = mine ? (l.delivered.has(e) ? 'delivered' : 'sent') : '';
  const forked = l.log.forked(e.author);
  const meta = FILE_KINDS.has(e.kind) ? metaOf(e) : null;
  const fstate = meta ? `${fileState(meta.root).state}|${state.urls.has(meta.root)}` : '';
  const key = `${lang()}|${st}|${forked}|${mine ? state.me.name : ''}|${fstate}`;
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

/** Draws the open room's messages (id, its live part l) into #messages. */
export function renderMessages(id, l) {
  const ol = $('messages');
  const w = l.view;
  const shown = w.entries;
  const stick = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 80 || ol.dataset.room !== id;
  ol.dataset.room = id;
  // Only the window is in the DOM, so a long history never freezes the page.
  const nodes = shown.map((e) => renderMessage(e, l));
  if (rendered.size > 2 * nodes.length + 100) {
    const keep = new Set(shown.map((e) => e.id));
    for (const k of rendered.keys()) if (!keep.has(k)) rendered.delete(k);
  }
  const same = nodes.length === shownNodes.length && nodes.every((n, i) => shownNodes[i] === n);
  if (!same) {
    ol.replaceChildren(...nodes);
    shownNodes = nodes;
  }
  const earlier = $('show-earlier');
  earlier.hidden = w.atStart || !w.loaded;
  earlier.textContent = t('showEarlier', { n: w.before });
  $('messages-empty').hidden = !w.loaded || shown.length > 0;
  if (stick && w.atEnd) ol.scrollTop = ol.scrollHeight;
}

/** Reads the page of the open room before (older) or after (newer) its window, keeping
 * what is on screen where it is. One read at a time. */
export async function scrollBack(older) {
  const id = state.open;
  if (!id || reading) return;
  const l = live(id);
  const w = l.view;
  if (!w.loaded || (older ? w.atStart : w.atEnd)) return;
  reading = true;
  try {
    const edge = older ? w.first() : w.last();
    const p = await entryStore.page(id, older ? { before: edge && orderKey(edge), n: w.page } : { after: orderKey(edge), n: w.page });
    if (state.open !== id || (older ? w.first() : w.last()) !== edge) return; // moved meanwhile
    const ol = $('messages');
    const anchor = older ? ol.firstElementChild : ol.lastElementChild;
    const top = anchor ? anchor.getBoundingClientRect().top : 0;
    if (older) w.prepend(p.entries, p.more);
    else w.append(p.entries, p.more);
    renderNow();
    // The message that was at the edge stays where it was on screen.
    if (anchor && anchor.isConnected) ol.scrollTop += anchor.getBoundingClientRect().top - top;
  } finally {
    reading = false;
  }
}
let reading = false;

/** Wires the buttons inside messages (cancel, fetch again) and file redraws. */
export function wireMessages() {
  onFileChange(fileChangedHook);
  on('messages', 'click', async (e) => {
    const cancel = e.target.closest('.file-cancel');
    if (cancel) return cancelFile(cancel.dataset.root);
    const cancelSending = e.target.closest('.file-cancel-send');
    if (cancelSending) await cancelSend(state.open, cancelSending.dataset.root);
    const fetchBtn = e.target.closest('.file-fetch');
    if (fetchBtn) await refetch(state.open, fetchBtn.dataset.id, fetchBtn.dataset.root);
    return undefined;
  });
  // Near the top an older page, near the bottom (of a window past the newest) a newer one.
  $('messages').addEventListener('scroll', () => {
    const ol = $('messages');
    if (ol.scrollTop < 300) scrollBack(true).catch(fail);
    else if (ol.scrollHeight - ol.scrollTop - ol.clientHeight < 300) scrollBack(false).catch(fail);
  }, { passive: true });
}

