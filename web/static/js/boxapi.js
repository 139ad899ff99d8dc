// The box's HTTP API as the page calls it: the header that marks the page's requests, the
// box's error in the person's words, withdrawing an offer published on the drop box, and
// uploading a file with progress (the owner's release and backup).

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

/** POSTs a file to the box's url with the page's header, reporting the upload's progress
 * (0..1) as it goes (fetch has no upload progress: XMLHttpRequest). Resolves with the
 * status (0 when the request failed) and the JSON body ({} when none). */
export function uploadWithProgress(url, file, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    for (const [k, v] of Object.entries(BOX_HEADERS)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => resolve({ status: 0, body: {} });
    xhr.send(file);
  });
}
