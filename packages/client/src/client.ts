import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Agent, type Dispatcher } from 'undici';
import { AllowlistApi, AuditApi, KmsApi } from './api/admin.js';
import { OperatorApi } from './api/operator.js';
import { TransitApi } from './api/transit.js';
import { AppRolesApi, loginWithAppRole, type AppRoleLoginOptions } from './api/approle.js';
import { ClusterApi } from './api/cluster.js';
import { loginWithEd25519, type Ed25519LoginOptions, type Session } from './api/ed25519.js';
import { AccessRequestsApi, IdentitiesApi } from './api/identities.js';
import { RolesApi } from './api/roles.js';
import { SecretsApi } from './api/secrets.js';
import { TokensApi } from './api/tokens.js';
import { CofferError, isAvailabilityError } from './errors.js';
import { CircuitBreaker, type BreakerState } from './internal/breaker.js';
import { ReadCache } from './internal/cache.js';
import { readJson, type ApiCore, type ClientWarning } from './internal/core.js';
import { Transport, type RequestSpec, type RetryInfo, type TransportResponse } from './internal/transport.js';
import { toEpochMs, type HealthStatus, type Secret, type TokenInfo } from './types.js';

export type { ClientWarning } from './internal/core.js';
export type { RetryInfo } from './internal/transport.js';
export type { BreakerState } from './internal/breaker.js';

/** Default node address (CONTRACT.md). */
export const DEFAULT_ADDRESS = 'http://127.0.0.1:8200';

/** Retry settings. */
export interface RetryOptions {
  /** Attempts per request, the first included. Default: max(3, 2 × number of addresses). */
  maxAttempts?: number;
  /** First backoff step. Default 100 ms. */
  baseDelayMs?: number;
  /** Backoff ceiling. Default 2 000 ms. */
  maxDelayMs?: number;
  /** Longer waits (from Retry-After) give up instead of sleeping. Default 30 000 ms. */
  maxRetryAfterMs?: number;
  /**
   * Server error codes on a 503 that mean "this write was never proposed", so a write may go to
   * the next node. Default `['no_leader', 'kms_unavailable', 'removed']` (the node
   * could not forward, could not seal, or is no longer a member: nothing was proposed). Not
   * `no_quorum`, `shutting_down` or `audit_unavailable`: those can follow a proposal.
   */
  retryableWriteCodes?: readonly string[];
}

/** Read-cache settings. */
export interface CacheOptions {
  /** Fresh lifetime of a cached secret. Default 300 000 ms (5 min). */
  ttlMs?: number;
  /** Bound on cached entries. Default 1 000. */
  maxEntries?: number;
}

/** Circuit-breaker settings. */
export interface BreakerOptions {
  /** Consecutive availability failures that open it. Default 3. */
  failureThreshold?: number;
  /** Wait before the first half-open probe. Default 30 000 ms. */
  firstProbeMs?: number;
  /** Ceiling of the doubling probe wait. Default 300 000 ms (5 min). */
  maxProbeMs?: number;
}

/** Passed to `tokenExpiring` listeners and `onTokenExpiring`. */
export interface TokenExpiryInfo {
  name: string;
  expiresAtMs: number;
  remainingMs: number;
  /** Remaining lifetime as a fraction of the whole (0..1). */
  remainingFraction: number;
}

/** Client construction options. Every field is optional. */
export interface CofferClientOptions {
  /** Node URLs: an array or a comma-separated string. Default `COFFER_ADDR`, else {@link DEFAULT_ADDRESS}. */
  addresses?: string | readonly string[];
  /** Bearer token. Default none (reads are governed by the IP allowlist, not tokens). */
  token?: string;
  /** Per-attempt timeout for headers and body inactivity. Default 10 000 ms. */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** Read cache for `secrets.get`; off unless given (`true` = defaults). */
  cache?: boolean | CacheOptions;
  /** Circuit breaker; on by default when the cache is on, off otherwise (`true` = defaults). */
  breaker?: boolean | BreakerOptions;
  /** Fraction of a token's lifetime below which `tokenExpiring` fires. Default 0.25. */
  tokenExpiryThreshold?: number;
  /** Called (as well as the `tokenExpiring` event) when the token is running out. */
  onTokenExpiring?: (info: TokenExpiryInfo) => void;
  /** Clock in epoch ms (tests). Default `Date.now`. */
  clock?: () => number;
  /** Sleep (tests). Default a timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Uniform [0,1) source for jitter (tests). Default `Math.random`. */
  random?: () => number;
  /** undici dispatcher to use instead of the client's own keep-alive Agent (not closed by `close`). */
  dispatcher?: Dispatcher;
  /** Connections per node for the client's own Agent. Default 8. */
  connections?: number;
}

