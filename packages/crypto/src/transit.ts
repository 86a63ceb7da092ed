// Transit: encryption as a service. Named keys with numbered versions; a caller sends plaintext
// and gets back `coffer:v{N}:{base64(nonce ‖ ciphertext ‖ tag)}` without ever holding a key.
//
// Two layers:
//  - the AEAD layer (`encryptWithKeyVersion`, `decryptWithKeyVersion`): synchronous, takes the
//    opened bytes of ONE key version, which stay the caller's;
//  - the keyring layer (`transitEncrypt`, `transitDecrypt`, `transitRewrap`, `transitDataKey`):
//    parses and checks the ciphertext's version against the key's policy BEFORE any key is opened,
//    asks the keyring for just the version it needs, and zeroizes that copy when done.
//
// Key versions are stored in the replicated state sealed exactly like a secret value
// (`sealTransitKey`: an Envelope whose DEK the KeyProvider wraps, bound to the key's name, type and
// version), so a disk, a snapshot or the Raft log never holds them in the clear, and the KMS
// re-wrap pass can move them onto new KMS key material like any other envelope.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { aead as xchacha } from './internal/aead.js';
import { randomBytes as osRandomBytes, zeroize, type RandomBytes } from './bytes.js';
import { CryptoError } from './errors.js';

/** The key types a transit key can have (Vault's names where Vault has them). */
export type TransitKeyType = 'xchacha20-poly1305' | 'aes256-gcm';

/** Every {@link TransitKeyType}, for validation and tables. */
export const TRANSIT_KEY_TYPES: readonly TransitKeyType[] = ['xchacha20-poly1305', 'aes256-gcm'];

/** Bytes of one transit key version (both types are 256-bit keys). */
export const TRANSIT_KEY_LENGTH = 32;

/** Every transit ciphertext starts with this, then the decimal key version and a colon. */
export const TRANSIT_CIPHERTEXT_PREFIX = 'coffer:v';

/** Highest key version a ciphertext can name (versions are bound into the AAD as u32). */
export const TRANSIT_MAX_VERSION = 0xffffffff;

/** Largest context (AAD) accepted, in bytes. Vault's contexts are small; this bounds the AAD. */
export const TRANSIT_MAX_CONTEXT_BYTES = 4096;

/** Error codes of transit operations on caller-supplied input; every one is a 400 at the API. */
export type TransitErrorCode =
  /** The ciphertext string does not parse: wrong prefix, bad version, bad base64, too short. */
  | 'CRYPTO_TRANSIT_MALFORMED'
  /** The ciphertext's key version is below the key's `min_decryption_version`. */
  | 'CRYPTO_TRANSIT_VERSION_TOO_OLD'
  /** The ciphertext names a key version the key does not have (above the latest). */
  | 'CRYPTO_TRANSIT_VERSION_UNKNOWN'
  /** Authentication failed: tampered ciphertext, another context, another key or key name. */
  | 'CRYPTO_TRANSIT_INTEGRITY';

/** Every {@link TransitErrorCode}, for exhaustive tables (e.g. the node's HTTP status map). */
export const TRANSIT_ERROR_CODES: readonly TransitErrorCode[] = [
  'CRYPTO_TRANSIT_MALFORMED',
  'CRYPTO_TRANSIT_VERSION_TOO_OLD',
  'CRYPTO_TRANSIT_VERSION_UNKNOWN',
  'CRYPTO_TRANSIT_INTEGRITY',
];

/**
 * A transit request the caller got wrong (400 at the API). Kept apart from {@link CryptoError},
 * whose codes mean a server-side problem (a stored envelope failing is a 500; a ciphertext a
 * client sends failing is the client's). Messages name what is wrong, never key material or
 * plaintext, and never echo the ciphertext.
 *
 * @example
 * ```ts
 * try { await transitDecrypt(ring, text); }
 * catch (err) { if (err instanceof TransitError && err.code === 'CRYPTO_TRANSIT_VERSION_TOO_OLD') { ... } }
 * ```
 */
