/**
 * The seal of one node (`COFFER_SEAL=shamir`): sealed or unsealed, and the unseal progress.
 *
 * The 32-byte master key is the local key provider's master key. It is never configured and never
 * stored: `init` generates it, splits it into Shamir shares (any `threshold` of `shares` rebuild
 * it), computes a key-check value and forgets the key. The key-check value and the parameters are
 * the {@link SealConfig}, replicated through Raft (a `seal.init` command, applied once per
 * cluster) so every node can verify a reconstruction. Each node then starts sealed and is unsealed
 * on its own by `threshold` shares; `seal()` and a restart drop the key again.
 *
 * What this class does NOT do: serve HTTP, propose commands, or hold the key after handing it to
 * the {@link SealTarget} (in the node, a {@link SealableKeyProvider}); see README.md for the wiring.
 */
import { combineShares, constantTimeEqual, hmacSha256, localKeyId, randomBytes as osRandomBytes, shamirParamsError, splitSecret, zeroize } from '@coffer/crypto';
import type { RandomBytes } from '@coffer/crypto';
import { SealError } from './errors.js';

/** Bytes of the master key (a local-provider master key). */
export const MASTER_KEY_LENGTH = 32;

/** Bytes of one share: the 32 y-values and the x-coordinate. */
export const SHARE_LENGTH: number = MASTER_KEY_LENGTH + 1;

/** HMAC label of the key-check value; changing it makes every sealed cluster unopenable. */
export const KEY_CHECK_LABEL = 'coffer.seal.key-check.v1';

/** Bytes of the key-check value (HMAC-SHA-256). */
export const KEY_CHECK_LENGTH = 32;

/**
 * The replicated seal configuration: what every node needs to verify an unseal, and nothing that
 * helps to forge one. `keyCheck` = HMAC-SHA-256(master key, "coffer.seal.key-check.v1"): a PRF
 * output, revealing nothing about a 256-bit key; `keyId` = the local provider's id of the key
 * (`local:` + 16 hex digits), the `kmsKeyId` every envelope wrapped under it carries.
 */
export interface SealConfig {
  /** Number of shares made at init (Vault's `secret_shares`, shown as `n`). */
  readonly shares: number;
  /** Shares needed to unseal (Vault's `secret_threshold`, shown as `t`). */
  readonly threshold: number;
  /** HMAC-SHA-256(master key, {@link KEY_CHECK_LABEL}); 32 bytes. */
  readonly keyCheck: Uint8Array;
  /** `localKeyId(master key)`. */
  readonly keyId: string;
}

/** What `init` hands back: the shares for the operator (once) and the config to replicate. */
export interface SealInitResult {
  /** Base64 of each share, in order; shown once, never stored. */
  readonly keys: string[];
  /** To propose as `seal.init`; the node calls {@link SealManager.configure} when it applies. */
  readonly config: SealConfig;
}

/** Vault's seal-status shape (`PUT /v1/sys/unseal`, `GET /v1/sys/seal-status`). */
export interface SealStatus {
  /** Whether a seal configuration has reached this node. */
  readonly initialized: boolean;
  readonly sealed: boolean;
  /** Threshold (0 while not initialized). */
  readonly t: number;
  /** Number of shares (0 while not initialized). */
  readonly n: number;
  /** Shares accepted towards the next unseal (0 when unsealed). */
  readonly progress: number;
}

/**
 * Where an unsealed key goes. In the node: a {@link SealableKeyProvider} (which builds the local
 * key provider from it) plus clearing the DEK cache on seal.
 */
export interface SealTarget {
  /**
   * Receives a copy of the verified master key, which the target then owns (and wipes when done).
   * Throwing keeps the node sealed.
   */
  unseal(key: Uint8Array): void | Promise<void>;
  /** Drops every copy of the key and everything unwrapped with it (provider ring, DEK cache). */
  seal(): void | Promise<void>;
}

