/**
 * Ed25519 identities, org/project memberships, access requests and login sessions.
 *
 * Everything replicated goes through one command of the state's identities family; this service
 * validates input (clear 400s naming the field), builds the command and maps the result. The
 * login (challenge → signature → session) is verified here, on the leader (a follower forwards
 * it like any write); single use of the nonce is decided by `session.create` at apply.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { generateToken, hashToken } from '@coffer/crypto';
import {
  accessRequests,
  identities,
  memberships,
  type AccessRequestRecord,
  type IdentityRecord,
  type IdentityType,
  type MembershipRole,
} from '@coffer/state';
import type { ChallengeKeys, VerifiedNonce } from '../auth/challenges.js';
import type { NodeContext } from '../context.js';
import { ServiceError } from './errors.js';
import { commandId, iso } from './common.js';
import { expectOk } from './results.js';

/** Identity kinds, membership roles (CONTRACT.md). */
export const IDENTITY_TYPES: readonly IdentityType[] = ['agent', 'human', 'service'];
export const MEMBERSHIP_ROLES: readonly MembershipRole[] = ['admin', 'member', 'readonly'];
/** Most memberships one identity may hold (its effective role has one rule per membership). */
export const MAX_MEMBERSHIPS = 100;
/** Most pending requests one requester may have open. */
export const MAX_PENDING_PER_REQUESTER = 20;
/** Longest justification accepted, in bytes. */
export const MAX_JUSTIFICATION_BYTES = 2048;

const SHORT_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Checks an identity name, org or project name, or request id: 1–64 bytes of `[A-Za-z0-9._-]`,
 * not `.`, `..` or `self`.
 *
 * @param v - the value
 * @param what - the field, for the message
 * @returns the value
 * @throws {ServiceError} `invalid_name`
 */
export function checkShortId(v: unknown, what: string): string {
  if (typeof v !== 'string' || !SHORT_NAME.test(v) || v === '.' || v === '..' || v === 'self') {
    throw new ServiceError('invalid_name', `"${what}" must be 1-64 characters of A-Z a-z 0-9 . _ - (not ".", ".." or "self")`);
  }
  return v;
}

/**
 * @param v - a membership role from a request
 * @returns the role
 * @throws {ServiceError} `invalid_request`
 */
export function checkMembershipRole(v: unknown): MembershipRole {
  if (typeof v !== 'string' || !(MEMBERSHIP_ROLES as readonly string[]).includes(v)) throw new ServiceError('invalid_request', '"role" must be admin, member or readonly');
  return v as MembershipRole;
}

/**
 * The fingerprint shown for a public key: `sha256:` and the first 16 bytes of its SHA-256, hex.
 *
 * @param publicKey - raw 32-byte key
 * @returns the fingerprint
 */
export function fingerprintOf(publicKey: Uint8Array): string {
  return `sha256:${createHash('sha256').update(publicKey).digest('hex').slice(0, 32)}`;
}

function strictBase64(v: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(v)) return undefined;
  const b = Buffer.from(v, 'base64');
  return b.toString('base64').replace(/=+$/, '') === v.replace(/=+$/, '') ? b : undefined;
}

/** The API view of an identity (the public key is public; there is no private key anywhere). */
export function identityView(i: Readonly<IdentityRecord>, ms?: readonly { org: string; project: string | null; role: MembershipRole; grantedBy: string; at: number }[]): Record<string, unknown> {
  return {
    name: i.name,
    type: i.identityType,
    fingerprint: i.fingerprint,
    publicKey: Buffer.from(i.publicKey).toString('base64'),
    createdAt: iso(i.createdAt),
    createdBy: i.createdBy,
    disabledAt: iso(i.disabledAt),
    ...(ms === undefined ? {} : { memberships: ms.map((m) => ({ org: m.org, project: m.project, role: m.role, grantedBy: m.grantedBy, at: iso(m.at) })) }),
  };
}

/** The API view of an access request. */
export function requestView(q: Readonly<AccessRequestRecord>): Record<string, unknown> {
  return {
    id: q.id,
    status: q.status,
    requester: q.requester,
    org: q.org,
    project: q.project,
    role: q.role,
    justification: q.justification,
    createdAt: iso(q.createdAt),
    decidedBy: q.decidedBy,
    decidedAt: iso(q.decidedAt),
  };
}

/** A login's failure, one answer for every cause (no oracle for which part was wrong). */
function loginRefused(): ServiceError {
  return new ServiceError('invalid_token', 'the login was refused: unknown identity, wrong signature, or a used or expired challenge');
}

/** Identity operations of one node. */
export class IdentityService {
  readonly #ctx: NodeContext;
  readonly #challenges: ChallengeKeys;

  /**
   * @param ctx - the running node
   * @param challenges - the node's challenge keys
   */
  constructor(ctx: NodeContext, challenges: ChallengeKeys) {
    this.#ctx = ctx;
    this.#challenges = challenges;
  }

