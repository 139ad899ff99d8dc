// The owner's box tools, inside the owner's settings (owner.js shows them to the owner
// only; the box checks every request anyway): storage per room, an update from a signed
// release file with upload progress, the backup and restore (backup.js), the last log
// lines, and the factory reset, which names what is lost and needs the box's name typed.
// textContent only.

import { initBackup } from './backup.js';
import { BOX_HEADERS as HEADERS, uploadWithProgress } from './boxapi.js';
import { $ } from './dom.js';
import { formatBytes } from './format.js';
import { initNetwork } from './network.js';

function status(id, text, code) {
  const el = $(id);
  el.textContent = text;
  if (code !== undefined) el.dataset.code = code;
}

async function getJSON(path) {
  const res = await fetch(path, { headers: HEADERS });
  if (!res.ok) throw new Error(res.statusText);
  return res.json();
}

async function loadStorage(tr) {
  try {
    const s = await getJSON('/api/owner/storage');
    const rooms = Array.isArray(s.rooms) ? s.rooms : [];
    $('owner-storage').replaceChildren(...rooms.map((r) => {
      const li = document.createElement('li');
      li.textContent = tr('owner.storageRoom', { name: String(r.name || r.id), n: Number(r.entries) || 0 });
      return li;
    }));
    status('owner-storage-total', tr('owner.storageTotal', { store: formatBytes(Number(s.store_bytes) || 0), files: formatBytes(Number(s.files_bytes) || 0), n: rooms.length }));
  } catch {
    status('owner-storage-total', tr('owner.err.failed'));
  }
}

async function loadUpdate(tr) {
  try {
    const u = await getJSON('/api/owner/update');
    const st = u.state || {};
    let line = tr('owner.updateRunning', { version: String(u.running) });
    if (st.last) line += ` — ${String(st.last)}`;
    status('owner-update-status', line);
  } catch {
    status('owner-update-status', '');
  }
}

async function loadLogs() {
  const res = await fetch('/api/owner/logs', { headers: HEADERS }).catch(() => null);
  $('owner-logs').textContent = res && res.ok ? await res.text() : '';
}


/** Waits for the box to answer /healthz again after a restart. */
async function backOnline() {
  for (let i = 0; i < 120; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    try {
      const res = await fetch('/healthz', { cache: 'no-store' });
      if (res.ok) return (await res.json()).version;
    } catch { /* still restarting */ }
  }
  return '';
}

/** Wires the tools once; tr returns the current translator. */
export function initOwnerBox(tr) {
  if (!$('owner-tools')) return { show: async () => {} };
  const net = initNetwork(tr); // the box's name and Wi-Fi (network.js)
  initBackup(tr, backOnline); // backup.js
  $('owner-update-file').addEventListener('change', async (ev) => {
    const file = ev.target.files && ev.target.files[0];
    if (!file) return;
    const bar = $('owner-update-progress');
    bar.hidden = false;
    bar.value = 0;
    status('owner-update-msg', tr()('owner.updateUploading'), 'uploading');
    const res = await uploadWithProgress('/api/owner/update', file, (f) => { bar.value = f; });
    ev.target.value = '';
    bar.hidden = true;
    if (res.status !== 202) {
      const code = typeof res.body.code === 'string' ? res.body.code : 'failed';
      const known = tr()(`owner.updateErr.${code}`);
      status('owner-update-msg', known === `owner.updateErr.${code}` ? String(res.body.error || code) : known, code);
      return;
    }
    status('owner-update-msg', tr()('owner.updateRestarting', { version: String(res.body.version) }), 'restarting');
    const v = await backOnline();
    status('owner-update-msg', v ? tr()('owner.updateBack', { version: v }) : tr()('owner.err.failed'), v ? 'back' : 'failed');
    await loadUpdate(tr());
  });
  const word = $('owner-reset-word');
  word.addEventListener('input', () => {
    $('owner-reset-btn').disabled = word.value.trim() !== $('owner-reset-name').textContent;
  });
  $('owner-reset-btn').addEventListener('click', async () => {
    const res = await fetch('/api/owner/factory-reset', {
      method: 'POST', headers: { ...HEADERS, 'Content-Type': 'application/json' },
      body: JSON.stringify({ confirm: word.value.trim() }),
    }).catch(() => null);
    if (!res || res.status !== 202) {
      status('owner-reset-msg', tr()('owner.err.failed'), 'failed');
      return;
    }
    status('owner-reset-msg', tr()('owner.resetting'), 'resetting');
    word.value = '';
    $('owner-reset-btn').disabled = true;
    await backOnline();
    location.reload();
  });
  return {
    /** Fills the tools (the owner's panel is showing). */
    async show() {
      const t = tr();
      try {
        const r = await getJSON('/api/owner/factory-reset');
        $('owner-reset-name').textContent = String(r.confirm || '');
        const lost = Array.isArray(r.lost) ? r.lost : [];
        $('owner-reset-lost').replaceChildren(...lost.map((k) => {
          const li = document.createElement('li');
          li.dataset.lost = String(k);
          li.textContent = t(`owner.lost.${k}`);
          return li;
        }));
      } catch { /* an older box: no reset */ }
      await Promise.all([net.show(), loadStorage(t), loadUpdate(t), loadLogs()]);
    },
  };
}
