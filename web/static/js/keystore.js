// The page's identity key in IndexedDB, as CryptoKey objects the page's script cannot read:
// the signing key is non-extractable (crypto.subtle signs with it, exportKey refuses it).
// For "export my identity" the record also holds the key wrapped (AES-GCM) under a second
// non-extractable key of the same record: only an explicit export unwraps it, as an
// extractable key, for the file. Nothing of the key is in localStorage, which only keeps
// the author id and the name. See docs/SECURITY.md ("The identity key").
import { req, done } from './idb.js';

const DB = 'chattorrent-keys';
const STORE = 'keys';
const ID = 'identity';

/** Runs fn(store) in one transaction of the key database, opened for it and closed after:
 * the identity is read once at start and written on import, so no connection stays open. */
async function withStore(mode, fn) {
  const r = indexedDB.open(DB, 1);
  r.onupgradeneeded = () => r.result.createObjectStore(STORE);
  const d = await req(r);
  try {
    const tx = d.transaction(STORE, mode);
    const out = await fn(tx.objectStore(STORE));
    await done(tx);
    return out;
  } finally {
    d.close();
  }
}

/** The stored identity {author, privateKey (non-extractable)} or null. */
export async function loadKey() {
  const rec = await withStore('readonly', (st) => req(st.get(ID)));
  if (!rec || typeof rec.author !== 'string' || !rec.signKey) return null;
  return { author: rec.author, privateKey: rec.signKey };
}

/** Keeps the key given as a JWK (an Ed25519 private key) for author, replacing any other,
 * and returns {author, privateKey} with the non-extractable signing key. */
export async function saveKey(author, jwk) {
  const extractable = await crypto.subtle.importKey('jwk', jwk, { name: 'Ed25519' }, true, ['sign']);
  const wrapKey = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['wrapKey', 'unwrapKey']);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const wrapped = await crypto.subtle.wrapKey('jwk', extractable, wrapKey, { name: 'AES-GCM', iv });
  const signKey = await crypto.subtle.importKey('jwk', jwk, { name: 'Ed25519' }, false, ['sign']);
  await withStore('readwrite', (st) => {
    st.put({ author, signKey, wrapKey, wrapped, iv }, ID);
  });
  return { author, privateKey: signKey };
}

/** The key as a JWK, for the file "export my identity" writes (the user asked for it). */
export async function exportKey() {
  const rec = await withStore('readonly', (st) => req(st.get(ID)));
  if (!rec) throw new Error('no identity key');
  const key = await crypto.subtle.unwrapKey('jwk', rec.wrapped, rec.wrapKey, { name: 'AES-GCM', iv: rec.iv },
    { name: 'Ed25519' }, true, ['sign']);
  return crypto.subtle.exportKey('jwk', key);
}
