// Spanish and English strings. The Spanish labels of the seed's guide are kept verbatim.
// Pure module: the caller passes navigator.languages and the stored choice.

export const LANGS = ['es', 'en'];

const es = {
  appName: 'ChatTorrent',
  yourName: 'Tu nombre',
  language: 'Idioma',
  startTitle: 'Nueva sala o invitación',
  newRoomName: 'Nombre de la nueva sala',
  createRoom: '1. Crear Sala & Exportar .torrent',
  importTorrent: '2. Importar Archivo .torrent',
  guideHint: 'Crea una sala y envía el archivo _offer.torrent a tu invitado (correo, USB…). Con el botón 2 se importa tanto una oferta como la respuesta.',
  rooms: 'Salas',
  noRooms: 'Aún no hay salas: crea una o importa un .torrent.',
  back: '← Salas',
  reconnect: 'Nueva oferta (reconectar)',
  exportHistory: 'Exportar Historial (JSON)',
  send: 'Enviar',
  composerPlaceholder: 'Escribe un mensaje',
  waiting: 'Esperando',
  connected: 'Conectado',
  offline: 'Desconectado',
  with: 'con {name}',
  preparing: 'Preparando la conexión…',
  afterOffer: 'Envía «{file}» a tu invitado y luego importa su respuesta con el botón «2. Importar Archivo .torrent».',
  afterAnswer: 'Envía «{file}» a quien te invitó. La sala se conectará cuando lo importe.',
  offlineHint: 'Sin conexión. Puedes escribir: se enviará al reconectar. Para reconectar, pulsa «Nueva oferta (reconectar)».',
  emptyRoom: 'Todavía no hay mensajes.',
  showEarlier: 'Mostrar mensajes anteriores ({n})',
  joined: '{name} se unió a la sala',
  sent: 'Enviado',
  delivered: 'Entregado',
  unsupported: 'Mensaje de una versión más nueva de ChatTorrent',
  forked: '⚠ historial bifurcado',
  forkedTitle: 'Este autor envió dos mensajes distintos con el mismo número: se conserva el primero.',
  safetyCode: 'Código de seguridad: {code}',
  safetyTitle: 'Compara este código en voz alta con la otra persona: si coincide, nadie está en medio.',
  identity: 'Tu identidad',
  identityHint: 'Tu clave identifica tus mensajes. Guarda una copia para usarla en otro navegador.',
  identityExport: 'Guardar copia de la identidad',
  identityImport: 'Restaurar identidad',
  identityImported: 'Identidad restaurada.',
  identityExported: 'Copia guardada: {file}.',
  lastYou: 'Tú: ',
  connectedWith: 'Conectado con {name}.',
  disconnected: 'La conexión con {name} se cerró.',
  historyExported: 'Historial exportado: {file}.',
  gotAnswer: 'Respuesta aplicada: conectando…',
  err: {
    'too-large': 'Ese archivo es demasiado grande para ser una invitación (máx. 64 KiB). Elige el .torrent que te enviaron.',
    empty: 'El archivo está vacío. Pide que te lo envíen otra vez.',
    malformed: 'Ese archivo no es un .torrent válido. Elige el archivo _offer.torrent o _answer.torrent de ChatTorrent.',
    truncated: 'El .torrent está incompleto (¿se cortó al copiarlo?). Pide que te lo envíen otra vez.',
    'not-torrent': 'Ese archivo no es un .torrent. Elige el archivo _offer.torrent o _answer.torrent.',
    'not-chattorrent': 'Es un .torrent, pero no una invitación de ChatTorrent.',
    version: 'Esta invitación es de una versión más nueva de ChatTorrent. Actualiza la aplicación.',
    'bad-field': 'La invitación tiene un dato no válido ({field}). Pide una nueva.',
    'pieces-mismatch': 'La invitación está dañada (su contenido no coincide). Pide una nueva.',
    'fingerprint-mismatch': 'La invitación está dañada (la huella no coincide). Pide una nueva.',
    'own-offer': 'Esta es tu propia oferta: envíasela a tu invitado e importa aquí su respuesta (_answer.torrent).',
    'no-pending-offer': 'Esta respuesta es para una oferta que esta página ya no tiene (¿se recargó?). Pulsa «Nueva oferta (reconectar)» en la sala y envía la nueva oferta.',
    'wrong-room': 'Esta respuesta es de otra sala. Importa la respuesta de la sala correcta.',
    'already-used': 'Esta respuesta ya se usó: la sala ya se conectó con ella.',
    'empty-name': 'Escribe un nombre para la sala.',
    'gather-failed': 'No se pudo preparar la conexión (sin direcciones de red). ¿Estás conectado a la Wi-Fi?',
    'storage-full': 'El almacenamiento del navegador está lleno: no se guardó nada. Exporta y libera espacio.',
    'read-failed': 'No se pudo leer el archivo.',
    'rtc-failed': 'No se pudo establecer la conexión: {detail}',
    'identity-bad': 'Ese archivo no es una copia de identidad de ChatTorrent.',
    'no-webrtc': 'Este navegador no admite WebRTC.',
    'no-crypto': 'Abre la página por HTTPS: el navegador necesita un contexto seguro.',
  },
};

