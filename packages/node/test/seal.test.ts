// The seal core: init, unseal by any threshold of shares (and not fewer), refusal of duplicate,
// malformed and wrong shares, seal, restart, a changed config, concurrency; and, end to end with
// the real local key provider, envelopes and DEK cache: nothing opens while sealed, everything
// written before a seal opens after the next unseal with other shares.
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { DekCache, Envelopes, combineShares, createLocalProvider, localKeyId, openTransitKey, sealTransitKey, type KeyProvider } from '@coffer/crypto';
import {
  SealError,
  SealManager,
  SealableKeyProvider,
  SEAL_ERROR_CODES,
  keyCheckOf,
  parseShare,
  sealConfigError,
  type SealConfig,
  type SealErrorCode,
  type SealTarget,
} from '../src/seal/index.js';

// A target that records what it is given (copies, since the manager's own buffers are wiped).
function recordingTarget(): SealTarget & { keys: Uint8Array[]; handed: Uint8Array[]; seals: number } {
  const t = {
    keys: [] as Uint8Array[],
    handed: [] as Uint8Array[],
    seals: 0,
    unseal(key: Uint8Array): void {
      t.handed.push(key);
      t.keys.push(Uint8Array.from(key));
    },
    seal(): void {
      t.seals++;
    },
  };
  return t;
}

async function initialized(shares = 5, threshold = 3) {
  const target = recordingTarget();
  const seal = new SealManager({ target });
  const { keys, config } = await seal.init({ shares, threshold });
  await seal.configure(config);
  return { seal, target, keys, config };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function expectSealError(p: Promise<unknown>, code: SealErrorCode): Promise<SealError> {
  const err = await rejection(p);
  expect(err).toBeInstanceOf(SealError);
  if (!(err instanceof SealError)) throw err;
  expect(err.code).toBe(code);
  return err;
}

function subsets<T>(items: T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (items.length < k) return [];
  const [first, ...rest] = items;
  return [...subsets(rest, k - 1).map((s) => [first!, ...s]), ...subsets(rest, k)];
}

const b64 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'base64'));

describe('init', () => {
  test('returns n base64 shares and a config; keeps nothing and stays sealed and uninitialized', async () => {
    const made: Uint8Array[] = [];
    const target = recordingTarget();
    const seal = new SealManager({
      target,
      randomBytes: (n) => {
        const b = Uint8Array.from(nodeRandomBytes(n));
        made.push(b);
        return b;
      },
    });
    const { keys, config } = await seal.init({ shares: 5, threshold: 3 });
    expect(keys).toHaveLength(5);
    for (const k of keys) {
      expect(k).toMatch(/^[A-Za-z0-9+/]{44}$/);
      expect(b64(k)).toHaveLength(33);
    }
    expect(new Set(keys).size).toBe(5);
    // The generated master key was wiped; the shares still rebuild what it was.
    expect(made).toHaveLength(1);
    expect(made[0]!.every((b) => b === 0)).toBe(true);
    const key = await combineShares([b64(keys[0]!), b64(keys[3]!), b64(keys[4]!)]);
    expect(Buffer.from(config.keyCheck).equals(Buffer.from(keyCheckOf(key)))).toBe(true);
    expect(config).toMatchObject({ shares: 5, threshold: 3, keyId: localKeyId(key) });
    expect(sealConfigError(config)).toBeUndefined();
    // The key itself is nowhere in the config.
    expect(Buffer.from(config.keyCheck).equals(Buffer.from(key))).toBe(false);
    expect(seal.status()).toEqual({ initialized: false, sealed: true, t: 0, n: 0, progress: 0 });
    expect(target.keys).toHaveLength(0);
  });

  test('twice on a node that knows the config is refused', async () => {
    const { seal } = await initialized();
    const err = await expectSealError(seal.init({ shares: 5, threshold: 3 }), 'NODE_SEAL_ALREADY_INITIALIZED');
    expect(err.message).toBe('this cluster is already initialized');
  });

  test.each([
    [3, 5, 'secret_threshold (5) cannot exceed the number of shares (3)'],
    [5, 1, 'secret_threshold must be at least 2 when there is more than one share'],
    [0, 0, 'secret_shares must be between 1 and 255'],
    [256, 3, 'secret_shares must be between 1 and 255'],
    [5.5, 3, 'secret_shares must be an integer'],
  ])('shares %p threshold %p is refused: %s', async (shares, threshold, message) => {
    const seal = new SealManager({ target: recordingTarget() });
    const err = await expectSealError(seal.init({ shares, threshold }), 'NODE_SEAL_INVALID_PARAMS');
    expect(err.message).toBe(message);
  });
});

