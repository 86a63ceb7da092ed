/**
 * Transit (encryption as a service): named keys kept by the cluster, used by clients that must
 * encrypt without ever holding a key (CONTRACT.md "Transit"; Vault's transit engine).
 *
 * - A key's versions live in the replicated state as sealed envelopes only (@coffer/state
 *   `transitKeys`): the leader generates a version and seals it under the key provider
 *   (`generateTransitKeyVersion`, context `transit:{type}:{name}`) BEFORE proposing, so no key
 *   material in the clear ever enters a command, the Raft log, the state or a snapshot.
 * - encrypt / decrypt / rewrap / datakey run on the node the request arrives at, after the
 *   linearizable read barrier (like a secret read), with no Raft write. The version a request
 *   needs is opened through the node's `Envelopes` — the DEK cache keeps the unwrapped DEK, so a
 *   hot key costs no KMS call per request — and every opened copy is zeroized by the crypto core
 *   as soon as the operation is done. Plaintexts handed to this service are zeroized here.
 * - Client mistakes in a ciphertext (malformed, a version below the minimum or above the latest,
 *   failed authentication: tampered, wrong key or wrong context) surface as the crypto core's
 *   `TransitError` (`CRYPTO_TRANSIT_*`), which the HTTP error table answers with 400.
 */
import {
  TRANSIT_MAX_CONTEXT_BYTES,
  generateTransitKeyVersion,
  openTransitKey,
  transitDataKey,
  transitDecrypt,
  transitEncrypt,
  transitRewrap,
  zeroize,
  type Envelope,
  type TransitKeyType,
  type TransitKeyring,
} from '@coffer/crypto';
import { transitKeyByName, type SealedValue, type TransitKeyRecord } from '@coffer/state';
import type { NodeContext } from '../context.js';
import { commandId, cryptoFailure } from './common.js';
import { ServiceError } from './errors.js';
import { RESULT_ERRORS } from './results.js';

/** The key type of a key created without one. */
export const DEFAULT_TRANSIT_KEY_TYPE: TransitKeyType = 'xchacha20-poly1305';
/** Largest plaintext encrypt accepts (decoded bytes), as for secret values. */
export const MAX_TRANSIT_PLAINTEXT_BYTES: number = 1024 * 1024;
/** How many times a rotation re-seals after losing its version number to a concurrent one. */
const MAX_ROTATE_ATTEMPTS = 4;

/** What `GET /v1/transit/keys/{name}` shows: policy and version dates, never key material. */
export interface TransitKeyView {
  readonly name: string;
  readonly type: TransitKeyType;
  readonly latestVersion: number;
  readonly minDecryptionVersion: number;
  readonly deletionAllowed: boolean;
  readonly createdAt: number;
  /** version → creation time (ms). */
  readonly versions: ReadonlyMap<number, number>;
}

/** A generated data key. `plaintext` (plaintext mode only) is the caller's to zeroize. */
export interface TransitDataKeyResult {
  readonly ciphertext: string;
  readonly keyVersion: number;
  readonly plaintext?: Uint8Array;
}

function view(k: Readonly<TransitKeyRecord>): TransitKeyView {
  const versions = new Map<number, number>();
  for (const [v, kv] of k.versions) versions.set(v, kv.createdAt);
  return {
    name: k.name,
    type: k.type,
    latestVersion: k.latestVersion,
    minDecryptionVersion: k.minDecryptionVersion,
    deletionAllowed: k.deletionAllowed,
    createdAt: k.createdAt,
    versions,
  };
}

function toEnvelope(s: SealedValue): Envelope {
  if (s.alg !== 'xchacha20poly1305') throw new ServiceError('integrity_error', 'a stored transit key version has an unknown envelope algorithm');
  return { formatVersion: s.formatVersion, alg: s.alg, nonce: s.nonce, ciphertext: s.ciphertext, wrappedDek: s.wrappedDek, kmsKeyId: s.kmsKeyId };
}