/** Options of {@link SealManager}. */
export interface SealManagerOptions {
  /** Receives the key on unseal and drops it on seal. */
  readonly target: SealTarget;
  /** CSPRNG for the master key (default the OS); Shamir coefficients always come from the OS. */
  readonly randomBytes?: RandomBytes;
}

const LABEL_BYTES = new TextEncoder().encode(KEY_CHECK_LABEL);
// 33 bytes are exactly 44 base64 characters: no padding, no spare bits.
const BASE64_RE = /^[A-Za-z0-9+/]{44}$/;
const HEX_RE = /^[0-9A-Fa-f]{66}$/;

/**
 * The key-check value of a master key.
 *
 * @param key - the 32-byte master key.
 * @returns HMAC-SHA-256(key, {@link KEY_CHECK_LABEL}).
 * @example
 * ```ts
 * constantTimeEqual(keyCheckOf(candidate), config.keyCheck);
 * ```
 */
export function keyCheckOf(key: Uint8Array): Uint8Array {
  return hmacSha256(key, LABEL_BYTES);
}

/**
 * Validates a seal configuration as it arrives from the replicated state (untrusted shape).
 *
 * @param config - candidate.
 * @returns an error sentence, or undefined when valid.
 * @example
 * ```ts
 * const problem = sealConfigError(record); if (problem) throw new Error(problem);
 * ```
 */
export function sealConfigError(config: SealConfig): string | undefined {
  if (config === null || typeof config !== 'object') return 'seal config must be an object';
  const params = shamirParamsError(config.shares, config.threshold);
  if (params !== undefined) return params;
  if (!(config.keyCheck instanceof Uint8Array) || config.keyCheck.length !== KEY_CHECK_LENGTH) return 'keyCheck must be 32 bytes';
  if (typeof config.keyId !== 'string' || !/^local:[0-9a-f]{16}$/.test(config.keyId)) return 'keyId must be a local key id';
  return undefined;
}

/**
 * Parses one share as an operator sends it: standard padded base64 (as `init` prints), or hex
 * (Vault accepts both), of exactly {@link SHARE_LENGTH} bytes with a non-zero index.
 *
 * @param text - the share.
 * @returns the share bytes (the caller wipes them).
 * @throws {NODE_SEAL_SHARE_MALFORMED} naming what is wrong, never echoing the input.
 * @example
 * ```ts
 * const share = parseShare(body.key);
 * ```
 */
export function parseShare(text: unknown): Uint8Array {
  const malformed = (what: string): SealError => new SealError('NODE_SEAL_SHARE_MALFORMED', `unseal key ${what}`);
  if (typeof text !== 'string' || text.length === 0) throw malformed('is missing: send one share as "key"');
  const trimmed = text.trim();
  let bytes: Uint8Array;
  if (HEX_RE.test(trimmed)) {
    bytes = Uint8Array.from(Buffer.from(trimmed, 'hex'));
  } else if (BASE64_RE.test(trimmed)) {
    const decoded = Buffer.from(trimmed, 'base64');
    bytes = Uint8Array.from(decoded);
    decoded.fill(0);
  } else {
    throw malformed(`must be base64 (44 characters) or hex (66 characters) of a ${SHARE_LENGTH}-byte share`);
  }
  if (bytes[SHARE_LENGTH - 1] === 0) {
    bytes.fill(0);
    throw malformed('has index 0, which no share has');
  }
  return bytes;
}

/**
 * One node's seal. Starts sealed (and uninitialized until {@link configure} is called with the
 * replicated config), so a restart always seals again.
 *
 * Invariant: the master key exists in this class only inside {@link submitShare} between the
 * combine and the hand-over to the target, and inside {@link init} between generation and
 * splitting; submitted shares are held until the round ends (unseal, wrong combination, reset,
 * seal) and wiped then.
 *
 * @example
 * ```ts
 * const seal = new SealManager({ target: sealableProvider });
 * seal.configure(state.seal);                      // on start and when `seal.init` applies
 * const status = await seal.submitShare(body.key); // PUT /v1/sys/unseal
 * ```
 */
