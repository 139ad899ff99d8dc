// The few IndexedDB helpers media.js and entries.js share: requests and transactions as
// promises, opening a database that lets go of itself when a newer page upgrades it, and
// telling a full disk from other failures.

export function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('aborted'));
  });
}

/** Opens name at version; upgrade(db, ev, tx) makes its stores. A tab still running an older
 * page holds the old version open: the upgrade waits (and says so) until it closes; pages
 * from now on close the database when a newer page asks, and onClose() is called. */
export async function openDB(name, version, upgrade, onClose) {
  const r = indexedDB.open(name, version);
  r.onupgradeneeded = (ev) => upgrade(r.result, ev, r.transaction);
  r.onblocked = () => console.warn(`chattorrent: the upgrade of ${name} waits for another tab to close`);
  const db = await req(r);
  db.onversionchange = () => {
    db.close();
    onClose();
  };
  return db;
}

/** Whether err says the browser's storage is full. */
export function isFull(err) {
  return !!err && (err.name === 'QuotaExceededError' || err.name === 'UnknownError');
}
