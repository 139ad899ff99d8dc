// The owner's backup and restore, in the owner's box tools (ownerbox.js calls initBackup):
// a link that downloads the whole box as one file (GET /api/owner/backup), and a restore
// from such a file: chosen, confirmed, uploaded with progress (POST /api/owner/restore),
// then the box restarts with the backup's certificate and identity. The box checks the
// whole file before it changes anything; a refusal is shown with its reason. The section
// is built here with createElement and textContent only.

import { uploadWithProgress } from './boxapi.js';
import { $ } from './dom.js';

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'i18n') e.dataset.i18n = v;
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

/** Builds the section, before the factory reset's (or last in the tools). */
function build(t) {
  const box = el('details', { id: 'owner-backup-box' },
    el('summary', { i18n: 'backup.title', textContent: t('backup.title') }),
    el('p', { className: 'hint', i18n: 'backup.hint', textContent: t('backup.hint') }),
    el('p', {}, el('a', { id: 'owner-backup-link', href: '/api/owner/backup', download: '', i18n: 'backup.download', textContent: t('backup.download') })),
    el('label', {},
      el('span', { i18n: 'backup.restoreFile', textContent: t('backup.restoreFile') }), ' ',
      el('input', { id: 'owner-restore-file', type: 'file', accept: '.tar,application/x-tar' })),
    el('div', { id: 'owner-restore-confirm', hidden: true },
      el('p', { id: 'owner-restore-warn', className: 'hint' }),
      el('button', { id: 'owner-restore-btn', type: 'button', className: 'danger', i18n: 'backup.restoreBtn', textContent: t('backup.restoreBtn') }), ' ',
      el('button', { id: 'owner-restore-cancel', type: 'button', i18n: 'backup.cancel', textContent: t('backup.cancel') })),
    el('progress', { id: 'owner-restore-progress', max: 1, value: 0, hidden: true }),
    el('p', { id: 'owner-restore-msg', className: 'hint', role: 'status' }));
  const tools = $('owner-tools');
  tools.insertBefore(box, $('owner-reset-box') || null);
}

function status(text, code) {
  const m = $('owner-restore-msg');
  m.textContent = text;
  m.dataset.code = code;
}


/** Wires the section once; tr returns the current translator, backOnline waits for the
 * box to answer again after a restart. */
export function initBackup(tr, backOnline) {
  if (!$('owner-tools') || $('owner-backup-box')) return;
  build(tr());
  const input = $('owner-restore-file');
  const confirmBox = $('owner-restore-confirm');
  let chosen = null;
  input.addEventListener('change', () => {
    chosen = input.files && input.files[0];
    if (!chosen) return;
    $('owner-restore-warn').textContent = tr()('backup.confirm', { name: chosen.name });
    confirmBox.hidden = false;
    status('', 'confirm');
  });
  $('owner-restore-cancel').addEventListener('click', () => {
    chosen = null;
    input.value = '';
    confirmBox.hidden = true;
    status('', '');
  });
  $('owner-restore-btn').addEventListener('click', async () => {
    const file = chosen;
    if (!file) return;
    chosen = null;
    confirmBox.hidden = true;
    const bar = $('owner-restore-progress');
    bar.hidden = false;
    bar.value = 0;
    status(tr()('backup.uploading'), 'uploading');
    const res = await uploadWithProgress('/api/owner/restore', file, (f) => { bar.value = f; });
    input.value = '';
    bar.hidden = true;
    const t = tr();
    if (res.status !== 200) {
      const code = typeof res.body.code === 'string' ? res.body.code : 'failed';
      const known = t(`backup.err.${code}`);
      const why = typeof res.body.error === 'string' ? res.body.error : '';
      status(known === `backup.err.${code}` ? (why || t('backup.err.failed')) : `${known} ${why}`.trim(), code);
      return;
    }
    const b = res.body;
    const done = t('backup.restored', { box: String(b.box || ''), rooms: Number(b.rooms) || 0, n: Number(b.entries) || 0, files: Number(b.files) || 0 });
    if (!b.restarting) {
      status(`${done} ${t('backup.nextStart')}`, 'restored');
      return;
    }
    status(`${done} ${t('backup.restarting')}`, 'restarting');
    const v = await backOnline();
    status(v ? `${done} ${t('backup.back')}` : t('backup.gone', { box: String(b.box || '') }), v ? 'restored' : 'gone');
  });
}
