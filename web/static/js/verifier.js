// A verifier checks a batch of entries (history.checkBatch: fields, ids, links, and one
// signature per run of an author's linked entries) and resolves to one result per entry.
// known maps "author seq" to the id of the entry stored there, for the seqs the batch
// touches (knownIds). The page's verifier runs in a module worker; where workers are
// missing or fail, the checks run inline.
import { checkBatch } from './history.js';

export const inlineVerifier = (entries, room, now, known = {}) =>
  checkBatch(entries, room, now, (a, seq) => known[`${a} ${seq}`]);

/** What checkBatch needs of the log for these entries: per entry, the ids stored at its
 * seq and at seq-1, as a plain object a worker can receive. */
export function knownIds(log, entries) {
  const known = Object.create(null);
  for (const e of entries) {
    if (e === null || typeof e !== 'object' || typeof e.author !== 'string' || !Number.isSafeInteger(e.seq)) continue;
    for (const seq of [e.seq, e.seq - 1]) {
      const s = log.at(e.author, seq);
      if (s) known[`${e.author} ${seq}`] = s.id;
    }
  }
  return known;
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