export class SealManager {
  readonly #target: SealTarget;
  readonly #random: RandomBytes;
  #config: SealConfig | undefined;
  #sealed = true;
  #pending: Uint8Array[] = [];
  // Share submissions and seal() run one at a time (the combine awaits).
  #queue: Promise<unknown> = Promise.resolve();

  /** @param opts - target and randomness. */
  constructor(opts: SealManagerOptions) {
    if (!opts || typeof opts.target !== 'object' || opts.target === null) throw new TypeError('SealManager: opts.target is required');
    this.#target = opts.target;
    this.#random = opts.randomBytes ?? osRandomBytes;
  }

  /**
   * Current status (Vault's seal-status fields).
   * @returns initialized, sealed, t, n, progress.
   */
  status(): SealStatus {
    const c = this.#config;
    return {
      initialized: c !== undefined,
      sealed: this.#sealed,
      t: c?.threshold ?? 0,
      n: c?.shares ?? 0,
      progress: this.#sealed ? this.#pending.length : 0,
    };
  }

  /**
   * Whether the node is sealed (no key). Health answers 503 `"sealed": true` while it is.
   * @returns true when sealed.
   */
  isSealed(): boolean {
    return this.#sealed;
  }

  /**
   * The configuration this node verifies against, once known.
   * @returns the config or undefined.
   */
  config(): SealConfig | undefined {
    return this.#config;
  }

  /**
   * Creates the master key, splits it, and returns the shares and the config to replicate. Does
   * not unseal and keeps nothing: the key is wiped before this returns. Call only while no config
   * is known; the `seal.init` command decides cluster-wide which init wins (see README).
   *
   * @param params - number of shares and threshold (1 ≤ t ≤ n ≤ 255, t ≥ 2 unless n = 1).
   * @returns the base64 shares and the {@link SealConfig}.
   * @throws {NODE_SEAL_ALREADY_INITIALIZED} a config is already known here.
   * @throws {NODE_SEAL_INVALID_PARAMS} bad numbers (message says which).
   */
  async init(params: { readonly shares: number; readonly threshold: number }): Promise<SealInitResult> {
    if (this.#config !== undefined) throw new SealError('NODE_SEAL_ALREADY_INITIALIZED', 'this cluster is already initialized');
    const problem = params === null || typeof params !== 'object' ? 'expected { shares, threshold }' : shamirParamsError(params.shares, params.threshold);
    if (problem !== undefined) throw new SealError('NODE_SEAL_INVALID_PARAMS', problem.replace(/^shares/, 'secret_shares').replace(/^threshold/, 'secret_threshold'));
    const key = this.#random(MASTER_KEY_LENGTH);
    let parts: Uint8Array[] = [];
    try {
      if (!(key instanceof Uint8Array) || key.length !== MASTER_KEY_LENGTH) throw new RangeError('randomBytes returned a bad key');
      parts = await splitSecret(key, params.shares, params.threshold);
      const config: SealConfig = { shares: params.shares, threshold: params.threshold, keyCheck: keyCheckOf(key), keyId: localKeyId(key) };
      // NB: base64 strings cannot be wiped; they go to the operator once (that is their purpose).
      return { keys: parts.map((p) => Buffer.from(p).toString('base64')), config };
    } finally {
      zeroize(key);
      parts.forEach(zeroize);
    }
  }

  /**
   * Sets the configuration this node verifies against: on start (from the state) and when the
   * `seal.init` command applies. The same config again is a no-op. A different one (a restore
   * from another cluster) seals the node and resets progress: the key it holds is not that
   * cluster's.
   *
   * @param config - the replicated config.
   * @returns when done (sealing may await the target).
   * @throws RangeError when the config's shape is invalid (the state is corrupt).
   */
  configure(config: SealConfig): Promise<void> {
    const problem = sealConfigError(config);
    if (problem !== undefined) return Promise.reject(new RangeError(`seal config: ${problem}`));
    return this.#serial(async () => {
      const old = this.#config;
      if (old !== undefined && sameConfig(old, config)) return;
      this.#config = { shares: config.shares, threshold: config.threshold, keyCheck: Uint8Array.from(config.keyCheck), keyId: config.keyId };
      this.#resetPending();
      if (!this.#sealed) await this.#doSeal();
    });
  }

