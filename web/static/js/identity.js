// The identity: this page's Ed25519 key (kept non-extractable in IndexedDB, keystore.js), its
// name, and their backup file (import and export). fp() gives an author's fingerprint.

import { StorageFullError } from './storage.js';
import { fingerprint, toB64url, fromB64url, cleanText, MAX_NAME } from './history.js';
import { loadKey, saveKey, exportKey } from './keystore.js';
import { isFull } from './idb.js';
import { safeFileName } from './torrent.js';
import { state, store } from './state.js';
import { $, download } from './dom.js';
import { notify } from './notices.js';
import { t } from './lang.js';

/** The fingerprint of author, '' until computed (then filled in where it is shown). */
export function fp(author) {
  if (!state.fps.has(author)) {
    state.fps.set(author, '');
    fingerprint(author).then((f) => {
      state.fps.set(author, f);
      for (const s of document.querySelectorAll('.msg-fp')) if (s.dataset.author === author) s.textContent = f;
      if (author === state.me.author) $('my-fingerprint').textContent = f;
    });
  }
  return state.fps.get(author);
}

/** The identity kept by this browser, or a new one. */
export async function loadIdentity() {
  const saved = store.identity();
  const nameOf = (author) => (saved && saved.author === author && cleanText(saved.name, MAX_NAME)) || `Peer-${author.slice(0, 4)}`;
  let kept = null;
  try {
    kept = await loadKey();
  } catch (err) {
    console.warn('chattorrent: the identity key store is unavailable', err);
  }
  if (kept && (!saved || !saved.author || saved.author === kept.author)) {
    const me = { author: kept.author, name: nameOf(kept.author), privateKey: kept.privateKey };
    if (!saved || saved.jwk || saved.name !== me.name) saveIdentity(me); // (drops a copy an older page kept)
    return me;
  }
  if (saved && saved.jwk && saved.author) {
    // An older page kept the key in localStorage: it moves into IndexedDB, and leaves
    // localStorage once it is there.
    try {
      return await keepKey(saved.author, nameOf(saved.author), saved.jwk);
    } catch (err) {
      console.warn('chattorrent: stored identity unusable, making a new one', err);
    }
  }
  const kp = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const author = toB64url(new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey)));
  const jwk = await crypto.subtle.exportKey('jwk', kp.privateKey);
  return keepKey(author, `Peer-${author.slice(0, 4)}`, jwk);
}

/** Keeps the key in IndexedDB (non-extractable, keystore.js) and the identity's author and
 * name in localStorage. A browser without a working IndexedDB keeps the key as before, as
 * a JWK in localStorage, rather than lose the identity. */
async function keepKey(author, name, jwk) {
  let me;
  try {
    const k = await saveKey(author, jwk);
    me = { author, name, privateKey: k.privateKey };
  } catch (err) {
    if (isFull(err)) throw new StorageFullError(err);
    console.warn('chattorrent: the key stays in localStorage (no IndexedDB)', err);
    const privateKey = await crypto.subtle.importKey('jwk', jwk, { name: 'Ed25519' }, false, ['sign']);
    me = { author, name, privateKey, jwk };
  }
  saveIdentity(me);
  return me;
}

export function saveIdentity(me) {
  store.setIdentity(me.jwk ? { author: me.author, name: me.name, jwk: me.jwk } : { author: me.author, name: me.name });
}

/** Takes the identity of a backup file; false (and a notice) if the file is not one. */
export async function importIdentity(file) {
  try {
    if (file.size > 4096) throw new Error('too large');
    const data = JSON.parse(await file.text());
    if (data.format !== 'chattorrent-identity' || data.v !== 1) throw new Error('format');
    const { jwk } = data;
    if (!jwk || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string' || typeof jwk.x !== 'string') throw new Error('key');
    const raw = fromB64url(jwk.x);
    if (!raw || raw.length !== 32) throw new Error('key');
    await crypto.subtle.importKey('jwk', jwk, { name: 'Ed25519' }, false, ['sign']); // a usable key
    const name = (typeof data.name === 'string' && cleanText(data.name, MAX_NAME)) || state.me.name;
    state.me = await keepKey(jwk.x, name, { kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d });
  } catch (err) {
    if (err instanceof StorageFullError) throw err;
    notify('error', t('err.identity-bad'), 'identity-bad');
    return false;
  }
  $('my-name').value = state.me.name;
  fp(state.me.author);
  state.proven = false; // the box lists the rooms of the imported key once it is proven
  return true;
}

export async function exportIdentity() {
  const file = `chattorrent-identity-${safeFileName(state.me.name)}.json`;
  const { kty, crv, x, d } = state.me.jwk || await exportKey(); // the key leaves IndexedDB only here
  const data = { format: 'chattorrent-identity', v: 1, name: state.me.name, jwk: { kty, crv, x, d } };
  download(file, JSON.stringify(data, null, 1), 'application/json');
  notify('info', t('identityExported', { file }));
}
