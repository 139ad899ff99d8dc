// The room view (#room): its name, status and peers, the safety code, the waiting room's
// hint (with the import button it names), the room's actions in one menu, and its messages.

import { isolate } from '../dropconsent.js';
import { state, live, roomMeta, roomStatus } from '../state.js';
import { render } from '../render.js';
import { $ } from '../dom.js';
import { on } from '../notices.js';
import { t } from '../lang.js';
import { reconnect } from '../connect.js';
import { exportHistory, exportWithMedia } from '../export.js';
import { connectBox, boxRecord } from '../box.js';
import { publishOffer } from '../drop.js';
import { renderMessages, scrollBack } from './messages.js';

export function renderRoom() {
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
  renderMessages(id, l);
}

/** The room's actions menu (#room-menu, a <details>): opened by its button (a click, Enter
 * or Space), closed by choosing an item, by Escape (focus back on the button), or by a tap
 * elsewhere. */
function wireMenu() {
  const menu = $('room-menu');
  const close = () => {
    menu.open = false;
  };
  $('room-actions').addEventListener('click', (e) => {
    if (e.target.closest('button')) close();
  });
  menu.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && menu.open) {
      close();
      $('room-menu-button').focus();
    }
  });
  document.addEventListener('click', (e) => {
    if (menu.open && !menu.contains(e.target)) close();
  });
}

export function wireRoom() {
  wireMenu();
  on('back', 'click', () => {
    $('room-menu').open = false;
    state.open = null;
    render();
  });
  on('reconnect', 'click', () => reconnect(state.open));
  on('show-earlier', 'click', () => scrollBack(true));
  on('export-history', 'click', () => exportHistory(state.open));
  on('export-media', 'click', () => exportWithMedia(state.open));
  on('keep-on-box', 'click', () => connectBox(state.open));
  on('box-record', 'click', () => boxRecord(state.open));
  on('publish-offer', 'click', () => publishOffer(state.open));
}
