/**
 * AppRole machine logins (CONTRACT.md, "Machine logins (AppRole)"): an approle ties a public role
 * id and any number of secret ids to a Coffer role; a login with both gets a normal token of that
 * role. Secret ids and tokens are 256-bit random, shown once; only their sha256 enters the
 * replicated state.
 *
 * Where each check happens:
 * - bound CIDRs: on the node that takes the login, against the client address (on a forwarded
 *   login, the signed original address); the login command names the approle version checked
 *   (`approleUpdatedAt`), so a login that races a CIDR change is refused `stale` and checked again;
 * - the secret id: looked up by its sha256 (the stored hash compared again in constant time) to
 *   refuse wrong ones before they cost a Raft write, then decided for good inside the apply of
 *   `approle.login`, which checks expiry and uses and spends one use in the same step — so a use
 *   count is never spent twice, whatever the number of nodes taking logins at once.
 */
import { randomBytes } from 'node:crypto';
import { generateToken, hashToken } from '@coffer/crypto';
import { approleByName, approleByRoleId, listApproles, liveSecretIdCount, secretIdByHash, type ApproleRecord } from '@coffer/state';
import type { NodeContext } from '../context.js';
import { formatDuration, parseDuration } from '../duration.js';
import { Allowlist, validateCidrs } from '../net/allowlist.js';
import { commandId, iso } from './common.js';
import { ServiceError } from './errors.js';
import { expectOk } from './results.js';
import type { TokenLifetime } from './tokens.js';

/** Longest approle name: `approle-<name>-<12 hex>` must stay a valid token name (64 bytes). */
export const MAX_APPROLE_NAME_BYTES = 40;
/** Default lifetime of a login's token. */
export const DEFAULT_APPROLE_TOKEN_TTL_SECS = 3600;
/** Most bound CIDRs per approle. */
export const MAX_BOUND_CIDRS = 64;

const APPROLE_NAME_RE = /^[A-Za-z0-9._-]+$/;

/**
 * @param name - candidate approle name
 * @throws {ServiceError} `invalid_name`
 */
export function checkApproleName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_APPROLE_NAME_BYTES || !APPROLE_NAME_RE.test(name) || name === 'self') {
    throw new ServiceError('invalid_name', `an approle name is 1-${MAX_APPROLE_NAME_BYTES} characters of [A-Za-z0-9._-] and not "self"`);
  }
}

/** What `PUT /v1/approles/{name}` asks for (validated). */
export interface ApproleSettings {
  readonly role: string;
  readonly tokenTtl: string | undefined;
  readonly secretIdTtl: string | undefined;
  readonly secretIdUses: number | undefined;
  readonly boundCidrs: readonly unknown[] | undefined;
}

/** A login's answer, before the route shapes it as Vault's `auth` block. */
export interface ApproleLogin {
  readonly token: string;
  readonly tokenName: string;
  readonly approle: string;
  readonly role: string;
  readonly leaseSecs: number;
  readonly expiresAt: number;
}

/**
 * The API view of an approle: never a secret id or its hash.
 *
 * @param a - record
 * @param liveSecretIds - how many of its secret ids are usable now
 * @returns JSON-ready fields
 */
export function approleView(a: Readonly<ApproleRecord>, liveSecretIds: number): Record<string, unknown> {
  return {
    name: a.name,
    role: a.role,
    roleId: a.roleId,
    tokenTtl: formatDuration(a.tokenTtlSecs),
    secretIdTtl: a.secretIdTtlSecs === null ? null : formatDuration(a.secretIdTtlSecs),
    secretIdUses: a.secretIdUses,
    boundCidrs: [...a.boundCidrs],
    liveSecretIds,
    createdAt: iso(a.createdAt),
    updatedAt: iso(a.updatedAt),
  };
}

function durationSecs(field: string, text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    throw new ServiceError('invalid_request', `"${field}" must be a duration such as "1h", "30d" or "90min"`);
  }
  if (ms < 1000) throw new ServiceError('invalid_request', `"${field}" must be at least one second`);
  return Math.floor(ms / 1000);
}

/** AppRole operations of one node. */
export class ApproleService {
  private readonly ctx: NodeContext;

  /** @param ctx - the running node */
  constructor(ctx: NodeContext) {
    this.ctx = ctx;
  }