export class TransitError extends Error {
  override readonly name = 'TransitError';
  readonly code: TransitErrorCode;

  /**
   * @param code - stable machine-readable code.
   * @param message - human-readable text; never secret material.
   * @param options - `cause` keeps the underlying error.
   */
  constructor(code: TransitErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** One opened key version and what it is bound to. `key` stays the caller's (not zeroized here). */
export interface TransitKeyVersion {
  /** The transit key's name (see {@link isTransitKeyName}). */
  readonly name: string;
  readonly type: TransitKeyType;
  /** 1-based version number. */
  readonly version: number;
  /** The opened 32-byte key of this version. */
  readonly key: Uint8Array;
}

/**
 * What the keyring layer needs from the node: the key's policy and a way to open one version.
 * The node builds it from the replicated key record and {@link openTransitKey}.
 */
export interface TransitKeyring {
  readonly name: string;
  readonly type: TransitKeyType;
  /** Newest version; encryption always uses it. At least 1. */
  readonly latestVersion: number;
  /** Versions below this are refused for decryption (Vault's `min_decryption_version`). */
  readonly minDecryptionVersion: number;
  /**
   * The opened bytes of `version` (only ever called with minDecryptionVersion ≤ version ≤
   * latestVersion). Must return a FRESH copy: the core zeroizes it as soon as it is done.
   */
  openVersion(version: number): Uint8Array | Promise<Uint8Array>;
}

/** Options of encryption. */
export interface TransitEncryptOptions {
  /** Associated data the ciphertext is bound to (Vault's `context`). Absent ≡ empty. */
  readonly context?: Uint8Array | undefined;
  /** CSPRNG for nonces (and data keys); default the OS. */
  readonly randomBytes?: RandomBytes | undefined;
}

/** Options of decryption. */
export interface TransitDecryptOptions {
  /** The context given at encryption (absent ≡ empty). */
  readonly context?: Uint8Array | undefined;
}

/** A parsed transit ciphertext. */
export interface ParsedTransitCiphertext {
  /** The key version it was encrypted under. */
  readonly version: number;
  /** nonce ‖ ciphertext ‖ tag. */
  readonly payload: Uint8Array;
}

/** Options of {@link transitDataKey}. */
export interface TransitDataKeyOptions extends TransitEncryptOptions {
  /** `plaintext`: return the data key and its wrapped form; `wrapped`: the wrapped form only. */
  readonly mode: 'plaintext' | 'wrapped';
  /** Data key size: 128, 256 (default) or 512 bits. */
  readonly bits?: 128 | 256 | 512 | undefined;
}

/** Result of {@link transitDataKey}. */
export interface TransitDataKey {
  /** The data key encrypted under the transit key's latest version (`coffer:vN:…`). */
  readonly ciphertext: string;
  /** The data key itself, only in `plaintext` mode; the caller zeroizes it after use. */
  readonly plaintext?: Uint8Array;
}

const TAG_LENGTH = 16;
const NONCE_LENGTH: Readonly<Record<TransitKeyType, number>> = { 'xchacha20-poly1305': 24, 'aes256-gcm': 12 };
// Bound into the AAD; append-only, never renumber.
const TYPE_IDS: Readonly<Record<TransitKeyType, number>> = { 'xchacha20-poly1305': 1, 'aes256-gcm': 2 };
const AAD_DOMAIN = Buffer.from('coffer.transit.v1', 'utf8');
const KEY_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
const VERSION_RE = /^[1-9][0-9]{0,9}$/;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const DATAKEY_BYTES: Readonly<Record<128 | 256 | 512, number>> = { 128: 16, 256: 32, 512: 64 };

/**
 * Whether `name` is a valid transit key name: 1–64 bytes of `[A-Za-z0-9._-]`, not `.` or `..`
 * (the token and role name rule, minus the two names that mean something in a path).
 *
 * @param name - candidate name.
 * @returns true when valid.
 * @example
 * ```ts
 * isTransitKeyName('orders'); // true
 * ```
 */
export function isTransitKeyName(name: unknown): name is string {
  return typeof name === 'string' && KEY_NAME_RE.test(name) && name !== '.' && name !== '..';
}

/**
 * Whether `type` is a transit key type.
 *
 * @param type - candidate type.
 * @returns true for `'xchacha20-poly1305'` and `'aes256-gcm'`.
 * @example
 * ```ts
 * isTransitKeyType(body.type ?? 'xchacha20-poly1305');
 * ```
 */
export function isTransitKeyType(type: unknown): type is TransitKeyType {
  return type === 'xchacha20-poly1305' || type === 'aes256-gcm';
}

/** Throws TypeError / RangeError for a bad key name, type or version (shared with transit-keys.ts). */
export function assertTransitRef(name: string, type: TransitKeyType, version: number): void {
  if (!isTransitKeyName(name)) throw new TypeError('transit key name must be 1-64 bytes of [A-Za-z0-9._-]');
  if (!isTransitKeyType(type)) throw new TypeError('transit key type must be xchacha20-poly1305 or aes256-gcm');
  if (!Number.isSafeInteger(version) || version < 1 || version > TRANSIT_MAX_VERSION) {
    throw new RangeError('transit key version must be an integer in 1..2^32-1');
  }
}

function assertKeyVersion(kv: TransitKeyVersion): void {
  if (kv === null || typeof kv !== 'object') throw new TypeError('expected { name, type, version, key }');
  assertTransitRef(kv.name, kv.type, kv.version);
  if (!(kv.key instanceof Uint8Array) || kv.key.length !== TRANSIT_KEY_LENGTH) throw new RangeError('transit key must be 32 bytes');
}

function contextBytes(context: Uint8Array | undefined): Uint8Array {
  if (context === undefined) return EMPTY;
  if (!(context instanceof Uint8Array)) throw new TypeError('transit context must be a Uint8Array');
  if (context.length > TRANSIT_MAX_CONTEXT_BYTES) throw new RangeError(`transit context must be at most ${TRANSIT_MAX_CONTEXT_BYTES} bytes`);
  return context;
}
const EMPTY = new Uint8Array(0);

/**
 * The associated data of a transit ciphertext. Layout (integers big-endian):
 * `"coffer.transit.v1" | typeId u8 | nameLen u32 | name | version u32 | contextLen u32 | context`.
 * Every variable field is length-prefixed, so no two (type, name, version, context) tuples share
 * an encoding: a ciphertext moved to another key, key name, version or context fails to open.
 *
 * @param type - key type.
 * @param name - key name.
 * @param version - key version.
 * @param context - caller's context (absent ≡ empty).
 * @returns the AAD bytes.
 * @throws TypeError / RangeError for a bad name, type, version or context.
 * @example
 * ```ts
 * const aad = encodeTransitAad('aes256-gcm', 'orders', 3, undefined);
 * ```
 */
export function encodeTransitAad(type: TransitKeyType, name: string, version: number, context: Uint8Array | undefined): Uint8Array {
  assertTransitRef(name, type, version);
  const ctx = contextBytes(context);
  const nameLen = Buffer.byteLength(name, 'utf8');
  const out = Buffer.alloc(AAD_DOMAIN.length + 1 + 4 + nameLen + 4 + 4 + ctx.length);
  let o = 0;
  out.set(AAD_DOMAIN, o);
  o += AAD_DOMAIN.length;
  o = out.writeUInt8(TYPE_IDS[type], o);
  o = out.writeUInt32BE(nameLen, o);
  o += out.write(name, o, 'utf8');
  o = out.writeUInt32BE(version, o);
  o = out.writeUInt32BE(ctx.length, o);
  out.set(ctx, o);
  return out;
}

function malformed(message: string): TransitError {
  return new TransitError('CRYPTO_TRANSIT_MALFORMED', message);
}

/**
 * Parses `coffer:v{N}:{base64}` strictly: the exact prefix, a decimal version without sign or
 * leading zeros in 1..2^32-1, one colon, canonical padded standard base64 (no whitespace, no
 * URL-safe alphabet), and a payload long enough for `type`'s nonce and tag when `type` is given.
 *
 * @param text - the ciphertext as a client sent it.
 * @param type - when given, also checks the payload length for that key type.
 * @returns the version and the decoded payload (nonce ‖ ciphertext ‖ tag).
 * @throws {CRYPTO_TRANSIT_MALFORMED} with a message naming what is wrong.
 * @example
 * ```ts
 * parseTransitCiphertext('coffer:v2:AAEC…'); // { version: 2, payload: Uint8Array(...) }
 * ```
 */
export function parseTransitCiphertext(text: string, type?: TransitKeyType): ParsedTransitCiphertext {
  if (typeof text !== 'string') throw malformed('ciphertext must be a string');
  if (!text.startsWith(TRANSIT_CIPHERTEXT_PREFIX)) throw malformed(`ciphertext must start with "${TRANSIT_CIPHERTEXT_PREFIX}"`);
  const rest = text.slice(TRANSIT_CIPHERTEXT_PREFIX.length);
  const colon = rest.indexOf(':');
  if (colon < 0) throw malformed('ciphertext has no ":" after the key version');
  const versionText = rest.slice(0, colon);
  if (!VERSION_RE.test(versionText)) throw malformed('ciphertext key version must be a decimal integer ≥ 1 without leading zeros');
  const version = Number(versionText);
  if (version > TRANSIT_MAX_VERSION) throw malformed('ciphertext key version is too large');
  const b64 = rest.slice(colon + 1);
  if (b64.length === 0) throw malformed('ciphertext payload is empty');
  if (b64.length % 4 !== 0 || !BASE64_RE.test(b64)) throw malformed('ciphertext payload is not padded standard base64');
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  const decoded = Buffer.from(b64, 'base64');
  if (decoded.length !== (b64.length / 4) * 3 - pad) throw malformed('ciphertext payload is not padded standard base64');
  // Only the last quad can carry non-zero unused bits ("QR==" and "QQ==" decode alike): re-encode
  // just the bytes it holds instead of the whole payload. Canonical encodings only.
  const tailBytes = 3 - pad;
  if (Buffer.from(decoded.subarray(decoded.length - tailBytes)).toString('base64') !== b64.slice(-4)) {
    throw malformed('ciphertext payload is not canonical base64');
  }
  const payload = new Uint8Array(decoded.length);
  payload.set(decoded);
  if (type !== undefined) {
    const min = NONCE_LENGTH[type] + TAG_LENGTH;
    if (payload.length < min) throw malformed(`ciphertext payload is ${payload.length} bytes; ${type} needs at least ${min}`);
  }
  return { version, payload };
}

/**
 * Formats a transit ciphertext string.
 *
 * @param version - key version (1..2^32-1).
 * @param payload - nonce ‖ ciphertext ‖ tag.
 * @returns `coffer:v{version}:{base64(payload)}`.
 * @throws RangeError for a bad version.
 * @example
 * ```ts
 * formatTransitCiphertext(1, payload); // 'coffer:v1:…'
 * ```
 */
export function formatTransitCiphertext(version: number, payload: Uint8Array): string {
  if (!Number.isSafeInteger(version) || version < 1 || version > TRANSIT_MAX_VERSION) throw new RangeError('transit key version must be an integer in 1..2^32-1');
  return `${TRANSIT_CIPHERTEXT_PREFIX}${version}:${Buffer.from(payload.buffer, payload.byteOffset, payload.length).toString('base64')}`;
}

function integrity(cause?: unknown): TransitError {
  return new TransitError(
    'CRYPTO_TRANSIT_INTEGRITY',
    'ciphertext does not authenticate under this key: it was altered, or encrypted with another key or context',
    cause === undefined ? undefined : { cause },
  );
}

function aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): void {
  // NB: OpenSSL keeps a copy of the key schedule in the cipher context until GC frees it.
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
  c.setAAD(aad);
  const head = c.update(plaintext);
  const tail = c.final();
  out.set(head, 0);
  out.set(tail, head.length);
  out.set(c.getAuthTag(), head.length + tail.length);
}

function aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  const ctLen = sealed.length - TAG_LENGTH;
  let head: Buffer | undefined;
  let tail: Buffer | undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
    d.setAuthTag(sealed.subarray(ctLen));
    d.setAAD(aad);
    // NB: update() releases plaintext BEFORE final() checks the tag: it never leaves this function
    // unless final() succeeds, and is wiped otherwise.
    head = d.update(sealed.subarray(0, ctLen));
    tail = d.final();
    const pt = new Uint8Array(head.length + tail.length);
    pt.set(head, 0);
    pt.set(tail, head.length);
    return pt;
  } catch (err) {
    throw integrity(err);
  } finally {
    zeroize(head);
    zeroize(tail);
  }
}

