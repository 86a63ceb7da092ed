// The `local` key provider: a ring of 32-byte master keys held in process memory, for development
// and for exercising rotation/re-wrap exactly like the AWS path. Not a KMS: anyone who can read the
// environment of a node can unwrap every DEK.
import { performance } from 'node:perf_hooks';
import { aead, KEY_LENGTH, NONCE_LENGTH, TAG_LENGTH } from './internal/aead.js';
import { encodeKeyBinding, assertContext, type SecretContext } from './context.js';
import { CryptoError, type CryptoErrorCode } from './errors.js';
import { hmacSha256, randomBytes as osRandomBytes, zeroize, type RandomBytes } from './bytes.js';
import type { DataKey, KeyProvider, KeyRotation, KmsHooks, KmsOperation, WrappedKey } from './key-provider.js';

/** The environment variable the node reads the local master key (ring) from. */
export const LOCAL_MASTER_KEY_ENV = 'COFFER_LOCAL_MASTER_KEY';

/** Options of {@link createLocalProvider}. */
export interface LocalProviderOptions {
  /**
   * The value of `COFFER_LOCAL_MASTER_KEY`: one base64 key (32 bytes), or a ring as a
   * comma-separated string / array with the CURRENT key first and older keys after it.
   * Absent: an ephemeral random key and a loud warning.
   */
  readonly masterKeyBase64?: string | readonly string[] | undefined;
  /**
   * The ring as raw 32-byte keys (current first), e.g. a master key rebuilt from Shamir shares.
   * The provider copies them (the caller wipes its own buffers) and wipes its copies on close;
   * unlike base64 text, nothing unwipeable is made. Exclusive with `masterKeyBase64`.
   */
  readonly masterKeys?: readonly Uint8Array[] | undefined;
  /** Receives the ephemeral-key warning (default: `process.emitWarning`). */
  readonly onWarning?: (message: string) => void;
  /** CSPRNG for DEKs, wrap nonces and the ephemeral key (tests inject a deterministic one). */
  readonly randomBytes?: RandomBytes;
  /** Metric hooks; operations are reported under the KMS operation names. */
  readonly hooks?: KmsHooks;
}

/** The local provider, with a few extras for operators and tests. */
export interface LocalKeyProvider extends KeyProvider {
  readonly kind: 'local';
  /** True when no key was configured and a random one lives only in this process. */
  readonly ephemeral: boolean;
  /** Ring key ids, current first. */
  keyIds(): string[];
}

// Wrapped DEK layout: [version 0x01][nonce 24][ciphertext 32 || tag 16] = 73 bytes.
const WRAP_VERSION = 1;
const WRAPPED_LENGTH = 1 + NONCE_LENGTH + KEY_LENGTH + TAG_LENGTH;
const WRAP_LABEL = 'coffer.local.wrap.v1';
const KEY_ID_LABEL = new TextEncoder().encode('coffer.local.key-id.v1');
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

export const EPHEMERAL_KEY_WARNING: string =
  `${LOCAL_MASTER_KEY_ENV} is not set: using a random in-memory master key. ` +
  'SECRETS WRITTEN NOW WILL BE UNREADABLE AFTER A RESTART, and other nodes cannot read them. ' +
  `Set ${LOCAL_MASTER_KEY_ENV} to the same base64 32-byte key on every node (e.g. \`openssl rand -base64 32\`).`;

interface RingKey {
  readonly id: string;
  readonly key: Uint8Array;
}

/**
 * Parses `COFFER_LOCAL_MASTER_KEY` (one key, or a comma-separated ring with the current key
 * first). Errors name the variable and the position, never the value.
 *
 * @param value - the variable's value or an array of entries.
 * @returns the decoded keys, current first; the caller zeroizes them.
 * @throws {CRYPTO_CONFIG} empty value or entry, bad base64, wrong length, duplicate key.
 * @example
 * ```ts
 * const [current, ...old] = parseLocalMasterKeys(process.env.COFFER_LOCAL_MASTER_KEY ?? '');
 * ```
 */
