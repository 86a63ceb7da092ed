/**
 * Forwarding a follower's requests to the leader, and believing what a forwarded request claims.
 *
 * A forward carries a signature (cluster key) over exactly what is sent: method, the path and
 * query as sent, the body's hash, the original client IP, time and sender. On the leader a request
 * that claims to be forwarded is believed only when that signature verifies; anything else is
 * refused (401 `invalid_forward`), never read as the socket's address (the forwarding member's,
 * allowlisted).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { NodeId } from '@coffer/raft';
import { Agent, type Dispatcher } from 'undici';
import type { ServerConfig } from '../config.js';
import type { Forwarding } from '../context.js';
import type { CofferMetrics } from '../metrics.js';
import { Allowlist, clientIp as clientAddress, normaliseIp, type ProxyTrust } from '../net/allowlist.js';
import { bodyMatches, type PeerVerifier, signPeerRequest } from '../peer/auth.js';
import { ServiceError } from '../service/errors.js';

/** Header with the original client IP of a request a follower forwarded to the leader. */
export const FORWARDED_IP_HEADER = 'x-coffer-forwarded-ip';

/** Headers of the client's request that travel with a forward. */
const FORWARDED_HEADERS = ['authorization', 'x-vault-token', 'content-type', 'x-request-id', 'accept'] as const;

/** Headers of the leader's answer not passed on: hop-by-hop ones, and the length (set anew). */
const SKIPPED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/**
 * One request on its way to the leader, as undici's dispatch handler: the answer is collected
 * (forwarded answers are small JSON documents) and written to the client in one go once complete.
 * Cheaper than `agent.request()`, which builds a body stream, an async iterator and an
 * AbortController per request; nothing else differs (same pool, same timeouts).
 */
class InFlight implements Dispatcher.DispatchHandler {
  readonly leader: string;
  /** Set on a leader change (see {@link Forwarder.onLeaderChange}). */
  timer: NodeJS.Timeout | undefined;
  /** Cut short because leadership moved: the outcome is unknown. */
  aborted = false;
  /** The leader started answering: whatever happens next, the request was received. */
  answered = false;
  readonly done: Promise<void>;
  private controller: Dispatcher.DispatchController | undefined;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private readonly chunks: Buffer[] = [];
  private readonly res: ServerResponse;
  /** A HEAD answer has no body: its length is the leader's. */
  private readonly head: boolean;
  private resolve!: () => void;
  private reject!: (err: Error) => void;

