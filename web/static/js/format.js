// Formatting for people (sizes, durations, times) and random ids. Pure but for the
// language of times (lang.js).

import { lang } from './lang.js';

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function randomHex(n) {
  return hex(crypto.getRandomValues(new Uint8Array(n)));
}

export function formatBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// Formatters are costly to make: one per language.
const formats = new Map();

export function formatTime(ts, withDay) {
  const key = `${lang()}:${withDay}`;
  let f = formats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(lang(), withDay ? { hour: '2-digit', minute: '2-digit', day: 'numeric', month: 'short' } : { hour: '2-digit', minute: '2-digit' });
    formats.set(key, f);
  }
  return f.format(ts);
}
