/**
 * Login challenges for Ed25519 identities: stateless nonces any member can issue and check
 * without a Raft write.
 *
 * nonce = base64url( random 16 ‖ expiresAt u64 BE ‖ sha256(identity)[0..16) ‖ HMAC-SHA256 over
 * the first 40 bytes ), 72 bytes → 96 characters. The HMAC key is derived from COFFER_CLUSTER_KEY
 * with its own HKDF label (so every member verifies every other's nonces); a node without a
 * cluster key (single node) uses a random per-process key, so its nonces die with the process.
 *
 * What this module decides: the nonce is authentic, was issued for this identity and has not
 * expired (validity ≤ {@link CHALLENGE_TTL_MS}). What it cannot decide, single use, is decided by
 * the replicated state: `session.create` is refused at apply when the nonce id was already used
 * (state package, identities family), which makes the nonce single-use cluster-wide.
 */
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/** How long a challenge is valid. */
export const CHALLENGE_TTL_MS = 60_000;
/** HKDF info of the challenge key; distinct from every other use of the cluster key. */
export const CHALLENGE_KEY_INFO = 'coffer login challenge v1';
/** Issued nonces further in the future than this are refused (another member's clock ahead). */
const MAX_SKEW_MS = 5_000;

const RANDOM_BYTES = 16;
const BODY_BYTES = RANDOM_BYTES + 8 + 16;
const NONCE_BYTES = BODY_BYTES + 32;

/** A verified challenge. */
export interface VerifiedNonce {
  /** Hex of the random part: the id `session.create` spends. */
  readonly nonceId: string;
  readonly expiresAt: number;
}

function identityHash(identity: string): Buffer {
  return createHash('sha256').update(identity, 'utf8').digest().subarray(0, 16);
}

/** Issues and verifies login challenges. */
export class ChallengeKeys {
  readonly #key: Buffer;
  /** COFFER_PREVIOUS_CLUSTER_KEY's challenge key: nonces a member still on the old key issued verify during a rotation. */
  readonly #previous: Buffer | undefined;
  readonly #now: () => number;
  readonly #random: (n: number) => Buffer;

  /**
   * @param clusterKey - COFFER_CLUSTER_KEY's bytes, or undefined on a single node (random key)
   * @param now - clock in ms (tests inject one)
   * @param random - random source (tests)
   * @param previousClusterKey - COFFER_PREVIOUS_CLUSTER_KEY's bytes during a key rotation (verify only)
   */
  constructor(clusterKey: Uint8Array | undefined, now: () => number, random: (n: number) => Buffer = randomBytes, previousClusterKey?: Uint8Array) {
    const derive = (k: Uint8Array): Buffer => Buffer.from(hkdfSync('sha256', k, new Uint8Array(0), CHALLENGE_KEY_INFO, 32));
    this.#key = clusterKey === undefined ? randomBytes(32) : derive(clusterKey);
    this.#previous = clusterKey === undefined || previousClusterKey === undefined ? undefined : derive(previousClusterKey);
    this.#now = now;
    this.#random = random;
  }

  /**
   * A fresh challenge for `identity` (issued whether or not the identity exists: no oracle).
   *
   * @param identity - the identity name the client will log in as
   * @returns the nonce and its expiry (ms)
   */
  issue(identity: string): { nonce: string; expiresAt: number } {
    const expiresAt = this.#now() + CHALLENGE_TTL_MS;
    const body = Buffer.alloc(BODY_BYTES);
    this.#random(RANDOM_BYTES).copy(body, 0);
    body.writeBigUInt64BE(BigInt(expiresAt), RANDOM_BYTES);
    identityHash(identity).copy(body, RANDOM_BYTES + 8);
    const mac = createHmac('sha256', this.#key).update(body).digest();
    return { nonce: Buffer.concat([body, mac]).toString('base64url'), expiresAt };
  }

  /**
   * Checks a nonce: authentic, for this identity, not expired, not from the far future.
   *
   * @param identity - the identity logging in
   * @param nonce - the nonce as the client sent it
   * @returns its id and expiry, or undefined when it does not verify (the caller answers 401)
   */
  verify(identity: string, nonce: string): VerifiedNonce | undefined {
    if (typeof nonce !== 'string' || nonce.length !== Math.ceil((NONCE_BYTES * 4) / 3) || !/^[A-Za-z0-9_-]+$/.test(nonce)) return undefined;
    const raw = Buffer.from(nonce, 'base64url');
    if (raw.length !== NONCE_BYTES) return undefined;
    const body = raw.subarray(0, BODY_BYTES);
    const mac = raw.subarray(BODY_BYTES);
    const macOk = (key: Buffer): boolean => timingSafeEqual(createHmac('sha256', key).update(body).digest(), mac);
    if (!macOk(this.#key) && (this.#previous === undefined || !macOk(this.#previous))) return undefined;
    if (!timingSafeEqual(identityHash(identity), body.subarray(RANDOM_BYTES + 8, BODY_BYTES))) return undefined;
    const expiresAt = Number(body.readBigUInt64BE(RANDOM_BYTES));
    const now = this.#now();
    if (now > expiresAt || expiresAt - now > CHALLENGE_TTL_MS + MAX_SKEW_MS) return undefined;
    return { nonceId: body.subarray(0, RANDOM_BYTES).toString('hex'), expiresAt };
  }

  /** Zeroes the key (best effort). */
  destroy(): void {
    this.#key.fill(0);
    this.#previous?.fill(0);
  }
}