/** Events of a {@link CofferClient}. */
export interface CofferClientEvents {
  /** Something degraded happened (e.g. a stale cached value was served). */
  warning: (w: ClientWarning) => void;
  /** The breaker opened; requests fail fast (reads fall back to the cache) until a probe succeeds. */
  breakerOpen: (info: { failures: number; retryInMs: number }) => void;
  /** A probe succeeded; the breaker closed. */
  breakerClosed: () => void;
  /** The token's remaining lifetime dropped under the threshold. Fired once per token. */
  tokenExpiring: (info: TokenExpiryInfo) => void;
  /** A request is about to be retried. */
  retry: (info: RetryInfo) => void;
}

/**
 * Split `COFFER_ADDR`-style text into node URLs.
 *
 * @param value - comma-separated URLs (whitespace ignored); a bare `host:port` gets `http://`
 * @returns normalised URLs without trailing slashes
 * @throws {TypeError} an entry that is not an http(s) URL
 * @example
 * ```ts
 * parseAddresses('http://a:8200, b:8200'); // ['http://a:8200', 'http://b:8200']
 * ```
 */
export function parseAddresses(value: string | readonly string[]): string[] {
  const parts = (typeof value === 'string' ? value.split(',') : value).map((s) => s.trim()).filter((s) => s !== '');
  return parts.map((p) => {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(p) ? p : `http://${p}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new TypeError(`not a node address: ${JSON.stringify(p)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`not an http(s) address: ${JSON.stringify(p)}`);
    if (url.username !== '' || url.password !== '') throw new TypeError('node addresses must not carry credentials');
    return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  });
}

/**
 * Typed client for Coffer's HTTP API, for services and the CLI.
 *
 * Failover across nodes with bounded exponential backoff and jitter (honouring Retry-After);
 * automatic retries only for requests that are safe to repeat; an optional read cache with a
 * circuit breaker; token-expiry awareness. See the package README for the exact rules.
 *
 * @example
 * ```ts
 * const client = new CofferClient({ addresses: 'http://n1:8200,http://n2:8200', cache: true });
 * client.on('warning', (w) => log.warn(w.message));
 * const { value } = await client.secrets.get('payments/stripe');
 * await client.close();
 * ```
 */
export class CofferClient {
  /** Secret operations. */
  readonly secrets: SecretsApi;
  /** Token management. */
  readonly tokens: TokensApi;
  /** Approle management (`approle.manage`). */
  readonly approles: AppRolesApi;
  /** Role management. */
  readonly roles: RolesApi;
  /** The read allowlist. */
  readonly allowlist: AllowlistApi;
  /** KMS re-wrap. */
  readonly kms: KmsApi;
  /** Cluster administration, snapshot and restore. */
  readonly cluster: ClusterApi;
  /** The audit log of the node that answers. */
  readonly audit: AuditApi;
  /** Ed25519 identities and org/project memberships. */
  readonly identities: IdentitiesApi;
  /** Access requests (file, list, approve, deny). */
  readonly accessRequests: AccessRequestsApi;
  /** The sealed start: init, unseal, seal, seal-status (per node). */
  readonly operator: OperatorApi;
  /** Transit: encrypt and decrypt under keys the cluster keeps. */
  readonly transit: TransitApi;

  readonly #emitter = new EventEmitter();
  readonly #transport: Transport;
  readonly #ownAgent: Agent | undefined;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #cache: ReadCache<Secret> | undefined;
  readonly #cacheTtlMs: number;
  readonly #breaker: CircuitBreaker | undefined;
  readonly #expiryThreshold: number;
  readonly #onTokenExpiring: ((info: TokenExpiryInfo) => void) | undefined;
  #token: string | undefined;
  #tokenWarned = false;
  #watchTimer: NodeJS.Timeout | undefined;
  #reloginTimer: NodeJS.Timeout | undefined;

