// Consent for answers that come through the box's drop box (docs/UI.md, "Drop box").
// A published offer is visible to everyone on the box's Wi-Fi, so anyone may answer it: the
// creator's page lists each answer with its sender's name and the safety code (rtc.js
// safetyCode of the offer and the answer: the code both pages show once connected) and
// applies it only when its person accepts. The guest's page shows the same code while it
// waits, so the two people can compare it out loud. Names come from peers: they are only
// ever set as text (textContent), inside <bdi> so right-to-left or control characters in a
// name cannot reorder the words around it.
//
// Pure helpers (node --test, web/jstest/dropconsent.test.mjs) and two DOM builders that
// take the document from their caller.

const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** A name for plain text (a notice, a title): its own bidi controls removed and the rest
 * wrapped in FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE, so it cannot reorder the
 * sentence around it. */
export function isolate(name) {
  return `\u2068${String(name).replace(BIDI_CONTROLS, '')}\u2069`;
}

/** Splits a translated template into text and placeholder parts: "{name} quiere unirse a
 * «{room}»" → [{key: 'name'}, {text: ' quiere unirse a «'}, {key: 'room'}, {text: '»'}]. */
export function templateParts(template) {
  const parts = [];
  const re = /\{(\w+)\}/g;
  let at = 0;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    if (m.index > at) parts.push({ text: template.slice(at, m.index) });
    parts.push({ key: m[1] });
    at = m.index + m[0].length;
  }
  if (at < template.length) parts.push({ text: template.slice(at) });
  return parts;
}

/** Decodes the data of an "answer" event of the creator's stream ({"id", "torrent": base64})
 * into {id, bytes}; throws on anything else. */
export function parseAnswerEvent(data) {
  const j = JSON.parse(data);
  if (!j || typeof j !== 'object' || typeof j.id !== 'string' || !/^[0-9a-f]{16}$/.test(j.id) || typeof j.torrent !== 'string') {
    throw Object.assign(new Error('drop box answer event'), { code: 'box-failed' });
  }
  const bin = atob(j.torrent);
  return { id: j.id, bytes: Uint8Array.from(bin, (c) => c.charCodeAt(0)) };
}

/** The answers waiting for their person's verdict, in arrival order: each
 * {answerId, offerId, session, room, roomName, name, code, inv}. An answer comes once (a
 * reconnecting stream sends it again); at most `max` wait at once (the box caps them too). */
export class ConsentList {
  constructor(max = 16) {
    this.max = max;
    this.items = [];
  }

  /** Adds an answer; false if it is already listed or the list is full. */
  add(item) {
    if (this.items.some((x) => x.answerId === item.answerId) || this.items.length >= this.max) return false;
    this.items.push(item);
    return true;
  }

  get(answerId) {
    return this.items.find((x) => x.answerId === answerId);
  }

  /** Removes one answer and returns it (undefined if it was not listed). */
  remove(answerId) {
    const i = this.items.findIndex((x) => x.answerId === answerId);
    return i < 0 ? undefined : this.items.splice(i, 1)[0];
  }

  /** Removes every answer to one offer (it was accepted or withdrawn). */
  dropOffer(offerId) {
    this.items = this.items.filter((x) => x.offerId !== offerId);
  }

  /** A key that changes whenever what is shown changes. */
  key() {
    return this.items.map((x) => x.answerId).join(',');
  }
}

/** Text and <bdi> nodes for a template whose placeholders are peer-given names. */
export function withNames(doc, template, names) {
  return templateParts(template).map((p) => {
    if (p.text !== undefined) return doc.createTextNode(p.text);
    if (!(p.key in names)) return doc.createTextNode(`{${p.key}}`);
    const b = doc.createElement('bdi');
    b.className = `drop-${p.key}`;
    b.textContent = names[p.key];
    return b;
  });
}

/** One <li class="drop-answer"> per waiting answer: who (name in <bdi class="drop-answer-name">),
 * the safety code, how to check it, Accept and Reject. */
export function consentItems(doc, items, t) {
  return items.map((x) => {
    const li = doc.createElement('li');
    li.className = 'drop-answer';
    li.dataset.answerId = x.answerId;
    li.dataset.roomId = x.room;
    const who = doc.createElement('p');
    who.className = 'drop-answer-who';
    who.append(...withNames(doc, t('dropAsk'), { name: x.name, room: x.roomName }));
    who.querySelector('.drop-name').className = 'drop-answer-name';
    const code = doc.createElement('p');
    code.className = 'drop-answer-code safety';
    code.dataset.code = x.code;
    code.textContent = t('safetyCode', { code: x.code });
    const hint = doc.createElement('p');
    hint.className = 'hint';
    hint.textContent = t('dropAskHint');
    const buttons = doc.createElement('div');
    buttons.className = 'drop-answer-actions';
    for (const [cls, label] of [['drop-accept primary', 'dropAccept'], ['drop-reject', 'dropReject']]) {
      const b = doc.createElement('button');
      b.type = 'button';
      b.className = cls;
      b.dataset.answerId = x.answerId;
      b.textContent = t(label);
      buttons.append(b);
    }
    li.append(who, code, hint, buttons);
    return li;
  });
}

/** Fills the guest's #drop-wait for one answer sent through the box: {name, code, state}
 * with state waiting|rejected|gone. */
export function fillWait(node, w, t) {
  const doc = node.ownerDocument;
  node.dataset.state = w.state;
  node.dataset.code = w.code;
  if (w.state === 'waiting') {
    node.replaceChildren(...withNames(doc, t('dropWait'), { name: w.name }).map((n) => {
      if (n.nodeType !== 3 || !n.data.includes('{code}')) return n;
      // the code inside the sentence, in its own element
      const span = doc.createElement('span');
      const [before, after] = n.data.split('{code}');
      const c = doc.createElement('strong');
      c.className = 'drop-wait-code';
      c.textContent = w.code;
      span.append(before, c, after);
      return span;
    }));
  } else {
    node.replaceChildren(...withNames(doc, t(w.state === 'rejected' ? 'dropRejected' : 'dropGone'), { name: w.name }));
  }
}