export function parseLocalMasterKeys(value: string | readonly string[]): Uint8Array[] {
  const entries = typeof value === 'string' ? value.split(',') : [...value];
  const config = (msg: string): CryptoError => new CryptoError('CRYPTO_CONFIG', `${LOCAL_MASTER_KEY_ENV}: ${msg}`);
  if (entries.length === 0 || (entries.length === 1 && entries[0]!.trim() === '')) {
    throw config('is set but empty; expected base64 of 32 bytes (a comma-separated list for a key ring)');
  }
  const keys: Uint8Array[] = [];
  try {
    entries.forEach((raw, i) => {
      const where = entries.length > 1 ? `entry ${i + 1} of ${entries.length}` : 'the key';
      if (typeof raw !== 'string') throw config(`${where} is not a string`);
      const s = raw.trim();
      if (s === '') throw config(`${where} is empty`);
      if (s.length % 4 !== 0 || !BASE64_RE.test(s)) throw config(`${where} is not valid base64`);
      const key = new Uint8Array(Buffer.from(s, 'base64'));
      if (key.length !== KEY_LENGTH) {
        zeroize(key);
        throw config(`${where} decodes to ${key.length} bytes; a master key must be exactly ${KEY_LENGTH} bytes`);
      }
      keys.push(key);
    });
    for (let i = 0; i < keys.length; i++) {
      for (let j = 0; j < i; j++) {
        if (Buffer.compare(keys[i]!, keys[j]!) === 0) throw config(`entries ${j + 1} and ${i + 1} are the same key`);
      }
    }
  } catch (err) {
    keys.forEach(zeroize);
    throw err;
  }
  return keys;
}

/**
 * The stable id of a local master key: `local:` + 16 hex digits of HMAC-SHA-256(key, label).
 * Derived from the key (not its ring position) so stored `kmsKeyId`s survive adding keys.
 *
 * @param key - 32-byte master key.
 * @returns the key id.
 * @example
 * ```ts
 * localKeyId(key); // 'local:3f0c9a…'
 * ```
 */
export function localKeyId(key: Uint8Array): string {
  const mac = hmacSha256(key, KEY_ID_LABEL);
  const id = `local:${Buffer.from(mac.subarray(0, 8)).toString('hex')}`;
  zeroize(mac);
  return id;
}

/**
 * Creates the `local` key provider. DEKs are wrapped with XChaCha20-Poly1305 under the current
 * ring key, with the key id and the secret context as associated data (the local analogue of the
 * KMS encryption context).
 *
 * @param opts - key ring, warning sink, randomness, hooks.
 * @returns the provider.
 * @throws {CRYPTO_CONFIG} when the configured key or ring is invalid (message names `COFFER_LOCAL_MASTER_KEY`).
 * @example
 * ```ts
 * const provider = createLocalProvider({ masterKeyBase64: process.env.COFFER_LOCAL_MASTER_KEY, onWarning: log.warn });
 * ```
 */