function toSealed(e: Envelope): SealedValue {
  return { formatVersion: e.formatVersion, alg: e.alg, nonce: e.nonce, ciphertext: e.ciphertext, wrappedDek: e.wrappedDek, kmsKeyId: e.kmsKeyId };
}

/**
 * Checks a caller's context (AAD) length before the crypto core sees it (which would throw a
 * RangeError, a 500).
 *
 * @param context - decoded context bytes, or undefined
 * @throws {ServiceError} `invalid_request` when longer than the core accepts
 */
function checkContext(context: Uint8Array | undefined): void {
  if (context !== undefined && context.length > TRANSIT_MAX_CONTEXT_BYTES) {
    throw new ServiceError('invalid_request', `"context" must be at most ${TRANSIT_MAX_CONTEXT_BYTES} bytes`);
  }
}

/** Transit operations of one node. Build one per NodeContext and share it. */
export class TransitService {
  private readonly ctx: NodeContext;
  /** Per key name, the rotation in flight on this leader (rotations of one key run one at a time). */
  private readonly rotating = new Map<string, Promise<unknown>>();

  /** @param ctx - the running node */
  constructor(ctx: NodeContext) {
    this.ctx = ctx;
  }

  private record(name: string): Readonly<TransitKeyRecord> | undefined {
    return transitKeyByName(this.ctx.state, name);
  }

  /** The key for an operation; unknown → 400 (Vault answers "encryption key not found" with 400). */
  private keyForUse(name: string): Readonly<TransitKeyRecord> {
    const k = this.record(name);
    if (k === undefined) throw new ServiceError('invalid_request', `transit key "${name}" does not exist`);
    return k;
  }

  /** A keyring over the stored record: versions opened on demand, each copy zeroized by the core. */
  private keyring(k: Readonly<TransitKeyRecord>): TransitKeyring {
    const envelopes = this.ctx.envelopes;
    return {
      name: k.name,
      type: k.type,
      latestVersion: k.latestVersion,
      minDecryptionVersion: k.minDecryptionVersion,
      async openVersion(version: number): Promise<Uint8Array> {
        const kv = k.versions.get(version);
        if (kv === undefined) throw new ServiceError('integrity_error', `transit key "${k.name}" has no stored version ${version}`);
        try {
          return await openTransitKey(envelopes, toEnvelope(kv.sealed), { name: k.name, type: k.type, version });
        } catch (err) {
          throw cryptoFailure(err);
        }
      },
    };
  }

  /**
   * A key's policy and version dates (after the read barrier of the caller's choice).
   *
   * @param name - key name (validated by the route)
   * @returns the view
   * @throws {ServiceError} `not_found`
   */
  get(name: string): TransitKeyView {
    const k = this.record(name);
    if (k === undefined) throw new ServiceError('not_found', `no transit key named "${name}"`);
    return view(k);
  }

  /**
   * Creates a key with version 1 (leader only). An existing key is left as it is and returned,
   * as Vault does.
   *
   * @param name - key name
   * @param type - key type
   * @param actor - token name, recorded in the command
   * @returns the key
   * @throws {ServiceError} `kms_unavailable`, and whatever `propose` throws
   */
  async create(name: string, type: TransitKeyType, actor: string): Promise<TransitKeyView> {
    const existing = this.record(name);
    if (existing !== undefined) return view(existing);
    let sealed: Envelope;
    try {
      sealed = await generateTransitKeyVersion(this.ctx.envelopes, { name, type, version: 1 });
    } catch (err) {
      throw cryptoFailure(err);
    }
    const r = await this.ctx.propose({ type: 'transit.create', requestId: commandId(), at: this.ctx.now(), name, keyType: type, sealed: toSealed(sealed), actor });
    if (r.status !== 'ok' && r.status !== 'already_exists' && r.status !== 'noop') throw failure(r.status);
    return this.get(name);
  }