  /**
   * Creates or replaces an approle (an update keeps its role id and its secret ids).
   *
   * @param name - validated approle name
   * @param s - the settings (fields absent take their defaults: token TTL 1 h, secret ids that do
   *   not expire and have no use limit, no bound CIDRs)
   * @param actor - caller's token name
   * @param life - the lifetime cap of tokens of `s.role`
   * @returns the name and role id
   * @throws {ServiceError} `invalid_request` (unknown role, bad duration, bad CIDR), `permission_denied` (token TTL over the cap)
   */
  async put(name: string, s: ApproleSettings, actor: string, life: TokenLifetime): Promise<{ name: string; roleId: string }> {
    if (this.ctx.state.getRole(s.role) === undefined) throw new ServiceError('invalid_request', `role "${s.role}" does not exist`);
    const tokenTtlSecs = s.tokenTtl === undefined ? Math.min(DEFAULT_APPROLE_TOKEN_TTL_SECS, Math.floor(life.maxMs / 1000)) : durationSecs('tokenTtl', s.tokenTtl);
    if (tokenTtlSecs * 1000 > life.maxMs) {
      throw new ServiceError('permission_denied', `"tokenTtl" ${s.tokenTtl ?? ''} is longer than ${life.source} allows; tokens may not outlive that`);
    }
    const secretIdTtlSecs = s.secretIdTtl === undefined ? null : durationSecs('secretIdTtl', s.secretIdTtl);
    const secretIdUses = s.secretIdUses === undefined || s.secretIdUses === 0 ? null : s.secretIdUses;
    let boundCidrs: string[] = [];
    if (s.boundCidrs !== undefined) {
      if (s.boundCidrs.length > MAX_BOUND_CIDRS) throw new ServiceError('invalid_request', `"boundCidrs" has ${s.boundCidrs.length} entries; at most ${MAX_BOUND_CIDRS} are allowed`);
      const v = validateCidrs(s.boundCidrs);
      if (!v.ok) throw new ServiceError('invalid_request', `"boundCidrs": ${v.errors.join('; ')}`);
      boundCidrs = [...v.cidrs];
    }
    expectOk(
      await this.ctx.propose({
        type: 'approle.put', requestId: commandId(), at: this.ctx.now(), name, role: s.role, roleId: randomBytes(16).toString('hex'),
        tokenTtlSecs, secretIdTtlSecs, secretIdUses, boundCidrs, actor,
      }),
      { role_not_found: `role "${s.role}" does not exist`, hash_conflict: 'role id collision; retry' },
    );
    const a = approleByName(this.ctx.state, name);
    if (a === undefined) throw new ServiceError('no_leader', 'the approle was written but is not visible here yet; retry', { retryAfterSecs: 1 });
    return { name, roleId: a.roleId };
  }

  /**
   * @param name - approle name
   * @returns the approle's view
   * @throws {ServiceError} `not_found`
   */
  get(name: string): Record<string, unknown> {
    const a = approleByName(this.ctx.state, name);
    if (a === undefined) throw new ServiceError('not_found', `no approle named "${name}"`);
    return approleView(a, liveSecretIdCount(this.ctx.state, name, this.ctx.now()));
  }

  /**
   * @returns every approle's view, sorted by name
   */
  list(): Record<string, unknown>[] {
    const now = this.ctx.now();
    return listApproles(this.ctx.state).map((a) => approleView(a, liveSecretIdCount(this.ctx.state, a.name, now)));
  }

  /**
   * Deletes an approle, its secret ids, and the tokens its logins created.
   *
   * @param name - approle name
   * @param actor - caller's token name
   * @returns how many tokens stopped working
   * @throws {ServiceError} `not_found`
   */
  async delete(name: string, actor: string): Promise<number> {
    const r = expectOk(await this.ctx.propose({ type: 'approle.delete', requestId: commandId(), at: this.ctx.now(), name, actor }), { not_found: `no approle named "${name}"` });
    return r.count ?? 0;
  }

  /**
   * Mints a secret id: shown once, stored as sha256. Older secret ids stay valid.
   *
   * @param name - approle name
   * @param actor - caller's token name
   * @returns the raw secret id and its expiry (null: never)
   * @throws {ServiceError} `not_found`
   */
  async secretId(name: string, actor: string): Promise<{ secretId: string; expiresAt: string | null; usesLeft: number | null }> {
    const secretId = generateToken();
    const hash = hashToken(secretId);
    expectOk(await this.ctx.propose({ type: 'approle.secretId', requestId: commandId(), at: this.ctx.now(), name, secretIdHash: hash, actor }), {
      not_found: `no approle named "${name}"`,
      hash_conflict: 'secret id collision; retry',
    });
    const rec = secretIdByHash(this.ctx.state, hash);
    return { secretId, expiresAt: iso(rec?.expiresAt ?? null), usesLeft: rec?.usesLeft ?? null };
  }

