// A verifier checks a batch of entries (history.checkBatch: fields, ids, links, and one
// signature per run of an author's linked entries) and resolves to one result per entry.
// known maps "author seq" to the id of the entry stored there, for the seqs the batch
// touches (Log.known). The page's verifier runs in a module worker; where workers are
// missing or fail, the checks run inline.
import { checkBatch } from './history.js';

export const inlineVerifier = (entries, room, now, known = {}) =>
  checkBatch(entries, room, now, (a, seq) => known[`${a} ${seq}`]);

/** What checkBatch needs of the log for these entries (Log.known): per entry, the ids
 * stored at its seq and at seq-1, as a plain object a worker can receive. */
export function knownIds(log, entries) {
  return log.known(entries);
}

export function workerVerifier() {
  if (typeof Worker !== 'function') return inlineVerifier;
  let worker;
  try {
    worker = new Worker(new URL('./verify-worker.js', import.meta.url), { type: 'module' });
  } catch {
    return inlineVerifier;
  }
  let next = 0;
  let broken = false;
  const waiting = new Map();
  worker.addEventListener('message', (ev) => {
    const w = waiting.get(ev.data.id);
    waiting.delete(ev.data.id);
    if (w) w.resolve(ev.data.results);
  });
  worker.addEventListener('error', (ev) => {
    console.warn('chattorrent: the verify worker failed; checking on the page instead', ev.message);
    broken = true;
    for (const w of waiting.values()) w.retry();
    waiting.clear();
  });
  return (entries, room, now, known = {}) => {
    if (broken) return inlineVerifier(entries, room, now, known);
    return new Promise((resolve) => {
      const id = ++next;
      waiting.set(id, { resolve, retry: () => resolve(inlineVerifier(entries, room, now, known)) });
      worker.postMessage({ id, room, now, entries, known });
    });
  };
}
