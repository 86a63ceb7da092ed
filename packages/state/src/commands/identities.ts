// Ed25519 identities, their org/project memberships, access requests, and login sessions.
//
// Tables (one record per id, prefix + id):
//   mi<name>            identity: type, raw 32-byte public key, fingerprint, created, disabled
//   mm<identity>        the identity's memberships, sorted by (org, project) — one record per
//                       identity, so a request's effective role is one lookup and the record's
//                       identity is the node's cache key
//   mq<id>              access request
//   me<hex(tokenHash)>  session: identity, created, expires, the nonce that opened it
//   mu<hex(nonceId)>    used login nonce (until well after it expired); `mu.sweep` holds the
//                       period of the last sweep of expired sessions and nonces
//
// Single use of a login nonce, cluster-wide and linearizable, is decided here: `session.create`
// is refused (`nonce_used`) when its nonce id is already in `mu`, and (`identity_inactive`) when
// the identity is missing or disabled at that point of the log.
import { Reader, Writer, toHex, timingSafeEqual } from '../bytes.js';
import type { CommandResult } from '../records.js';
import type { RecordTable } from '../state-tables.js';
import { MAX_ID_BYTES, bad, checkBytes, checkInt, checkName, cmpStr, nameActorWire, type ApplyContext, type CommandBase, type CommandSpec, type FamilySpecs } from './spec.js';

/** Kinds of identity. */
export type IdentityType = 'agent' | 'human' | 'service';
/** Roles of a membership. */
export type MembershipRole = 'admin' | 'member' | 'readonly';
/** States of an access request. */
export type AccessRequestStatus = 'pending' | 'approved' | 'denied';

const IDENTITY_TYPES: readonly IdentityType[] = ['agent', 'human', 'service'];
const MEMBERSHIP_ROLES: readonly MembershipRole[] = ['admin', 'member', 'readonly'];
const REQUEST_STATUSES: readonly AccessRequestStatus[] = ['pending', 'approved', 'denied'];

/** Used nonces are kept this long after they expire (covers clock skew between successive leaders). */
export const NONCE_RETAIN_MS: number = 10 * 60_000;
/** Decided access requests are kept this long after the decision. */
export const DECIDED_REQUEST_RETAIN_MS: number = 30 * 24 * 3_600_000;
/** Expired sessions and nonces are swept at most once per period of this length (by `cmd.at`). */
export const SESSION_SWEEP_MS: number = 60_000;
/** The `mu` row holding the last sweep period (not a nonce id: those are hex). */
export const SWEEP_ROW: string = '.sweep';

/** A registered identity. Only the public key is stored. */
export type IdentityRecord = {
  name: string;
  identityType: IdentityType;
  publicKey: Uint8Array;
  fingerprint: string;
  createdAt: number;
  createdBy: string;
  disabledAt: number | null;
};

/** One membership of an identity; `project` null = the whole org (role `admin`). */
export type MembershipEntry = { org: string; project: string | null; role: MembershipRole; grantedBy: string; at: number };

/** Every membership of one identity, sorted by (org, project). */
export type MembershipsRecord = { identity: string; entries: MembershipEntry[] };

/** An access request. `identity` is the identity a membership is for (null when a token asked). */
export type AccessRequestRecord = {
  id: string;
  requester: string;
  identity: string | null;
  org: string;
  project: string;
  role: MembershipRole;
  justification: string;
  status: AccessRequestStatus;
  createdAt: number;
  decidedBy: string | null;
  decidedAt: number | null;
};

/** A login session. Only the sha256 of the session token is stored. */
export type SessionRecord = { tokenHash: Uint8Array; identity: string; createdAt: number; expiresAt: number; nonceId: string };

/** A used nonce (or, under {@link SWEEP_ROW}, the last sweep period in `expiresAt`). */
export type UsedNonceRecord = { expiresAt: number };

function reader(b: Uint8Array): Reader {
  const r = new Reader(b, 'SM_CORRUPT_STORAGE');
  if (r.u8() !== 1) r.fail('unknown record version');
  return r;
}