  /**
   * @param options - see {@link CofferClientOptions}
   * @throws {TypeError} a malformed address
   */
  constructor(options: CofferClientOptions = {}) {
    const addresses = parseAddresses(options.addresses ?? process.env.COFFER_ADDR ?? DEFAULT_ADDRESS);
    if (addresses.length === 0) throw new TypeError('no node address given');
    this.#now = options.clock ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#token = options.token;
    this.#expiryThreshold = options.tokenExpiryThreshold ?? 0.25;
    this.#onTokenExpiring = options.onTokenExpiring;
    this.#emitter.setMaxListeners(0);

    if (options.dispatcher === undefined) {
      this.#ownAgent = new Agent({
        keepAliveTimeout: 10_000,
        connections: options.connections ?? 8,
        connect: { timeout: options.timeoutMs ?? 10_000 },
      });
    } else {
      this.#ownAgent = undefined;
    }

    const r = options.retry ?? {};
    this.#transport = new Transport({
      addresses,
      token: () => this.#token,
      timeoutMs: options.timeoutMs ?? 10_000,
      maxAttempts: r.maxAttempts ?? Math.max(3, addresses.length * 2),
      backoff: { baseDelayMs: r.baseDelayMs ?? 100, maxDelayMs: r.maxDelayMs ?? 2_000 },
      maxRetryAfterMs: r.maxRetryAfterMs ?? 30_000,
      retryableWriteCodes: new Set(r.retryableWriteCodes ?? ['no_leader', 'kms_unavailable', 'removed']),
      now: this.#now,
      sleep: this.#sleep,
      random: options.random ?? Math.random,
      dispatcher: options.dispatcher ?? (this.#ownAgent as Agent),
      userAgent: 'coffer-client/0.1.0',
      newRequestId: randomUUID,
      onRetry: (info) => this.#emitter.emit('retry', info),
    });

    const cacheOpts = options.cache === true ? {} : options.cache === false || options.cache === undefined ? undefined : options.cache;
    this.#cache = cacheOpts === undefined ? undefined : new ReadCache<Secret>(cacheOpts.maxEntries ?? 1_000);
    this.#cacheTtlMs = cacheOpts?.ttlMs ?? 300_000;
    const breakerOn = options.breaker ?? cacheOpts !== undefined;
    const b = typeof options.breaker === 'object' ? options.breaker : {};
    this.#breaker =
      breakerOn === false
        ? undefined
        : new CircuitBreaker(
            {
              failureThreshold: b.failureThreshold ?? 3,
              firstProbeMs: b.firstProbeMs ?? 30_000,
              maxProbeMs: b.maxProbeMs ?? 300_000,
            },
            this.#now,
            {
              onOpen: (info) => this.#emitter.emit('breakerOpen', info),
              onClose: () => this.#emitter.emit('breakerClosed'),
            },
          );

    const core = this.#core();
    this.secrets = new SecretsApi(core);
    this.tokens = new TokensApi(core);
    this.approles = new AppRolesApi(core);
    this.roles = new RolesApi(core);
    this.allowlist = new AllowlistApi(core);
    this.kms = new KmsApi(core);
    this.cluster = new ClusterApi(core);
    this.audit = new AuditApi(core);
    this.identities = new IdentitiesApi(core);
    this.accessRequests = new AccessRequestsApi(core);
    this.operator = new OperatorApi(core, () => this.#transport.addresses[0]);
    this.transit = new TransitApi(core);
  }

  /** @returns the node URLs in use */
  get addresses(): readonly string[] {
    return this.#transport.addresses;
  }

  /** @returns the breaker state, or undefined when there is no breaker */
  get breakerState(): BreakerState | undefined {
    return this.#breaker?.state;
  }

  /**
   * Replace the bearer token (e.g. after rotating it). Resets the expiry warning.
   *
   * @param token - the new token, or undefined for none
   */
  setToken(token: string | undefined): void {
    this.#token = token;
    this.#tokenWarned = false;
  }

  /**
   * Subscribe to an event.
   *
   * @param event - event name
   * @param listener - handler
   * @returns this
   */
  on<K extends keyof CofferClientEvents>(event: K, listener: CofferClientEvents[K]): this {
    this.#emitter.on(event, listener);
    return this;
  }

  /**
   * Unsubscribe.
   *
   * @param event - event name
   * @param listener - handler given to `on`
   * @returns this
   */
  off<K extends keyof CofferClientEvents>(event: K, listener: CofferClientEvents[K]): this {
    this.#emitter.off(event, listener);
    return this;
  }

  /**
   * Node health (`GET /v1/sys/health`). Never throws for 429 (standby) or 503 (no quorum): those
   * are answers. Bypasses the breaker.
   *
   * @param opts - `address` to ask one node (no failover); `standbyOk` to get 200 from followers
   * @returns the status code and body
   * @throws {CofferError} `unavailable` when no node answered
   */
  async health(opts: { address?: string; standbyOk?: boolean } = {}): Promise<HealthStatus> {
    const spec: RequestSpec = {
      method: 'GET',
      path: `/v1/sys/health${opts.standbyOk === true ? '?standbyok=true' : ''}`,
      idempotent: true,
      passStatuses: [429, 503],
    };
    if (opts.address !== undefined) {
      const [address] = parseAddresses(opts.address);
      if (address !== undefined) spec.address = address;
    }
    const res = await this.#transport.send(spec);
    const body = await readJson<Record<string, unknown> | undefined>(res);
    return { ...body, status: res.status };
  }

  /**
   * Prometheus metrics text (`GET /metrics`).
   *
   * @returns the exposition text
   * @throws {CofferError} `not_allowlisted`, `unavailable`
   */
  async metrics(): Promise<string> {
    const res = await this.#send({ method: 'GET', path: '/metrics', headers: { accept: 'text/plain' }, idempotent: true });
    return res.body.text();
  }

  /**
   * Ask the server about the current token and fire `tokenExpiring` if less than the threshold
   * (default 25 %) of its lifetime remains.
   *
   * @returns the expiry figures, or undefined when the token never expires
   * @throws {CofferError} `invalid_token` and the like
   */
  async checkTokenExpiry(): Promise<TokenExpiryInfo | undefined> {
    const info = await this.tokens.self();
    return this.#expiryOf(info);
  }

  /**
   * Check the token's expiry now and then every `intervalMs` (timer is unref'd; errors are
   * ignored until the next tick). Replaces an earlier watch.
   *
   * @param intervalMs - period, default 60 000 ms
   * @returns a function that stops the watch
   */
  watchTokenExpiry(intervalMs = 60_000): () => void {
    this.#stopWatch();
    const tick = (): void => {
      this.checkTokenExpiry().catch(() => undefined);
    };
    tick();
    this.#watchTimer = setInterval(tick, intervalMs);
    this.#watchTimer.unref();
    return () => this.#stopWatch();
  }

  /**
   * Logs in as an Ed25519 identity (challenge → signature → session) and uses the session token
   * from then on. Logs in again when three quarters of the session's lifetime have passed (the
   * timer is unref'd; a failed re-login is retried with backoff and reported as a `warning`).
   * The private key stays in this process; only a signature is sent.
   *
   * @param opts - `identity` and `privateKey` (KeyObject, PKCS#8 PEM text or the raw 32-byte seed)
   * @returns the session (token and expiry)
   * @throws {CofferError} `invalid_token` (unknown/disabled identity, wrong key, replayed or expired nonce)
   * @example
   * ```ts
   * await client.loginWithEd25519({ identity: 'build-agent', privateKey: readFileSync('build-agent.key', 'utf8') });
   * const { value } = await client.secrets.get('org/acme/project/web/db');
   * ```
   */
  async loginWithEd25519(opts: Ed25519LoginOptions): Promise<Session> {
    const session = await loginWithEd25519(this.#core(), opts);
    this.setToken(session.token);
    this.#scheduleRelogin(session, () => this.loginWithEd25519(opts));
    return session;
  }

  /**
   * Logs in with an approle's role id and a secret id (`POST /v1/auth/approle/login`) and uses the
   * returned token from then on. Logs in again when three quarters of the token's lifetime have
   * passed (unref'd timer; a failed re-login is retried with backoff and reported as a `warning`);
   * each re-login spends one use of the secret id, so give a secret id with uses to spare (or none).
   *
   * @param opts - `roleId` and `secretId` (read the secret id from a file, never from argv)
   * @returns the session (token and expiry)
   * @throws {CofferError} `invalid_token` (wrong, expired or used-up secret id), `permission_denied`
   *   (outside the approle's bound CIDRs), `locked_out`
   * @example
   * ```ts
   * await client.loginWithAppRole({ roleId: process.env.ROLE_ID!, secretId: readFileSync('/run/secrets/secret-id', 'utf8').trim() });
   * const { value } = await client.secrets.get('payments/db');
   * ```
   */
  async loginWithAppRole(opts: AppRoleLoginOptions): Promise<Session> {
    const session = await loginWithAppRole(this.#core(), opts);
    this.setToken(session.token);
    this.#scheduleRelogin(session, () => this.loginWithAppRole(opts));
    return session;
  }

  #scheduleRelogin(session: Session, again: () => Promise<unknown>, failures = 0): void {
    if (this.#reloginTimer !== undefined) clearTimeout(this.#reloginTimer);
    const remaining = Date.parse(session.expiresAt) - this.#now();
    if (!Number.isFinite(remaining) || remaining <= 0) return;
    const delay = failures === 0 ? remaining * 0.75 : Math.min(remaining / 2, 1_000 * 2 ** Math.min(failures, 5));
    this.#reloginTimer = setTimeout(() => {
      this.#reloginTimer = undefined;
      again().catch((cause: unknown) => {
        this.#emitter.emit('warning', { code: 'relogin_failed', message: 'logging in again before the session expires failed; retrying', cause });
        this.#scheduleRelogin(session, again, failures + 1);
      });
    }, Math.max(0, delay));
    this.#reloginTimer.unref();
  }

  /** Stop timers and close the client's own connection pool. */
  async close(): Promise<void> {
    this.#stopWatch();
    if (this.#reloginTimer !== undefined) clearTimeout(this.#reloginTimer);
    this.#reloginTimer = undefined;
    this.#cache?.clear();
    if (this.#ownAgent !== undefined) await this.#ownAgent.close();
  }

  #stopWatch(): void {
    if (this.#watchTimer !== undefined) clearInterval(this.#watchTimer);
    this.#watchTimer = undefined;
  }

  #expiryOf(info: TokenInfo): TokenExpiryInfo | undefined {
    const expiresAtMs = toEpochMs(info.expiresAt);
    const createdAtMs = toEpochMs(info.createdAt);
    if (expiresAtMs === undefined || createdAtMs === undefined || expiresAtMs <= createdAtMs) return undefined;
    const remainingMs = Math.max(0, expiresAtMs - this.#now());
    const remainingFraction = remainingMs / (expiresAtMs - createdAtMs);
    const out: TokenExpiryInfo = { name: info.name, expiresAtMs, remainingMs, remainingFraction };
    if (remainingFraction < this.#expiryThreshold && !this.#tokenWarned) {
      this.#tokenWarned = true;
      this.#emitter.emit('tokenExpiring', out);
      this.#onTokenExpiring?.(out);
    }
    return out;
  }

  async #send(spec: RequestSpec, opts: { bypassBreaker?: boolean } = {}): Promise<TransportResponse> {
    const breaker = opts.bypassBreaker === true || spec.address !== undefined ? undefined : this.#breaker;
    if (breaker !== undefined && !breaker.tryAcquire()) {
      throw new CofferError('breaker_open', 'Coffer is unavailable (circuit breaker open); request not sent', {
        retryAfterMs: breaker.retryInMs(),
      });
    }
    try {
      const res = await this.#transport.send(spec);
      breaker?.recordSuccess();
      return res;
    } catch (err) {
      if (isAvailabilityError(err)) breaker?.recordFailure();
      else breaker?.recordSuccess();
      throw err;
    }
  }

  #core(): ApiCore {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    return {
      send: (spec, opts) => self.#send(spec, opts),
      json: async <T>(spec: RequestSpec, opts?: { bypassBreaker?: boolean }): Promise<T> => readJson<T>(await self.#send(spec, opts)),
      now: () => self.#now(),
      warn: (w) => {
        self.#emitter.emit('warning', w);
      },
      get cache() {
        return self.#cache;
      },
      get cacheTtlMs() {
        return self.#cacheTtlMs;
      },
      get breaker() {
        return self.#breaker;
      },
      tokenSeen: (info) => {
        self.#expiryOf(info);
      },
    };
  }
}
