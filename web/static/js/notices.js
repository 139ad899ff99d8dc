// Notices: the one line (#notice) where the page tells the person what happened or went
// wrong, in their language, with the error's code in data-code (docs/UI.md).

import { STRINGS } from './i18n.js';
import { StorageFullError } from './storage.js';
import { RTCFailure } from './rtc.js';
import { TorrentError } from './torrent.js';
import { $ } from './dom.js';
import { t } from './lang.js';

export function notify(kind, text, code) {
  const n = $('notice');
  n.textContent = text;
  n.dataset.kind = kind;
  if (code) n.dataset.code = code;
  else delete n.dataset.code;
  n.hidden = false;
}

/** Shows an error: a known code in the person's words, else the error's own. */
export function fail(err) {
  if (err instanceof TorrentError) {
    notify('error', t(`err.${err.code}`, { field: err.field }), err.code);
  } else if (err instanceof StorageFullError) {
    notify('error', t('err.storage-full'), 'storage-full');
  } else if (err instanceof RTCFailure) {
    notify('error', t(`err.${err.code}`, { detail: err.detail }), err.code);
  } else if (err && err.code && STRINGS.en.err[err.code]) {
    notify('error', t(`err.${err.code}`, { detail: err.message }), err.code);
  } else {
    console.warn('chattorrent:', err);
    notify('error', t('err.rtc-failed', { detail: err && err.message ? err.message : String(err) }), 'failed');
  }
}

/** Listens to the element id; what the handler throws (or rejects with) is a notice. */
export function on(id, ev, fn) {
  $(id).addEventListener(ev, (e) => {
    Promise.resolve(fn(e)).catch(fail);
  });
}
