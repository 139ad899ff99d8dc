// The few IndexedDB helpers media.js and entries.js share: requests and transactions as
// promises, opening a database that lets go of itself when a newer page upgrades it, and
// telling a full disk from other failures.
//
// Errors always carry the real cause: when a request fails, its error event reaches the
// transaction's onerror before the transaction aborts, and tx.error is still null then;
// the cause is the failed request's error (ev.target.error). A promise here never rejects
// with null or undefined.

/** err if it is an error object, else an Error naming what failed (never null). */
export function idbError(err, what) {
  if (err && typeof err === 'object') return err;
  const e = new Error(`IndexedDB: ${what} failed${err ? ` (${String(err)})` : ' (the browser gave no cause)'}`);
  e.name = 'UnknownError';
  return e;
}

export function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = (ev) => reject(idbError(r.error || (ev && ev.target && ev.target.error), 'request'));
  });
}

export function done(tx) {
  return new Promise((resolve, reject) => {
    let cause = null; // the first failed request's error
    tx.oncomplete = () => resolve();
    tx.onerror = (ev) => {
      const e = ev && ev.target && ev.target.error;
      if (e && !cause) cause = e;
      reject(idbError(cause || tx.error, 'transaction'));
    };
    tx.onabort = () => reject(idbError(cause || tx.error, 'transaction (aborted)'));
  });
}

/** Opens name at version; upgrade(db, ev, tx) makes its stores. A tab still running an older
 * page holds the old version open: the upgrade waits (and says so) until it closes; pages
 * from now on close the database when a newer page asks, and onClose() is called. */
export async function openDB(name, version, upgrade, onClose, onBlocked = () => {}) {
  const r = indexedDB.open(name, version);
  r.onupgradeneeded = (ev) => upgrade(r.result, ev, r.transaction);
  r.onblocked = () => {
    console.warn(`chattorrent: the upgrade of ${name} waits for another tab to close`);
    onBlocked();
  };
  const db = await req(r);
  db.onversionchange = () => {
    db.close();
    onClose();
  };
  return db;
}

/** Whether err says the browser's storage is full: QuotaExceededError only. UnknownError is
 * not: WebKit gives it for a Blob it refuses (private browsing), Chromium for an internal
 * failure; taking it for a full disk sent users to free space that was not the problem. */
export function isFull(err) {
  return !!err && err.name === 'QuotaExceededError';
}

/** A short "Name: message" of err for the user (the real cause, in the browser's words). */
export function describe(err) {
  if (!err) return 'unknown error';
  const name = err.name && err.name !== 'Error' ? `${err.name}: ` : '';
  return `${name}${err.message || String(err)}`.slice(0, 300);
}
