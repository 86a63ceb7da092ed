import type { ApiCore } from '../internal/core.js';
import type { Allowlist, AuditPage, RewrapStatus } from '../types.js';

/** The replicated read allowlist (`client.allowlist`). */
export class AllowlistApi {
  readonly #core: ApiCore;

  /** @param core - the client's internals */
  constructor(core: ApiCore) {
    this.#core = core;
  }

  /**
   * @returns the CIDRs allowed to read secrets
   * @throws {CofferError} `permission_denied`
   */
  async get(): Promise<Allowlist> {
    const body = await this.#core.json<Allowlist>({ method: 'GET', path: '/v1/allowlist', idempotent: true });
    return { cidrs: Array.isArray(body?.cidrs) ? body.cidrs : [] };
  }

  /**
   * Replace the allowlist. A whole-value PUT, retried like a read.
   *
   * @param cidrs - e.g. `['10.8.0.0/24', '::1/128']`; empty denies every read
   * @returns the stored allowlist
   * @throws {CofferError} `permission_denied`, `invalid_request`
   */
  async set(cidrs: readonly string[]): Promise<Allowlist> {
    const body = await this.#core.json<Allowlist | undefined>({ method: 'PUT', path: '/v1/allowlist', json: { cidrs }, idempotent: true });
    return { cidrs: Array.isArray(body?.cidrs) ? body.cidrs : [...cidrs] };
  }
}

/** KMS administration (`client.kms`). */
export class KmsApi {
  readonly #core: ApiCore;

  /** @param core - the client's internals */
  constructor(core: ApiCore) {
    this.#core = core;
  }

  /**
   * Start a re-wrap pass now (the server answers 202 and works in the background).
   *
   * @throws {CofferError} `permission_denied`, `outcome_unknown`
   */
  async rewrap(): Promise<void> {
    // Starting a pass twice is harmless (a pass is idempotent), but keep to the POST rule.
    await this.#core.json<unknown>({ method: 'POST', path: '/v1/admin/kms/rewrap', json: {}, idempotent: false });
  }

  /**
   * @returns re-wrap progress
   * @throws {CofferError} `permission_denied`
   */
  async status(): Promise<RewrapStatus> {
    return this.#core.json<RewrapStatus>({ method: 'GET', path: '/v1/admin/kms/rewrap/status', idempotent: true });
  }
}

/** A node's audit log (`client.audit`): each node keeps its own hash-chained log. */
export class AuditApi {
  readonly #core: ApiCore;

  /** @param core - the client's internals */
  constructor(core: ApiCore) {
    this.#core = core;
  }

  /**
   * Reads audit lines of the node that answers, from `since` on.
   *
   * @param opts - `since` (first seq, default 1), `limit` (1-1000, default 100)
   * @returns the page: `records`, the node's `head` seq, and `next` to continue from
   * @throws {CofferError} `permission_denied` (needs `audit.read`), `invalid_request`
   */
  async read(opts: { since?: number; limit?: number } = {}): Promise<AuditPage> {
    const q = new URLSearchParams();
    if (opts.since !== undefined) q.set('since', String(opts.since));
    if (opts.limit !== undefined) q.set('limit', String(opts.limit));
    const qs = q.toString();
    return this.#core.json<AuditPage>({ method: 'GET', path: `/v1/audit${qs === '' ? '' : `?${qs}`}`, idempotent: true });
  }
}
