// The composer: text messages, files and pictures (attach, paste, drop on the room) and
// voice notes recorded with MediaRecorder, each written as an entry of the open room.

import { metaBody, cleanName, opensInline } from './files.js';
import { state, fileState, maxFileBytes } from './state.js';
import { render } from './render.js';
import { $, setText } from './dom.js';
import { formatBytes, formatDuration } from './format.js';
import { notify, fail, on } from './notices.js';
import { t } from './lang.js';
import { write } from './connect.js';

const MAX_VOICE_MS = 5 * 60 * 1000;
const MAX_TEXT_BYTES = 16384;

/** Sends files to the open room: each is hashed into media storage, then announced. */
async function sendFiles(list, kindOf = (file) => (opensInline(file.type, 'image') ? 'image' : 'file'), extra = {}) {
  const roomId = state.open;
  if (!roomId) return;
  for (const file of list) {
    if (file.size === 0) throw Object.assign(new Error('empty'), { code: 'file-empty' });
    if (file.size > maxFileBytes()) throw Object.assign(new Error(formatBytes(maxFileBytes())), { code: 'file-too-large' });
    const name = cleanName(file.name);
    notify('info', t('filePreparing', { name, pct: 0 }));
    const root = await state.media.addLocal(file, (done) => {
      notify('info', t('filePreparing', { name, pct: Math.floor((100 * done) / file.size) }));
    });
    const meta = { kind: kindOf(file), root, size: file.size, name, type: (file.type || '').slice(0, 127), ...extra };
    const f = fileState(root);
    f.state = 'complete';
    f.role = 'local';
    await write(roomId, meta.kind, metaBody(meta));
    $('notice').hidden = true;
    render();
  }
}

// Voice notes: MediaRecorder in a format the other phones can play where it is offered.
const recorder = { rec: null, chunks: [], started: 0, timer: 0, stream: null };

function voiceType() {
  if (typeof MediaRecorder === 'undefined') return null;
  return ['audio/mp4', 'audio/webm;codecs=opus', 'audio/webm', 'audio/ogg;codecs=opus'].find((x) => MediaRecorder.isTypeSupported(x)) || '';
}

async function toggleRecording() {
  const btn = $('record');
  if (recorder.rec) {
    recorder.rec.stop();
    return;
  }
  const type = voiceType();
  if (type === null) throw Object.assign(new Error('MediaRecorder'), { code: 'no-mic' });
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    throw Object.assign(new Error(err && err.message ? err.message : String(err)), { code: 'no-mic' });
  }
  const rec = new MediaRecorder(stream, type ? { mimeType: type } : {});
  Object.assign(recorder, { rec, chunks: [], started: performance.now(), stream });
  rec.ondataavailable = (ev) => {
    if (ev.data && ev.data.size) recorder.chunks.push(ev.data);
  };
  rec.onstop = () => {
    const ms = Math.round(performance.now() - recorder.started);
    clearInterval(recorder.timer);
    for (const tr of stream.getTracks()) tr.stop();
    recorder.rec = null;
    delete btn.dataset.recording; // (CSS shows the microphone icon again)
    $('record-time').textContent = '';
    btn.setAttribute('aria-label', t('record'));
    const mime = (rec.mimeType || type || 'audio/webm').split(';')[0];
    const ext = mime.includes('mp4') ? 'm4a' : mime.includes('ogg') ? 'ogg' : 'webm';
    const blob = new Blob(recorder.chunks, { type: mime });
    const name = `voice-${new Date().toISOString().replace(/[:.]/g, '-')}.${ext}`;
    const file = new File([blob], name, { type: mime });
    sendFiles([file], () => 'voice', { duration: ms }).catch(fail);
  };
  rec.start(1000);
  btn.dataset.recording = '1';
  const tick = () => {
    const ms = performance.now() - recorder.started;
    setText($('record-time'), formatDuration(ms)); // beside the stop icon (data-recording)
    btn.setAttribute('aria-label', t('recordStop', { time: formatDuration(ms) }));
    if (ms >= MAX_VOICE_MS && recorder.rec) recorder.rec.stop();
  };
  tick();
  recorder.timer = setInterval(tick, 500);
}

/** Wires the composer (#composer) and the room as a drop target for files. */
export function wireComposer() {
  on('composer', 'submit', async (e) => {
    e.preventDefault();
    const input = $('composer-input');
    const body = input.value.trim();
    if (!body || !state.open) return;
    if (new TextEncoder().encode(body).length > MAX_TEXT_BYTES) {
      notify('error', t('err.bad-field', { field: 'body' }), 'too-large');
      return;
    }
    await write(state.open, 'text', body);
    input.value = '';
    render();
  });
  on('composer-input', 'keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
  });
  on('attach-file', 'change', async () => {
    const input = $('attach-file');
    const list = [...(input.files || [])];
    input.value = '';
    await sendFiles(list);
  });
  on('attach', 'keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      $('attach-file').click();
    }
  });
  on('record', 'click', toggleRecording);
  on('composer-input', 'paste', async (e) => {
    const list = [...((e.clipboardData && e.clipboardData.files) || [])];
    if (!list.length) return;
    e.preventDefault();
    await sendFiles(list);
  });
  const roomPanel = $('room');
  roomPanel.addEventListener('dragover', (e) => {
    if (e.dataTransfer && [...e.dataTransfer.types].includes('Files')) {
      e.preventDefault();
      roomPanel.classList.add('dropping');
    }
  });
  roomPanel.addEventListener('dragleave', () => roomPanel.classList.remove('dropping'));
  on('room', 'drop', async (e) => {
    roomPanel.classList.remove('dropping');
    const list = [...((e.dataTransfer && e.dataTransfer.files) || [])];
    if (!list.length) return;
    e.preventDefault();
    await sendFiles(list);
  });
}