function oneOf<T extends string>(r: Reader, all: readonly T[], what: string): T {
  const v = r.str();
  if (!(all as readonly string[]).includes(v)) r.fail(`unknown ${what} ${JSON.stringify(v)}`);
  return v as T;
}

/** Identities (`mi`). */
export const identities: RecordTable<IdentityRecord> = {
  prefix: 'mi',
  encode: (i) => new Writer().u8(1).str(i.name).str(i.identityType).bytes(i.publicKey).str(i.fingerprint).u53(i.createdAt).str(i.createdBy).optU53(i.disabledAt).finish(),
  decode: (b) => {
    const r = reader(b);
    const rec: IdentityRecord = {
      name: r.str(),
      identityType: oneOf(r, IDENTITY_TYPES, 'identity type'),
      publicKey: r.bytes(),
      fingerprint: r.str(),
      createdAt: r.u53(),
      createdBy: r.str(),
      disabledAt: r.optU53(),
    };
    if (rec.publicKey.length !== 32) r.fail('publicKey must be 32 bytes');
    r.end();
    return rec;
  },
};

/** Memberships per identity (`mm`). */
export const memberships: RecordTable<MembershipsRecord> = {
  prefix: 'mm',
  encode: (m) => {
    const w = new Writer().u8(1).str(m.identity).u32(m.entries.length);
    for (const e of m.entries) w.str(e.org).optStr(e.project).str(e.role).str(e.grantedBy).u53(e.at);
    return w.finish();
  },
  decode: (b) => {
    const r = reader(b);
    const identity = r.str();
    const n = r.u32();
    if (n > r.remaining / 8) r.fail('memberships length exceeds input');
    const entries: MembershipEntry[] = [];
    for (let i = 0; i < n; i++) entries.push({ org: r.str(), project: r.optStr(), role: oneOf(r, MEMBERSHIP_ROLES, 'role'), grantedBy: r.str(), at: r.u53() });
    r.end();
    return { identity, entries };
  },
};

/** Access requests (`mq`). */
export const accessRequests: RecordTable<AccessRequestRecord> = {
  prefix: 'mq',
  encode: (q) =>
    new Writer().u8(1).str(q.id).str(q.requester).optStr(q.identity).str(q.org).str(q.project).str(q.role).str(q.justification).str(q.status).u53(q.createdAt).optStr(q.decidedBy).optU53(q.decidedAt).finish(),
  decode: (b) => {
    const r = reader(b);
    const q: AccessRequestRecord = {
      id: r.str(),
      requester: r.str(),
      identity: r.optStr(),
      org: r.str(),
      project: r.str(),
      role: oneOf(r, MEMBERSHIP_ROLES, 'role'),
      justification: r.str(),
      status: oneOf(r, REQUEST_STATUSES, 'status'),
      createdAt: r.u53(),
      decidedBy: r.optStr(),
      decidedAt: r.optU53(),
    };
    r.end();
    return q;
  },
};

/** Sessions (`me`), keyed by hex of the token hash. */
export const sessions: RecordTable<SessionRecord> = {
  prefix: 'me',
  encode: (s) => new Writer().u8(1).bytes(s.tokenHash).str(s.identity).u53(s.createdAt).u53(s.expiresAt).str(s.nonceId).finish(),
  decode: (b) => {
    const r = reader(b);
    const s: SessionRecord = { tokenHash: r.bytes(), identity: r.str(), createdAt: r.u53(), expiresAt: r.u53(), nonceId: r.str() };
    if (s.tokenHash.length !== 32) r.fail('tokenHash must be 32 bytes');
    r.end();
    return s;
  },
};

/** Used nonces (`mu`), keyed by the nonce id. */
export const usedNonces: RecordTable<UsedNonceRecord> = {
  prefix: 'mu',
  encode: (u) => new Writer().u8(1).u53(u.expiresAt).finish(),
  decode: (b) => {
    const r = reader(b);
    const u = { expiresAt: r.u53() };
    r.end();
    return u;
  },
};