const en = {
  appName: 'ChatTorrent',
  yourName: 'Your name',
  language: 'Language',
  startTitle: 'New room or invitation',
  newRoomName: 'New room name',
  createRoom: '1. Create room & export .torrent',
  importTorrent: '2. Import .torrent file',
  guideHint: 'Create a room and send the _offer.torrent file to your guest (email, USB stick…). Button 2 imports an offer as well as an answer.',
  rooms: 'Rooms',
  noRooms: 'No rooms yet: create one or import a .torrent.',
  back: '← Rooms',
  reconnect: 'New offer (reconnect)',
  exportHistory: 'Export history (JSON)',
  send: 'Send',
  composerPlaceholder: 'Write a message',
  waiting: 'Waiting',
  connected: 'Connected',
  offline: 'Offline',
  with: 'with {name}',
  preparing: 'Preparing the connection…',
  afterOffer: 'Send “{file}” to your guest, then import their answer with “2. Import .torrent file”.',
  afterAnswer: 'Send “{file}” back to whoever invited you. The room connects when they import it.',
  offlineHint: 'Offline. You can still write: messages are sent when you reconnect. To reconnect, press “New offer (reconnect)”.',
  emptyRoom: 'No messages yet.',
  showEarlier: 'Show earlier messages ({n})',
  joined: '{name} joined the room',
  sent: 'Sent',
  delivered: 'Delivered',
  unsupported: 'Message from a newer version of ChatTorrent',
  forked: '⚠ forked history',
  forkedTitle: 'This author sent two different messages with the same number: the first is kept.',
  safetyCode: 'Safety code: {code}',
  safetyTitle: 'Compare this code out loud with the other person: if it matches, no one sits in the middle.',
  identity: 'Your identity',
  identityHint: 'Your key identifies your messages. Keep a copy to use it in another browser.',
  identityExport: 'Save a copy of the identity',
  identityImport: 'Restore identity',
  identityImported: 'Identity restored.',
  identityExported: 'Copy saved: {file}.',
  lastYou: 'You: ',
  connectedWith: 'Connected with {name}.',
  disconnected: 'The connection with {name} closed.',
  historyExported: 'History exported: {file}.',
  gotAnswer: 'Answer applied: connecting…',
  err: {
    'too-large': 'That file is too large to be an invitation (max 64 KiB). Pick the .torrent you were sent.',
    empty: 'The file is empty. Ask for it to be sent again.',
    malformed: 'That file is not a valid .torrent. Pick a ChatTorrent _offer.torrent or _answer.torrent file.',
    truncated: 'The .torrent is incomplete (cut off while copying?). Ask for it to be sent again.',
    'not-torrent': 'That file is not a .torrent. Pick the _offer.torrent or _answer.torrent file.',
    'not-chattorrent': 'It is a .torrent, but not a ChatTorrent invitation.',
    version: 'This invitation comes from a newer version of ChatTorrent. Update the app.',
    'bad-field': 'The invitation has an invalid field ({field}). Ask for a new one.',
    'pieces-mismatch': 'The invitation is damaged (its content does not match). Ask for a new one.',
    'fingerprint-mismatch': 'The invitation is damaged (the fingerprint does not match). Ask for a new one.',
    'own-offer': 'This is your own offer: send it to your guest and import their answer (_answer.torrent) here.',
    'no-pending-offer': 'This answer is for an offer this page no longer holds (was it reloaded?). Press “New offer (reconnect)” in the room and send the new offer.',
    'wrong-room': 'This answer belongs to another room. Import the answer for the right room.',
    'already-used': 'This answer was already used: the room connected with it.',
    'empty-name': 'Type a name for the room.',
    'gather-failed': 'Could not prepare the connection (no network addresses). Are you on the Wi-Fi?',
    'storage-full': 'The browser storage is full: nothing was saved. Export and free some space.',
    'read-failed': 'Could not read the file.',
    'rtc-failed': 'Could not connect: {detail}',
    'identity-bad': 'That file is not a ChatTorrent identity backup.',
    'no-webrtc': 'This browser does not support WebRTC.',
    'no-crypto': 'Open the page over HTTPS: the browser needs a secure context.',
  },
};

export const STRINGS = { es, en };

/** The language to use: the stored choice, else the first of the browser's languages we
 * speak, else English. */
export function pickLang(stored, browserLangs = []) {
  if (LANGS.includes(stored)) return stored;
  for (const l of browserLangs) {
    const base = String(l).toLowerCase().split('-')[0];
    if (LANGS.includes(base)) return base;
  }
  return 'en';
}

/** A translator for lang: t('key', {name}) or t('err.code'). Unknown keys return the key. */
export function translator(lang) {
  const table = STRINGS[lang] || en;
  return (key, vars = {}) => {
    let s = key.split('.').reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), table);
    if (typeof s !== 'string') s = key.split('.').reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), en);
    if (typeof s !== 'string') return key;
    return s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  };
}
