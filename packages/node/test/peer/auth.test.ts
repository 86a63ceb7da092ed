import { createHmac } from 'node:crypto';
import { PeerVerifier, derivePeerKey, peerSignature, signPeerRequest, PEER_AUTH_INFO } from '../../src/peer/auth.js';

const clusterKey = new Uint8Array(32).fill(1);
const otherKey = new Uint8Array(32).fill(2);
const body = new TextEncoder().encode('raft messages');
let t = 1_700_000_000_000;
const now = () => t;

function signed(overrides: { key?: Uint8Array; to?: string; now?: number; nonce?: string; path?: string } = {}) {
  const headers = signPeerRequest(derivePeerKey(overrides.key ?? clusterKey), {
    method: 'POST',
    path: overrides.path ?? '/raft/v1/msgs',
    from: 'n1',
    to: overrides.to ?? 'n2',
    body,
    now: overrides.now ?? t,
    ...(overrides.nonce === undefined ? {} : { nonce: overrides.nonce }),
  });
  return { method: 'POST', path: '/raft/v1/msgs', headers, body };
}

describe('derivePeerKey', () => {
  test('HKDF-SHA256 with the documented info, never the raw key', () => {
    const k = derivePeerKey(clusterKey);
    expect(k).toHaveLength(32);
    expect(Buffer.from(k).equals(Buffer.from(clusterKey))).toBe(false);
    expect(Buffer.from(derivePeerKey(clusterKey)).equals(Buffer.from(k))).toBe(true);
    expect(PEER_AUTH_INFO).toBe('coffer peer auth v1');
    expect(() => derivePeerKey(new Uint8Array(31))).toThrow(RangeError);
  });
  test('signature is HMAC-SHA256 over the documented string', () => {
    const key = derivePeerKey(clusterKey);
    const sig = peerSignature(key, { method: 'post', path: '/p', from: 'n1', to: 'n2', ts: 5, nonce: 'ab', body: new Uint8Array() });
    const emptySha = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    const expected = createHmac('sha256', key).update(`coffer-peer-v1\nPOST\n/p\nn1\nn2\n5\nab\n${emptySha}`).digest('hex');
    expect(sig).toBe(expected);
  });
});

describe('PeerVerifier', () => {
  beforeEach(() => {
    t = 1_700_000_000_000;
  });
  const verifier = (opts: { maxNonces?: number } = {}) => new PeerVerifier({ clusterKey, nodeId: 'n2', now, ...opts });

  test('accepts a signed request once, refuses its replay', () => {
    const v = verifier();
    const req = signed();
    expect(v.verify(req)).toEqual({ ok: true, from: 'n1', bodyHash: expect.stringMatching(/^[0-9a-f]{64}$/), nonce: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(v.verify(req)).toEqual({ ok: false, reason: 'replayed' });
  });

  test('missing and malformed headers', () => {
    const v = verifier();
    const req = signed();
    expect(v.verify({ ...req, headers: {} })).toEqual({ ok: false, reason: 'missing' });
    const { 'x-coffer-sig': _sig, ...noSig } = req.headers;
    expect(v.verify({ ...req, headers: noSig })).toEqual({ ok: false, reason: 'missing' });
    expect(v.verify({ ...req, headers: { ...req.headers, 'x-coffer-ts': 'soon' } })).toEqual({ ok: false, reason: 'malformed' });
    expect(v.verify({ ...req, headers: { ...req.headers, 'x-coffer-sig': 'zz' } })).toEqual({ ok: false, reason: 'malformed' });
    expect(v.verify({ ...req, headers: { ...req.headers, 'x-coffer-nonce': ['a', 'b'] } })).toEqual({ ok: false, reason: 'missing' });
  });

  test('wrong key', () => {
    expect(verifier().verify(signed({ key: otherKey }))).toEqual({ ok: false, reason: 'bad_signature' });
  });

  test('tampered body, path, method, sender, timestamp', () => {
    const v = verifier();
    const req = signed();
    expect(v.verify({ ...req, body: new TextEncoder().encode('raft messageS') })).toEqual({ ok: false, reason: 'bad_signature' });
    expect(v.verify({ ...req, path: '/raft/v1/snapshot' })).toEqual({ ok: false, reason: 'bad_signature' });
    expect(v.verify({ ...req, method: 'PUT' })).toEqual({ ok: false, reason: 'bad_signature' });
    expect(v.verify({ ...req, headers: { ...req.headers, 'x-coffer-from': 'n3' } })).toEqual({ ok: false, reason: 'bad_signature' });
    expect(v.verify({ ...req, headers: { ...req.headers, 'x-coffer-ts': String(t + 1) } })).toEqual({ ok: false, reason: 'bad_signature' });
    const sig = req.headers['x-coffer-sig'] as string;
    const flipped = (sig[0] === '0' ? '1' : '0') + sig.slice(1);
    expect(v.verify({ ...req, headers: { ...req.headers, 'x-coffer-sig': flipped } })).toEqual({ ok: false, reason: 'bad_signature' });
    // None of the refusals burned the nonce: the genuine request still passes.
    expect(v.verify(req).ok).toBe(true);
  });

  test('every signed request gets a fresh nonce, also across pool refills', () => {
    const v = verifier();
    const nonces = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      const req = signed();
      const nonce = req.headers['x-coffer-nonce'] as string;
      expect(nonce).toMatch(/^[0-9a-f]{32}$/);
      nonces.add(nonce);
      expect(v.verify(req).ok).toBe(true);
    }
    expect(nonces.size).toBe(1_000);
    // The empty body's hash is the real sha256 of nothing, with or without a body given.
    const empty = signPeerRequest(derivePeerKey(clusterKey), { method: 'POST', path: '/p', from: 'n1', to: 'n2', now: t });
    expect(empty['x-coffer-body-sha256']).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(v.verify({ method: 'POST', path: '/p', headers: empty }).ok).toBe(true);
  });

  test('a request meant for another member is refused', () => {
    expect(verifier().verify(signed({ to: 'n3' }))).toEqual({ ok: false, reason: 'bad_signature' });
  });

  test('stale: outside ±30 s', () => {
    const v = verifier();
    expect(v.verify(signed({ now: t - 30_001 }))).toEqual({ ok: false, reason: 'stale' });
    expect(v.verify(signed({ now: t + 30_001 }))).toEqual({ ok: false, reason: 'stale' });
    expect(v.verify(signed({ now: t - 30_000 })).ok).toBe(true);
    expect(v.verify(signed({ now: t + 30_000 })).ok).toBe(true);
  });

  test('a replay after the window is stale, and the cache forgets old nonces', () => {
    const v = verifier();
    const req = signed();
    expect(v.verify(req).ok).toBe(true);
    t += 31_000;
    expect(v.verify(req)).toEqual({ ok: false, reason: 'stale' });
    expect(v.verify(signed()).ok).toBe(true);
    expect(v.rememberedNonces).toBe(1);
  });

  test('bounded cache: evicted nonces still cannot be replayed', () => {
    const v = verifier({ maxNonces: 10 });
    const reqs = Array.from({ length: 25 }, (_, i) => signed({ now: t + i, nonce: i.toString(16).padStart(32, '0') }));
    t += 30;
    for (const r of reqs) expect(v.verify(r).ok).toBe(true);
    expect(v.rememberedNonces).toBeLessThanOrEqual(10);
    for (const r of reqs) expect(v.verify(r).ok).toBe(false);
  });

  test('destroy zeroes the key and refuses everything', () => {
    const v = verifier();
    v.destroy();
    expect(v.verify(signed()).ok).toBe(false);
  });
});
