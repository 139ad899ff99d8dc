// DOM helpers: elements are made with createElement and textContent only, never from HTML,
// so nothing a peer sends is ever parsed as markup.

import { STRINGS } from './i18n.js';
import { withNames } from './dropconsent.js';
import { lang } from './lang.js';

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') n.className = v;
    else if (k === 'text') n.textContent = v;
    else if (k.startsWith('data-') || k === 'role' || k === 'title' || k === 'datetime' || k.startsWith('aria-')) n.setAttribute(k, v);
    else n[k] = v;
  }
  for (const c of children) if (c) n.append(c);
  return n;
}

/** An element holding a translated sentence whose {placeholders} are peer-given names, each
 * in its own <bdi> (as text). */
export function named(tag, props, key, names) {
  const template = (STRINGS[lang()] && STRINGS[lang()][key]) ?? STRINGS.en[key] ?? key;
  const n = el(tag, props);
  n.append(...withNames(document, template, names));
  return n;
}

export function setText(n, text) {
  if (n.textContent !== text) n.textContent = text;
}

export function download(name, data, type) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

const listKeys = new WeakMap();

/** Fills list with build()'s items, but only when key (what they show) changed: render()
 * runs on every event, and swapping a button for an identical new one under a finger (or a
 * test's click) loses the tap. Returns the number of items shown. */
export function fillList(list, key, build) {
  if (listKeys.get(list) !== key) {
    list.replaceChildren(...build());
    listKeys.set(list, key);
  }
  return list.children.length;
}