describe('unseal', () => {
  test('any 3 of 5 unseal, progress counting up on the way', async () => {
    const { keys, config } = await initialized();
    const combos = subsets(keys, 3);
    expect(combos).toHaveLength(10);
    for (const combo of combos) {
      // A fresh manager per combination: what a restarted node is.
      const target = recordingTarget();
      const seal = new SealManager({ target });
      await seal.configure(config);
      expect(seal.status()).toEqual({ initialized: true, sealed: true, t: 3, n: 5, progress: 0 });
      expect(await seal.submitShare(combo[0])).toEqual({ initialized: true, sealed: true, t: 3, n: 5, progress: 1 });
      expect(await seal.submitShare(combo[1])).toEqual({ initialized: true, sealed: true, t: 3, n: 5, progress: 2 });
      expect(await seal.submitShare(combo[2])).toEqual({ initialized: true, sealed: false, t: 3, n: 5, progress: 0 });
      expect(seal.isSealed()).toBe(false);
      expect(target.keys).toHaveLength(1);
      expect(Buffer.from(keyCheckOf(target.keys[0]!)).equals(Buffer.from(config.keyCheck))).toBe(true);
    }
  });

  test('any 2 of 5 do not', async () => {
    const { keys, config } = await initialized();
    for (const combo of subsets(keys, 2)) {
      const target = recordingTarget();
      const seal = new SealManager({ target });
      await seal.configure(config);
      for (const k of combo) await seal.submitShare(k);
      expect(seal.status()).toMatchObject({ sealed: true, progress: 2 });
      expect(target.keys).toHaveLength(0);
    }
  });

  test('a repeated share is refused with a clear message and progress is kept (also in hex)', async () => {
    const { seal, keys } = await initialized();
    await seal.submitShare(keys[0]);
    const err = await expectSealError(seal.submitShare(keys[0]), 'NODE_SEAL_SHARE_DUPLICATE');
    expect(err.message).toBe('this share was already submitted');
    await expectSealError(seal.submitShare(Buffer.from(keys[0]!, 'base64').toString('hex')), 'NODE_SEAL_SHARE_DUPLICATE');
    expect(seal.status().progress).toBe(1);
    await seal.submitShare(keys[1]);
    expect((await seal.submitShare(keys[2])).sealed).toBe(false);
  });

  test('another share with an index already used is refused, progress kept', async () => {
    const { seal, keys } = await initialized();
    await seal.submitShare(keys[0]);
    const forged = b64(keys[1]!);
    forged[32] = b64(keys[0]!)[32]!;
    const err = await expectSealError(seal.submitShare(Buffer.from(forged).toString('base64')), 'NODE_SEAL_SHARE_DUPLICATE');
    expect(err.message).toContain('same index');
    expect(seal.status().progress).toBe(1);
  });

  test.each([
    ['', 'is missing'],
    [undefined, 'is missing'],
    [42, 'is missing'],
    ['abc', 'must be base64 (44 characters) or hex (66 characters)'],
    [Buffer.alloc(32, 1).toString('base64'), 'must be base64'],
    [Buffer.alloc(34, 1).toString('base64'), 'must be base64'],
    [Buffer.alloc(33, 0xff).toString('base64url'), 'must be base64'],
    [Buffer.alloc(33, 1).toString('hex').slice(2), 'must be base64'],
    [Buffer.concat([Buffer.alloc(32, 1), Buffer.of(0)]).toString('base64'), 'index 0'],
    [Buffer.concat([Buffer.alloc(32, 1), Buffer.of(0)]).toString('hex'), 'index 0'],
  ])('malformed share %p is refused (%s), progress kept', async (share, what) => {
    const { seal, keys } = await initialized();
    await seal.submitShare(keys[0]);
    const err = await expectSealError(seal.submitShare(share), 'NODE_SEAL_SHARE_MALFORMED');
    expect(err.message).toContain(what);
    expect(seal.status().progress).toBe(1);
  });

  test('padding or stray characters are refused; surrounding whitespace is not an error; hex in either case', async () => {
    const { seal, keys } = await initialized();
    const k = keys[0]!;
    await expectSealError(seal.submitShare(`${k}=`), 'NODE_SEAL_SHARE_MALFORMED');
    await expectSealError(seal.submitShare(`${k.slice(0, 43)}=`), 'NODE_SEAL_SHARE_MALFORMED');
    await expectSealError(seal.submitShare(`${k.slice(0, 20)} ${k.slice(20)}`), 'NODE_SEAL_SHARE_MALFORMED');
    expect(await seal.submitShare(` ${k}\n`)).toMatchObject({ progress: 1 });
    expect(parseShare(Buffer.from(k, 'base64').toString('hex').toUpperCase())).toEqual(b64(k));
  });

  test('shares that do not rebuild the key are refused at the threshold; progress resets; the right ones then unseal', async () => {
    const a = await initialized();
    const other = await initialized();
    await a.seal.submitShare(a.keys[0]);
    await a.seal.submitShare(a.keys[1]);
    const err = await expectSealError(a.seal.submitShare(other.keys[2]), 'NODE_SEAL_SHARES_WRONG');
    expect(err.message).toBe("the 3 shares do not rebuild this cluster's master key (a wrong share, or shares of another init); progress was reset");
    expect(a.seal.status()).toMatchObject({ sealed: true, progress: 0 });
    expect(a.target.keys).toHaveLength(0);
    // A corrupted share (one flipped bit) is caught the same way.
    const bad = b64(a.keys[3]!);
    bad[5]! ^= 0x10;
    await a.seal.submitShare(a.keys[0]);
    await a.seal.submitShare(a.keys[1]);
    await expectSealError(a.seal.submitShare(Buffer.from(bad).toString('base64')), 'NODE_SEAL_SHARES_WRONG');
    for (const k of [a.keys[4], a.keys[2], a.keys[0]]) await a.seal.submitShare(k);
    expect(a.seal.isSealed()).toBe(false);
  });

  test('before the config is known: not initialized', async () => {
    const seal = new SealManager({ target: recordingTarget() });
    const err = await expectSealError(seal.submitShare('x'), 'NODE_SEAL_NOT_INITIALIZED');
    expect(err.message).toContain('not initialized');
  });

  test('when unsealed a share is not counted and nothing is handed over again', async () => {
    const { seal, target, keys } = await initialized();
    for (const k of keys.slice(0, 3)) await seal.submitShare(k);
    expect(await seal.submitShare(keys[3])).toEqual({ initialized: true, sealed: false, t: 3, n: 5, progress: 0 });
    expect(target.keys).toHaveLength(1);
  });

  test('one share of one', async () => {
    const { seal, target, keys } = await initialized(1, 1);
    expect(keys).toHaveLength(1);
    expect(await seal.submitShare(keys[0])).toEqual({ initialized: true, sealed: false, t: 1, n: 1, progress: 0 });
    expect(target.keys).toHaveLength(1);
  });

  test('resetProgress forgets submitted shares', async () => {
    const { seal, keys } = await initialized();
    await seal.submitShare(keys[0]);
    await seal.submitShare(keys[1]);
    expect(await seal.resetProgress()).toMatchObject({ sealed: true, progress: 0 });
    await seal.submitShare(keys[1]);
    expect(seal.status().progress).toBe(1);
  });

  test('concurrent submissions unseal exactly once', async () => {
    const { seal, target, keys } = await initialized();
    const statuses = await Promise.all(keys.map((k) => seal.submitShare(k)));
    expect(statuses.map((s) => [s.sealed, s.progress])).toEqual([[true, 1], [true, 2], [false, 0], [false, 0], [false, 0]]);
    expect(target.keys).toHaveLength(1);
  });

  test('a target that refuses the key keeps the node sealed, resets progress and gets its copy wiped', async () => {
    const handed: Uint8Array[] = [];
    const target: SealTarget = {
      unseal(key) {
        handed.push(key);
        throw new Error('provider could not start');
      },
      seal() {},
    };
    const seal = new SealManager({ target });
    const { keys, config } = await seal.init({ shares: 3, threshold: 2 });
    await seal.configure(config);
    await seal.submitShare(keys[0]);
    await expect(seal.submitShare(keys[1])).rejects.toThrow('provider could not start');
    expect(seal.status()).toMatchObject({ sealed: true, progress: 0 });
    expect(handed[0]!.every((b) => b === 0)).toBe(true);
  });

  test('error messages never contain a share', async () => {
    const { seal, keys } = await initialized();
    const other = await initialized();
    const messages: string[] = [];
    await seal.submitShare(keys[0]);
    for (const attempt of [keys[0], keys[0]!.slice(0, 40), `${keys[1]!.slice(0, 42)}@=`]) {
      messages.push(String(await rejection(seal.submitShare(attempt))));
    }
    await seal.submitShare(keys[1]);
    messages.push(String(await rejection(seal.submitShare(other.keys[0]))));
    for (const m of messages) for (const k of [...keys, ...other.keys]) {
      expect(m).not.toContain(k.slice(0, 16));
      expect(m).not.toContain(Buffer.from(k, 'base64').toString('hex').slice(0, 16));
    }
    expect(new Set(SEAL_ERROR_CODES).size).toBe(SEAL_ERROR_CODES.length);
  });
});

