// AppRole machine logins: approles (put, delete), their secret ids, and the login that spends one.
//
// An approle ties a public `roleId` and any number of secret ids (stored as sha256 only) to a
// Coffer role. A login is one command, `approle.login`, whose apply does the whole check and the
// spending at once — find the secret id, check it belongs to the approle of `roleId`, is not
// expired at `at` and has uses left, decrement (delete at 0), create the token — so a use count
// can never be spent twice, however many nodes accept logins concurrently: the log orders them and
// every replica runs the same check on the same state.
//
// Everything random (role id, raw secret id, raw token, token name) is produced by the proposer
// before proposing; apply reads no clock and draws no randomness (STYLE.md §5).
import { Reader, Writer, timingSafeEqual, toHex } from '../bytes.js';
import { KEY, type CommandResult, type TokenRecord } from '../records.js';
import type { RecordTable } from '../state-tables.js';
import {
  MAX_ID_BYTES,
  bad,
  checkBytes,
  checkInt,
  checkName,
  checkOptInt,
  checkStrs,
  readTokenHash,
  type ApplyContext,
  type CommandBase,
  type CommandSpec,
  type FamilySpecs,
  nameActorWire,
} from './spec.js';
import { ADMIN_ROLE, tokenStatusAt } from './tokens.js';

/** An approle. `roleId` is public (it names the approle at login); it never changes. */
export type ApproleRecord = {
  name: string;
  /** The Coffer role a login's token gets. */
  role: string;
  roleId: string;
  tokenTtlSecs: number;
  /** Lifetime of each new secret id; null: secret ids do not expire. */
  secretIdTtlSecs: number | null;
  /** Logins each new secret id allows; null: unlimited. */
  secretIdUses: number | null;
  /** CIDRs a login must come from (empty: anywhere). Checked by the node that takes the login. */
  boundCidrs: string[];
  createdAt: number;
  updatedAt: number;
};

/** A secret id, keyed by the hex of its sha256. The raw secret id never enters state. */
export type SecretIdRecord = {
  /** sha256 of the raw secret id (compared in constant time). */
  hash: Uint8Array;
  approle: string;
  createdAt: number;
  expiresAt: number | null;
  /** Logins left; null: unlimited. A record is deleted when this reaches 0. */
  usesLeft: number | null;
};

const REC_V1 = 1;

function openRecord(b: Uint8Array): Reader {
  const r = new Reader(b, 'SM_CORRUPT_STORAGE');
  if (r.u8() !== REC_V1) r.fail('unknown record version');
  return r;
}

/** Approles by name (`ma<name>`). */
export const approles: RecordTable<ApproleRecord> = {
  prefix: 'ma',
  encode: (a) =>
    new Writer(128)
      .u8(REC_V1)
      .str(a.name)
      .str(a.role)
      .str(a.roleId)
      .u53(a.tokenTtlSecs)
      .optU53(a.secretIdTtlSecs)
      .optU53(a.secretIdUses)
      .strs(a.boundCidrs)
      .u53(a.createdAt)
      .u53(a.updatedAt)
      .finish(),
  decode: (b) => {
    const r = openRecord(b);
    const a: ApproleRecord = {
      name: r.str(),
      role: r.str(),
      roleId: r.str(),
      tokenTtlSecs: r.u53(),
      secretIdTtlSecs: r.optU53(),
      secretIdUses: r.optU53(),
      boundCidrs: r.strs(),
      createdAt: r.u53(),
      updatedAt: r.u53(),
    };
    r.end();
    return a;
  },
};

/** Secret ids by hex sha256 (`mx<hex>`). */
export const approleSecretIds: RecordTable<SecretIdRecord> = {
  prefix: 'mx',
  encode: (s) => new Writer(96).u8(REC_V1).bytes(s.hash).str(s.approle).u53(s.createdAt).optU53(s.expiresAt).optU53(s.usesLeft).finish(),
  decode: (b) => {
    const r = openRecord(b);
    const hash = r.bytes();
    if (hash.length !== 32) r.fail('secret id hash must be 32 bytes');
    const s: SecretIdRecord = { hash, approle: r.str(), createdAt: r.u53(), expiresAt: r.optU53(), usesLeft: r.optU53() };
    r.end();
    return s;
  },
};

/** What the tokens of an approle record as their creator: `approle:<name>`. */
export function approleTokenCreator(name: string): string {
  return `approle:${name}`;
}

