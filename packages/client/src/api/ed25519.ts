/**
 * Ed25519 identities on the client side: key pairs, key files, and the challenge → signature →
 * session login (`POST /v1/auth/challenge`, `POST /v1/auth/login`). The private key never leaves
 * this process: only the public key is registered and only a signature is sent.
 *
 * Keys are node:crypto `KeyObject`s; a key file is PKCS#8 PEM (what `openssl genpkey -algorithm
 * ed25519` writes), so operators can inspect or make one with standard tools.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { CofferError } from '../errors.js';
import type { ApiCore } from '../internal/core.js';

/** A session as `POST /v1/auth/login` answers it. */
export interface Session {
  /** The session token: send it as a bearer token. Shown here and nowhere else. */
  token: string;
  /** ISO-8601 expiry. */
  expiresAt: string;
}

/** What {@link loginWithEd25519} needs. */
export interface Ed25519LoginOptions {
  /** The registered identity name. */
  identity: string;
  /** The identity's private key: a KeyObject, PKCS#8 PEM text, or the raw 32-byte seed. */
  privateKey: KeyObject | string | Uint8Array;
}

// RFC 8410: PKCS#8 DER of an Ed25519 private key is this prefix followed by the 32-byte seed.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * Reads a private key given in any of the accepted forms.
 *
 * @param key - KeyObject, PKCS#8 PEM text, or a raw 32-byte seed
 * @returns the private KeyObject
 * @throws {TypeError} not an Ed25519 private key
 */
export function ed25519PrivateKey(key: KeyObject | string | Uint8Array): KeyObject {
  let k: KeyObject;
  if (key instanceof Uint8Array && key.length !== 32) throw new TypeError('a raw Ed25519 private key is 32 bytes');
  try {
    if (typeof key === 'string') k = createPrivateKey(key);
    else if (key instanceof Uint8Array) k = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, key]), format: 'der', type: 'pkcs8' });
    else k = key;
  } catch (cause) {
    throw new TypeError('not an Ed25519 private key (expected PKCS#8 PEM or a 32-byte seed)', { cause });
  }
  if (k.type !== 'private' || k.asymmetricKeyType !== 'ed25519') throw new TypeError('not an Ed25519 private key');
  return k;
}

/**
 * The raw 32-byte public key of a private key, base64 (what `POST /v1/identities` takes).
 *
 * @param privateKey - an Ed25519 private key
 * @returns base64 of the raw public key
 */
export function ed25519PublicKeyBase64(privateKey: KeyObject): string {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new TypeError('not an Ed25519 key');
  return Buffer.from(jwk.x, 'base64url').toString('base64');
}

/**
 * A fresh key pair.
 *
 * @returns the private key as PKCS#8 PEM (write it with mode 0600) and the raw public key, base64
 */
export function generateEd25519KeyPair(): { privateKeyPem: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), publicKey: ed25519PublicKeyBase64(privateKey) };
}

/**
 * The text an identity signs to log in (CONTRACT.md): `coffer-login:{identity}:{nonce}`.
 *
 * @param identity - identity name
 * @param nonce - the challenge's nonce
 * @returns the UTF-8 bytes to sign
 */
export function loginMessage(identity: string, nonce: string): Buffer {
  return Buffer.from(`coffer-login:${identity}:${nonce}`, 'utf8');
}

/**
 * Challenge → signature → session. Neither request is retried on its own (a nonce is single use);
 * the whole exchange is tried once more when the first attempt failed for availability.
 *
 * @param core - the client's internals
 * @param opts - identity and private key
 * @returns the session
 * @throws {CofferError} `invalid_token` (401: unknown or disabled identity, wrong key, replayed
 *   or expired nonce), `invalid_request`, `unavailable`
 */
export async function loginWithEd25519(core: ApiCore, opts: Ed25519LoginOptions): Promise<Session> {
  const key = ed25519PrivateKey(opts.privateKey);
  const once = async (): Promise<Session> => {
    const ch = await core.json<{ nonce?: unknown }>({ method: 'POST', path: '/v1/auth/challenge', json: { identity: opts.identity }, idempotent: false });
    if (typeof ch?.nonce !== 'string') throw new CofferError('invalid_response', 'the challenge answer has no nonce');
    const signature = sign(null, loginMessage(opts.identity, ch.nonce), key).toString('base64');
    const s = await core.json<Partial<Session>>({
      method: 'POST',
      path: '/v1/auth/login',
      json: { identity: opts.identity, nonce: ch.nonce, signature },
      idempotent: false,
    });
    if (typeof s?.token !== 'string' || typeof s.expiresAt !== 'string') throw new CofferError('invalid_response', 'the login answer has no token');
    return { token: s.token, expiresAt: s.expiresAt };
  };
  try {
    return await once();
  } catch (err) {
    if (err instanceof CofferError && (err.code === 'unavailable' || err.code === 'outcome_unknown' || err.code === 'no_leader')) return once();
    throw err;
  }
}
