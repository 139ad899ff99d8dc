// Membership on the box (docs/PROTOCOL.md §7, docs/SECURITY.md): the page proves it holds
// its identity key by signing the box's single-use nonce, so that the box shows it the rooms
// that key wrote in, and no others. The box answers with an HttpOnly cookie; the page never
// sees a token. Also the members' event stream: the box says when its microphone records
// into one of this page's rooms.

import { toB64url } from './history.js';

export const PROOF_CONTEXT = 'chattorrent-member-v1';

/** The bytes a page signs: context, the page's origin and the box's nonce, one a line. */
export function proofMessage(origin, nonce) {
  return new TextEncoder().encode(`${PROOF_CONTEXT}\n${origin}\n${nonce}`);
}

const NONCE = /^[0-9a-f]{64}$/;

/** Proves the identity me ({author, privateKey}) to the box. Resolves true once the box
 * took the proof; false where there is no box (or an old one), or it refused. */
export async function proveMember(me, headers, origin = location.origin, fetchFn = fetch) {
  const c = await fetchFn('/api/member/challenge', { method: 'POST', headers });
  if (!c.ok) return false;
  const { nonce, context } = await c.json();
  if (context !== PROOF_CONTEXT || typeof nonce !== 'string' || !NONCE.test(nonce)) return false;
  const sig = new Uint8Array(await crypto.subtle.sign('Ed25519', me.privateKey, proofMessage(origin, nonce)));
  const res = await fetchFn('/api/member/proof', {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify({ author: me.author, nonce, sig: toB64url(sig) }),
  });
  return res.ok;
}

/** Follows the box's members' events; onRecording(roomId or '') at every change. The
 * stream ends after a while on the box's side and EventSource opens it again. */
export function watchActivity(onRecording) {
  const es = new EventSource('/api/member/events');
  es.addEventListener('recording', (ev) => {
    let room = '';
    try {
      const d = JSON.parse(ev.data);
      if (d && typeof d.room === 'string' && /^([0-9a-f]{32})?$/.test(d.room)) room = d.room;
    } catch {
      // a malformed event: nothing is recording as far as this page knows
    }
    onRecording(room);
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) onRecording('');
  };
  return es;
}