/** Every table of this family (for `RECORD_TABLES`). */
export const IDENTITY_TABLES: readonly RecordTable<unknown>[] = [identities, memberships, accessRequests, sessions, usedNonces];

// ---- commands ----

/** Register an identity's public key. */
export type IdentityPutCommand = CommandBase & {
  type: 'identity.put';
  name: string;
  identityType: IdentityType;
  publicKey: Uint8Array;
  fingerprint: string;
  actor: string;
};
/** Disable an identity (its sessions end) or delete it (with its memberships and sessions). */
export type IdentityNameCommand = CommandBase & { type: 'identity.disable' | 'identity.delete'; name: string; actor: string };
/** Grant (or change) a membership. */
export type MembershipPutCommand = CommandBase & { type: 'membership.put'; identity: string; org: string; project: string | null; role: MembershipRole; actor: string };
/** Remove a membership. */
export type MembershipDeleteCommand = CommandBase & { type: 'membership.delete'; identity: string; org: string; project: string | null; actor: string };
/** File an access request. */
export type AccessRequestCommand = CommandBase & {
  type: 'access.request';
  id: string;
  requester: string;
  identity: string | null;
  org: string;
  project: string;
  role: MembershipRole;
  justification: string;
};
/** Approve (creating the membership in the same apply) or deny a pending request. */
export type AccessDecideCommand = CommandBase & { type: 'access.decide'; id: string; decision: 'approved' | 'denied'; actor: string };
/** Open a session after a verified login; refused when the nonce was used or the identity is inactive. */
export type SessionCreateCommand = CommandBase & {
  type: 'session.create';
  tokenHash: Uint8Array;
  identity: string;
  expiresAt: number;
  nonceId: string;
  nonceExpiresAt: number;
};

/** The commands of this family. */
export type IdentityCommand =
  | IdentityPutCommand
  | IdentityNameCommand
  | MembershipPutCommand
  | MembershipDeleteCommand
  | AccessRequestCommand
  | AccessDecideCommand
  | SessionCreateCommand;

function checkOneOf(v: unknown, all: readonly string[], what: string): void {
  if (typeof v !== 'string' || !all.includes(v)) bad(`${what} must be one of ${all.join(', ')}`);
}

function checkOrgProject(org: unknown, project: unknown, projectRequired: boolean): void {
  checkName(org, 'org', MAX_ID_BYTES);
  if (project === null && !projectRequired) return;
  checkName(project, 'project', MAX_ID_BYTES);
}

const membershipKey = (e: { org: string; project: string | null }): string => `${e.org}\0${e.project ?? ''}`;

function dropSessionsOf(ctx: ApplyContext, identity: string): number {
  const t = ctx.tables.table(sessions);
  let n = 0;
  for (const [k, s] of t) {
    if (s.identity !== identity) continue;
    t.delete(k);
    ctx.changes.mark(sessions.prefix + k);
    n++;
  }
  return n;
}

/** Creates or replaces one membership of an existing identity. */
function putMembership(ctx: ApplyContext, identity: string, e: MembershipEntry): CommandResult {
  if (!ctx.tables.table(identities).has(identity)) return { status: 'not_found' };
  const t = ctx.tables.table(memberships);
  const old = t.get(identity);
  const entries = (old?.entries ?? []).filter((x) => membershipKey(x) !== membershipKey(e));
  entries.push({ ...e });
  entries.sort((a, b) => cmpStr(membershipKey(a), membershipKey(b)));
  // A new record object on every change: the node caches compiled roles by record identity.
  t.set(identity, { identity, entries });
  ctx.changes.mark(memberships.prefix + identity);
  return { status: 'ok', count: entries.length };
}

