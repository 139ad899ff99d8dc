// The view of a file in a message (an image, a voice note, any file): what the page holds
// of it, its transfer's progress both ways, and the buttons to fetch, save or cancel. Only
// allow-listed types are shown inline (files.js opensInline, docs/SECURITY.md).

import { safeBlobType, opensInline, PIECE_SIZE } from '../files.js';
import { isolate } from '../dropconsent.js';
import { state, fileState, maxFileBytes } from '../state.js';
import { fileChanged } from '../render.js';
import { el } from '../dom.js';
import { formatBytes, formatDuration } from '../format.js';
import { fail } from '../notices.js';
import { t } from '../lang.js';
import { loadFileState } from '../transfers.js';

/** A blob: URL for a held file. Its type comes from the allow-list (safeBlobType), never
 * from the peer as it is: a text/html or SVG blob would open as a page at the box's origin. */
async function fileURL(root, type, kind) {
  if (state.urls.has(root)) return state.urls.get(root);
  const blob = await state.media.blob(root);
  if (!blob) return null;
  const url = URL.createObjectURL(new Blob([blob], { type: safeBlobType(type, kind) }));
  state.urls.set(root, url);
  return url;
}

/** Updates the progress of a file's view n in place (no new nodes under a finger). */
export function updateProgress(n, f) {
  const bar = n.querySelector('.file-bar');
  const stats = n.querySelector('.file-stats');
  if (f.state === 'running' && f.role === 'recv' && bar && stats) {
    const size = Number(n.dataset.size);
    const done = Math.min(size, f.pieces * PIECE_SIZE);
    const pct = size ? Math.floor((100 * done) / size) : 0;
    bar.max = size;
    bar.value = done;
    const eta = f.speed > 0 ? formatDuration(((size - done) / f.speed) * 1000) : '…';
    stats.textContent = t('fileStats', { pct, done: formatBytes(done), total: formatBytes(size), speed: formatBytes(f.speed), eta });
  }
  // The sender's side: what the receiver has verified so far (its got messages).
  const sending = n.querySelector('.file-sending');
  if (sending && f.sendTotal) {
    const size = Number(n.dataset.size);
    const running = f.sendState === 'running';
    sending.hidden = f.sendState === 'complete';
    const done = Math.min(size, f.sendPieces * PIECE_SIZE);
    const pct = Math.floor((100 * f.sendPieces) / f.sendTotal);
    const [note, sbar, sstats, scancel] = sending.children;
    note.textContent = f.sendState === 'cancelled' ? t('fileCancelled') : t('fileSending', { pct });
    sbar.hidden = !running;
    sbar.max = size;
    sbar.value = done;
    sstats.hidden = !running;
    const eta = f.sendSpeed > 0 ? formatDuration(((size - done) / f.sendSpeed) * 1000) : '…';
    sstats.textContent = t('fileStats', { pct, done: formatBytes(done), total: formatBytes(size), speed: formatBytes(f.sendSpeed || 0), eta });
    scancel.hidden = !running;
  }
}

function renderHeld(box, meta, url, mine) {
  // Only allow-listed types are shown or opened in a tab; anything else (text/html, SVG,
  // a type that does not fit the kind) is a download link.
  const inline = opensInline(meta.type, meta.kind);
  if (meta.kind === 'image' && inline) {
    box.append(el('a', { class: 'file-open', href: url, target: '_blank', rel: 'noopener', title: t('fileOpen') },
      el('img', { class: 'msg-image', src: url, alt: meta.name })));
  } else if (meta.kind === 'voice' && inline) {
    box.append(el('span', { class: 'file-note', text: t('voiceLabel', { time: formatDuration(meta.duration || 0) }) }));
    const audio = el('audio', { class: 'msg-audio', controls: true, preload: 'metadata', src: url });
    if (audio.canPlayType(meta.type.split(';')[0]) === '' && audio.canPlayType(meta.type) === '') {
      box.append(el('p', { class: 'file-note voice-unplayable', text: t('voiceUnplayable', { type: meta.type }) }));
    } else box.append(audio);
  }
  box.append(el('div', { class: 'file-row' },
    meta.kind === 'image' && inline ? null : el('span', { class: 'file-name', dir: 'auto', text: `${isolate(meta.name)} · ${formatBytes(meta.size)}` }),
    el('a', { class: 'button file-save', href: url, download: meta.name, text: t('fileSave') })));
  if (mine) {
    box.append(el('div', { class: 'file-sending', hidden: true },
      el('span', { class: 'file-note' }), el('progress', { class: 'file-bar', hidden: true }),
      el('span', { class: 'file-stats', hidden: true }),
      el('button', { type: 'button', class: 'file-cancel-send', 'data-root': meta.root, hidden: true, text: t('fileCancel') })));
  }
}

function renderMissing(box, e, meta, f) {
  box.append(el('span', { class: 'file-name', dir: 'auto', text: `${meta.kind === 'voice' ? t('voiceLabel', { time: formatDuration(meta.duration || 0) }) : isolate(meta.name)} · ${formatBytes(meta.size)}` }));
  if (f.state === 'running' || f.state === 'preparing') {
    box.append(el('progress', { class: 'file-bar', max: meta.size, value: 0 }),
      el('div', { class: 'file-row' }, el('span', { class: 'file-stats', text: '…' }),
        f.state === 'running' ? el('button', { type: 'button', class: 'file-cancel', 'data-root': meta.root, text: t('fileCancel') }) : null));
    return;
  }
  const note = { cancelled: t('fileCancelled'), waiting: t('fileWaiting'), error: f.code === 'storage-full' ? t('err.storage-full') : t('fileFailed', { code: f.code }),
    'too-big': t('fileTooBig', { max: formatBytes(maxFileBytes()) }) }[f.state];
  if (note) box.append(el('span', { class: 'file-note', text: note }));
  if (['cancelled', 'waiting', 'error', 'too-big', 'idle'].includes(f.state)) {
    box.append(el('button', { type: 'button', class: 'file-fetch', 'data-root': meta.root, 'data-id': e.id, text: t('fileFetch') }));
  }
}

/** The body of a file entry e (meta: its parsed body; mine: I sent it). */
export function renderFile(e, meta, mine) {
  const f = fileState(meta.root);
  if (f.state === 'unknown') loadFileState(meta.root).catch(fail);
  const box = el('div', { class: 'file', 'data-root': meta.root, 'data-size': String(meta.size), 'data-state': f.state });
  const url = state.urls.get(meta.root);
  if (f.state === 'complete' && !url) {
    fileURL(meta.root, meta.type, meta.kind).then((u) => u && fileChanged(meta.root));
  }
  if (f.state === 'complete' && url) renderHeld(box, meta, url, mine);
  else renderMissing(box, e, meta, f);
  queueMicrotask(() => updateProgress(box, f));
  return box;
}
