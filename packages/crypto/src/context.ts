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
  // identical because lone surrogates were refused above.
  const nameLen = Buffer.byteLength(ctx.name, 'utf8');
  const out = Buffer.alloc(AAD_DOMAIN.length + 4 + 1 + 4 + nameLen + 8);
  let o = 0;
  out.set(AAD_DOMAIN, o);
  o += AAD_DOMAIN.length;
  o = out.writeUInt32BE(formatVersion, o);
  o = out.writeUInt8(algId, o);
  o = out.writeUInt32BE(nameLen, o);
  o += out.write(ctx.name, o, 'utf8');
  out.writeBigUInt64BE(BigInt(ctx.version), o);
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
  const parts = [label, keyId, ctx.name];
  let size = 8;
  for (const p of parts) size += 4 + Buffer.byteLength(p, 'utf8');
  const out = Buffer.alloc(size);
  let o = 0;
  for (const p of parts) {
    const at = o + 4;
    const n = out.write(p, at, 'utf8');
    out.writeUInt32BE(n, o);
    o = at + n;
  }
  out.writeBigUInt64BE(BigInt(ctx.version), o);
  return out;
}
