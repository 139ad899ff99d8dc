// Settings and identity's panel: the language, my name, the largest file fetched unasked,
// and the identity's backup (export and import). applyStrings() puts the language's words
// on every element marked data-i18n*.

import { cleanText, MAX_NAME } from './history.js';
import { state, store, maxFileBytes } from './state.js';
import { render } from './render.js';
import { $ } from './dom.js';
import { notify, on } from './notices.js';
import { t, lang, setLang } from './lang.js';
import { saveIdentity, importIdentity, exportIdentity } from './identity.js';
import { loadBoxRooms } from './box.js';

export function applyStrings() {
  document.documentElement.lang = lang();
  for (const n of document.querySelectorAll('[data-i18n]')) {
    if (!n.closest('[data-busy]')) n.textContent = t(n.dataset.i18n);
  }
  for (const n of document.querySelectorAll('[data-i18n-placeholder]')) n.placeholder = t(n.dataset.i18nPlaceholder);
  for (const n of document.querySelectorAll('[data-i18n-label]')) n.setAttribute('aria-label', t(n.dataset.i18nLabel));
  $('lang').value = lang();
}

/** The language select alone (also on the page shown to a browser that is too old). */
export function wireLanguage(then = () => {}) {
  on('lang', 'change', () => {
    setLang($('lang').value);
    applyStrings();
    then();
  });
}

export function wireSettings() {
  wireLanguage(render);
  on('my-name', 'change', () => {
    const name = cleanText($('my-name').value, MAX_NAME);
    if (!name) {
      $('my-name').value = state.me.name;
      return;
    }
    $('my-name').value = name;
    state.me.name = name;
    saveIdentity(state.me);
    render();
  });
  $('max-file-mb').value = String(Math.round(maxFileBytes() / 1048576));
  on('max-file-mb', 'change', () => {
    const mb = Math.floor(Number($('max-file-mb').value));
    if (!Number.isFinite(mb) || mb < 1) {
      $('max-file-mb').value = String(Math.round(maxFileBytes() / 1048576));
      return;
    }
    store.set('max-file-mb', mb);
    render();
  });
  on('identity-export', 'click', exportIdentity);
  on('identity-file', 'change', async () => {
    const input = $('identity-file');
    const file = input.files && input.files[0];
    input.value = '';
    if (!file || !(await importIdentity(file))) return;
    loadBoxRooms();
    notify('info', t('identityImported'));
    render();
  });
}
