/**
 * Tokens: 256-bit random bearer tokens; only their sha256 enters the replicated state, the raw
 * token exists only in the create/rotate answer.
 */
import { generateToken, hashToken } from '@coffer/crypto';
import { tokenStatusAt, type TokenRecord } from '@coffer/state';
import type { NodeContext } from '../context.js';
import { parseDuration } from '../duration.js';
import { ServiceError } from './errors.js';
import { commandId, iso } from './common.js';
import { expectOk } from './results.js';

/** A minted token: the only place the raw token appears. */
export interface MintedToken {
  readonly name: string;
  readonly role: string;
  readonly token: string;
  readonly expiresAt: string | null;
}

function ttlMs(ttl: string | undefined): number | null {
  return ttl === undefined ? null : parseDuration(ttl);
}

/** How long tokens of one role may live: the lesser of the role's `maxTtl` and the cluster's cap. */
export interface TokenLifetime {
  /** The cap in ms. */
  readonly maxMs: number;
  /** Where the cap comes from, for messages (e.g. `role "ci" (30d)`). */
  readonly source: string;
}

function tooLong(ttl: string, life: TokenLifetime): ServiceError {
  return new ServiceError('permission_denied', `"ttl" ${ttl} is longer than ${life.source} allows; tokens may not outlive that`);
}

/**
 * The API view of a token record: never the hash.
 *
 * @param t - record
 * @param now - clock, for the status
 * @returns JSON-ready fields
 */
export function tokenView(t: Readonly<TokenRecord>, now: number): Record<string, unknown> {
  return {
    name: t.name,
    role: t.role,
    status: tokenStatusAt(t, now),
    createdAt: iso(t.createdAt),
    createdBy: t.createdBy,
    expiresAt: iso(t.expiresAt),
    revokedAt: iso(t.revokedAt),
    rotatedAt: iso(t.rotatedAt),
  };
}

/** Token operations of one node. */
export class TokenService {
  private readonly ctx: NodeContext;

  /** @param ctx - the running node */
  constructor(ctx: NodeContext) {
    this.ctx = ctx;
  }

  /**
   * Creates a token.
   *
   * @param name - validated token name
   * @param role - validated role name
   * @param ttl - lifetime such as `90d` (none: the longest `life` allows; never unbounded)
   * @param actor - creator's token name
   * @param life - the lifetime cap of `role`
   * @returns the raw token, once
   * @throws {ServiceError} `invalid_request` (bad ttl, unknown role), `permission_denied` (ttl over
   *   the cap), `already_exists` (409)
   */
  async create(name: string, role: string, ttl: string | undefined, actor: string, life: TokenLifetime): Promise<MintedToken> {
    const ms = ttlMs(ttl);
    if (this.ctx.state.getRole(role) === undefined) throw new ServiceError('invalid_request', `role "${role}" does not exist`);
    if (ms !== null && ms > life.maxMs) throw tooLong(ttl as string, life);
    const at = this.ctx.now();
    const token = generateToken();
    const expiresAt = at + (ms ?? life.maxMs);
    expectOk(await this.ctx.propose({ type: 'token.create', requestId: commandId(), at, name, role, tokenHash: hashToken(token), expiresAt, actor }), {
      already_exists: `a live token named "${name}" already exists`,
      role_not_found: `role "${role}" does not exist`,
    });
    return { name, role, token, expiresAt: iso(expiresAt) };
  }

  /**
   * Replaces a live token's secret: the old raw token stops working at once.
   *
   * @param name - token name
   * @param ttl - new lifetime from now (none: keep the current expiry)
   * @param actor - caller's token name
   * @param life - the lifetime cap of the token's role
   * @param self - whether the caller is rotating its own token: then the expiry may not move later
   *   than it is (a token cannot extend itself; only a holder of `token.create` for its role can)
   * @returns the new raw token
   * @throws {ServiceError} `not_found`, `invalid_request` (revoked/expired token, bad ttl),
   *   `permission_denied` (over the cap, or a self-extension)
   */
  async rotate(name: string, ttl: string | undefined, actor: string, life: TokenLifetime, self: boolean): Promise<MintedToken> {
    const ms = ttlMs(ttl);
    if (ms !== null && ms > life.maxMs) throw tooLong(ttl as string, life);
    const at = this.ctx.now();
    const expiresAt = ms === null ? null : at + ms;
    const current = this.ctx.state.tokenByName(name)?.expiresAt ?? null;
    if (self && expiresAt !== null && current !== null && expiresAt > current) {
      throw new ServiceError('permission_denied', `a token cannot extend its own lifetime (it expires at ${iso(current) ?? ''}); ask a holder of token.create to rotate it`);
    }
    const token = generateToken();
    expectOk(
      await this.ctx.propose({ type: 'token.rotate', requestId: commandId(), at, name, tokenHash: hashToken(token), expiresAt, actor }),
      { not_found: `no token named "${name}"`, token_inactive: `token "${name}" is revoked or expired and cannot be rotated` },
    );
    const rec = this.ctx.state.tokenByName(name);
    return { name, role: rec?.role ?? '', token, expiresAt: iso(rec?.expiresAt ?? null) };
  }

  /**
   * Revokes a token (idempotent).
   *
   * @param name - token name
   * @param actor - caller's token name
   * @returns the revocation time
   * @throws {ServiceError} `not_found`
   */
  async revoke(name: string, actor: string): Promise<string | null> {
    expectOk(await this.ctx.propose({ type: 'token.revoke', requestId: commandId(), at: this.ctx.now(), name, actor }), { not_found: `no token named "${name}"` });
    return iso(this.ctx.state.tokenByName(name)?.revokedAt ?? null);
  }

  /**
   * @returns every token's view, sorted by name
   */
  list(): Record<string, unknown>[] {
    const now = this.ctx.now();
    return this.ctx.state.listTokens().map((t) => tokenView(t, now));
  }
}