/**
 * Encrypts under one opened key version: a fresh random nonce (24 bytes for XChaCha20-Poly1305,
 * 12 for AES-256-GCM), AAD from {@link encodeTransitAad}.
 *
 * Security: AES-256-GCM with random 96-bit nonces must not encrypt more than 2^32 messages under
 * one key version (NIST SP 800-38D §8.3); rotate the key well before that. XChaCha20's 192-bit
 * nonce has no such practical limit.
 *
 * @param kv - the key version (its `key` stays the caller's).
 * @param plaintext - bytes to encrypt (not wiped).
 * @param opts - context and randomness.
 * @returns `coffer:v{N}:{base64(nonce ‖ ciphertext ‖ tag)}`.
 * @throws TypeError / RangeError for a bad key version, plaintext or context.
 * @example
 * ```ts
 * const ct = encryptWithKeyVersion({ name: 'orders', type: 'aes256-gcm', version: 1, key }, pt);
 * ```
 */
export function encryptWithKeyVersion(kv: TransitKeyVersion, plaintext: Uint8Array, opts: TransitEncryptOptions = {}): string {
  assertKeyVersion(kv);
  if (!(plaintext instanceof Uint8Array)) throw new TypeError('transit plaintext must be a Uint8Array');
  const aad = encodeTransitAad(kv.type, kv.name, kv.version, opts.context);
  const nonceLength = NONCE_LENGTH[kv.type];
  const nonce = (opts.randomBytes ?? osRandomBytes)(nonceLength);
  if (!(nonce instanceof Uint8Array) || nonce.length !== nonceLength) throw new RangeError('randomBytes returned a bad nonce');
  const payload = new Uint8Array(nonceLength + plaintext.length + TAG_LENGTH);
  payload.set(nonce, 0);
  const sealedPart = payload.subarray(nonceLength);
  if (kv.type === 'xchacha20-poly1305') xchacha.seal(kv.key, nonce, plaintext, aad, sealedPart);
  else aesGcmSeal(kv.key, nonce, plaintext, aad, sealedPart);
  return formatTransitCiphertext(kv.version, payload);
}

