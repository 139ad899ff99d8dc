// A verifier checks a batch of entries on their own (history.checkEntries) and resolves to
// one result per entry. The page's verifier runs in a module worker; where workers are
// missing or fail, the checks run inline.
import { checkEntries } from './history.js';

export const inlineVerifier = (entries, room, now) => checkEntries(entries, room, now);

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
  return (entries, room, now) => {
    if (broken) return inlineVerifier(entries, room, now);
    return new Promise((resolve) => {
      const id = ++next;
      waiting.set(id, { resolve, retry: () => resolve(inlineVerifier(entries, room, now)) });
      worker.postMessage({ id, room, now, entries });
    });
  };
}
