import { isAvailabilityError } from '../errors.js';
import { encodeSecretName, pickArray, type ApiCore } from '../internal/core.js';
import type {
  GetSecretOptions,
  PutSecretOptions,
  Secret,
  SecretSummary,
  SecretValueInput,
  SecretVersionInfo,
  RotationStatus,
  SecretWriteResult,
  VerifyResult,
} from '../types.js';

function cacheKey(name: string, opts: GetSecretOptions): string {
  // NUL cannot occur in a secret name, so `name\0` prefixes exactly this secret's entries.
  return `${name}\u0000${opts.version ?? 'latest'}\u0000${opts.consistency ?? 'linearizable'}`;
}

/** Secret operations (`client.secrets`). */
export class SecretsApi {
  readonly #core: ApiCore;

  /** @param core - the client's internals */
  constructor(core: ApiCore) {
    this.#core = core;
  }

  /**
   * Write a new version. Retried automatically only when `cas` is given (a repeat then cannot
   * create a second version); otherwise a failure after sending surfaces as `outcome_unknown`.
   *
   * @param name - secret name
   * @param value - `{value}`, `{valueBase64}` or `{format:'userpass', username, password}`
   * @param opts - `cas`, `description`, `rotation`
   * @returns the new version
   * @throws {CofferError} `permission_denied`, `cas_conflict` (409), `outcome_unknown`, …
   * @example
   * ```ts
   * await client.secrets.put('payments/stripe', { value: 'sk_live_…' }, { cas: 0 });
   * ```
   */
  async put(name: string, value: SecretValueInput, opts: PutSecretOptions = {}): Promise<SecretWriteResult> {
    this.#invalidate(name);
    const idempotent = opts.cas !== undefined;
    try {
      return await this.#core.json<SecretWriteResult>({
        method: 'PUT',
        path: `/v1/secrets/${encodeSecretName(name)}`,
        json: { ...value, ...opts },
        idempotent,
        casWrite: idempotent,
      });
    } finally {
      this.#invalidate(name);
    }
  }

  /**
   * Read a secret (latest or a given version). With the read cache on, a fresh cached value is
   * returned without a request; while the breaker is open, a cached value of any age is returned
   * and a `warning` event is emitted.
   *
   * @param name - secret name
   * @param opts - `version`, `consistency`
   * @returns the secret with its value
   * @throws {CofferError} `not_found`, `not_allowlisted`, `unavailable`, `breaker_open`
   * @example
   * ```ts
   * const { value } = await client.secrets.get('payments/stripe');
   * ```
   */
  async get(name: string, opts: GetSecretOptions = {}): Promise<Secret> {
    const core = this.#core;
    const key = cacheKey(name, opts);
    const hit = core.cache?.get(key);
    if (hit !== undefined && core.now() - hit.storedAtMs < core.cacheTtlMs) return hit.value;
    const q = new URLSearchParams();
    if (opts.version !== undefined) q.set('version', String(opts.version));
    if (opts.consistency === 'stale') q.set('consistency', 'stale');
    const qs = q.size > 0 ? `?${q.toString()}` : '';
    try {
      const secret = await core.json<Secret>({ method: 'GET', path: `/v1/secrets/${encodeSecretName(name)}${qs}`, idempotent: true });
      core.cache?.set(key, secret, core.now());
      return secret;
    } catch (err) {
      if (hit !== undefined && isAvailabilityError(err) && core.breaker !== undefined && core.breaker.state !== 'closed') {
        const ageMs = core.now() - hit.storedAtMs;
        core.warn({
          code: 'stale_cache',
          message: `serving cached ${name} (age ${Math.round(ageMs / 1000)} s): Coffer is unavailable`,
          name,
          ageMs,
          cause: err,
        });
        return hit.value;
      }
      throw err;
    }
  }

  /**
   * Read up to 256 secrets at once; missing names are omitted from the answer.
   *
   * @param names - secret names
   * @returns the secrets found
   * @throws {CofferError} `invalid_request` (too many), `permission_denied`, `unavailable`
   */
  async batch(names: readonly string[]): Promise<Secret[]> {
    const body = await this.#core.json<unknown>({ method: 'POST', path: '/v1/batch/secrets', json: { names }, idempotent: true });
    return pickArray<Secret>(body, ['secrets']);
  }

  /**
   * Constant-time check of a candidate value against the current version (and versions still in
   * their grace window). A mismatch counts toward the server's lockout.
   *
   * @param name - secret name
   * @param value - candidate value
   * @returns `{valid, version}`
   * @throws {CofferError} `not_allowlisted`, `locked_out`, `rate_limited`, `unavailable`
   */
  async verify(name: string, value: string): Promise<VerifyResult> {
    return this.#core.json<VerifyResult>({ method: 'POST', path: `/v1/verify/${encodeSecretName(name)}`, json: { value }, idempotent: true });
  }

  /**
   * Generate a new random value now (runs the rotation target first, if one is set). Not retried.
   *
   * @param name - secret name
   * @returns the new version
   * @throws {CofferError} `permission_denied`, `not_found`, `outcome_unknown`
   */
  async rotate(name: string): Promise<SecretWriteResult> {
    this.#invalidate(name);
    try {
      return await this.#core.json<SecretWriteResult>({ method: 'POST', path: `/v1/rotate/${encodeSecretName(name)}`, json: {}, idempotent: false });
    } finally {
      this.#invalidate(name);
    }
  }

  /**
   * List secret names under a prefix, with their latest version and timestamps.
   *
   * @param prefix - name prefix (default: all)
   * @returns summaries
   * @throws {CofferError} `permission_denied`
   */
  async list(prefix = ''): Promise<SecretSummary[]> {
    const qs = prefix === '' ? '' : `?prefix=${encodeURIComponent(prefix)}`;
    const body = await this.#core.json<unknown>({ method: 'GET', path: `/v1/secrets${qs}`, idempotent: true });
    return pickArray<SecretSummary | string>(body, ['secrets', 'names', 'items']).map((s) =>
      typeof s === 'string' ? { name: s } : s,
    );
  }

  /**
   * Every version's metadata (never values).
   *
   * @param name - secret name
   * @returns versions, as the server orders them
   * @throws {CofferError} `not_found`, `permission_denied`
   */
  async versions(name: string): Promise<SecretVersionInfo[]> {
    const body = await this.#core.json<unknown>({ method: 'GET', path: `/v1/versions/${encodeSecretName(name)}`, idempotent: true });
    return pickArray<SecretVersionInfo>(body, ['versions']);
  }

  /**
   * The secret's rotation policy and where it stands: its target, the target's last refusal and
   * whether a rotation waits for its target (from `GET /v1/versions/{name}`).
   *
   * @param name - secret name
   * @returns the rotation status, or null when the secret has no rotation policy
   * @throws {CofferError} `not_found`, `permission_denied`
   */
  async rotation(name: string): Promise<RotationStatus | null> {
    const body = await this.#core.json<unknown>({ method: 'GET', path: `/v1/versions/${encodeSecretName(name)}`, idempotent: true });
    const r = typeof body === 'object' && body !== null ? (body as { rotation?: unknown }).rotation : undefined;
    return typeof r === 'object' && r !== null ? (r as RotationStatus) : null;
  }

  /**
   * Soft-delete versions (recoverable with {@link SecretsApi.undelete}).
   *
   * @param name - secret name
   * @param versions - version numbers
   * @throws {CofferError} `permission_denied`, `not_found`, `outcome_unknown`
   */
  async delete(name: string, versions: readonly number[]): Promise<void> {
    await this.#versionsOp('delete', name, versions);
  }

  /**
   * Restore soft-deleted versions.
   *
   * @param name - secret name
   * @param versions - version numbers
   * @throws {CofferError} `permission_denied`, `not_found`, `outcome_unknown`
   */
  async undelete(name: string, versions: readonly number[]): Promise<void> {
    await this.#versionsOp('undelete', name, versions);
  }

  /**
   * Erase versions' ciphertext and wrapped DEKs for good.
   *
   * @param name - secret name
   * @param versions - version numbers
   * @throws {CofferError} `permission_denied`, `not_found`, `outcome_unknown`
   */
  async destroy(name: string, versions: readonly number[]): Promise<void> {
    await this.#versionsOp('destroy', name, versions);
  }

  /**
   * Erase every version and the metadata of a secret.
   *
   * @param name - secret name
   * @throws {CofferError} `permission_denied`, `not_found`, `outcome_unknown`
   */
  async destroyAll(name: string): Promise<void> {
    this.#invalidate(name);
    await this.#core.json<unknown>({ method: 'DELETE', path: `/v1/secrets/${encodeSecretName(name)}`, idempotent: false });
  }

  async #versionsOp(op: 'delete' | 'undelete' | 'destroy', name: string, versions: readonly number[]): Promise<void> {
    this.#invalidate(name);
    try {
      // NB: repeating these would give the same flags, but a late duplicate could undo a concurrent
      // undelete/delete by someone else, so they follow the POST rule: not retried once sent.
      await this.#core.json<unknown>({ method: 'POST', path: `/v1/${op}/${encodeSecretName(name)}`, json: { versions }, idempotent: false });
    } finally {
      this.#invalidate(name);
    }
  }

  #invalidate(name: string): void {
    this.#core.cache?.deletePrefix(`${name}\u0000`);
  }
}