/**
 * Decrypts under one opened key version. The ciphertext's version must be `kv.version`.
 *
 * @param kv - the key version (its `key` stays the caller's).
 * @param ciphertext - the string, or what {@link parseTransitCiphertext} returned.
 * @param opts - the context given at encryption.
 * @returns the plaintext (the caller zeroizes it).
 * @throws {CRYPTO_TRANSIT_MALFORMED} unparsable ciphertext.
 * @throws {CRYPTO_TRANSIT_VERSION_UNKNOWN} the ciphertext names another version than `kv`.
 * @throws {CRYPTO_TRANSIT_INTEGRITY} tampered, or another key, key name, type or context.
 * @example
 * ```ts
 * const pt = decryptWithKeyVersion(kv, 'coffer:v1:…');
 * ```
 */
export function decryptWithKeyVersion(
  kv: TransitKeyVersion,
  ciphertext: string | ParsedTransitCiphertext,
  opts: TransitDecryptOptions = {},
): Uint8Array {
  assertKeyVersion(kv);
  const parsed = typeof ciphertext === 'string' ? parseTransitCiphertext(ciphertext, kv.type) : ciphertext;
  if (parsed.version !== kv.version) {
    throw new TransitError('CRYPTO_TRANSIT_VERSION_UNKNOWN', `ciphertext is for key version ${parsed.version}, not ${kv.version}`);
  }
  const nonceLength = NONCE_LENGTH[kv.type];
  const payload = parsed.payload;
  if (!(payload instanceof Uint8Array) || payload.length < nonceLength + TAG_LENGTH) {
    throw malformed(`ciphertext payload is too short; ${kv.type} needs at least ${nonceLength + TAG_LENGTH} bytes`);
  }
  const aad = encodeTransitAad(kv.type, kv.name, kv.version, opts.context);
  const nonce = payload.subarray(0, nonceLength);
  const sealed = payload.subarray(nonceLength);
  if (kv.type === 'aes256-gcm') return aesGcmOpen(kv.key, nonce, sealed, aad);
  try {
    return xchacha.open(kv.key, nonce, sealed, aad);
  } catch (err) {
    if (err instanceof CryptoError && err.code === 'CRYPTO_INTEGRITY') throw integrity(err);
    throw err;
  }
}