/** Create an approle, or update one (keeping its role id and its secret ids). */
export type ApprolePutCommand = CommandBase & {
  type: 'approle.put';
  name: string;
  role: string;
  /** The role id a new approle gets (proposer's random); ignored on update. */
  roleId: string;
  tokenTtlSecs: number;
  secretIdTtlSecs: number | null;
  secretIdUses: number | null;
  boundCidrs: string[];
  actor: string;
};

/** Delete an approle, its secret ids, and the tokens its logins created. */
export type ApproleDeleteCommand = CommandBase & { type: 'approle.delete'; name: string; actor: string };

/**
 * Store a new secret id (its sha256) for an approle; its expiry and use count come from the
 * approle as of `at`. Older secret ids stay valid (rotation without downtime).
 */
export type ApproleSecretIdCommand = CommandBase & { type: 'approle.secretId'; name: string; secretIdHash: Uint8Array; actor: string };

/** Spend one use of a secret id and create a token for the approle's role. */
export type ApproleLoginCommand = CommandBase & {
  type: 'approle.login';
  roleId: string;
  secretIdHash: Uint8Array;
  /** sha256 of the raw token the proposer generated. */
  tokenHash: Uint8Array;
  tokenName: string;
  /**
   * The approle's `updatedAt` the proposer checked the client address against (bound CIDRs): a
   * login that raced an update of the approle is refused `stale` rather than let through on the
   * old CIDRs.
   */
  approleUpdatedAt: number;
};

/** The commands of this family. */
export type ApproleCommand = ApprolePutCommand | ApproleDeleteCommand | ApproleSecretIdCommand | ApproleLoginCommand;

function roleExists(ctx: ApplyContext, role: string): boolean {
  return role === ADMIN_ROLE.name || ctx.tables.roles.has(role);
}

function dropSecretIds(ctx: ApplyContext, pick: (s: SecretIdRecord) => boolean): number {
  const ids = ctx.tables.table(approleSecretIds);
  let n = 0;
  // Set semantics: which records go does not depend on the map's iteration order.
  for (const [key, s] of ids) {
    if (!pick(s)) continue;
    ids.delete(key);
    ctx.changes.mark(approleSecretIds.prefix + key);
    n++;
  }
  return n;
}

function dropTokens(ctx: ApplyContext, pick: (t: TokenRecord) => boolean): number {
  const { tokens, tokensByHash } = ctx.tables;
  let n = 0;
  // Deleting the entry being visited is safe during Map iteration (no copy of the table per login).
  for (const t of tokens.values()) {
    if (!pick(t)) continue;
    tokens.delete(t.name);
    tokensByHash.delete(toHex(t.tokenHash));
    ctx.changes.mark(KEY.token + t.name);
    n++;
  }
  return n;
}

const put: CommandSpec<ApprolePutCommand> = {
  id: 40,
  version: 1,
  validate(c) {
    checkName(c.name, 'name', MAX_ID_BYTES);
    checkName(c.role, 'role', MAX_ID_BYTES);
    checkName(c.roleId, 'roleId', MAX_ID_BYTES);
    checkInt(c.tokenTtlSecs, 'tokenTtlSecs', 1);
    checkOptInt(c.secretIdTtlSecs, 'secretIdTtlSecs', 1);
    checkOptInt(c.secretIdUses, 'secretIdUses', 1);
    checkStrs(c.boundCidrs, 'boundCidrs');
  },
  write(w, c) {
    w.str(c.name).str(c.role).str(c.roleId).u53(c.tokenTtlSecs).optU53(c.secretIdTtlSecs).optU53(c.secretIdUses).strs(c.boundCidrs).str(c.actor);
  },
  read(r, base, type) {
    const name = r.str();
    const role = r.str();
    const roleId = r.str();
    const tokenTtlSecs = r.u53();
    const secretIdTtlSecs = r.optU53();
    const secretIdUses = r.optU53();
    return { type, ...base, name, role, roleId, tokenTtlSecs, secretIdTtlSecs, secretIdUses, boundCidrs: r.strs(), actor: r.str() };
  },
  apply(ctx, c) {
    if (!roleExists(ctx, c.role)) return { status: 'role_not_found' };
    const table = ctx.tables.table(approles);
    const old = table.get(c.name);
    if (old === undefined) {
      for (const a of table.values()) if (a.roleId === c.roleId) return { status: 'hash_conflict' };
    }
    table.set(c.name, {
      name: c.name,
      role: c.role,
      roleId: old?.roleId ?? c.roleId,
      tokenTtlSecs: c.tokenTtlSecs,
      secretIdTtlSecs: c.secretIdTtlSecs,
      secretIdUses: c.secretIdUses,
      boundCidrs: [...c.boundCidrs],
      createdAt: old?.createdAt ?? c.at,
      updatedAt: c.at,
    });
    ctx.changes.mark(approles.prefix + c.name);
    return { status: 'ok', createdAt: old?.createdAt ?? c.at };
  },
};

