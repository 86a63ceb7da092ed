// Bearer tokens: 256 bits from the CSPRNG, shown once, stored only as their SHA-256.
import { randomBytes, sha256, zeroize, type RandomBytes } from './bytes.js';

/** Prefix of every Coffer token; lets secret scanners and operators recognise a leaked token. */
export const TOKEN_PREFIX = 'cof_';

const TOKEN_RE = /^cof_[A-Za-z0-9_-]{43}$/;
const encoder = new TextEncoder();

/**
 * A new bearer token: `cof_` followed by 32 random bytes in unpadded base64url (47 characters).
 *
 * @param random - CSPRNG to use (tests inject a deterministic one).
 * @returns the token string; show it once, store only {@link hashToken}.
 * @example
 * ```ts
 * const token = generateToken();        // 'cof_…'
 * const stored = hashToken(token);     // persist this
 * ```
 */
export function generateToken(random: RandomBytes = randomBytes): string {
  const raw = random(32);
  if (raw.length !== 32) throw new RangeError('generateToken: randomBytes returned the wrong length');
  try {
    return TOKEN_PREFIX + Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('base64url');
  } finally {
    zeroize(raw);
  }
}

/**
 * The value stored for a token: SHA-256 of its UTF-8 bytes. A plain hash (not a slow KDF) is right
 * here because tokens carry 256 bits of entropy; compare hashes with `constantTimeEqual`.
 *
 * @param token - the presented token string.
 * @returns the 32-byte digest.
 * @example
 * ```ts
 * constantTimeEqual(hashToken(presented), record.tokenHash);
 * ```
 */
export function hashToken(token: string): Uint8Array {
  if (typeof token !== 'string') throw new TypeError('hashToken: token must be a string');
  const bytes = encoder.encode(token);
  try {
    return sha256(bytes);
  } finally {
    zeroize(bytes);
  }
}

/**
 * Whether `value` has the shape of a Coffer token (prefix, length, alphabet). Cheap pre-check
 * before hashing; it says nothing about validity.
 *
 * @param value - candidate string.
 * @returns true when the format matches.
 * @example
 * ```ts
 * if (!isTokenFormat(header)) return unauthorized();
 * ```
 */
export function isTokenFormat(value: string): boolean {
  return TOKEN_RE.test(value);
}