function assertKeyring(ring: TransitKeyring): void {
  if (ring === null || typeof ring !== 'object' || typeof ring.openVersion !== 'function') throw new TypeError('expected a TransitKeyring');
  assertTransitRef(ring.name, ring.type, ring.latestVersion);
  const min = ring.minDecryptionVersion;
  if (!Number.isSafeInteger(min) || min < 1 || min > ring.latestVersion) {
    throw new RangeError('minDecryptionVersion must be an integer in 1..latestVersion');
  }
}

/**
 * Checks a ciphertext's key version against the key's policy, before any key is opened.
 *
 * @param ring - the key's policy.
 * @param version - the version a ciphertext names.
 * @returns nothing.
 * @throws {CRYPTO_TRANSIT_VERSION_TOO_OLD} below `minDecryptionVersion`.
 * @throws {CRYPTO_TRANSIT_VERSION_UNKNOWN} above `latestVersion`.
 * @example
 * ```ts
 * checkDecryptionVersion(ring, parseTransitCiphertext(text).version);
 * ```
 */
export function checkDecryptionVersion(ring: Pick<TransitKeyring, 'name' | 'latestVersion' | 'minDecryptionVersion'>, version: number): void {
  if (version < ring.minDecryptionVersion) {
    throw new TransitError(
      'CRYPTO_TRANSIT_VERSION_TOO_OLD',
      `ciphertext key version ${version} is below the minimum decryption version ${ring.minDecryptionVersion} of key "${ring.name}"`,
    );
  }
  if (version > ring.latestVersion) {
    throw new TransitError('CRYPTO_TRANSIT_VERSION_UNKNOWN', `key "${ring.name}" has no version ${version} (latest is ${ring.latestVersion})`);
  }
}

