// The box's owner panel, inside the box section: an unclaimed box offers "claim this box"
// with the one-time code the box printed in its log; the owner gets the box's settings
// (microphone on or off, the push-to-talk room); anyone else a short line. The owner's
// credential is an HttpOnly cookie the page never sees. textContent only.

import { initOwnerBox } from './ownerbox.js';

import { BOX_HEADERS as HEADERS } from './boxapi.js';

const $ = (id) => document.getElementById(id);

/** Shows a message by its i18n key (kept on the node, so a language change retranslates it
 * through the page's data-i18n pass); detail, when the key is unknown, is shown instead. */
function say(tr, key, detail) {
  const msg = $('owner-msg');
  const s = tr()(key);
  if (s === key && detail) {
    delete msg.dataset.i18n;
    msg.textContent = detail;
  } else {
    msg.dataset.i18n = key;
    msg.textContent = s;
  }
  msg.dataset.code = key;
  msg.hidden = false;
}

async function errorOf(res) {
  try {
    const j = await res.json();
    return { code: typeof j.code === 'string' ? j.code : '', error: typeof j.error === 'string' ? j.error : res.statusText };
  } catch {
    return { code: '', error: res.statusText };
  }
}

function showSettings(s) {
  $('owner-mic').checked = !s.mic_off;
  $('owner-stick').checked = !s.stick_export_off;
  const sel = $('owner-ptt');
  const auto = sel.querySelector('option[value=""]');
  const rooms = Array.isArray(s.rooms) ? s.rooms.filter((r) => r && typeof r.id === 'string' && /^[0-9a-f]{32}$/.test(r.id)) : [];
  const opts = rooms.map((r) => {
    const o = document.createElement('option');
    o.value = r.id;
    o.textContent = typeof r.name === 'string' && r.name ? r.name : r.id;
    return o;
  });
  sel.replaceChildren(auto, ...opts);
  sel.value = rooms.some((r) => r.id === s.ptt_room) ? s.ptt_room : '';
}

/** Loads the panel; tr returns the page's current translator. Resolves once it is shown
 * (or hidden where the box has no owner API). */
export async function initOwner(tr) {
  const panel = $('owner');
  if (!panel) return;
  const tools = initOwnerBox(tr); // storage, update, logs, factory reset (ownerbox.js)
  const load = async () => {
    let st;
    try {
      const res = await fetch('/api/owner', { headers: HEADERS });
      if (!res.ok) return;
      st = await res.json();
    } catch {
      return; // not a box: no panel
    }
    let settings = null;
    if (st.owner) {
      const res = await fetch('/api/owner/settings', { headers: HEADERS }).catch(() => null);
      if (res && res.ok) settings = await res.json();
    }
    $('owner-claim').hidden = !!st.claimed;
    $('owner-settings').hidden = !settings;
    $('owner-other').hidden = !st.claimed || !!settings;
    panel.dataset.state = !st.claimed ? 'unclaimed' : settings ? 'owner' : 'other';
    if (settings) showSettings(settings);
    panel.hidden = false;
    if (settings) await tools.show();
  };
  $('owner-claim').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = $('owner-claim-btn');
    btn.disabled = true;
    try {
      const res = await fetch('/api/owner/claim', {
        method: 'POST', headers: { ...HEADERS, 'Content-Type': 'application/json' },
        body: JSON.stringify({ code: $('owner-code').value.trim().slice(0, 32) }),
      });
      if (res.ok) {
        $('owner-code').value = '';
        say(tr, 'owner.claimed');
      } else {
        const e = await errorOf(res);
        say(tr, `owner.err.${e.code}`, e.error);
      }
      await load();
    } catch {
      say(tr, 'owner.err.failed');
    } finally {
      btn.disabled = false;
    }
  });
  const save = async () => {
    const body = { mic_off: !$('owner-mic').checked, ptt_room: $('owner-ptt').value, stick_export_off: !$('owner-stick').checked };
    try {
      const res = await fetch('/api/owner/settings', {
        method: 'PUT', headers: { ...HEADERS, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      if (!res.ok) {
        const e = await errorOf(res);
        say(tr, `owner.err.${e.code}`, e.error);
        await load();
        return;
      }
      showSettings(await res.json());
      say(tr, 'owner.saved');
    } catch {
      say(tr, 'owner.err.failed');
    }
  };
  $('owner-mic').addEventListener('change', save);
  $('owner-stick').addEventListener('change', save);
  $('owner-ptt').addEventListener('change', save);
  await load();
}
