// The context a sealed value is bound to (secret name and version) and its canonical encodings:
// the AEAD's associated data and the KMS encryption context.

/** Which secret version a value belongs to. Bound into the AAD and the KMS encryption context. */
export interface SecretContext {
  readonly name: string;
  readonly version: number;
}

/** Envelope format written by this release. Bound into the AAD; see {@link encodeAad}. */
export const ENVELOPE_FORMAT_VERSION = 1;

/** The AEAD algorithm of format 1. */
export const ENVELOPE_ALG = 'xchacha20poly1305';

/** KMS encryption-context keys. Names are part of the stored data's contract: never rename. */
export const KMS_CONTEXT_NAME_KEY = 'coffer:name';
export const KMS_CONTEXT_VERSION_KEY = 'coffer:version';

const encoder = new TextEncoder();
// Lone surrogates would be replaced by U+FFFD when encoded, so two different names could encode
// alike ("a\uD800" and "a\uFFFD"). Refusing them keeps the encoding injective.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const AAD_DOMAIN = encoder.encode('coffer.envelope');
const ALG_IDS: Readonly<Record<string, number>> = { [ENVELOPE_ALG]: 1 };

/**
 * Checks a context; a bad one is a programmer error, not a crypto failure.
 *
 * @param ctx - the context to check.
 * @returns nothing.
 * @throws TypeError when the name is not a non-empty, well-formed string.
 * @throws RangeError when the version is not a non-negative safe integer.
 * @example
 * ```ts
 * assertContext({ name: 'payments/db', version: 3 });
 * ```
 */
export function assertContext(ctx: SecretContext): void {
  if (ctx === null || typeof ctx !== 'object') throw new TypeError('context must be { name, version }');
  const { name, version } = ctx;
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('context.name must be a non-empty string');
  if (LONE_SURROGATE.test(name)) throw new TypeError('context.name must be well-formed Unicode');
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    throw new RangeError('context.version must be a non-negative safe integer');
  }
}

/**
 * The AEAD associated data of an envelope. Layout (all integers big-endian):
 * `"coffer.envelope" | formatVersion u32 | algId u8 | nameLen u32 | name UTF-8 | version u64`.
 * The name is length-prefixed and every other field has a fixed width, so no two
 * (format, alg, name, version) tuples share an encoding.
 *
 * @param formatVersion - envelope format version (1).
 * @param alg - algorithm name (`'xchacha20poly1305'`).
 * @param ctx - secret name and version.
 * @returns the AAD bytes.
 * @throws RangeError for an unknown algorithm or a format version outside u32.
 * @example
 * ```ts
 * const aad = encodeAad(1, 'xchacha20poly1305', { name: 'a', version: 1 });
 * ```
 */
export function encodeAad(formatVersion: number, alg: string, ctx: SecretContext): Uint8Array {
  assertContext(ctx);
  const algId = ALG_IDS[alg];
  if (algId === undefined) throw new RangeError(`unknown algorithm ${JSON.stringify(alg)}`);
  if (!Number.isInteger(formatVersion) || formatVersion < 0 || formatVersion > 0xffffffff) {
    throw new RangeError('formatVersion must be a u32');
  }
  // NB: Buffer.write is several times faster than TextEncoder for short strings; the result is
  // identical because lone surrogates were refused above. allocUnsafe takes a slice of Node's
  // small-buffer pool instead of a new ArrayBuffer per call (the AAD is not secret); every byte
  // is written below.
  const nameLen = Buffer.byteLength(ctx.name, 'utf8');
  const out = Buffer.allocUnsafe(AAD_DOMAIN.length + 4 + 1 + 4 + nameLen + 8);
  let o = 0;
  out.set(AAD_DOMAIN, o);
  o += AAD_DOMAIN.length;
  o = out.writeUInt32BE(formatVersion, o);
  o = out.writeUInt8(algId, o);
  o = out.writeUInt32BE(nameLen, o);
  o += out.write(ctx.name, o, 'utf8');
  writeU64BE(out, ctx.version, o);
  return out;
}

/**
 * The KMS encryption context for a secret version: `{ "coffer:name": name, "coffer:version": "N" }`.
 * AWS KMS binds it to the wrapped DEK (and logs it in CloudTrail, so it must never hold secrets).
 *
 * @param ctx - secret name and version.
 * @returns a fresh string map.
 * @example
 * ```ts
 * kmsEncryptionContext({ name: 'a', version: 2 }); // { 'coffer:name': 'a', 'coffer:version': '2' }
 * ```
 */
export function kmsEncryptionContext(ctx: SecretContext): Record<string, string> {
  assertContext(ctx);
  return { [KMS_CONTEXT_NAME_KEY]: ctx.name, [KMS_CONTEXT_VERSION_KEY]: String(ctx.version) };
}

/**
 * A canonical, length-prefixed encoding of a key id and context, for wrap AAD and cache keys.
 * `label | keyIdLen u32 | keyId | nameLen u32 | name | version u64`.
 */
export function encodeKeyBinding(label: string, keyId: string, ctx: SecretContext): Uint8Array {
  assertContext(ctx);
  const out = Buffer.allocUnsafe(keyBindingLength(label, keyId, ctx));
  writeKeyBinding(out, 0, label, keyId, ctx);
  return out;
}

/** Bytes {@link encodeKeyBinding} produces (the context must already have been checked). */
export function keyBindingLength(label: string, keyId: string, ctx: SecretContext): number {
  return 4 + Buffer.byteLength(label, 'utf8') + 4 + Buffer.byteLength(keyId, 'utf8') + 4 + Buffer.byteLength(ctx.name, 'utf8') + 8;
}

/**
 * Writes {@link encodeKeyBinding}'s bytes into `out` at `offset` (which must have room for
 * {@link keyBindingLength} bytes; the context must already have been checked).
 * @returns the offset just past the written bytes.
 */
export function writeKeyBinding(out: Buffer, offset: number, label: string, keyId: string, ctx: SecretContext): number {
  let o = writePrefixed(out, offset, label);
  o = writePrefixed(out, o, keyId);
  o = writePrefixed(out, o, ctx.name);
  writeU64BE(out, ctx.version, o);
  return o + 8;
}

function writePrefixed(out: Buffer, offset: number, s: string): number {
  const n = out.write(s, offset + 4, 'utf8');
  out.writeUInt32BE(n, offset);
  return offset + 4 + n;
}

// A safe integer as u64 big-endian, without the BigInt round trip writeBigUInt64BE needs.
function writeU64BE(out: Buffer, value: number, offset: number): void {
  out.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  out.writeUInt32BE(value >>> 0, offset + 4);
}
