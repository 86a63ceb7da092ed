import { encodeSegment, pickArray, type ApiCore } from '../internal/core.js';
import type { CreatedToken, CreateTokenOptions, TokenInfo } from '../types.js';

/** Token management (`client.tokens`). */
export class TokensApi {
  readonly #core: ApiCore;

  /** @param core - the client's internals */
  constructor(core: ApiCore) {
    this.#core = core;
  }

  /**
   * Mint a token. The raw token is in the answer and nowhere else, ever. Not retried.
   *
   * @param name - token name
   * @param role - role to bind
   * @param opts - `ttl` such as `90d`
   * @returns the token record including the raw `token`
   * @throws {CofferError} `permission_denied`, `invalid_request`, `already_exists`, `outcome_unknown`
   * @example
   * ```ts
   * const { token } = await client.tokens.create('ci', 'deployer', { ttl: '90d' });
   * ```
   */
  async create(name: string, role: string, opts: CreateTokenOptions = {}): Promise<CreatedToken> {
    return this.#core.json<CreatedToken>({ method: 'POST', path: '/v1/tokens', json: { name, role, ...opts }, idempotent: false });
  }

  /**
   * @returns every token's name, role and times (never raw tokens or hashes)
   * @throws {CofferError} `permission_denied`
   */
  async list(): Promise<TokenInfo[]> {
    const body = await this.#core.json<unknown>({ method: 'GET', path: '/v1/tokens', idempotent: true });
    return pickArray<TokenInfo>(body, ['tokens', 'items']).map(stripSecretFields);
  }

  /**
   * Who am I. Also feeds the client's token-expiry check.
   *
   * @returns the calling token's record
   * @throws {CofferError} `invalid_token`
   */
  async self(): Promise<TokenInfo> {
    const info = stripSecretFields(await this.#core.json<TokenInfo>({ method: 'GET', path: '/v1/tokens/self', idempotent: true }));
    this.#core.tokenSeen(info);
    return info;
  }

  /**
   * Revoke a token (sets `revokedAt`). Not retried.
   *
   * @param name - token name
   * @throws {CofferError} `permission_denied`, `not_found`, `outcome_unknown`
   */
  async revoke(name: string): Promise<void> {
    await this.#core.json<unknown>({ method: 'DELETE', path: `/v1/tokens/${encodeSegment(name)}`, idempotent: false });
  }

  /**
   * Replace a token's secret: the old raw token stops working. Not retried.
   *
   * @param name - token name
   * @returns the record with the new raw `token`
   * @throws {CofferError} `permission_denied`, `not_found`, `outcome_unknown`
   */
  async rotate(name: string): Promise<CreatedToken> {
    return this.#core.json<CreatedToken>({ method: 'POST', path: `/v1/tokens/${encodeSegment(name)}/rotate`, json: {}, idempotent: false });
  }
}

/** Defence in depth: listings must never carry a raw token or hash, even if a server sent one. */
function stripSecretFields(t: TokenInfo): TokenInfo {
  const { token: _t, hash: _h, tokenHash: _th, ...rest } = t as TokenInfo & { token?: unknown; hash?: unknown; tokenHash?: unknown };
  return rest;
}