async function withVersion<T>(ring: TransitKeyring, version: number, fn: (kv: TransitKeyVersion) => T): Promise<T> {
  const key = await ring.openVersion(version);
  try {
    if (!(key instanceof Uint8Array) || key.length !== TRANSIT_KEY_LENGTH) {
      throw new CryptoError('CRYPTO_INTEGRITY', 'opened transit key version has the wrong length');
    }
    return fn({ name: ring.name, type: ring.type, version, key });
  } finally {
    zeroize(key);
  }
}

/**
 * Encrypts under the key's latest version.
 *
 * @param ring - the key (policy and version opener).
 * @param plaintext - bytes to encrypt (not wiped).
 * @param opts - context and randomness.
 * @returns `coffer:v{latest}:…`.
 * @throws whatever `ring.openVersion` throws (e.g. CRYPTO_KMS_* from the provider).
 * @example
 * ```ts
 * const ct = await transitEncrypt(ring, new TextEncoder().encode('4111 1111 1111 1111'));
 * ```
 */
export async function transitEncrypt(ring: TransitKeyring, plaintext: Uint8Array, opts: TransitEncryptOptions = {}): Promise<string> {
  assertKeyring(ring);
  if (!(plaintext instanceof Uint8Array)) throw new TypeError('transit plaintext must be a Uint8Array');
  contextBytes(opts.context);
  return withVersion(ring, ring.latestVersion, (kv) => encryptWithKeyVersion(kv, plaintext, opts));
}

