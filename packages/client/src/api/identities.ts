import { encodeSegment, pickArray, type ApiCore } from '../internal/core.js';

/** Kinds of identity (CONTRACT.md). */
export type IdentityType = 'agent' | 'human' | 'service';
/** Roles of a membership. */
export type MembershipRole = 'admin' | 'member' | 'readonly';

/** One membership of an identity. */
export interface Membership {
  identity: string;
  org: string;
  /** null for an org-wide (admin) membership. */
  project: string | null;
  role: MembershipRole;
  grantedBy?: string;
  at?: string;
}

/** An identity as the server shows it (never a private key; the public key is public). */
export interface IdentityInfo {
  name: string;
  type: IdentityType;
  fingerprint: string;
  publicKey?: string;
  createdAt?: string;
  createdBy?: string;
  disabledAt?: string | null;
  memberships?: Membership[];
}

/** An access request. */
export interface AccessRequest {
  id: string;
  status: 'pending' | 'approved' | 'denied';
  requester?: string;
  org?: string;
  project?: string;
  role?: MembershipRole;
  justification?: string;
  createdAt?: string;
  decidedBy?: string | null;
  decidedAt?: string | null;
}

/** Ed25519 identities and memberships (`client.identities`). None of the writes is retried. */
export class IdentitiesApi {
  readonly #core: ApiCore;

  /** @param core - the client's internals */
  constructor(core: ApiCore) {
    this.#core = core;
  }

  /**
   * Registers an identity's public key (`identity.manage`).
   *
   * @param name - identity name
   * @param type - agent, human or service
   * @param publicKey - base64 of the raw 32-byte Ed25519 public key
   * @returns name, type and fingerprint
   * @throws {CofferError} `permission_denied`, `already_exists`, `invalid_request`
   */
  async create(name: string, type: IdentityType, publicKey: string): Promise<IdentityInfo> {
    return this.#core.json<IdentityInfo>({ method: 'POST', path: '/v1/identities', json: { name, type, publicKey }, idempotent: false });
  }

  /** @returns every identity */
  async list(): Promise<IdentityInfo[]> {
    return pickArray<IdentityInfo>(await this.#core.json<unknown>({ method: 'GET', path: '/v1/identities', idempotent: true }), ['identities']);
  }

  /**
   * @param name - identity name
   * @returns the identity with its memberships
   */
  async get(name: string): Promise<IdentityInfo> {
    return this.#core.json<IdentityInfo>({ method: 'GET', path: `/v1/identities/${encodeSegment(name)}`, idempotent: true });
  }

  /**
   * Disables an identity: its sessions stop working at once, on every node.
   *
   * @param name - identity name
   * @returns the identity
   */
  async disable(name: string): Promise<IdentityInfo> {
    return this.#core.json<IdentityInfo>({ method: 'POST', path: `/v1/identities/${encodeSegment(name)}/disable`, json: {}, idempotent: false });
  }

  /**
   * Deletes an identity with its memberships and sessions.
   *
   * @param name - identity name
   */
  async delete(name: string): Promise<void> {
    await this.#core.json<unknown>({ method: 'DELETE', path: `/v1/identities/${encodeSegment(name)}`, idempotent: false });
  }

  /**
   * Grants (or changes) a membership (`identity.manage`, or admin of the org).
   *
   * @param identity - identity name
   * @param m - org, project (not for `admin`), role
   * @returns the membership
   */
  async grant(identity: string, m: { org: string; project?: string; role: MembershipRole }): Promise<Membership> {
    return this.#core.json<Membership>({ method: 'PUT', path: `/v1/memberships/${encodeSegment(identity)}`, json: m, idempotent: false });
  }

  /**
   * Removes a membership.
   *
   * @param identity - identity name
   * @param m - org and project (omit for the org-wide membership)
   */
  async revoke(identity: string, m: { org: string; project?: string }): Promise<void> {
    await this.#core.json<unknown>({ method: 'DELETE', path: `/v1/memberships/${encodeSegment(identity)}`, json: m, idempotent: false });
  }
}

/** Access requests (`client.accessRequests`). */
export class AccessRequestsApi {
  readonly #core: ApiCore;

  /** @param core - the client's internals */
  constructor(core: ApiCore) {
    this.#core = core;
  }

  /**
   * Files a request for a membership (any session or token).
   *
   * @param r - org, project, role, justification
   * @returns `{id, status: 'pending'}`
   */
  async create(r: { org: string; project: string; role: MembershipRole; justification: string }): Promise<AccessRequest> {
    return this.#core.json<AccessRequest>({ method: 'POST', path: '/v1/access-requests', json: r, idempotent: false });
  }

  /**
   * Lists requests: all of them with `access.approve`, otherwise the caller's own.
   *
   * @param opts - `pending: true` for pending ones only
   * @returns the requests
   */
  async list(opts: { pending?: boolean } = {}): Promise<AccessRequest[]> {
    const path = `/v1/access-requests${opts.pending === true ? '?status=pending' : ''}`;
    return pickArray<AccessRequest>(await this.#core.json<unknown>({ method: 'GET', path, idempotent: true }), ['requests']);
  }

  /**
   * Approves a pending request: the membership is created in the same replicated step.
   *
   * @param id - request id
   * @returns the decided request
   * @throws {CofferError} `self_approval` (403) for the requester's own request
   */
  async approve(id: string): Promise<AccessRequest> {
    return this.#core.json<AccessRequest>({ method: 'POST', path: `/v1/access-requests/${encodeSegment(id)}/approve`, json: {}, idempotent: false });
  }

  /**
   * Denies a pending request.
   *
   * @param id - request id
   * @returns the decided request
   */
  async deny(id: string): Promise<AccessRequest> {
    return this.#core.json<AccessRequest>({ method: 'POST', path: `/v1/access-requests/${encodeSegment(id)}/deny`, json: {}, idempotent: false });
  }
}
