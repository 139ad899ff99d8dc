// The owner's network settings, among the owner's tools (ownerbox.js): the box's name and
// its Wi-Fi access point (name, passphrase, country). The box validates and saves them; the
// system applies the Wi-Fi at once and a new name restarts the box. The passphrase is never
// shown, only whether one is set. Built with createElement and textContent only.

import { BOX_HEADERS as HEADERS } from './boxapi.js';
import { $, el } from './dom.js';

const API = '/api/owner/network';

function field(key, input) {
  return el('label', {}, el('span', { 'data-i18n': key }), ' ', input);
}

/** Builds the form at the top of the owner's tools; returns show() that fills it. */
export function initNetwork(tr) {
  const tools = $('owner-tools');
  if (!tools || $('owner-net-box')) return { show: async () => {} };
  const name = el('input', { id: 'net-name', type: 'text', autocomplete: 'off', maxLength: 63, spellcheck: false });
  const ssid = el('input', { id: 'net-ssid', type: 'text', autocomplete: 'off', maxLength: 32, spellcheck: false });
  const pass = el('input', { id: 'net-pass', type: 'password', autocomplete: 'new-password', maxLength: 63 });
  const country = el('input', { id: 'net-country', type: 'text', autocomplete: 'off', maxLength: 2, size: 3, spellcheck: false });
  const save = el('button', { id: 'net-save', type: 'submit', 'data-i18n': 'network.save' });
  const form = el('form', { id: 'net-form' },
    el('p', { class: 'hint', 'data-i18n': 'network.hint' }),
    field('network.name', name),
    el('p', { class: 'hint', 'data-i18n': 'network.nameHint' }),
    field('network.ssid', ssid),
    field('network.pass', pass),
    el('p', { id: 'net-pass-state', class: 'hint' }),
    field('network.country', country),
    el('p', { class: 'hint', 'data-i18n': 'network.rejoin' }),
    save,
    el('p', { id: 'net-msg', class: 'hint', role: 'status' }));
  tools.prepend(el('details', { id: 'owner-net-box' }, el('summary', { 'data-i18n': 'network.title' }), form));

  let current = null;
  const say = (key, vars, detail) => {
    const msg = $('net-msg');
    const s = tr()(key, vars);
    msg.textContent = s === key && detail ? detail : s;
    msg.dataset.code = key;
  };
  const fill = (v) => {
    current = v;
    const t = tr();
    for (const n of form.querySelectorAll('[data-i18n]')) n.textContent = t(n.dataset.i18n);
    name.value = String(v.box_name_next || v.box_name || '');
    ssid.value = String(v.ssid || '');
    country.value = String(v.country || '');
    pass.value = '';
    pass.placeholder = v.passphrase_set ? t('network.passKeep') : '';
    $('net-pass-state').textContent = t(v.passphrase_set ? 'network.passSet' : 'network.passNotSet');
    $('net-pass-state').dataset.set = v.passphrase_set ? 'yes' : 'no';
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { box_name: name.value.trim() };
    const wifi = { ssid: ssid.value, passphrase: pass.value, country: country.value.trim() };
    const wifiChanged = !current || wifi.passphrase !== '' || wifi.ssid !== String(current.ssid || '') || wifi.country !== String(current.country || '');
    if (wifiChanged) Object.assign(body, wifi);
    save.disabled = true;
    try {
      const res = await fetch(API, { method: 'PUT', headers: { ...HEADERS, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      let j = {};
      try { j = await res.json(); } catch { /* not JSON */ }
      if (!res.ok) {
        const code = typeof j.code === 'string' ? j.code : 'failed';
        say(`network.err.${code}`, {}, typeof j.error === 'string' ? j.error : res.statusText);
        return;
      }
      fill(j);
      if (j.restarting) say('network.restarting', { name: `${String(j.box_name_next)}.local` });
      else if (j.box_name_next) say('network.nameNext', { name: `${String(j.box_name_next)}.local` });
      else say(wifiChanged ? 'network.savedWifi' : 'network.saved', { ssid: String(j.ssid || '') });
    } catch {
      say('network.err.failed');
    } finally {
      save.disabled = false;
    }
  });
  return {
    async show() {
      try {
        const res = await fetch(API, { headers: HEADERS });
        if (res.ok) fill(await res.json());
      } catch { /* the box is restarting */ }
    },
  };
}
