// WebRTC for ChatTorrent: non-trickle offers and answers (ICE gathering completes before
// the SDP is written into a .torrent), no STUN servers (the LAN has no internet), and the
// `chattorrent` DataChannel.

export const CHANNEL = 'chattorrent';

// Messages that arrive before a session listens: Chromium can deliver the peer's first
// message before our 'open' handler (or our .then on the channel) has run, and a message
// event with no listener is lost. Every channel buffers from the moment it exists.
const early = new WeakMap(); // RTCDataChannel → {data: [], listener}

function buffer(channel) {
  channel.binaryType = 'arraybuffer'; // file pieces (files.js)
  const b = { data: [], listener: (ev) => b.data.push(ev.data) };
  channel.addEventListener('message', b.listener);
  early.set(channel, b);
}

/** Stops buffering and returns what arrived so far, oldest first. */
export function takeEarly(channel) {
  const b = early.get(channel);
  if (!b) return [];
  channel.removeEventListener('message', b.listener);
  early.delete(channel);
  return b.data;
}
const GATHER_TIMEOUT_MS = 15000;

export class RTCFailure extends Error {
  constructor(code, detail) {
    super(`rtc: ${code}${detail ? `: ${detail}` : ''}`);
    this.name = 'RTCFailure';
    this.code = code;
    this.detail = detail || '';
  }
}

function newPeerConnection() {
  if (typeof RTCPeerConnection !== 'function') throw new RTCFailure('no-webrtc');
  return new RTCPeerConnection({ iceServers: [] });
}

/** Resolves once ICE gathering is complete, or after the timeout when at least one
 * candidate was gathered; rejects with gather-failed when there is none. */
function gathered(pc) {
  return new Promise((resolve, reject) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(() => {
      pc.removeEventListener('icegatheringstatechange', check);
      const sdp = pc.localDescription ? pc.localDescription.sdp : '';
      if (/^a=candidate:/m.test(sdp)) resolve();
      else reject(new RTCFailure('gather-failed'));
    }, GATHER_TIMEOUT_MS);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/** Makes an offer with the chattorrent channel. Returns {pc, channel, sdp}. */
export async function makeOffer() {
  const pc = newPeerConnection();
  try {
    const channel = pc.createDataChannel(CHANNEL, { ordered: true });
    buffer(channel);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    return { pc, channel, sdp: pc.localDescription.sdp };
  } catch (err) {
    pc.close();
    throw wrap(err);
  }
}

/** Answers an offer. Returns {pc, channel: Promise<RTCDataChannel>, sdp}. */
export async function makeAnswer(offerSdp) {
  const pc = newPeerConnection();
  const channel = new Promise((resolve) => {
    pc.addEventListener('datachannel', (ev) => {
      if (ev.channel.label === CHANNEL) {
        buffer(ev.channel);
        resolve(ev.channel);
      } else ev.channel.close();
    });
  });
  try {
    await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    return { pc, channel, sdp: pc.localDescription.sdp };
  } catch (err) {
    pc.close();
    throw wrap(err);
  }
}

/** Applies the guest's answer to our offer. */
export async function applyAnswer(pc, answerSdp) {
  try {
    await pc.setRemoteDescription({ type: 'answer', sdp: answerSdp });
  } catch (err) {
    throw wrap(err);
  }
}

function wrap(err) {
  return err instanceof RTCFailure ? err : new RTCFailure('rtc-failed', err && err.message);
}

/** The DTLS fingerprint of an SDP ("sha-256 AB:CD:…"), "" if none. */
export function sdpFingerprint(sdp) {
  const m = /^a=fingerprint:[ \t]*(.+?)[ \t]*$/m.exec(sdp || '');
  return m ? m[1].toLowerCase() : '';
}

/** A short code both people can read out loud: derived from both DTLS fingerprints, so a
 * man in the middle (who must use his own certificates) shows different codes on each side. */
export async function safetyCode(localSdp, remoteSdp) {
  const fps = [sdpFingerprint(localSdp), sdpFingerprint(remoteSdp)].sort().join('\n');
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`chattorrent-safety-v1\n${fps}`)));
  const n = ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
  const digits = String(n % 1000000).padStart(6, '0');
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}