describe('seal, restart, config changes', () => {
  test('seal drops the key; another threshold of shares unseals again', async () => {
    const { seal, target, keys } = await initialized();
    for (const k of keys.slice(0, 3)) await seal.submitShare(k);
    await seal.submitShare(keys[3]); // no-op while unsealed
    expect(await seal.seal()).toEqual({ initialized: true, sealed: true, t: 3, n: 5, progress: 0 });
    expect(target.seals).toBe(1);
    expect(await seal.seal()).toMatchObject({ sealed: true });
    expect(target.seals).toBe(1);
    for (const k of keys.slice(2, 5)) await seal.submitShare(k);
    expect(seal.isSealed()).toBe(false);
    expect(Buffer.from(target.keys[0]!).equals(Buffer.from(target.keys[1]!))).toBe(true);
  });

  test('seal also forgets a half-finished round', async () => {
    const { seal, keys } = await initialized();
    await seal.submitShare(keys[0]);
    expect((await seal.seal()).progress).toBe(0);
  });

  test('a restart (a new manager with the replicated config) is sealed', async () => {
    const { seal, config, keys } = await initialized();
    for (const k of keys.slice(0, 3)) await seal.submitShare(k);
    const restarted = new SealManager({ target: recordingTarget() });
    expect(restarted.isSealed()).toBe(true);
    await restarted.configure(config);
    expect(restarted.status()).toEqual({ initialized: true, sealed: true, t: 3, n: 5, progress: 0 });
  });

  test('the same config again changes nothing; another config seals and resets', async () => {
    const { seal, target, keys, config } = await initialized();
    for (const k of keys.slice(0, 3)) await seal.submitShare(k);
    await seal.configure({ ...config, keyCheck: Uint8Array.from(config.keyCheck) });
    expect(seal.isSealed()).toBe(false);
    const other = await initialized(3, 2);
    await seal.configure(other.config);
    expect(seal.status()).toEqual({ initialized: true, sealed: true, t: 2, n: 3, progress: 0 });
    expect(target.seals).toBe(1);
    await expectSealError((async () => { await seal.submitShare(keys[0]); return seal.submitShare(keys[1]); })(), 'NODE_SEAL_SHARES_WRONG');
  });

  test('an invalid config from the state is refused', async () => {
    const seal = new SealManager({ target: recordingTarget() });
    const good: SealConfig = { shares: 5, threshold: 3, keyCheck: new Uint8Array(32), keyId: 'local:0123456789abcdef' };
    expect(sealConfigError(good)).toBeUndefined();
    await expect(seal.configure({ ...good, threshold: 6 })).rejects.toThrow(RangeError);
    await expect(seal.configure({ ...good, keyCheck: new Uint8Array(31) })).rejects.toThrow('keyCheck must be 32 bytes');
    await expect(seal.configure({ ...good, keyId: 'arn:aws:kms:x' })).rejects.toThrow('keyId must be a local key id');
    expect(seal.status().initialized).toBe(false);
  });
});