const identityPut: CommandSpec<IdentityPutCommand> = {
  id: 25,
  version: 1,
  validate(c) {
    checkName(c.name, 'name', MAX_ID_BYTES);
    checkOneOf(c.identityType, IDENTITY_TYPES, 'identityType');
    checkBytes(c.publicKey, 'publicKey', 32);
    checkName(c.fingerprint, 'fingerprint', MAX_ID_BYTES);
  },
  write(w, c) {
    w.str(c.name).str(c.identityType).bytes(c.publicKey).str(c.fingerprint).str(c.actor);
  },
  read(r, base, type) {
    return { type, ...base, name: r.str(), identityType: r.str() as IdentityType, publicKey: r.bytes(), fingerprint: r.str(), actor: r.str() };
  },
  apply(ctx, c) {
    const t = ctx.tables.table(identities);
    if (t.has(c.name)) return { status: 'already_exists' };
    t.set(c.name, { name: c.name, identityType: c.identityType, publicKey: c.publicKey.slice(), fingerprint: c.fingerprint, createdAt: c.at, createdBy: c.actor, disabledAt: null });
    ctx.changes.mark(identities.prefix + c.name);
    return { status: 'ok' };
  },
};

const identityName: CommandSpec<IdentityNameCommand> = {
  // NB: one spec object for two types; the registry gives each its own wire number below.
  id: 26,
  version: 1,
  ...nameActorWire(),
  apply(ctx, c) {
    const t = ctx.tables.table(identities);
    const rec = t.get(c.name);
    if (rec === undefined) return { status: 'not_found' };
    const dropped = dropSessionsOf(ctx, c.name);
    if (c.type === 'identity.disable') {
      if (rec.disabledAt !== null) return { status: 'noop', count: dropped };
      t.set(c.name, { ...rec, disabledAt: c.at });
    } else {
      t.delete(c.name);
      if (ctx.tables.table(memberships).delete(c.name)) ctx.changes.mark(memberships.prefix + c.name);
      // Its pending requests are closed: an approval must never reach a later identity of the same name.
      const qs = ctx.tables.table(accessRequests);
      for (const [k, q] of qs) {
        if (q.identity !== c.name || q.status !== 'pending') continue;
        qs.set(k, { ...q, status: 'denied', decidedBy: c.actor, decidedAt: c.at });
        ctx.changes.mark(accessRequests.prefix + k);
      }
    }
    ctx.changes.mark(identities.prefix + c.name);
    return { status: 'ok', count: dropped };
  },
};

const identityDelete: CommandSpec<IdentityNameCommand> = { ...identityName, id: 27 };

const membershipPut: CommandSpec<MembershipPutCommand> = {
  id: 28,
  version: 1,
  validate(c) {
    checkName(c.identity, 'identity', MAX_ID_BYTES);
    checkOneOf(c.role, MEMBERSHIP_ROLES, 'role');
    // An org admin covers the whole org; member and readonly are per project.
    checkOrgProject(c.org, c.project, c.role !== 'admin');
    if (c.role === 'admin' && c.project !== null) bad('an admin membership is org-wide: project must be null');
  },
  write(w, c) {
    w.str(c.identity).str(c.org).optStr(c.project).str(c.role).str(c.actor);
  },
  read(r, base, type) {
    return { type, ...base, identity: r.str(), org: r.str(), project: r.optStr(), role: r.str() as MembershipRole, actor: r.str() };
  },
  apply(ctx, c) {
    return putMembership(ctx, c.identity, { org: c.org, project: c.project, role: c.role, grantedBy: c.actor, at: c.at });
  },
};

const membershipDelete: CommandSpec<MembershipDeleteCommand> = {
  id: 29,
  version: 1,
  validate(c) {
    checkName(c.identity, 'identity', MAX_ID_BYTES);
    checkOrgProject(c.org, c.project, false);
  },
  write(w, c) {
    w.str(c.identity).str(c.org).optStr(c.project).str(c.actor);
  },
  read(r, base, type) {
    return { type, ...base, identity: r.str(), org: r.str(), project: r.optStr(), actor: r.str() };
  },
  apply(ctx, c) {
    const t = ctx.tables.table(memberships);
    const old = t.get(c.identity);
    const key = membershipKey(c);
    if (old === undefined || !old.entries.some((e) => membershipKey(e) === key)) return { status: 'not_found' };
    const entries = old.entries.filter((e) => membershipKey(e) !== key);
    if (entries.length === 0) t.delete(c.identity);
    else t.set(c.identity, { identity: c.identity, entries });
    ctx.changes.mark(memberships.prefix + c.identity);
    return { status: 'ok', count: entries.length };
  },
};

