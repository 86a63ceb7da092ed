import { CofferError } from '../errors.js';
import { encodeSegment, readJson, type ApiCore } from '../internal/core.js';
import type { TransportResponse } from '../internal/transport.js';

/** Transit key types (`xchacha20-poly1305` is the server's default). */
export type TransitKeyType = 'xchacha20-poly1305' | 'aes256-gcm';

/** A transit key as `GET /v1/transit/keys/{name}` shows it (never key material). */
export interface TransitKey {
  name: string;
  type: TransitKeyType;
  latestVersion: number;
  minDecryptionVersion: number;
  deletionAllowed: boolean;
  /** Version → creation time (epoch seconds). */
  versions: Record<string, number>;
}

/** A ciphertext and the key version it was made with. */
export interface TransitCiphertext {
  /** `coffer:vN:…` */
  ciphertext: string;
  keyVersion: number;
}

/** Options of encrypt/decrypt: the context (associated data) the ciphertext is bound to. */
export interface TransitContextOptions {
  context?: Uint8Array | string;
}

type VaultBody = { data?: Record<string, unknown>; errors?: unknown };

/** Statuses whose Vault-shaped error body this module reads itself (the transport knows Coffer's only). */
const ERROR_STATUSES: readonly number[] = [400, 403, 404, 405, 409, 413, 429];

const bytes = (v: Uint8Array | string): Buffer => (typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.length));

function keyOf(data: Record<string, unknown>): TransitKey {
  return {
    name: String(data['name']),
    type: data['type'] as TransitKeyType,
    latestVersion: Number(data['latest_version']),
    minDecryptionVersion: Number(data['min_decryption_version']),
    deletionAllowed: data['deletion_allowed'] === true,
    versions: (data['keys'] ?? {}) as Record<string, number>,
  };
}

/**
 * Transit: encryption as a service under named keys the cluster keeps (`client.transit`). The
 * routes are Vault-shaped; their errors (`{"errors":[message]}`) become {@link CofferError}s with
 * code `transit_error` (400), `permission_denied` (403), `not_found` (404) and the server's message.
 */
export class TransitApi {
  readonly #core: ApiCore;

  /** @param core - the client's internals */
  constructor(core: ApiCore) {
    this.#core = core;
  }

  async #call(method: 'GET' | 'POST' | 'DELETE', path: string, json: unknown, idempotent: boolean): Promise<Record<string, unknown>> {
    const res = await this.#core.send({ method, path, ...(json === undefined ? {} : { json }), idempotent, passStatuses: ERROR_STATUSES });
    const body = await readJson<VaultBody | undefined>(res);
    if (res.status >= 400) throw vaultError(res, body);
    return body?.data ?? {};
  }

  /**
   * Creates a key (`POST /v1/transit/keys/{name}`; an existing key is returned unchanged).
   *
   * @param name - key name (1-64 of `A-Z a-z 0-9 . _ -`)
   * @param type - key type (server default `xchacha20-poly1305`)
   * @returns the key
   */
  async createKey(name: string, type?: TransitKeyType): Promise<TransitKey> {
    return keyOf(await this.#call('POST', `/v1/transit/keys/${encodeSegment(name)}`, type === undefined ? {} : { type }, true));
  }

  /**
   * @param name - key name
   * @returns the key's policy and version dates
   */
  async readKey(name: string): Promise<TransitKey> {
    return keyOf(await this.#call('GET', `/v1/transit/keys/${encodeSegment(name)}`, undefined, true));
  }

  /**
   * Adds a key version (`POST /v1/transit/keys/{name}/rotate`). Not retried after it may have
   * reached a node (a retry could rotate twice).
   *
   * @param name - key name
   * @returns the key after the rotation
   */
  async rotateKey(name: string): Promise<TransitKey> {
    return keyOf(await this.#call('POST', `/v1/transit/keys/${encodeSegment(name)}/rotate`, {}, false));
  }

  /**
   * Encrypts under the key's latest version (on the node that answers; nothing is written).
   *
   * @param name - key name
   * @param plaintext - bytes, or text (UTF-8)
   * @param opts - context
   * @returns the ciphertext and its key version
   */
  async encrypt(name: string, plaintext: Uint8Array | string, opts: TransitContextOptions = {}): Promise<TransitCiphertext> {
    const body: Record<string, string> = { plaintext: bytes(plaintext).toString('base64') };
    if (opts.context !== undefined) body['context'] = bytes(opts.context).toString('base64');
    const d = await this.#call('POST', `/v1/transit/encrypt/${encodeSegment(name)}`, body, true);
    return { ciphertext: String(d['ciphertext']), keyVersion: Number(d['key_version']) };
  }

  /**
   * Decrypts a `coffer:vN:` ciphertext.
   *
   * @param name - key name
   * @param ciphertext - as `encrypt` returned it
   * @param opts - the context given at encryption
   * @returns the plaintext bytes
   * @throws {CofferError} `transit_error` (400): malformed, tampered, wrong context, version below the minimum
   */
  async decrypt(name: string, ciphertext: string, opts: TransitContextOptions = {}): Promise<Buffer> {
    const body: Record<string, string> = { ciphertext };
    if (opts.context !== undefined) body['context'] = bytes(opts.context).toString('base64');
    const d = await this.#call('POST', `/v1/transit/decrypt/${encodeSegment(name)}`, body, true);
    return Buffer.from(String(d['plaintext']), 'base64');
  }
}

function vaultError(res: TransportResponse, body: VaultBody | undefined): CofferError {
  const errors = Array.isArray(body?.errors) ? (body?.errors as unknown[]) : [];
  const message = typeof errors[0] === 'string' ? errors[0] : `HTTP ${res.status} from ${res.address}`;
  const code = res.status === 403 ? 'permission_denied' : res.status === 404 ? 'not_found' : res.status === 413 ? 'body_too_large' : res.status === 429 ? 'rate_limited' : 'transit_error';
  return new CofferError(code, message, { status: res.status, requestId: res.requestId, address: res.address, attempts: res.attempts });
}
