// The page's export of a room (docs/PROTOCOL.md §4): the verifiable history as JSON, or
// a zip of history.json and the media this page holds (as store/bundle does on the box).

import { FILE_KINDS } from './files.js';
import { zip, ZipTooLarge } from './zip.js';
import { safeFileName } from './torrent.js';
import { pick } from './history.js';
import { state, roomMeta, entryStore } from './state.js';
import { download } from './dom.js';
import { notify } from './notices.js';
import { t } from './lang.js';
import { metaOf } from './transfers.js';

/** The verifiable export as a Blob, read from IndexedDB by cursor a batch at a time (the
 * page never holds the room: the Blob is built from one string per batch), plus the list
 * of the room's media. */
async function historyData(roomId) {
  const r = roomMeta(roomId);
  const media = [];
  const parts = [];
  let first = true;
  await entryStore.each(roomId, (batch) => {
    for (const e of batch) {
      const m = FILE_KINDS.has(e.kind) ? metaOf(e) : null;
      if (m) media.push({ entry: e.id, kind: m.kind, name: m.name, type: m.type, size: m.size, root: m.root });
    }
    parts.push((first ? '\n  ' : ',\n  ') + batch.map((e) => JSON.stringify(pick(e))).join(',\n  '));
    first = false;
  });
  const head = { format: 'chattorrent-history', v: 1, room: { id: r.id, name: r.name }, exported: new Date().toISOString() };
  const blob = (m) => new Blob([JSON.stringify(head, null, 1).slice(0, -2), ',\n "entries": [', ...parts,
    parts.length ? '\n ],\n "media": ' : '],\n "media": ', JSON.stringify(m, null, 1), '\n}\n'], { type: 'application/json' });
  return { media, blob };
}

export async function exportHistory(roomId) {
  const r = roomMeta(roomId);
  const file = `${safeFileName(r.name)}_history.json`;
  const { media, blob } = await historyData(roomId);
  download(file, blob(media), 'application/json');
  notify('info', t('historyExported', { file }));
}

/** The export with the media this page holds, as a zip: history.json and media/. */
export async function exportWithMedia(roomId) {
  const r = roomMeta(roomId);
  const data = await historyData(roomId);
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
  files.unshift({ name: 'history.json', blob: data.blob(data.media) });
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
