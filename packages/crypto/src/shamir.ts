// Shamir secret sharing over GF(2^8), for the sealed start: the 32-byte master key is split into
// `shares` pieces of which any `threshold` rebuild it and fewer reveal nothing about it.
//
// The arithmetic is `shamir-secret-sharing` (Privy; zero dependencies; audited by Cure53 and
// Zellic; a port of HashiCorp Vault's `shamir` package, same field and share layout). This file
// only types it, validates arguments with clear messages, adds the one-share case the library
// refuses, and wipes what it can.
//
// Share layout (Vault's): y-values ‖ x, i.e. secret.length + 1 bytes, the last byte the share's
// x-coordinate (1..255, distinct per split, in random order).
//
// NB: Shamir does not authenticate. Combining the wrong shares (or too few) yields a wrong value,
// not an error: the caller must check the result against something (the seal manager checks a
// key-check value).
import { combine as sssCombine, split as sssSplit } from 'shamir-secret-sharing';
import { zeroize } from './bytes.js';

/** Most shares one split can produce: x-coordinates are the non-zero elements of GF(2^8). */
export const SHAMIR_MAX_SHARES = 255;

/** Length of the secrets the seal uses (a 256-bit master key); {@link splitSecret} accepts 1..1024. */
export const SHAMIR_SECRET_LENGTH = 32;

const MAX_SECRET_LENGTH = 1024;

/**
 * Checks a (shares, threshold) pair: integers with 1 ≤ threshold ≤ shares ≤ 255, and threshold ≥ 2
 * unless shares = 1 (with t = 1 out of n > 1, every share would BE the secret).
 *
 * @param shares - how many shares to make.
 * @param threshold - how many rebuild the secret.
 * @returns an error sentence, or undefined when the pair is valid.
 * @example
 * ```ts
 * shamirParamsError(5, 3); // undefined
 * shamirParamsError(3, 5); // 'threshold (5) cannot exceed the number of shares (3)'
 * ```
 */
export function shamirParamsError(shares: unknown, threshold: unknown): string | undefined {
  if (typeof shares !== 'number' || !Number.isInteger(shares)) return 'shares must be an integer';
  if (typeof threshold !== 'number' || !Number.isInteger(threshold)) return 'threshold must be an integer';
  if (shares < 1 || shares > SHAMIR_MAX_SHARES) return `shares must be between 1 and ${SHAMIR_MAX_SHARES}`;
  if (threshold < 1) return 'threshold must be at least 1';
  if (threshold > shares) return `threshold (${threshold}) cannot exceed the number of shares (${shares})`;
  if (threshold < 2 && shares > 1) return 'threshold must be at least 2 when there is more than one share';
  return undefined;
}

function copyPlain(bytes: Uint8Array): Uint8Array {
  // The library checks `constructor === Uint8Array`: a Buffer (or a subarray of one) is refused.
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

/**
 * Splits `secret` into `shares` shares, any `threshold` of which rebuild it.
 *
 * With shares = threshold = 1 the single share is the degree-0 polynomial's point (1, secret),
 * i.e. `secret ‖ 0x01` — as Vault does, one share is the key itself.
 *
 * @param secret - 1..1024 bytes (the seal splits 32); not wiped.
 * @param shares - number of shares, 1..255.
 * @param threshold - shares needed, 2..shares (or 1 when shares = 1).
 * @returns `shares` fresh buffers of secret.length + 1 bytes; the caller wipes them once delivered.
 * @throws RangeError for bad parameters or secret length (message says which).
 * @example
 * ```ts
 * const parts = await splitSecret(masterKey, 5, 3);
 * ```
 */
export async function splitSecret(secret: Uint8Array, shares: number, threshold: number): Promise<Uint8Array[]> {
  if (!(secret instanceof Uint8Array)) throw new TypeError('secret must be a Uint8Array');
  if (secret.length < 1 || secret.length > MAX_SECRET_LENGTH) throw new RangeError(`secret must be 1..${MAX_SECRET_LENGTH} bytes`);
  const problem = shamirParamsError(shares, threshold);
  if (problem !== undefined) throw new RangeError(problem);
  if (shares === 1) {
    const only = new Uint8Array(secret.length + 1);
    only.set(secret, 0);
    only[secret.length] = 1;
    return [only];
  }
  const input = copyPlain(secret);
  try {
    return await sssSplit(input, shares, threshold);
  } finally {
    // NB: the library keeps each byte's polynomial coefficients (intercept = that secret byte) in
    // short-lived arrays it does not wipe; best effort stops at our own copies.
    zeroize(input);
  }
}

/**
 * Rebuilds a secret from shares. Validates shape only: all shares the same length (≥ 2 bytes),
 * x-coordinates non-zero and distinct, 1..255 shares. Fewer than the threshold, or shares of
 * different splits, give a wrong value without an error (Shamir cannot tell): check the result.
 *
 * @param shares - shares as produced by {@link splitSecret}; not wiped.
 * @returns the secret (the caller zeroizes it).
 * @throws RangeError naming what is wrong (count, length, zero or repeated x-coordinate).
 * @example
 * ```ts
 * const key = await combineShares([s1, s4, s5]);
 * ```
 */
export async function combineShares(shares: readonly Uint8Array[]): Promise<Uint8Array> {
  if (!Array.isArray(shares)) throw new TypeError('shares must be an array');
  if (shares.length < 1 || shares.length > SHAMIR_MAX_SHARES) throw new RangeError(`between 1 and ${SHAMIR_MAX_SHARES} shares are needed`);
  const first = shares[0];
  if (!(first instanceof Uint8Array) || first.length < 2) throw new RangeError('each share must be at least 2 bytes');
  const seen = new Set<number>();
  for (const [i, share] of shares.entries()) {
    if (!(share instanceof Uint8Array)) throw new TypeError(`share ${i + 1} is not a Uint8Array`);
    if (share.length !== first.length) throw new RangeError(`share ${i + 1} is ${share.length} bytes; the others are ${first.length}`);
    const x = share[share.length - 1]!;
    if (x === 0) throw new RangeError(`share ${i + 1} has index 0, which no split produces`);
    if (seen.has(x)) throw new RangeError(`two shares have the same index ${x}`);
    seen.add(x);
  }
  if (shares.length === 1) return first.slice(0, first.length - 1);
  const copies = shares.map(copyPlain);
  try {
    return await sssCombine(copies);
  } finally {
    copies.forEach(zeroize);
  }
}
