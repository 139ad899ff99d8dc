// The room list (#home): creating a room, importing a .torrent file (here and under the
// waiting room's hint), and the rooms with their status and last message.

import { FILE_KINDS } from '../files.js';
import { isolate } from '../dropconsent.js';
import { state, live, roomStatus, toNewest } from '../state.js';
import { render } from '../render.js';
import { $, el, setText } from '../dom.js';
import { formatDuration } from '../format.js';
import { on } from '../notices.js';
import { t } from '../lang.js';
import { createRoom, importFile } from '../connect.js';
import { metaOf } from '../transfers.js';

/** The room's last message, from its window (kept while the window is scrolled back). */
function lastText(roomId) {
  const l = live(roomId);
  if (l.view.atEnd || !l.view.loaded) l.lastText = lastOf(l.view.entries);
  return l.lastText;
}

function lastOf(es) {
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

export function renderRooms() {
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

export function wireRooms() {
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
    toNewest(state.open);
    render();
    $('composer-input').focus();
  });
  on('rooms', 'keydown', (e) => {
    const li = e.target.closest('.room-item');
    if (li && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      state.open = li.dataset.roomId;
      toNewest(state.open);
      render();
    }
  });
}