  /**
   * Registers an identity's public key.
   *
   * @param name - validated identity name
   * @param type - agent, human or service
   * @param publicKeyB64 - base64 of the raw 32-byte Ed25519 public key
   * @param actor - who registers it
   * @returns name, type and fingerprint
   * @throws {ServiceError} `invalid_request` (bad type or key), `already_exists`
   */
  async create(name: string, type: unknown, publicKeyB64: unknown, actor: string): Promise<{ name: string; type: IdentityType; fingerprint: string }> {
    if (typeof type !== 'string' || !(IDENTITY_TYPES as readonly string[]).includes(type)) throw new ServiceError('invalid_request', '"type" must be agent, human or service');
    const key = typeof publicKeyB64 === 'string' ? strictBase64(publicKeyB64) : undefined;
    if (key === undefined || key.length !== 32) throw new ServiceError('invalid_request', '"publicKey" must be the base64 of a raw 32-byte Ed25519 public key');
    try {
      createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.toString('base64url') }, format: 'jwk' });
    } catch {
      throw new ServiceError('invalid_request', '"publicKey" is not a valid Ed25519 public key');
    }
    const fingerprint = fingerprintOf(key);
    const identityType = type as IdentityType;
    expectOk(
      await this.#ctx.propose({ type: 'identity.put', requestId: commandId(), at: this.#ctx.now(), name, identityType, publicKey: new Uint8Array(key), fingerprint, actor }),
      { already_exists: `an identity named "${name}" already exists` },
    );
    return { name, type: identityType, fingerprint };
  }

  /** @returns every identity, sorted by name */
  list(): Record<string, unknown>[] {
    const s = this.#ctx.state;
    return [...s.table(identities).values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((i) => identityView(i));
  }

  /**
   * @param name - identity name
   * @returns the identity with its memberships
   * @throws {ServiceError} `not_found`
   */
  get(name: string): Record<string, unknown> {
    const s = this.#ctx.state;
    const i = s.table(identities).get(name);
    if (i === undefined) throw new ServiceError('not_found', `no identity named "${name}"`);
    return identityView(i, s.table(memberships).get(name)?.entries ?? []);
  }

  /**
   * Disables (its sessions end at once) or deletes (with memberships and sessions) an identity.
   *
   * @param verb - which
   * @param name - identity name
   * @param actor - who
   * @returns how many sessions ended
   * @throws {ServiceError} `not_found`
   */
  async end(verb: 'disable' | 'delete', name: string, actor: string): Promise<number> {
    const r = expectOk(await this.#ctx.propose({ type: verb === 'disable' ? 'identity.disable' : 'identity.delete', requestId: commandId(), at: this.#ctx.now(), name, actor }), {
      not_found: `no identity named "${name}"`,
    });
    return r.count ?? 0;
  }

  /**
   * Grants or changes a membership (authorisation and the grant check are the caller's).
   *
   * @throws {ServiceError} `not_found` (no such identity), `invalid_request` (too many memberships)
   */
  async grant(identity: string, org: string, project: string | null, role: MembershipRole, actor: string): Promise<void> {
    const have = this.#ctx.state.table(memberships).get(identity)?.entries ?? [];
    if (have.length >= MAX_MEMBERSHIPS && !have.some((e) => e.org === org && e.project === project)) {
      throw new ServiceError('invalid_request', `identity "${identity}" already has ${MAX_MEMBERSHIPS} memberships; remove one first`);
    }
    expectOk(await this.#ctx.propose({ type: 'membership.put', requestId: commandId(), at: this.#ctx.now(), identity, org, project, role, actor }), {
      not_found: `no identity named "${identity}"`,
    });
  }

  /**
   * Removes a membership.
   *
   * @throws {ServiceError} `not_found`
   */
  async revoke(identity: string, org: string, project: string | null, actor: string): Promise<void> {
    expectOk(await this.#ctx.propose({ type: 'membership.delete', requestId: commandId(), at: this.#ctx.now(), identity, org, project, actor }), {
      not_found: `identity "${identity}" has no membership of ${project === null ? `org "${org}"` : `"${org}/${project}"`}`,
    });
  }

  /**
   * Files an access request.
   *
   * @param requester - the principal asking (`identity:<name>` or a token name)
   * @param identity - the identity the membership would be for (null for a token)
   * @returns the new request's id
   * @throws {ServiceError} `invalid_request` (too many pending, bad justification)
   */
  async request(requester: string, identity: string | null, org: string, project: string, role: MembershipRole, justification: string): Promise<string> {
    if (Buffer.byteLength(justification) > MAX_JUSTIFICATION_BYTES) throw new ServiceError('invalid_request', `"justification" must be at most ${MAX_JUSTIFICATION_BYTES} bytes`);
    let pending = 0;
    for (const q of this.#ctx.state.table(accessRequests).values()) if (q.requester === requester && q.status === 'pending') pending++;
    if (pending >= MAX_PENDING_PER_REQUESTER) throw new ServiceError('invalid_request', `you already have ${pending} pending access requests; wait for a decision`);
    const id = commandId();
    expectOk(await this.#ctx.propose({ type: 'access.request', requestId: commandId(), at: this.#ctx.now(), id, requester, identity, org, project, role, justification }));
    return id;
  }

  /**
   * @param filter - which requests (the caller decides visibility)
   * @returns matching requests, oldest first
   */
  requests(filter: (q: Readonly<AccessRequestRecord>) => boolean): Record<string, unknown>[] {
    return [...this.#ctx.state.table(accessRequests).values()].filter(filter).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1)).map(requestView);
  }

  /**
   * @param id - request id
   * @returns the request record, if any
   */
  requestById(id: string): Readonly<AccessRequestRecord> | undefined {
    return this.#ctx.state.table(accessRequests).get(id);
  }

  /**
   * Approves (the membership is created in the same replicated step) or denies a request.
   *
   * @param id - request id
   * @param decision - approved or denied
   * @param actor - the deciding principal (never the requester: checked here and again at apply)
   * @returns the decided request
   * @throws {ServiceError} `not_found`, `self_approval` (403), `already_decided` (409)
   */
  async decide(id: string, decision: 'approved' | 'denied', actor: string): Promise<Record<string, unknown>> {
    const q = this.requestById(id);
    if (q === undefined) throw new ServiceError('not_found', `no access request "${id}"`);
    if (q.requester === actor) throw new ServiceError('self_approval', 'the requester cannot approve or deny its own access request');
    expectOk(await this.#ctx.propose({ type: 'access.decide', requestId: commandId(), at: this.#ctx.now(), id, decision, actor }), {
      not_found: q.identity === null ? `no access request "${id}"` : `identity "${q.identity}" no longer exists; the request stays pending`,
    });
    const after = this.requestById(id);
    return after === undefined ? { id, status: decision } : requestView(after);
  }

  /**
   * A login challenge (stateless; any node; issued for unknown identities too).
   *
   * @param identity - validated identity name
   * @returns `{nonce, expiresAt}`
   */
  challenge(identity: string): { nonce: string; expiresAt: string } {
    const c = this.#challenges.issue(identity);
    return { nonce: c.nonce, expiresAt: iso(c.expiresAt) };
  }

  /**
   * Checks a signed challenge against this node's state: the nonce is authentic, for this identity
   * and unexpired; the identity exists and is active; the signature verifies under its key. (That
   * the nonce is unused only the replicated `session.create` can decide.)
   *
   * @param identity - validated identity name
   * @param nonce - the challenge's nonce
   * @param signature - base64 of the 64-byte Ed25519 signature over `coffer-login:{identity}:{nonce}`
   * @param onFailure - counts a refusal toward the lockout
   * @returns the verified nonce
   * @throws {ServiceError} `invalid_token` for every refusal
   */
  async verifyLogin(identity: string, nonce: unknown, signature: unknown, onFailure: () => void): Promise<VerifiedNonce> {
    const fail = (): ServiceError => {
      onFailure();
      this.#ctx.metrics.identityLogins.inc({ outcome: 'refused' });
      return loginRefused();
    };
    const checked = typeof nonce === 'string' ? this.#challenges.verify(identity, nonce) : undefined;
    const sig = typeof signature === 'string' ? strictBase64(signature) : undefined;
    if (checked === undefined || sig === undefined || sig.length !== 64) throw fail();
    let rec = this.#ctx.state.table(identities).get(identity);
    if (rec === undefined) {
      // Registered a moment ago through the leader, not applied here yet: catch up once.
      await this.#ctx.readBarrier('linearizable').catch(() => undefined);
      rec = this.#ctx.state.table(identities).get(identity);
    }
    if (rec === undefined || rec.disabledAt !== null) throw fail();
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(rec.publicKey).toString('base64url') }, format: 'jwk' });
    const message = Buffer.from(`coffer-login:${identity}:${nonce as string}`, 'utf8');
    if (!verify(null, message, key, sig)) throw fail();
    return checked;
  }

  /**
   * Verifies a signed challenge ({@link verifyLogin}) and opens a session (on the leader).
   *
   * @param identity - validated identity name
   * @param nonce - the challenge's nonce
   * @param signature - base64 of the signature
   * @param onFailure - counts the failure toward the lockout
   * @returns the raw session token (only here) and its expiry
   * @throws {ServiceError} `invalid_token` for every refusal
   */
  async login(identity: string, nonce: unknown, signature: unknown, onFailure: () => void): Promise<{ token: string; expiresAt: string }> {
    const checked = await this.verifyLogin(identity, nonce, signature, onFailure);
    const at = this.#ctx.now();
    const token = generateToken();
    const expiresAt = at + this.#ctx.config.sessionTtlMs;
    const r = await this.#ctx.propose({ type: 'session.create', requestId: commandId(), at, tokenHash: hashToken(token), identity, expiresAt, nonceId: checked.nonceId, nonceExpiresAt: checked.expiresAt });
    if (r.status === 'nonce_used' || r.status === 'identity_inactive') {
      onFailure();
      this.#ctx.metrics.identityLogins.inc({ outcome: 'refused' });
      throw loginRefused();
    }
    expectOk(r);
    this.#ctx.metrics.identityLogins.inc({ outcome: 'ok' });
    return { token, expiresAt: iso(expiresAt) };
  }
}