  /**
   * Catches up with the cluster's commit index (something unknown here may have been written a
   * moment ago through the leader) while holding one of the address's lockout slots, so parallel
   * guesses cannot all get past the limit during the wait (as the pipeline does for tokens).
   *
   * @throws {ServiceError} `locked_out` when the address has no slot left
   */
  private async catchUp(ip: string | undefined): Promise<void> {
    const release = ip === undefined ? () => undefined : this.ctx.lockout.hold(ip);
    if (release === null) throw new ServiceError('locked_out', 'too many failed authentications from this address; try again later', { retryAfterSecs: 1 });
    try {
      await this.ctx.readBarrier('linearizable');
    } finally {
      release();
    }
  }

  /** The approle a role id names, after catching up once when this node does not know it. */
  private async approleOf(roleId: string, ip: string | undefined): Promise<Readonly<ApproleRecord> | undefined> {
    const a = approleByRoleId(this.ctx.state, roleId);
    if (a !== undefined) return a;
    await this.catchUp(ip);
    return approleByRoleId(this.ctx.state, roleId);
  }

  /** Whether the secret id is, as far as this node knows, a usable one of approle `name`. */
  private secretIdUsable(hash: Uint8Array, name: string): boolean {
    const s = secretIdByHash(this.ctx.state, hash);
    const now = this.ctx.now();
    return s !== undefined && s.approle === name && (s.expiresAt === null || s.expiresAt > now) && (s.usesLeft === null || s.usesLeft > 0);
  }

  /**
   * Logs in: checks the client address against the approle's bound CIDRs, spends one use of the
   * secret id and mints a token of the approle's role.
   *
   * @param roleId - the approle's public role id
   * @param secretId - the raw secret id (never logged, never stored)
   * @param ip - the client address (the signed original one on a forwarded login)
   * @param onFailure - counts a wrong credential toward the lockout
   * @returns the raw token, once
   * @throws {ServiceError} `invalid_token` (401: unknown role id, wrong, expired or used-up secret
   *   id), `permission_denied` (403: outside the bound CIDRs, or the approle's role is gone)
   */
  async login(roleId: string, secretId: string, ip: string | undefined, onFailure: () => void): Promise<ApproleLogin> {
    const refused = (): ServiceError => {
      onFailure();
      return new ServiceError('invalid_token', 'role_id or secret_id is wrong, expired or used up');
    };
    const hash = hashToken(secretId);
    for (let attempt = 0; ; attempt++) {
      const a = await this.approleOf(roleId, ip);
      if (a === undefined) throw refused();
      if (a.boundCidrs.length > 0 && !Allowlist.from(a.boundCidrs).allows(ip)) {
        throw new ServiceError('permission_denied', `this client address is outside the bound CIDRs of approle "${a.name}"`);
      }
      if (!this.secretIdUsable(hash, a.name)) {
        // Maybe minted a moment ago through another node: catch up once before refusing.
        await this.catchUp(ip);
        if (!this.secretIdUsable(hash, a.name)) throw refused();
      }
      const token = generateToken();
      const tokenName = `approle-${a.name}-${randomBytes(6).toString('hex')}`;
      const at = this.ctx.now();
      const r = await this.ctx.propose({ type: 'approle.login', requestId: commandId(), at, roleId, secretIdHash: hash, tokenHash: hashToken(token), tokenName, approleUpdatedAt: a.updatedAt });
      if (r.status === 'stale' && attempt === 0) continue; // the approle changed meanwhile: check its CIDRs again
      if (r.status === 'not_found' || r.status === 'token_inactive' || r.status === 'stale') throw refused();
      if (r.status === 'role_not_found') throw new ServiceError('permission_denied', `the role of approle "${a.name}" no longer exists`);
      expectOk(r, { already_exists: 'token name collision; retry', hash_conflict: 'token collision; retry' });
      const t = this.ctx.state.tokenByName(tokenName);
      const expiresAt = t?.expiresAt ?? at + a.tokenTtlSecs * 1000;
      return { token, tokenName, approle: a.name, role: a.role, leaseSecs: Math.max(0, Math.floor((expiresAt - at) / 1000)), expiresAt };
    }
  }
}