const accessRequest: CommandSpec<AccessRequestCommand> = {
  id: 30,
  version: 1,
  validate(c) {
    checkName(c.id, 'id', MAX_ID_BYTES);
    checkName(c.requester, 'requester', MAX_ID_BYTES);
    if (c.identity !== null) checkName(c.identity, 'identity', MAX_ID_BYTES);
    checkOrgProject(c.org, c.project, true);
    checkOneOf(c.role, MEMBERSHIP_ROLES, 'role');
    if (typeof c.justification !== 'string' || Buffer.byteLength(c.justification) > 4096) bad('justification must be a string of at most 4096 bytes');
  },
  write(w, c) {
    w.str(c.id).str(c.requester).optStr(c.identity).str(c.org).str(c.project).str(c.role).str(c.justification);
  },
  read(r, base, type) {
    return {
      type,
      ...base,
      id: r.str(),
      requester: r.str(),
      identity: r.optStr(),
      org: r.str(),
      project: r.str(),
      role: r.str() as MembershipRole,
      justification: r.str(),
    };
  },
  apply(ctx, c) {
    const t = ctx.tables.table(accessRequests);
    if (t.has(c.id)) return { status: 'already_exists' };
    t.set(c.id, {
      id: c.id,
      requester: c.requester,
      identity: c.identity,
      org: c.org,
      project: c.project,
      role: c.role,
      justification: c.justification,
      status: 'pending',
      createdAt: c.at,
      decidedBy: null,
      decidedAt: null,
    });
    ctx.changes.mark(accessRequests.prefix + c.id);
    return { status: 'ok' };
  },
};

const accessDecide: CommandSpec<AccessDecideCommand> = {
  id: 31,
  version: 1,
  validate(c) {
    checkName(c.id, 'id', MAX_ID_BYTES);
    checkOneOf(c.decision, ['approved', 'denied'], 'decision');
    checkName(c.actor, 'actor', MAX_ID_BYTES);
  },
  write(w, c) {
    w.str(c.id).str(c.decision).str(c.actor);
  },
  read(r, base, type) {
    return { type, ...base, id: r.str(), decision: r.str() as 'approved' | 'denied', actor: r.str() };
  },
  apply(ctx, c) {
    const t = ctx.tables.table(accessRequests);
    const q = t.get(c.id);
    if (q === undefined) return { status: 'not_found' };
    if (q.status !== 'pending') return { status: 'already_decided' };
    // Checked here too (the server checks first): the requester never decides its own request.
    if (q.requester === c.actor || (q.identity !== null && c.actor === `identity:${q.identity}`)) return { status: 'self_approval' };
    if (c.decision === 'approved' && q.identity !== null) {
      // Atomic with the decision: the membership exists from exactly this entry on, or neither does.
      const r = putMembership(ctx, q.identity, { org: q.org, project: q.role === 'admin' ? null : q.project, role: q.role, grantedBy: c.actor, at: c.at });
      if (r.status !== 'ok') return r;
    }
    t.set(c.id, { ...q, status: c.decision, decidedBy: c.actor, decidedAt: c.at });
    ctx.changes.mark(accessRequests.prefix + c.id);
    return { status: 'ok' };
  },
};

