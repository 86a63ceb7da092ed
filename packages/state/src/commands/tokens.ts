// Tokens (create, revoke, rotate, purge), roles (put, delete) and the first-start bootstrap seed.
import { timingSafeEqual, toHex } from '../bytes.js';
import { KEY, type RoleRecord, type TokenRecord } from '../records.js';
import type { RoleRule } from '../types.js';
import {
  MAX_ID_BYTES,
  bad,
  checkBytes,
  checkName,
  checkOptInt,
  checkStrs,
  readRules,
  readTokenHash,
  writeRules,
  type ApplyContext,
  type CommandBase,
  type CommandSpec,
  type FamilySpecs,
  nameActorWire,
} from './spec.js';

/** Name of the token seeded by `bootstrap`. */
export const BOOTSTRAP_TOKEN_NAME = 'bootstrap-admin';
/** The built-in, immutable role. */
export const ADMIN_ROLE: Readonly<RoleRecord> = Object.freeze({
  name: 'admin',
  rules: [{ paths: ['**'], actions: ['*'] }],
  rateLimit: null,
  updatedAt: 0,
  maxTtlSecs: null,
});

/** Create a token record. `tokenHash` is sha256 of the raw token; the raw token never enters state. */
export type TokenCreateCommand = CommandBase & {
  type: 'token.create';
  name: string;
  role: string;
  tokenHash: Uint8Array;
  expiresAt: number | null;
  actor: string;
};

/** Revoke a token by name. */
export type TokenRevokeCommand = CommandBase & { type: 'token.revoke'; name: string; actor: string };

/** Replace a live token's hash (the old raw token stops working). */
export type TokenRotateCommand = CommandBase & {
  type: 'token.rotate';
  name: string;
  tokenHash: Uint8Array;
  /** New expiry when not null; null keeps the current one. */
  expiresAt: number | null;
  actor: string;
};

/** Purge records of tokens that are revoked or expired as of `at` (others in the list are left alone). */
export type TokenExpireCommand = CommandBase & { type: 'token.expire'; names: string[] };

/** Create or replace a role (not `admin`). */
export type RolePutCommand = CommandBase & {
  type: 'role.put';
  name: string;
  rules: RoleRule[];
  rateLimit: string | null;
  actor: string;
  /** Longest lifetime of a token of this role, in seconds (null: the cluster's cap). Since v2. */
  maxTtlSecs: number | null;
};

/** Delete a role (refused while a live token uses it; `admin` cannot be deleted). */
export type RoleDeleteCommand = CommandBase & { type: 'role.delete'; name: string; actor: string };

/** First-start seed: token `bootstrap-admin` with role `admin`, and the initial allowlist. */
export type BootstrapCommand = CommandBase & { type: 'bootstrap'; tokenHash: Uint8Array; cidrs: string[] };

/** The commands of this family. */
export type TokenCommand = TokenCreateCommand | TokenRevokeCommand | TokenRotateCommand | TokenExpireCommand | RolePutCommand | RoleDeleteCommand | BootstrapCommand;

/**
 * Status of a token at time `now`.
 *
 * @param t - token record
 * @param now - a clock value
 * @returns 'active', 'revoked' or 'expired'
 */
export function tokenStatusAt(t: Pick<TokenRecord, 'revokedAt' | 'expiresAt'>, now: number): 'active' | 'revoked' | 'expired' {
  if (t.revokedAt !== null && t.revokedAt <= now) return 'revoked';
  if (t.expiresAt !== null && t.expiresAt <= now) return 'expired';
  return 'active';
}

function setToken(ctx: ApplyContext, t: TokenRecord): void {
  ctx.tables.tokens.set(t.name, t);
  ctx.tables.tokensByHash.set(toHex(t.tokenHash), t.name);
  ctx.changes.mark(KEY.token + t.name);
}

function dropToken(ctx: ApplyContext, t: TokenRecord): void {
  ctx.tables.tokens.delete(t.name);
  ctx.tables.tokensByHash.delete(toHex(t.tokenHash));
  ctx.changes.mark(KEY.token + t.name);
}