  /**
   * Accepts one share. Below the threshold it only counts; at the threshold it combines, checks
   * the result against the key-check value in constant time and, when it matches, hands the key
   * to the target and reports unsealed. Already unsealed: returns the status, counts nothing.
   *
   * @param share - base64 (or hex) of one share.
   * @returns the status after this share.
   * @throws {NODE_SEAL_NOT_INITIALIZED} no config yet.
   * @throws {NODE_SEAL_SHARE_MALFORMED} not a share (progress kept).
   * @throws {NODE_SEAL_SHARE_DUPLICATE} already submitted, or another share with its index (progress kept).
   * @throws {NODE_SEAL_SHARES_WRONG} threshold reached but the key does not check; progress reset.
   */
  submitShare(share: unknown): Promise<SealStatus> {
    return this.#serial(async () => {
      const config = this.#config;
      if (config === undefined) throw new SealError('NODE_SEAL_NOT_INITIALIZED', 'this cluster is not initialized: run `coffer operator init` first');
      if (!this.#sealed) return this.status();
      const bytes = parseShare(share);
      for (const held of this.#pending) {
        if (constantTimeEqual(held, bytes)) {
          bytes.fill(0);
          throw new SealError('NODE_SEAL_SHARE_DUPLICATE', 'this share was already submitted');
        }
        if (held[SHARE_LENGTH - 1] === bytes[SHARE_LENGTH - 1]) {
          bytes.fill(0);
          throw new SealError(
            'NODE_SEAL_SHARE_DUPLICATE',
            'a different share with the same index was already submitted: one of the two is wrong (progress kept; reset to start over)',
          );
        }
      }
      this.#pending.push(bytes);
      if (this.#pending.length < config.threshold) return this.status();
      await this.#tryUnseal(config);
      return this.status();
    });
  }

  /**
   * Forgets the shares submitted so far (Vault's `{"reset": true}`).
   * @returns the status.
   */
  resetProgress(): Promise<SealStatus> {
    return this.#serial(async () => {
      this.#resetPending();
      return this.status();
    });
  }

  /**
   * Seals: the target drops the key and everything unwrapped with it; progress is reset.
   * Sealing a sealed node is a no-op.
   * @returns the status.
   */
  seal(): Promise<SealStatus> {
    return this.#serial(async () => {
      this.#resetPending();
      if (!this.#sealed) await this.#doSeal();
      return this.status();
    });
  }

  async #tryUnseal(config: SealConfig): Promise<void> {
    const shares = this.#pending;
    this.#pending = [];
    let key: Uint8Array | undefined;
    let check: Uint8Array | undefined;
    try {
      key = await combineShares(shares);
      check = keyCheckOf(key);
      if (!constantTimeEqual(check, config.keyCheck)) {
        throw new SealError(
          'NODE_SEAL_SHARES_WRONG',
          `the ${shares.length} shares do not rebuild this cluster's master key (a wrong share, or shares of another init); progress was reset`,
        );
      }
      const handed = Uint8Array.from(key);
      try {
        await this.#target.unseal(handed);
      } catch (err) {
        zeroize(handed);
        throw err;
      }
      this.#sealed = false;
    } finally {
      zeroize(key);
      zeroize(check);
      shares.forEach(zeroize);
    }
  }

  async #doSeal(): Promise<void> {
    // Sealed first: even if the target fails to drop something, this node stops serving.
    this.#sealed = true;
    await this.#target.seal();
  }

  #resetPending(): void {
    this.#pending.forEach(zeroize);
    this.#pending = [];
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

function sameConfig(a: SealConfig, b: SealConfig): boolean {
  return a.shares === b.shares && a.threshold === b.threshold && a.keyId === b.keyId && constantTimeEqual(a.keyCheck, b.keyCheck);
}