const del: CommandSpec<ApproleDeleteCommand> = {
  id: 41,
  version: 1,
  ...nameActorWire(),
  apply(ctx, c) {
    const table = ctx.tables.table(approles);
    if (!table.has(c.name)) return { status: 'not_found' };
    table.delete(c.name);
    ctx.changes.mark(approles.prefix + c.name);
    dropSecretIds(ctx, (s) => s.approle === c.name);
    // Its sessions end with it: a deleted approle leaves no token that still works.
    const creator = approleTokenCreator(c.name);
    const count = dropTokens(ctx, (t) => t.createdBy === creator);
    return { status: 'ok', count };
  },
};

const secretId: CommandSpec<ApproleSecretIdCommand> = {
  id: 42,
  version: 1,
  validate(c) {
    checkName(c.name, 'name', MAX_ID_BYTES);
    checkBytes(c.secretIdHash, 'secretIdHash', 32);
  },
  write(w, c) {
    w.str(c.name).bytes(c.secretIdHash).str(c.actor);
  },
  read(r, base, type) {
    const name = r.str();
    return { type, ...base, name, secretIdHash: readTokenHash(r), actor: r.str() };
  },
  apply(ctx, c) {
    const a = ctx.tables.table(approles).get(c.name);
    if (a === undefined) return { status: 'not_found' };
    const ids = ctx.tables.table(approleSecretIds);
    const key = toHex(c.secretIdHash);
    if (ids.has(key)) return { status: 'hash_conflict' };
    // Expired secret ids of this approle go now, so minting keeps the table bounded.
    dropSecretIds(ctx, (s) => s.approle === c.name && s.expiresAt !== null && s.expiresAt <= c.at);
    ids.set(key, {
      hash: c.secretIdHash.slice(),
      approle: c.name,
      createdAt: c.at,
      expiresAt: a.secretIdTtlSecs === null ? null : c.at + a.secretIdTtlSecs * 1000,
      usesLeft: a.secretIdUses,
    });
    ctx.changes.mark(approleSecretIds.prefix + key);
    return { status: 'ok', createdAt: c.at };
  },
};