export function createLocalProvider(opts: LocalProviderOptions = {}): LocalKeyProvider {
  const random = opts.randomBytes ?? osRandomBytes;
  const hooks = opts.hooks ?? {};
  if (opts.masterKeys !== undefined && opts.masterKeyBase64 !== undefined) {
    throw new CryptoError('CRYPTO_CONFIG', 'local key provider: give masterKeys or masterKeyBase64, not both');
  }
  const ephemeral = opts.masterKeyBase64 === undefined && opts.masterKeys === undefined;
  let keys: Uint8Array[];
  if (opts.masterKeys !== undefined) {
    const given = opts.masterKeys;
    if (given.length === 0 || given.some((k) => !(k instanceof Uint8Array) || k.length !== KEY_LENGTH)) {
      throw new CryptoError('CRYPTO_CONFIG', `local key provider: masterKeys must be one or more ${KEY_LENGTH}-byte keys`);
    }
    keys = given.map((k) => Uint8Array.from(k));
  } else if (ephemeral) {
    keys = [random(KEY_LENGTH)];
    const warn = opts.onWarning ?? ((m: string) => process.emitWarning(m, { code: 'COFFER_EPHEMERAL_MASTER_KEY' }));
    warn(EPHEMERAL_KEY_WARNING);
  } else {
    keys = parseLocalMasterKeys(opts.masterKeyBase64!);
  }
  let ring: RingKey[] | undefined = keys.map((key) => ({ id: localKeyId(key), key }));
  const byId = new Map(ring.map((k) => [k.id, k]));

  const live = (): RingKey[] => {
    if (!ring) throw new CryptoError('CRYPTO_KMS_UNAVAILABLE', 'local key provider is closed');
    return ring;
  };
  // Reports one "KMS call" to the hooks, as the AWS provider does, so metrics and the benchmark's
  // calls-per-operation look the same for both providers.
  const measure = <T>(op: KmsOperation, fn: () => T): T => {
    const t0 = performance.now();
    try {
      return fn();
    } catch (err) {
      if (err instanceof CryptoError) hooks.onKmsError?.(op, err.code);
      throw err;
    } finally {
      hooks.onKmsLatency?.(op, (performance.now() - t0) / 1000);
    }
  };
  const invalid = (msg: string, cause?: unknown): CryptoError =>
    new CryptoError('CRYPTO_KMS_INVALID_CIPHERTEXT' satisfies CryptoErrorCode, msg, cause === undefined ? undefined : { cause });

  const wrap = (entry: RingKey, dek: Uint8Array, ctx: SecretContext): Uint8Array => {
    const nonce = random(NONCE_LENGTH);
    if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_LENGTH) throw new RangeError('randomBytes returned a bad nonce');
    const out = new Uint8Array(WRAPPED_LENGTH);
    out[0] = WRAP_VERSION;
    out.set(nonce, 1);
    // Sealed straight into the record: no intermediate ciphertext buffer.
    aead.seal(entry.key, nonce, dek, encodeKeyBinding(WRAP_LABEL, entry.id, ctx), out.subarray(1 + NONCE_LENGTH));
    return out;
  };
  const unwrap = (wrappedDek: Uint8Array, kmsKeyId: string, ctx: SecretContext): Uint8Array => {
    live();
    if (!(wrappedDek instanceof Uint8Array) || wrappedDek.length !== WRAPPED_LENGTH || wrappedDek[0] !== WRAP_VERSION) {
      throw invalid('wrapped DEK is malformed');
    }
    const entry = byId.get(kmsKeyId);
    if (!entry) {
      throw new CryptoError('CRYPTO_KMS_KEY_NOT_FOUND', `local master key ${JSON.stringify(kmsKeyId)} is not in ${LOCAL_MASTER_KEY_ENV}`);
    }
    try {
      return aead.open(entry.key, wrappedDek.subarray(1, 1 + NONCE_LENGTH), wrappedDek.subarray(1 + NONCE_LENGTH), encodeKeyBinding(WRAP_LABEL, entry.id, ctx));
    } catch (err) {
      throw invalid('wrapped DEK does not authenticate under this key and context', err);
    }
  };

  return {
    kind: 'local',
    ephemeral,
    keyIds: () => live().map((k) => k.id),
    currentKeyId: () => live()[0]!.id,
    async generateDataKey(ctx: SecretContext): Promise<DataKey> {
      assertContext(ctx);
      return measure('GenerateDataKey', () => {
        const current = live()[0]!;
        const plaintext = random(KEY_LENGTH);
        return { plaintext, wrappedDek: wrap(current, plaintext, ctx), kmsKeyId: current.id };
      });
    },
    async decrypt(wrappedDek: Uint8Array, kmsKeyId: string, ctx: SecretContext): Promise<Uint8Array> {
      assertContext(ctx);
      return measure('Decrypt', () => unwrap(wrappedDek, kmsKeyId, ctx));
    },
    async reEncrypt(wrappedDek: Uint8Array, kmsKeyId: string, ctx: SecretContext): Promise<WrappedKey> {
      assertContext(ctx);
      return measure('ReEncrypt', () => {
        const dek = unwrap(wrappedDek, kmsKeyId, ctx);
        try {
          const current = live()[0]!;
          return { wrappedDek: wrap(current, dek, ctx), kmsKeyId: current.id };
        } finally {
          zeroize(dek);
        }
      });
    },
    async listKeyRotations(): Promise<KeyRotation[]> {
      return measure('ListKeyRotations', () => {
        // Ring is current-first; each key but the oldest marks one rotation onto it.
        const oldestFirst = [...live()].reverse();
        return oldestFirst.slice(1).map((k) => ({ keyId: k.id, rotationId: k.id, rotationType: 'RING' }));
      });
    },
    async close(): Promise<void> {
      if (!ring) return;
      for (const k of ring) zeroize(k.key);
      ring = undefined;
      byId.clear();
    },
  };
}