  /**
   * Adds version latest + 1 (leader only), generated and sealed here before it is proposed.
   *
   * @param name - key name
   * @param actor - token name
   * @returns the key after the rotation
   * @throws {ServiceError} `not_found`, `kms_unavailable`, `cas_conflict` (rotations kept racing), and whatever `propose` throws
   */
  async rotate(name: string, actor: string): Promise<TransitKeyView> {
    const before = this.rotating.get(name) ?? Promise.resolve();
    const mine = before.catch(() => undefined).then(() => this.rotateNow(name, actor));
    this.rotating.set(name, mine);
    try {
      return await mine;
    } finally {
      if (this.rotating.get(name) === mine) this.rotating.delete(name);
    }
  }

  private async rotateNow(name: string, actor: string): Promise<TransitKeyView> {
    for (let attempt = 1; attempt <= MAX_ROTATE_ATTEMPTS; attempt++) {
      const k = this.record(name);
      if (k === undefined) throw new ServiceError('not_found', `no transit key named "${name}"`);
      const version = k.latestVersion + 1;
      let sealed: Envelope;
      try {
        sealed = await generateTransitKeyVersion(this.ctx.envelopes, { name, type: k.type, version });
      } catch (err) {
        throw cryptoFailure(err);
      }
      const r = await this.ctx.propose({ type: 'transit.rotate', requestId: commandId(), at: this.ctx.now(), name, version, sealed: toSealed(sealed), actor });
      if (r.status === 'ok' || r.status === 'noop') return this.get(name);
      if (r.status === 'not_found') throw new ServiceError('not_found', `no transit key named "${name}"`);
      if (r.status !== 'version_conflict') throw failure(r.status);
      // Another rotation (another leader's, or one replayed) took the number: seal the next one.
    }
    throw new ServiceError('cas_conflict', `transit key "${name}" kept being rotated concurrently; retry`);
  }

  /**
   * Changes a key's policy (leader only).
   *
   * @param name - key name
   * @param minDecryptionVersion - new minimum (1..latest), or undefined to keep it
   * @param deletionAllowed - new flag, or undefined to keep it
   * @param actor - token name
   * @returns the key after the change
   * @throws {ServiceError} `not_found`, `invalid_request` (minimum out of range)
   */
  async configure(name: string, minDecryptionVersion: number | undefined, deletionAllowed: boolean | undefined, actor: string): Promise<TransitKeyView> {
    const k = this.record(name);
    if (k === undefined) throw new ServiceError('not_found', `no transit key named "${name}"`);
    if (minDecryptionVersion !== undefined && (minDecryptionVersion < 1 || minDecryptionVersion > k.latestVersion)) {
      throw new ServiceError('invalid_request', `"min_decryption_version" must be between 1 and the latest version (${k.latestVersion}) of key "${name}"`);
    }
    const r = await this.ctx.propose({
      type: 'transit.config',
      requestId: commandId(),
      at: this.ctx.now(),
      name,
      minDecryptionVersion: minDecryptionVersion ?? null,
      deletionAllowed: deletionAllowed ?? null,
      actor,
    });
    if (r.status === 'not_found') throw new ServiceError('not_found', `no transit key named "${name}"`);
    if (r.status === 'stale') throw new ServiceError('invalid_request', `"min_decryption_version" must be between 1 and the latest version of key "${name}"`);
    if (r.status !== 'ok' && r.status !== 'noop') throw failure(r.status);
    return this.get(name);
  }

  /**
   * Deletes a key and every version (leader only), only when its `deletion_allowed` is set.
   *
   * @param name - key name
   * @param actor - token name
   * @throws {ServiceError} `not_found`, `invalid_request` (deletion not allowed)
   */
  async delete(name: string, actor: string): Promise<void> {
    const k = this.record(name);
    if (k === undefined) throw new ServiceError('not_found', `no transit key named "${name}"`);
    const refused = new ServiceError('invalid_request', `deletion is not allowed for transit key "${name}": set "deletion_allowed" with POST /v1/transit/keys/${name}/config first`);
    if (!k.deletionAllowed) throw refused;
    const r = await this.ctx.propose({ type: 'transit.delete', requestId: commandId(), at: this.ctx.now(), name, actor });
    if (r.status === 'immutable') throw refused;
    if (r.status === 'not_found') throw new ServiceError('not_found', `no transit key named "${name}"`);
    if (r.status !== 'ok' && r.status !== 'noop') throw failure(r.status);
  }