const login: CommandSpec<ApproleLoginCommand> = {
  id: 43,
  version: 1,
  validate(c) {
    checkName(c.roleId, 'roleId', MAX_ID_BYTES);
    checkBytes(c.secretIdHash, 'secretIdHash', 32);
    checkBytes(c.tokenHash, 'tokenHash', 32);
    checkName(c.tokenName, 'tokenName', MAX_ID_BYTES);
    checkInt(c.approleUpdatedAt, 'approleUpdatedAt');
  },
  write(w, c) {
    w.str(c.roleId).bytes(c.secretIdHash).bytes(c.tokenHash).str(c.tokenName).u53(c.approleUpdatedAt);
  },
  read(r, base, type) {
    const roleId = r.str();
    const secretIdHash = readTokenHash(r);
    const tokenHash = readTokenHash(r);
    return { type, ...base, roleId, secretIdHash, tokenHash, tokenName: r.str(), approleUpdatedAt: r.u53() };
  },
  apply(ctx, c): CommandResult {
    let a: ApproleRecord | undefined;
    for (const x of ctx.tables.table(approles).values()) if (x.roleId === c.roleId) a = x;
    if (a === undefined) return { status: 'not_found' };
    if (a.updatedAt !== c.approleUpdatedAt) return { status: 'stale' };
    const ids = ctx.tables.table(approleSecretIds);
    const key = toHex(c.secretIdHash);
    const s = ids.get(key);
    if (s === undefined || !timingSafeEqual(s.hash, c.secretIdHash) || s.approle !== a.name) return { status: 'not_found' };
    if ((s.expiresAt !== null && s.expiresAt <= c.at) || (s.usesLeft !== null && s.usesLeft <= 0)) {
      ids.delete(key);
      ctx.changes.mark(approleSecretIds.prefix + key);
      return { status: 'token_inactive' };
    }
    if (!roleExists(ctx, a.role)) return { status: 'role_not_found' };
    const { tokens, tokensByHash } = ctx.tables;
    const clash = tokens.get(c.tokenName);
    if (clash !== undefined && tokenStatusAt(clash, c.at) === 'active') return { status: 'already_exists' };
    if (tokensByHash.has(toHex(c.tokenHash))) return { status: 'hash_conflict' };

    // Spend the use: the check above and this decrement are one apply, so no use is spent twice.
    if (s.usesLeft === null) {
      // unlimited: nothing to write
    } else if (s.usesLeft <= 1) {
      ids.delete(key);
      ctx.changes.mark(approleSecretIds.prefix + key);
    } else {
      ids.set(key, { ...s, usesLeft: s.usesLeft - 1 });
      ctx.changes.mark(approleSecretIds.prefix + key);
    }
    // Tokens of this approle that expired or were revoked go now (a set, whatever the map order):
    // logins do not grow the tokens table without bound.
    const creator = approleTokenCreator(a.name);
    const pruned = dropTokens(ctx, (t) => t.createdBy === creator && tokenStatusAt(t, c.at) !== 'active');
    // A token of that name that is no longer active gives its name up (as token.create does).
    if (tokens.has(c.tokenName)) dropTokens(ctx, (x) => x.name === c.tokenName);
    const t: TokenRecord = {
      name: c.tokenName,
      role: a.role,
      tokenHash: c.tokenHash.slice(),
      createdAt: c.at,
      createdBy: creator,
      // The role's own cap, if it was lowered after the approle was written, still holds.
      expiresAt: c.at + Math.min(a.tokenTtlSecs, ctx.tables.roles.get(a.role)?.maxTtlSecs ?? a.tokenTtlSecs) * 1000,
      revokedAt: null,
      rotatedAt: null,
    };
    tokens.set(t.name, t);
    tokensByHash.set(toHex(t.tokenHash), t.name);
    ctx.changes.mark(KEY.token + t.name);
    return { status: 'ok', createdAt: c.at, count: pruned };
  },
};

/** Specs of the approle family (wire numbers 40–49 are this family's). */
export const approleCommands: FamilySpecs<ApproleCommand> = {
  'approle.put': put,
  'approle.delete': del,
  'approle.secretId': secretId,
  'approle.login': login,
};

/** What the family's queries read: `StateMachine.table`. */
export interface ApproleTables {
  table<R>(def: RecordTable<R>): ReadonlyMap<string, Readonly<R>>;
}

/**
 * @param sm - the state machine
 * @param name - approle name
 * @returns the approle, or undefined
 */
export function approleByName(sm: ApproleTables, name: string): Readonly<ApproleRecord> | undefined {
  return sm.table(approles).get(name);
}

/**
 * @param sm - the state machine
 * @param roleId - a role id as presented at login (public)
 * @returns the approle with that role id, or undefined
 */
export function approleByRoleId(sm: ApproleTables, roleId: string): Readonly<ApproleRecord> | undefined {
  for (const a of sm.table(approles).values()) if (a.roleId === roleId) return a;
  return undefined;
}

/**
 * Secret id lookup by the sha256 of a presented secret id; the stored hash is compared again in
 * constant time before the record is returned.
 *
 * @param sm - the state machine
 * @param hash - sha256 of the raw secret id (32 bytes)
 * @returns the record, whatever its expiry, or undefined
 */
export function secretIdByHash(sm: ApproleTables, hash: Uint8Array): Readonly<SecretIdRecord> | undefined {
  if (hash.length !== 32) bad('secret id hash must be 32 bytes');
  const s = sm.table(approleSecretIds).get(toHex(hash));
  return s !== undefined && timingSafeEqual(s.hash, hash) ? s : undefined;
}

/**
 * @param sm - the state machine
 * @returns every approle, sorted by name
 */
export function listApproles(sm: ApproleTables): Readonly<ApproleRecord>[] {
  return [...sm.table(approles).values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * @param sm - the state machine
 * @param name - approle name
 * @param now - a clock value
 * @returns how many of its secret ids are usable at `now`
 */
export function liveSecretIdCount(sm: ApproleTables, name: string, now: number): number {
  let n = 0;
  for (const s of sm.table(approleSecretIds).values()) {
    if (s.approle === name && (s.expiresAt === null || s.expiresAt > now) && (s.usesLeft === null || s.usesLeft > 0)) n++;
  }
  return n;
}