const create: CommandSpec<TokenCreateCommand> = {
  id: 8,
  version: 1,
  validate(c) {
    checkName(c.name, 'name', MAX_ID_BYTES);
    checkName(c.role, 'role', MAX_ID_BYTES);
    checkBytes(c.tokenHash, 'tokenHash', 32);
    checkOptInt(c.expiresAt, 'expiresAt');
  },
  write(w, c) {
    w.str(c.name).str(c.role).bytes(c.tokenHash).optU53(c.expiresAt).str(c.actor);
  },
  read(r, base, type) {
    const name = r.str();
    const role = r.str();
    const tokenHash = readTokenHash(r);
    return { type, ...base, name, role, tokenHash, expiresAt: r.optU53(), actor: r.str() };
  },
  apply(ctx, c) {
    const { tokens, tokensByHash, roles } = ctx.tables;
    if (c.role !== ADMIN_ROLE.name && !roles.has(c.role)) return { status: 'role_not_found' };
    const old = tokens.get(c.name);
    // Names are unique among live tokens; a revoked or expired record gives its name up.
    if (old && tokenStatusAt(old, c.at) === 'active') return { status: 'already_exists' };
    const other = tokensByHash.get(toHex(c.tokenHash));
    if (other !== undefined && other !== c.name) return { status: 'hash_conflict' };
    if (old) dropToken(ctx, old);
    setToken(ctx, {
      name: c.name,
      role: c.role,
      tokenHash: c.tokenHash.slice(),
      createdAt: c.at,
      createdBy: c.actor,
      expiresAt: c.expiresAt,
      revokedAt: null,
      rotatedAt: null,
    });
    return { status: 'ok', createdAt: c.at };
  },
};

const revoke: CommandSpec<TokenRevokeCommand> = {
  id: 9,
  version: 1,
  ...nameActorWire(),
  apply(ctx, c) {
    const t = ctx.tables.tokens.get(c.name);
    if (!t) return { status: 'not_found' };
    if (t.revokedAt !== null) return { status: 'noop' };
    setToken(ctx, { ...t, revokedAt: c.at });
    return { status: 'ok' };
  },
};

const rotate: CommandSpec<TokenRotateCommand> = {
  id: 10,
  version: 1,
  validate(c) {
    checkName(c.name, 'name', MAX_ID_BYTES);
    checkBytes(c.tokenHash, 'tokenHash', 32);
    checkOptInt(c.expiresAt, 'expiresAt');
  },
  write(w, c) {
    w.str(c.name).bytes(c.tokenHash).optU53(c.expiresAt).str(c.actor);
  },
  read(r, base, type) {
    const name = r.str();
    const tokenHash = readTokenHash(r);
    return { type, ...base, name, tokenHash, expiresAt: r.optU53(), actor: r.str() };
  },
  apply(ctx, c) {
    const t = ctx.tables.tokens.get(c.name);
    if (!t) return { status: 'not_found' };
    if (tokenStatusAt(t, c.at) !== 'active') return { status: 'token_inactive' };
    const other = ctx.tables.tokensByHash.get(toHex(c.tokenHash));
    if (other !== undefined) return { status: 'hash_conflict' };
    ctx.tables.tokensByHash.delete(toHex(t.tokenHash));
    setToken(ctx, { ...t, tokenHash: c.tokenHash.slice(), rotatedAt: c.at, expiresAt: c.expiresAt ?? t.expiresAt });
    return { status: 'ok' };
  },
};

const expire: CommandSpec<TokenExpireCommand> = {
  id: 11,
  version: 1,
  validate(c) {
    checkStrs(c.names, 'names');
  },
  write(w, c) {
    w.strs(c.names);
  },
  read(r, base, type) {
    return { type, ...base, names: r.strs() };
  },
  apply(ctx, c) {
    let count = 0;
    for (const name of c.names) {
      const t = ctx.tables.tokens.get(name);
      if (t && tokenStatusAt(t, c.at) !== 'active') {
        dropToken(ctx, t);
        count++;
      }
    }
    return { status: count ? 'ok' : 'noop', count };
  },
};

