/**
 * SCRAM-SHA-256 password verifiers in PostgreSQL's stored format, computed client-side.
 *
 * PostgreSQL accepts a string of the form `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`
 * as the argument of `ALTER ROLE … PASSWORD` and stores it as-is (PostgreSQL 15
 * `src/backend/libpq/crypt.c`, `encrypt_password`: a password already in a hashed format is kept).
 * So the plaintext never travels to the server and never appears in its statement log; only the
 * verifier does, which is what `pg_authid` would hold anyway.
 *
 * Derivation (RFC 5802 §3 with SHA-256 as RFC 7677 specifies; PostgreSQL `scram_build_secret`):
 * ```
 * SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations, 32)
 * ClientKey      = HMAC(SaltedPassword, "Client Key")
 * StoredKey      = SHA-256(ClientKey)
 * ServerKey      = HMAC(SaltedPassword, "Server Key")
 * ```
 * NB: RFC 5802 runs the password through SASLprep (RFC 4013) first, and so do libpq and the
 * server. SASLprep is the identity on printable ASCII, so this module accepts only printable ASCII
 * (U+0020–U+007E) rather than carry a SASLprep implementation: Coffer's rotated passwords are
 * base64url, and a verifier for any other string might not match what a client derives.
 */
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';

/** Iterations PostgreSQL itself uses (`scram_iterations` default, SCRAM_DEFAULT_ITERATIONS). */
export const SCRAM_ITERATIONS = 4096;
/** Salt length PostgreSQL uses (SCRAM_DEFAULT_SALT_LEN), in bytes. */
export const SCRAM_SALT_BYTES = 16;
/** Longest password accepted, in bytes (PostgreSQL refuses longer SCRAM exchanges well before 1 KiB). */
export const SCRAM_MAX_PASSWORD_BYTES = 1024;

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/** The parts of a verifier, for tests and for checking a proof. */
export type ScramVerifier = {
  readonly iterations: number;
  readonly salt: Uint8Array;
  readonly storedKey: Uint8Array;
  readonly serverKey: Uint8Array;
  /** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64 parts. */
  readonly text: string;
};

/** Options of {@link scramSha256Verifier}; both exist for tests (fixed vectors). */
export type ScramOptions = {
  /** Salt bytes; default 16 random bytes. */
  readonly salt?: Uint8Array;
  /** Iteration count; default {@link SCRAM_ITERATIONS}. */
  readonly iterations?: number;
};

function pbkdf2Sha256(password: string, salt: Uint8Array, iterations: number): Promise<Buffer> {
  // Async: 4096 iterations take a few ms, which is not worth blocking the event loop (Raft ticks) for.
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, 32, 'sha256', (err, key) => (err === null ? resolve(key) : reject(err)));
  });
}

/**
 * Computes PostgreSQL's SCRAM-SHA-256 verifier of a password.
 *
 * @param password - printable ASCII (U+0020–U+007E), 1–1024 characters
 * @param opts - fixed salt and iteration count (tests); defaults are PostgreSQL's
 * @returns the verifier's parts and its text form
 * @throws {RangeError} a password outside printable ASCII or too long, a salt shorter than 8 bytes,
 *   an iteration count below 4096 (the message never contains the password)
 * @example
 * ```ts
 * const v = await scramSha256Verifier('correct horse battery staple');
 * v.text.startsWith('SCRAM-SHA-256$4096:'); // true
 * ```
 */
export async function scramSha256Verifier(password: string, opts: ScramOptions = {}): Promise<ScramVerifier> {
  if (typeof password !== 'string' || password.length === 0) throw new RangeError('password must be a non-empty string');
  if (password.length > SCRAM_MAX_PASSWORD_BYTES) throw new RangeError(`password is longer than ${SCRAM_MAX_PASSWORD_BYTES} characters`);
  if (!PRINTABLE_ASCII.test(password)) {
    throw new RangeError('password must be printable ASCII (U+0020-U+007E): other characters need SASLprep, which clients apply inconsistently');
  }
  const iterations = opts.iterations ?? SCRAM_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < SCRAM_ITERATIONS) throw new RangeError(`iterations must be an integer >= ${SCRAM_ITERATIONS}`);
  const salt = opts.salt ?? randomBytes(SCRAM_SALT_BYTES);
  if (salt.length < 8) throw new RangeError('salt must be at least 8 bytes');
  const salted = await pbkdf2Sha256(password, salt, iterations);
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  // Best effort: JS gives no guarantee that no other copy of these bytes exists.
  salted.fill(0);
  clientKey.fill(0);
  const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64');
  const text = `SCRAM-SHA-256$${iterations}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
  return { iterations, salt: Uint8Array.from(salt), storedKey: new Uint8Array(storedKey), serverKey: new Uint8Array(serverKey), text };
}