  /**
   * Encrypts under the key's latest version, on this node after the read barrier.
   *
   * @param name - key name
   * @param plaintext - bytes to encrypt; zeroized here
   * @param context - associated data (Vault's `context`), or undefined
   * @returns `coffer:v{N}:…` and N
   * @throws {ServiceError} `invalid_request` (no such key, context too long), `no_quorum`/`no_leader`, `kms_unavailable`
   */
  async encrypt(name: string, plaintext: Uint8Array, context: Uint8Array | undefined): Promise<{ ciphertext: string; keyVersion: number }> {
    try {
      checkContext(context);
      if (plaintext.length > MAX_TRANSIT_PLAINTEXT_BYTES) throw new ServiceError('body_too_large', `"plaintext" must decode to at most ${MAX_TRANSIT_PLAINTEXT_BYTES} bytes`);
      await this.ctx.readBarrier('linearizable');
      const k = this.keyForUse(name);
      const ciphertext = await transitEncrypt(this.keyring(k), plaintext, { context });
      return { ciphertext, keyVersion: k.latestVersion };
    } finally {
      zeroize(plaintext);
    }
  }

  /**
   * Decrypts a `coffer:vN:` ciphertext, on this node after the read barrier.
   *
   * @param name - key name
   * @param ciphertext - as the client sent it
   * @param context - the context given at encryption, or undefined
   * @returns the plaintext (the caller zeroizes it once answered)
   * @throws {TransitError} `CRYPTO_TRANSIT_*` (400): malformed, version below the minimum or unknown, failed authentication
   * @throws {ServiceError} `invalid_request` (no such key), `no_quorum`/`no_leader`, `kms_unavailable`
   */
  async decrypt(name: string, ciphertext: string, context: Uint8Array | undefined): Promise<Uint8Array> {
    checkContext(context);
    await this.ctx.readBarrier('linearizable');
    return transitDecrypt(this.keyring(this.keyForUse(name)), ciphertext, { context });
  }

  /**
   * Re-encrypts a ciphertext under the latest version; the plaintext exists only inside this call
   * (and is wiped there) and never leaves the node.
   *
   * @param name - key name
   * @param ciphertext - `coffer:vN:…`
   * @param context - the context given at encryption (kept for the new ciphertext)
   * @returns the new ciphertext and its version
   * @throws the codes of {@link TransitService.decrypt}
   */
  async rewrap(name: string, ciphertext: string, context: Uint8Array | undefined): Promise<{ ciphertext: string; keyVersion: number }> {
    checkContext(context);
    await this.ctx.readBarrier('linearizable');
    const k = this.keyForUse(name);
    return { ciphertext: await transitRewrap(this.keyring(k), ciphertext, { context }), keyVersion: k.latestVersion };
  }

  /**
   * A new random data key encrypted under the key's latest version (Vault's datakey).
   *
   * @param name - key name
   * @param mode - `plaintext` (the data key and its wrapped form) or `wrapped` (the wrapped form only)
   * @param bits - 128, 256 or 512
   * @param context - associated data, or undefined
   * @returns the wrapped data key, its version, and in plaintext mode the data key (caller zeroizes)
   * @throws the codes of {@link TransitService.encrypt}
   */
  async dataKey(name: string, mode: 'plaintext' | 'wrapped', bits: 128 | 256 | 512, context: Uint8Array | undefined): Promise<TransitDataKeyResult> {
    checkContext(context);
    await this.ctx.readBarrier('linearizable');
    const k = this.keyForUse(name);
    const dk = await transitDataKey(this.keyring(k), { mode, bits, context });
    return dk.plaintext === undefined ? { ciphertext: dk.ciphertext, keyVersion: k.latestVersion } : { ciphertext: dk.ciphertext, keyVersion: k.latestVersion, plaintext: dk.plaintext };
  }
}

function failure(status: keyof typeof RESULT_ERRORS): ServiceError {
  const [code, message] = RESULT_ERRORS[status];
  return new ServiceError(code, message);
}
