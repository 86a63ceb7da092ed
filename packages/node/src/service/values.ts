/**
 * Secret value formats: what a write body becomes (plaintext bytes + format) and what a read
 * answers. The plaintext bytes are the only thing sealed; the format is metadata.
 *
 * - `raw`: UTF-8 text, written and read as `value`.
 * - `base64`: arbitrary bytes, written and read as `valueBase64`.
 * - `userpass`: `{"username","password"}` JSON, written and read as those two fields.
 * - `kv`: the JSON text of a Vault KV v2 data map (any JSON values), read back as `data`.
 */
import type { SecretFormat } from '@coffer/state';
import { ServiceError } from './errors.js';

/** Largest secret value in bytes (CONTRACT.md: values up to 1 MiB). */
export const MAX_VALUE_BYTES: number = 1024 * 1024;

/** A value ready to seal. The caller owns `plaintext` and zeroizes it after sealing. */
export interface PlainValue {
  readonly plaintext: Uint8Array;
  readonly format: SecretFormat;
}

const BASE64_RE = /^[A-Za-z0-9+/_-]*={0,2}$/;

function tooLarge(): ServiceError {
  return new ServiceError('body_too_large', `secret values are limited to ${MAX_VALUE_BYTES} bytes`);
}

function utf8(s: string): Uint8Array {
  const buf = Buffer.from(s, 'utf8');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/**
 * Builds the plaintext of a write from its body fields. Exactly one of `value`, `valueBase64`
 * or `format: "userpass"` (with `username` and `password`) must be present.
 *
 * @param body - the parsed JSON body
 * @returns plaintext bytes and format
 * @throws {ServiceError} `invalid_value` (missing, ambiguous or malformed value), `body_too_large` (> 1 MiB)
 */
export function valueFromBody(body: Record<string, unknown>): PlainValue {
  const hasValue = body['value'] !== undefined;
  const hasB64 = body['valueBase64'] !== undefined;
  const fmt = body['format'];
  const forms = Number(hasValue) + Number(hasB64) + Number(fmt !== undefined);
  if (forms !== 1) {
    throw new ServiceError('invalid_value', 'send exactly one of "value", "valueBase64" or "format": "userpass" with "username" and "password"');
  }
  if (hasValue) {
    const v = body['value'];
    if (typeof v !== 'string') throw new ServiceError('invalid_value', '"value" must be a string');
    if (v.length > MAX_VALUE_BYTES) throw tooLarge();
    const plaintext = utf8(v);
    if (plaintext.length > MAX_VALUE_BYTES) throw tooLarge();
    return { plaintext, format: 'raw' };
  }
  if (hasB64) {
    const v = body['valueBase64'];
    if (typeof v !== 'string' || !BASE64_RE.test(v)) throw new ServiceError('invalid_value', '"valueBase64" must be base64 text');
    if (v.length > Math.ceil((MAX_VALUE_BYTES * 4) / 3) + 4) throw tooLarge();
    const buf = Buffer.from(v, v.includes('-') || v.includes('_') ? 'base64url' : 'base64');
    if (buf.length > MAX_VALUE_BYTES) throw tooLarge();
    return { plaintext: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), format: 'base64' };
  }
  if (fmt !== 'userpass') throw new ServiceError('invalid_value', '"format" must be "userpass" (or send "value" / "valueBase64")');
  const username = body['username'];
  const password = body['password'];
  if (typeof username !== 'string' || username.length === 0 || typeof password !== 'string') {
    throw new ServiceError('invalid_value', 'userpass secrets need a non-empty "username" and a "password" string');
  }
  return userpassValue(username, password);
}

/**
 * @param username - the user name
 * @param password - the password
 * @returns the sealed form of a `userpass` secret
 * @throws {ServiceError} `body_too_large` when over 1 MiB
 */
export function userpassValue(username: string, password: string): PlainValue {
  const plaintext = utf8(JSON.stringify({ username, password }));
  if (plaintext.length > MAX_VALUE_BYTES) throw tooLarge();
  return { plaintext, format: 'userpass' };
}

/**
 * The response fields of a value. NB: the returned strings cannot be zeroized (JS strings are
 * immutable); the caller still zeroizes `plaintext` so the bytes do not linger in the buffer pool.
 *
 * @param format - stored format
 * @param plaintext - opened value
 * @returns fields to merge into the read answer
 */
export function valueFields(format: SecretFormat, plaintext: Uint8Array): Record<string, unknown> {
  const buf = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.length);
  switch (format) {
    case 'raw':
      return { value: buf.toString('utf8') };
    case 'base64':
      return { valueBase64: buf.toString('base64') };
    case 'userpass': {
      const up = JSON.parse(buf.toString('utf8')) as { username: string; password: string };
      return { format: 'userpass', username: up.username, password: up.password };
    }
    case 'kv':
      return { format: 'kv', data: JSON.parse(buf.toString('utf8')) as unknown };
  }
}

/**
 * The bytes a `verify` compares against: the password of a `userpass` secret, the value itself
 * otherwise.
 *
 * @param format - stored format
 * @param plaintext - opened value
 * @returns the comparable bytes (a fresh buffer for userpass; the caller zeroizes both)
 */
export function comparableBytes(format: SecretFormat, plaintext: Uint8Array): Uint8Array {
  if (format !== 'userpass') return plaintext;
  const up = JSON.parse(Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.length).toString('utf8')) as { password: string };
  return utf8(up.password);
}

/**
 * Reads the username of a stored `userpass` value (for rotation).
 *
 * @param plaintext - opened value
 * @returns the username
 */
export function userpassUsername(plaintext: Uint8Array): string {
  const up = JSON.parse(Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.length).toString('utf8')) as { username: string };
  return up.username;
}