/** Once per {@link SESSION_SWEEP_MS} period of `at`: expired sessions, old nonces, old decided requests. */
function sweep(ctx: ApplyContext, at: number): void {
  const used = ctx.tables.table(usedNonces);
  const period = Math.floor(at / SESSION_SWEEP_MS);
  if ((used.get(SWEEP_ROW)?.expiresAt ?? -1) === period) return;
  used.set(SWEEP_ROW, { expiresAt: period });
  ctx.changes.mark(usedNonces.prefix + SWEEP_ROW);
  for (const [k, u] of used) {
    if (k !== SWEEP_ROW && u.expiresAt + NONCE_RETAIN_MS < at) {
      used.delete(k);
      ctx.changes.mark(usedNonces.prefix + k);
    }
  }
  const ss = ctx.tables.table(sessions);
  for (const [k, s] of ss) {
    if (s.expiresAt <= at) {
      ss.delete(k);
      ctx.changes.mark(sessions.prefix + k);
    }
  }
  const qs = ctx.tables.table(accessRequests);
  for (const [k, q] of qs) {
    if (q.decidedAt !== null && q.decidedAt + DECIDED_REQUEST_RETAIN_MS < at) {
      qs.delete(k);
      ctx.changes.mark(accessRequests.prefix + k);
    }
  }
}

const sessionCreate: CommandSpec<SessionCreateCommand> = {
  id: 32,
  version: 1,
  validate(c) {
    checkBytes(c.tokenHash, 'tokenHash', 32);
    checkName(c.identity, 'identity', MAX_ID_BYTES);
    checkInt(c.expiresAt, 'expiresAt', 1);
    if (typeof c.nonceId !== 'string' || !/^[0-9a-f]{32}$/.test(c.nonceId)) bad('nonceId must be 32 lowercase hex digits');
    checkInt(c.nonceExpiresAt, 'nonceExpiresAt', 1);
  },
  write(w, c) {
    w.bytes(c.tokenHash).str(c.identity).u53(c.expiresAt).str(c.nonceId).u53(c.nonceExpiresAt);
  },
  read(r, base, type) {
    return { type, ...base, tokenHash: r.bytes(), identity: r.str(), expiresAt: r.u53(), nonceId: r.str(), nonceExpiresAt: r.u53() };
  },
  apply(ctx, c) {
    sweep(ctx, c.at);
    const used = ctx.tables.table(usedNonces);
    if (used.has(c.nonceId) || c.at > c.nonceExpiresAt) return { status: 'nonce_used' };
    const id = ctx.tables.table(identities).get(c.identity);
    if (id === undefined || id.disabledAt !== null) return { status: 'identity_inactive' };
    const key = toHex(c.tokenHash);
    const ss = ctx.tables.table(sessions);
    const clash = ss.get(key);
    if (clash !== undefined && timingSafeEqual(clash.tokenHash, c.tokenHash)) return { status: 'hash_conflict' };
    // The nonce is spent from this entry on, on every replica.
    used.set(c.nonceId, { expiresAt: c.nonceExpiresAt });
    ctx.changes.mark(usedNonces.prefix + c.nonceId);
    ss.set(key, { tokenHash: c.tokenHash.slice(), identity: c.identity, createdAt: c.at, expiresAt: c.expiresAt, nonceId: c.nonceId });
    ctx.changes.mark(sessions.prefix + key);
    return { status: 'ok' };
  },
};

/** Specs of the identities family. */
export const identityCommands: FamilySpecs<IdentityCommand> = {
  'identity.put': identityPut,
  'identity.disable': identityName,
  'identity.delete': identityDelete,
  'membership.put': membershipPut,
  'membership.delete': membershipDelete,
  'access.request': accessRequest,
  'access.decide': accessDecide,
  'session.create': sessionCreate,
};

// ---- queries (the node reads these through `stateMachine.table(...)`) ----

/** Minimal read view of the state: a family table's rows. */
export interface FamilyTables {
  table<R>(def: RecordTable<R>): ReadonlyMap<string, Readonly<R>>;
}

/**
 * The session a token hash opens, if any (expiry is the caller's to check against its clock).
 *
 * @param s - the state
 * @param tokenHash - sha256 of the presented token
 * @returns the session record
 */
export function sessionByHash(s: FamilyTables, tokenHash: Uint8Array): Readonly<SessionRecord> | undefined {
  const rec = s.table(sessions).get(toHex(tokenHash));
  return rec !== undefined && timingSafeEqual(rec.tokenHash, tokenHash) ? rec : undefined;
}
