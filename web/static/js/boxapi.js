// The box's HTTP API as the page calls it: the header that marks the page's requests, the
// box's error in the person's words, and withdrawing an offer published on the drop box.

import { t } from './lang.js';

export const BOX_HEADERS = { 'X-ChatTorrent': '1' };

/** The box's error: its code in this page's language when known, else its (English) words. */
export async function apiErrorText(res) {
  try {
    const j = await res.json();
    const known = typeof j.code === 'string' ? t(`boxErr.${j.code}`) : '';
    if (known && known !== `boxErr.${j.code}`) return known;
    return j.error || j.code || res.statusText;
  } catch {
    return res.statusText;
  }
}

/** An error (code box-failed) carrying what the box said of a refused request. */
export async function boxFailed(res) {
  return Object.assign(new Error(await apiErrorText(res)), { code: 'box-failed' });
}

/** Takes a pending offer's publication (p.drop) off the box's drop box. */
export function withdrawOffer(p, keepalive = false) {
  if (!p.drop) return;
  if (p.drop.es) p.drop.es.close();
  fetch(`/api/drop/offers/${p.drop.id}`, { method: 'DELETE', keepalive, headers: { ...BOX_HEADERS, 'X-Drop-Token': p.drop.token } }).catch(() => {});
}