const rolePut: CommandSpec<RolePutCommand> = {
  id: 12,
  // v2 appended maxTtlSecs.
  version: 2,
  validate(c) {
    checkName(c.name, 'name', MAX_ID_BYTES);
    checkOptInt(c.maxTtlSecs, 'maxTtlSecs', 1);
    if (!Array.isArray(c.rules)) bad('rules must be an array');
    for (const rule of c.rules) {
      checkStrs(rule.paths, 'rules[].paths');
      checkStrs(rule.actions, 'rules[].actions');
    }
  },
  write(w, c) {
    w.str(c.name);
    writeRules(w, c.rules);
    w.optStr(c.rateLimit).str(c.actor);
    w.optU53(c.maxTtlSecs); // v2
  },
  read(r, base, type, version) {
    const name = r.str();
    const rules = readRules(r);
    const rateLimit = r.optStr();
    const actor = r.str();
    // v1 commands get v2's default: no per-role cap.
    const maxTtlSecs = version >= 2 ? r.optU53() : null;
    return { type, ...base, name, rules, rateLimit, actor, maxTtlSecs };
  },
  apply(ctx, c) {
    if (c.name === ADMIN_ROLE.name) return { status: 'immutable' };
    const rules = c.rules.map((r) => ({ paths: [...r.paths], actions: [...r.actions] }));
    ctx.tables.roles.set(c.name, { name: c.name, rules, rateLimit: c.rateLimit, updatedAt: c.at, maxTtlSecs: c.maxTtlSecs });
    ctx.changes.mark(KEY.role + c.name);
    return { status: 'ok' };
  },
};

const roleDelete: CommandSpec<RoleDeleteCommand> = {
  id: 13,
  version: 1,
  ...nameActorWire(),
  apply(ctx, c) {
    if (c.name === ADMIN_ROLE.name) return { status: 'immutable' };
    if (!ctx.tables.roles.has(c.name)) return { status: 'not_found' };
    let users = 0;
    for (const t of ctx.tables.tokens.values()) if (t.role === c.name && tokenStatusAt(t, c.at) === 'active') users++;
    if (users > 0) return { status: 'role_in_use', count: users };
    ctx.tables.roles.delete(c.name);
    ctx.changes.mark(KEY.role + c.name);
    return { status: 'ok' };
  },
};

const bootstrap: CommandSpec<BootstrapCommand> = {
  id: 15,
  version: 1,
  validate(c) {
    checkBytes(c.tokenHash, 'tokenHash', 32);
    checkStrs(c.cidrs, 'cidrs');
  },
  write(w, c) {
    w.bytes(c.tokenHash).strs(c.cidrs);
  },
  read(r, base, type) {
    const tokenHash = readTokenHash(r);
    return { type, ...base, tokenHash, cidrs: r.strs() };
  },
  apply(ctx, c) {
    const t = ctx.tables;
    if (t.bootstrap) {
      // Same seed replayed (every node starts with the same COFFER_BOOTSTRAP_TOKEN): a no-op.
      return timingSafeEqual(t.bootstrap.tokenHash, c.tokenHash) ? { status: 'noop' } : { status: 'already_bootstrapped' };
    }
    const old = t.tokens.get(BOOTSTRAP_TOKEN_NAME);
    if (old) dropToken(ctx, old);
    const clash = t.tokensByHash.get(toHex(c.tokenHash));
    if (clash !== undefined) return { status: 'hash_conflict' };
    setToken(ctx, {
      name: BOOTSTRAP_TOKEN_NAME,
      role: ADMIN_ROLE.name,
      tokenHash: c.tokenHash.slice(),
      createdAt: c.at,
      createdBy: 'bootstrap',
      expiresAt: null,
      revokedAt: null,
      rotatedAt: null,
    });
    t.bootstrap = { tokenHash: c.tokenHash.slice(), at: c.at };
    ctx.changes.mark(KEY.bootstrap);
    t.allowlist = { cidrs: [...c.cidrs], updatedAt: c.at };
    ctx.changes.mark(KEY.allowlist);
    return { status: 'ok' };
  },
};

/** Specs of the token and role family. */
export const tokenCommands: FamilySpecs<TokenCommand> = {
  'token.create': create,
  'token.revoke': revoke,
  'token.rotate': rotate,
  'token.expire': expire,
  'role.put': rolePut,
  'role.delete': roleDelete,
  bootstrap,
};