/**
 * Decrypts a transit ciphertext: parse strictly, check the version policy, open only that
 * version, authenticate, and return the plaintext.
 *
 * @param ring - the key.
 * @param ciphertext - `coffer:v{N}:…` as the client sent it.
 * @param opts - the context given at encryption.
 * @returns the plaintext (the caller zeroizes it).
 * @throws {CRYPTO_TRANSIT_MALFORMED | CRYPTO_TRANSIT_VERSION_TOO_OLD | CRYPTO_TRANSIT_VERSION_UNKNOWN | CRYPTO_TRANSIT_INTEGRITY}
 * @example
 * ```ts
 * const pt = await transitDecrypt(ring, body.ciphertext, { context });
 * ```
 */
export async function transitDecrypt(ring: TransitKeyring, ciphertext: string, opts: TransitDecryptOptions = {}): Promise<Uint8Array> {
  assertKeyring(ring);
  contextBytes(opts.context);
  const parsed = parseTransitCiphertext(ciphertext, ring.type);
  checkDecryptionVersion(ring, parsed.version);
  return withVersion(ring, parsed.version, (kv) => decryptWithKeyVersion(kv, parsed, opts));
}

/**
 * Re-encrypts a ciphertext under the key's latest version (also when it already is the latest:
 * the result has a fresh nonce). The plaintext exists only inside this call and is wiped.
 *
 * @param ring - the key.
 * @param ciphertext - `coffer:v{N}:…`.
 * @param opts - context (the same on both sides) and randomness.
 * @returns `coffer:v{latest}:…`.
 * @throws the codes of {@link transitDecrypt}.
 * @example
 * ```ts
 * const moved = await transitRewrap(ring, oldCiphertext);
 * ```
 */
export async function transitRewrap(ring: TransitKeyring, ciphertext: string, opts: TransitEncryptOptions = {}): Promise<string> {
  const plaintext = await transitDecrypt(ring, ciphertext, opts);
  try {
    return await transitEncrypt(ring, plaintext, opts);
  } finally {
    zeroize(plaintext);
  }
}

/**
 * Generates a random data key and encrypts it under the key's latest version (Vault's
 * `datakey/plaintext` and `datakey/wrapped`). In `wrapped` mode the data key is wiped here.
 *
 * @param ring - the key.
 * @param opts - mode, size, context, randomness.
 * @returns the wrapped data key, and in `plaintext` mode the data key (caller zeroizes).
 * @throws RangeError for a bad mode or size; whatever `ring.openVersion` throws.
 * @example
 * ```ts
 * const { plaintext, ciphertext } = await transitDataKey(ring, { mode: 'plaintext' });
 * ```
 */
export async function transitDataKey(ring: TransitKeyring, opts: TransitDataKeyOptions): Promise<TransitDataKey> {
  if (opts === null || typeof opts !== 'object' || (opts.mode !== 'plaintext' && opts.mode !== 'wrapped')) {
    throw new RangeError('datakey mode must be "plaintext" or "wrapped"');
  }
  const bits = opts.bits ?? 256;
  const length = DATAKEY_BYTES[bits];
  if (length === undefined) throw new RangeError('datakey bits must be 128, 256 or 512');
  const dataKey = (opts.randomBytes ?? osRandomBytes)(length);
  if (!(dataKey instanceof Uint8Array) || dataKey.length !== length) throw new RangeError('randomBytes returned a bad data key');
  let handedOut = false;
  try {
    const ciphertext = await transitEncrypt(ring, dataKey, opts);
    if (opts.mode === 'wrapped') return { ciphertext };
    handedOut = true;
    return { ciphertext, plaintext: dataKey };
  } finally {
    if (!handedOut) zeroize(dataKey);
  }
}