  constructor(leader: string, res: ServerResponse, method: string) {
    this.leader = leader;
    this.res = res;
    this.head = method === 'HEAD';
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** Cuts the request short; before it reaches a socket, it is never sent. */
  abort(): void {
    this.aborted = true;
    this.controller?.abort(new Error('leadership changed'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.aborted) controller.abort(new Error('leadership changed'));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx: informational, the answer follows
    this.answered = true;
    this.status = statusCode;
    this.headers = headers;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    // One writeHead with every header (repeated ones as arrays), the length of what is sent.
    const flat: (string | string[])[] = [];
    for (const [k, v] of Object.entries(this.headers)) {
      if (v !== undefined && !SKIPPED.has(k)) flat.push(k, v);
      else if (k === 'content-length' && v !== undefined && this.head) flat.push(k, v);
    }
    if (this.status !== 204 && this.status !== 304 && !this.head) flat.push('content-length', String(body.length));
    try {
      this.res.writeHead(this.status, flat);
      this.res.end(body);
    } catch (err) {
      this.reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.resolve();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.reject(err);
  }
}

/** What {@link Forwarder} needs. */
export interface ForwarderDeps {
  readonly config: Readonly<ServerConfig>;
  readonly metrics: CofferMetrics;
  /** Signs forwards (derived from the cluster key). */
  readonly peerKey: Uint8Array;
  /** Verifies the signature of a forward that arrives here. */
  readonly verifier: PeerVerifier;
  readonly leader: () => NodeId | null;
  readonly leaderApiAddr: () => string | undefined;
  /** Until a first leader is known: waits (bounded) for `ready`. */
  readonly firstLeader: (ready: () => boolean, ms: number) => Promise<void>;
}

/** {@link Forwarding} of the node context. */
export class Forwarder implements Forwarding {
  private readonly deps: ForwarderDeps;
  /** Many concurrent forwards from one follower: a large keep-alive pool. */
  private readonly agent = new Agent({ connections: 64, headersTimeout: 15_000, bodyTimeout: 15_000, connectTimeout: 2_000, keepAliveTimeout: 30_000 });
  /** Requests being forwarded to the leader, so that a leader change can cut them short. */
  private readonly inFlight = new Set<InFlight>();
  /** Per request: its client IP, and for a member's forward the signed body hash (or why it was refused). */
  private readonly seen = new WeakMap<IncomingMessage, { ip: string | undefined; bodyHash: string | undefined; error: ServiceError | undefined }>();
  private readonly proxyTrust: ProxyTrust;
  /** No proxy is trusted: a request's client IP is its socket's address. */
  private readonly socketOnly: boolean;
  /** Raw address → normalised ({@link normaliseIp} is pure; parsing it was ~2% of a forwarding follower's CPU). */
  private readonly normalised = new Map<string, string | undefined>();
  /** API address → origin. */
  private readonly origins = new Map<string, string>();

  /** @param deps - see {@link ForwarderDeps} */
  constructor(deps: ForwarderDeps) {
    this.deps = deps;
    this.proxyTrust = { trustDirectPeer: deps.config.trustProxy, proxies: Allowlist.from(deps.config.trustedProxies) };
    this.socketOnly = !deps.config.trustProxy && deps.config.trustedProxies.length === 0;
  }

  /**
   * Call on every leader change. A request forwarded to a leader this node no longer follows
   * would otherwise wait out the forwarding timeout (e.g. the old leader is paused). A live old
   * leader answers within moments (a transfer it ran, a write it committed just before stepping
   * down), so give it one election timeout, then answer 503 outcome unknown.
   */
  onLeaderChange(lead: NodeId | null): void {
    for (const f of this.inFlight) {
      if (f.leader !== lead && f.timer === undefined) {
        f.timer = setTimeout(() => f.abort(), this.deps.config.electionMs);
        f.timer.unref();
      }
    }
  }

  async forwardToLeader(req: IncomingMessage, res: ServerResponse, target: { readonly path: string; readonly body: Uint8Array | undefined }): Promise<void> {
    const { config } = this.deps;
    if (this.deps.leader() === null || this.deps.leaderApiAddr() === undefined) {
      await this.deps.firstLeader(() => this.deps.leader() !== null && this.deps.leaderApiAddr() !== undefined, config.electionMs * 2);
    }
    const lead = this.deps.leader();
    const base = this.deps.leaderApiAddr();
    if (lead === null || base === undefined || lead === config.nodeId) throw new ServiceError('no_leader', 'no leader is known; retry shortly', { retryAfterSecs: 1 });
    if (req.headers[FORWARDED_IP_HEADER] !== undefined) throw new ServiceError('no_leader', 'leadership is moving; retry shortly', { retryAfterSecs: 1 });
    const ip = this.clientIp(req) ?? '';
    const method = req.method ?? 'GET';
    const headers: Record<string, string> = {};
    for (const h of FORWARDED_HEADERS) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    // Signed over exactly what is sent: method, path and query as sent, the body, the client IP.
    const signed = signPeerRequest(this.deps.peerKey, { method, path: `FWD ${ip} ${target.path}`, from: config.nodeId, to: lead, body: target.body });
    Object.assign(headers, signed, { [FORWARDED_IP_HEADER]: ip });
    const fwd = new InFlight(lead, res, method);
    this.inFlight.add(fwd);
    try {
      // The dispatcher sends `path` byte for byte (no URL normalisation between signing and sending).
      this.agent.dispatch({ origin: this.originOf(base), path: target.path, method: method as Dispatcher.HttpMethod, headers, body: target.body === undefined ? null : target.body }, fwd);
      await fwd.done;
    } catch (err) {
      if (fwd.aborted) {
        throw new ServiceError('outcome_unknown', 'leadership changed while the request was with the old leader; it may or may not have been applied', { retryAfterSecs: 1, cause: err });
      }
      if (fwd.answered) {
        throw new ServiceError('outcome_unknown', "the leader's answer was cut short; the request may or may not have been applied", { retryAfterSecs: 1, cause: err });
      }
      throw new ServiceError('no_leader', 'the leader could not be reached; retry shortly', { retryAfterSecs: 1, cause: err });
    } finally {
      this.inFlight.delete(fwd);
      if (fwd.timer !== undefined) clearTimeout(fwd.timer);
    }
  }

  /** {@link normaliseIp}, remembered for the last few thousand distinct addresses. */
  private normalise(raw: string | undefined): string | undefined {
    if (raw === undefined) return undefined;
    const known = this.normalised.get(raw);
    if (known !== undefined || this.normalised.has(raw)) return known;
    const ip = normaliseIp(raw);
    if (this.normalised.size >= 4096) this.normalised.clear();
    this.normalised.set(raw, ip);
    return ip;
  }

  /** The origin of a member's API address (parsed once per address). */
  private originOf(base: string): string {
    let origin = this.origins.get(base);
    if (origin === undefined) {
      origin = new URL(base).origin;
      if (this.origins.size > 64) this.origins.clear();
      this.origins.set(base, origin);
    }
    return origin;
  }

  clientIp(req: IncomingMessage): string | undefined {
    const known = this.seen.get(req);
    if (known !== undefined) {
      if (known.error !== undefined) throw known.error;
      return known.ip;
    }
    const fwd = req.headers[FORWARDED_IP_HEADER];
    if (fwd === undefined) {
      // Without a trusted proxy this is what clientAddress() answers: the socket's address.
      const ip = this.socketOnly ? this.normalise(req.socket.remoteAddress) : clientAddress(req, this.proxyTrust);
      this.seen.set(req, { ip, bodyHash: undefined, error: undefined });
      return ip;
    }
    // A member's forward: believed only when its signature over what was sent verifies.
    const v = typeof fwd === 'string' ? this.deps.verifier.verify({ method: req.method ?? 'GET', path: `FWD ${fwd} ${req.url ?? '/'}`, headers: req.headers }) : ({ ok: false, reason: 'malformed' } as const);
    if (!v.ok) {
      this.deps.metrics.peerRefusals.inc({ reason: v.reason });
      const error = new ServiceError('invalid_forward', 'this request claims to be forwarded by a cluster member, but its signature does not verify');
      this.seen.set(req, { ip: undefined, bodyHash: undefined, error });
      throw error;
    }
    const ip = this.normalise(fwd === '' ? undefined : (fwd as string));
    this.seen.set(req, { ip, bodyHash: v.bodyHash, error: undefined });
    return ip;
  }

  checkForwardedBody(req: IncomingMessage, body: Uint8Array): void {
    const known = this.seen.get(req);
    if (known?.bodyHash === undefined) return;
    if (!bodyMatches({ bodyHash: known.bodyHash }, body)) {
      this.deps.metrics.peerRefusals.inc({ reason: 'bad_signature' });
      throw new ServiceError('invalid_forward', 'the body of this forwarded request is not the one its sender signed');
    }
  }

  /** Closes the connection pool to the leader. */
  close(): Promise<void> {
    return this.agent.close();
  }
}
