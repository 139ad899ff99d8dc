// The page's language: the one chosen (kept in localStorage) or the browser's, and t(), the
// translator of the moment (i18n.js holds the strings). Every module calls t() and lang()
// rather than keep its own copy, so a switch of language reaches all of them.

import { pickLang, translator } from './i18n.js';
import { store } from './state.js';

let current = pickLang(store.lang(), navigator.languages || [navigator.language]);
let tr = translator(current);

/** The language shown: 'es' or 'en'. */
export function lang() {
  return current;
}

/** The string of key in the page's language, with {vars} filled in. */
export function t(key, vars) {
  return tr(key, vars);
}

/** Switches the language (and keeps the choice). Callers render again. */
export function setLang(l) {
  current = l === 'es' ? 'es' : 'en';
  tr = translator(current);
  store.setLang(current);
}