describe('with the real local key provider, envelopes and DEK cache', () => {
  test('sealed: nothing wraps or unwraps; unsealed: envelopes work under the cluster key id; seal clears the cache', async () => {
    const cache = new DekCache({ ttlSecs: 300 });
    let seal!: SealManager;
    const provider = new SealableKeyProvider({ expectedKeyId: () => seal.config()?.keyId, onSeal: () => cache.clear() });
    const envelopes = new Envelopes({ provider, cache });
    seal = new SealManager({ target: provider });
    const { keys, config } = await seal.init({ shares: 5, threshold: 3 });
    await seal.configure(config);

    await expect(envelopes.seal(Buffer.from('v'), { name: 'a', version: 1 })).rejects.toMatchObject({ code: 'CRYPTO_KMS_UNAVAILABLE' });
    expect(() => provider.currentKeyId()).toThrow('this node is sealed');

    for (const k of [keys[0], keys[2], keys[4]]) await seal.submitShare(k);
    expect(provider.isUnsealed()).toBe(true);
    expect(provider.currentKeyId()).toBe(config.keyId);
    const env = await envelopes.seal(Buffer.from('payments db password'), { name: 'payments/db', version: 1 });
    expect(env.kmsKeyId).toBe(config.keyId);
    const transitEnv = await sealTransitKey(envelopes, new Uint8Array(32).fill(5), { name: 'orders', type: 'aes256-gcm', version: 1 });
    // With the local provider a seal does not cache its fresh data key; the first open does.
    expect(Buffer.from(await envelopes.open(env, { name: 'payments/db', version: 1 })).toString()).toBe('payments db password');
    expect(cache.size).toBeGreaterThan(0);

    await seal.seal();
    expect(provider.isUnsealed()).toBe(false);
    expect(cache.size).toBe(0);
    await expect(envelopes.open(env, { name: 'payments/db', version: 1 })).rejects.toMatchObject({ code: 'CRYPTO_KMS_UNAVAILABLE' });
    await expect(openTransitKey(envelopes, transitEnv, { name: 'orders', type: 'aes256-gcm', version: 1 })).rejects.toMatchObject({ code: 'CRYPTO_KMS_UNAVAILABLE' });

    // Another three shares: the same key comes back and opens what was written before.
    for (const k of [keys[1], keys[3], keys[0]]) await seal.submitShare(k);
    expect(Buffer.from(await envelopes.open(env, { name: 'payments/db', version: 1 })).toString()).toBe('payments db password');
    expect((await openTransitKey(envelopes, transitEnv, { name: 'orders', type: 'aes256-gcm', version: 1 })).every((b) => b === 5)).toBe(true);
    await provider.close();
    expect(provider.isUnsealed()).toBe(false);
  });

  test('a provider whose key id is not the expected one is not installed', async () => {
    const provider = new SealableKeyProvider({ expectedKeyId: () => 'local:0000000000000000' });
    const seal = new SealManager({ target: provider });
    const { keys, config } = await seal.init({ shares: 2, threshold: 2 });
    await seal.configure(config);
    await seal.submitShare(keys[0]);
    await expect(seal.submitShare(keys[1])).rejects.toMatchObject({ code: 'CRYPTO_CONFIG' });
    expect(provider.isUnsealed()).toBe(false);
    expect(seal.isSealed()).toBe(true);
  });

  test('the key given to the provider is wiped once the provider is built; close wipes the ring', async () => {
    const built: KeyProvider[] = [];
    let given: Uint8Array | undefined;
    const provider = new SealableKeyProvider({
      build: (key) => {
        given = key;
        const p = createLocalProvider({ masterKeyBase64: Buffer.from(key).toString('base64') });
        built.push(p);
        return p;
      },
    });
    const seal = new SealManager({ target: provider });
    const { keys, config } = await seal.init({ shares: 3, threshold: 2 });
    await seal.configure(config);
    await seal.submitShare(keys[0]);
    await seal.submitShare(keys[2]);
    expect(given!.every((b) => b === 0)).toBe(true);
    expect(built[0]!.currentKeyId()).toBe(config.keyId);
    await seal.seal();
    // A closed local provider has dropped (and wiped) its ring.
    expect(() => built[0]!.currentKeyId()).toThrow('closed');
  });
});
