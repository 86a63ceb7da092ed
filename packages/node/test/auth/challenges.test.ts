// Login challenges: authentic, bound to one identity, valid for at most 60 s (an injected clock
// makes expiry testable without waiting), verifiable by every member holding the cluster key.
import { randomBytes } from 'node:crypto';
import { CHALLENGE_TTL_MS, ChallengeKeys } from '../../src/auth/challenges';

describe('ChallengeKeys', () => {
  const clusterKey = randomBytes(32);

  test('a nonce verifies on another member with the same cluster key, for its identity only', () => {
    let now = 1_700_000_000_000;
    const a = new ChallengeKeys(clusterKey, () => now);
    const b = new ChallengeKeys(Uint8Array.from(clusterKey), () => now);
    const { nonce, expiresAt } = a.issue('agent-1');
    expect(expiresAt).toBe(now + CHALLENGE_TTL_MS);
    const v = b.verify('agent-1', nonce);
    expect(v).toEqual({ nonceId: expect.stringMatching(/^[0-9a-f]{32}$/), expiresAt });
    expect(b.verify('agent-2', nonce)).toBeUndefined();
    now += 1;
    // Two challenges never share an id.
    expect(a.verify('agent-1', a.issue('agent-1').nonce)?.nonceId).not.toBe(v?.nonceId);
  });

  test('expiry: valid up to and including expiresAt, refused one millisecond later', () => {
    let now = 1_700_000_000_000;
    const k = new ChallengeKeys(clusterKey, () => now);
    const { nonce, expiresAt } = k.issue('agent-1');
    now = expiresAt;
    expect(k.verify('agent-1', nonce)).toBeDefined();
    now = expiresAt + 1;
    expect(k.verify('agent-1', nonce)).toBeUndefined();
  });

  test('during a cluster-key rotation, nonces of a member still on the old key verify; never the other way round', () => {
    const now = (): number => 1_700_000_000_000;
    const newKey = randomBytes(32);
    const rotated = new ChallengeKeys(newKey, now, undefined, clusterKey);
    const old = new ChallengeKeys(clusterKey, now);
    expect(rotated.verify('agent-1', old.issue('agent-1').nonce)).toBeDefined();
    expect(rotated.verify('agent-1', rotated.issue('agent-1').nonce)).toBeDefined();
    // Issued under the new key only: a member without it cannot verify it, and nobody forges with the old one.
    expect(old.verify('agent-1', rotated.issue('agent-1').nonce)).toBeUndefined();
    expect(new ChallengeKeys(randomBytes(32), now, undefined, randomBytes(32)).verify('agent-1', old.issue('agent-1').nonce)).toBeUndefined();
  });

  test('a nonce from a member whose clock runs far ahead is refused', () => {
    const ahead = new ChallengeKeys(clusterKey, () => 1_700_000_000_000 + 60_000);
    const here = new ChallengeKeys(clusterKey, () => 1_700_000_000_000);
    expect(here.verify('agent-1', ahead.issue('agent-1').nonce)).toBeUndefined();
  });

  test('another cluster key, a single node\'s random key, any flipped character, and junk are refused', () => {
    const now = (): number => 1_700_000_000_000;
    const k = new ChallengeKeys(clusterKey, now);
    const { nonce } = k.issue('agent-1');
    expect(new ChallengeKeys(randomBytes(32), now).verify('agent-1', nonce)).toBeUndefined();
    const single = new ChallengeKeys(undefined, now);
    expect(single.verify('agent-1', single.issue('agent-1').nonce)).toBeDefined();
    expect(new ChallengeKeys(undefined, now).verify('agent-1', single.issue('agent-1').nonce)).toBeUndefined();
    for (let i = 0; i < nonce.length; i++) {
      const c = nonce[i] === 'A' ? 'B' : 'A';
      expect(k.verify('agent-1', nonce.slice(0, i) + c + nonce.slice(i + 1))).toBeUndefined();
    }
    for (const junk of ['', 'x', nonce + 'A', nonce.slice(1), '!'.repeat(nonce.length)]) expect(k.verify('agent-1', junk)).toBeUndefined();
  });
});
