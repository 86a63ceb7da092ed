/**
 * The client workload: concurrent workers doing writes (with and without check-and-set),
 * linearizable reads and deletes on a small set of secret names, recording every operation.
 *
 * A worker has one request in flight at a time, sends each to a random endpoint (followers forward
 * writes to the leader), and never retries a write: a write whose answer is lost is recorded as
 * `unknown`, because it may have been applied. Only answers that say the write was not applied
 * are recorded as `fail`:
 *   - 409 `cas_conflict`; other 4xx (refused before anything was proposed);
 *   - 503 `no_leader` whose message says the node had no leader, was not the leader, or that the
 *     write "was not applied" (the entry was overwritten by another leader's);
 *   - 503 `kms_unavailable` (sealing failed before proposing).
 * A refused TCP connection (ECONNREFUSED) never carried the request, so it is `fail` too.
 * Everything else that is not a success — a timeout, a reset connection, 503 `outcome_unknown`,
 * `shutting_down`, `audit_unavailable`, "the leader could not be reached" — is `unknown`.
 */
import { assertLoopback } from '../harness.js';
import { nowMs, type Op } from './history.js';
import { unsealedReason } from './ns-guard.js';
import { prng } from '../prng.js';

/** Relative weights of operation kinds. */
export interface OpMix {
  read: number;
  write: number;
  cas: number;
  delete: number;
}

export const DEFAULT_MIX: OpMix = { read: 45, write: 25, cas: 22, delete: 8 };

export interface WorkloadOptions {
  /** API base URLs (`http://host:port`). */
  endpoints: string[];
  token: string;
  durationMs: number;
  workers: number;
  /** Secret names to operate on. */
  keys: string[];
  seed: number;
  /** Client-side timeout per request; past it the outcome is unknown. */
  requestTimeoutMs: number;
  mix?: OpMix;
  /** Pause between a worker's operations (default 0–10 ms, random). */
  thinkMs?: number;
  /** Called on every endpoint before the first request (default: loopback only). */
  checkAddress?: (url: string) => void;
  /** Stops the workload early. */
  signal?: AbortSignal;
  /** First op id (default 1), so histories of several recorders can be merged. */
  firstId?: number;
}


interface Answer {
  status: number;
  body: unknown;
}

function errorOf(body: unknown): { code: string; message: string } {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return { code: typeof e?.code === 'string' ? e.code : '', message: typeof e?.message === 'string' ? e.message : '' };
}

/**
 * Whether a failed answer to a write means it was certainly not applied.
 *
 * @param a - status and parsed body
 * @returns `fail` when the server guarantees nothing happened, else `unknown`
 */
export function classifyWriteFailure(a: Answer): 'fail' | 'unknown' {
  if (a.status >= 400 && a.status < 500) return 'fail';
  if (a.status !== 503) return 'unknown';
  const { code, message } = errorOf(a.body);
  if (code === 'kms_unavailable') return 'fail';
  if (code === 'no_leader' && /not applied|no leader is known|not the leader|leadership is moving|still catching up/.test(message)) return 'fail';
  return 'unknown';
}

/** One HTTP request with a deadline; the body is parsed as JSON when it is JSON. */
export async function call(base: string, method: string, path: string, token: string, body: unknown, timeoutMs: number): Promise<Answer> {
  checkNamespacedAddress(base); // loopback, or a private address from inside a sealed namespace
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(timeoutMs) });
  const text = await r.text();
  let parsed: unknown = undefined;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: r.status, body: parsed };
}

function secretPath(key: string): string {
  return `/v1/secrets/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Performs one operation and fills in its outcome (the op is mutated: `completeMs`, `outcome`,
 * `result`, `detail`).
 *
 * @param o - the op, with `invokeMs` not yet set
 * @param base - endpoint to send it to
 * @param token - API token
 * @param timeoutMs - client-side deadline
 */
export async function perform(o: Op, base: string, token: string, timeoutMs: number): Promise<void> {
  o.node = base;
  o.invokeMs = nowMs();
  let a: Answer;
  try {
    if (o.kind === 'read') a = await call(base, 'GET', secretPath(o.key), token, undefined, timeoutMs);
    else if (o.kind === 'delete') a = await call(base, 'DELETE', secretPath(o.key), token, undefined, timeoutMs);
    else a = await call(base, 'PUT', secretPath(o.key), token, o.kind === 'cas' ? { value: o.value, cas: o.expectVersion } : { value: o.value }, timeoutMs);
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string } };
    o.detail = e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.name ?? 'error');
    // A refused connection never carried the request: nothing happened. Anything else (reset,
    // timeout) may have been after the server received it.
    const notSent = o.detail === 'ECONNREFUSED';
    o.outcome = o.kind === 'read' || notSent ? 'fail' : 'unknown';
    o.completeMs = o.outcome === 'fail' ? nowMs() : null;
    return;
  }
  const done = nowMs();
  o.detail = a.status === 200 ? '200' : `${a.status} ${errorOf(a.body).code}`;
  const b = a.body as { version?: unknown; value?: unknown } | undefined;
  if (o.kind === 'read') {
    if (a.status === 200 && typeof b?.version === 'number' && typeof b.value === 'string') {
      o.outcome = 'ok';
      o.completeMs = done;
      o.result = { version: b.version, value: b.value };
    } else if (a.status === 404 && errorOf(a.body).code === 'not_found') {
      o.outcome = 'ok';
      o.completeMs = done;
      o.result = { version: null, value: null };
    } else {
      // A read that did not answer changed nothing.
      o.outcome = 'fail';
      o.completeMs = done;
    }
    return;
  }
  if (o.kind === 'delete') {
    if (a.status === 200 || (a.status === 404 && errorOf(a.body).code === 'not_found')) {
      o.outcome = 'ok';
      o.completeMs = done;
      o.result = { version: null, value: null, existed: a.status === 200 };
      return;
    }
  } else if (a.status === 200 && typeof b?.version === 'number') {
    o.outcome = 'ok';
    o.completeMs = done;
    o.result = { version: b.version, value: null };
    return;
  }
  const c = classifyWriteFailure(a);
  o.outcome = c;
  o.completeMs = c === 'fail' ? done : null;
}

/** Counters of one workload run. */
export interface WorkloadStats {
  ops: number;
  ok: number;
  fail: number;
  unknown: number;
  /** Answers a correct harness should never get (400, 401, 403, 413, 429): a harness bug. */
  unexpected: number;
}

/**
 * @param ops - a history
 * @returns counters
 */
export function statsOf(ops: readonly Op[]): WorkloadStats {
  const s: WorkloadStats = { ops: ops.length, ok: 0, fail: 0, unknown: 0, unexpected: 0 };
  for (const o of ops) {
    s[o.outcome]++;
    if (o.detail !== undefined && /^(400|401|403|413|429) /.test(o.detail)) s.unexpected++;
  }
  return s;
}

/**
 * Runs the workload for `durationMs` (or until `signal` aborts) and returns the history.
 *
 * @param opts - see {@link WorkloadOptions}
 * @returns every operation, in invocation order
 */
export async function runWorkload(opts: WorkloadOptions): Promise<Op[]> {
  const check = opts.checkAddress ?? assertLoopback;
  for (const e of opts.endpoints) check(e);
  if (opts.endpoints.length === 0 || opts.keys.length === 0) throw new Error('runWorkload needs endpoints and keys');
  const mix = opts.mix ?? DEFAULT_MIX;
  const total = mix.read + mix.write + mix.cas + mix.delete;
  const ops: Op[] = [];
  let nextId = opts.firstId ?? 1;
  const deadline = Date.now() + opts.durationMs;
  const think = opts.thinkMs ?? 10;

  async function worker(p: number): Promise<void> {
    const rnd = prng(opts.seed * 1000 + p + 1);
    /** The version this worker last saw per name (its guess for cas). */
    const seen = new Map<string, number>();
    let n = 0;
    while (Date.now() < deadline && opts.signal?.aborted !== true) {
      const key = opts.keys[Math.floor(rnd() * opts.keys.length)] as string;
      const base = opts.endpoints[Math.floor(rnd() * opts.endpoints.length)] as string;
      const x = rnd() * total;
      const kind: Op['kind'] = x < mix.read ? 'read' : x < mix.read + mix.write ? 'write' : x < mix.read + mix.write + mix.cas ? 'cas' : 'delete';
      const o: Op = { id: nextId++, process: p, key, kind, invokeMs: 0, completeMs: null, outcome: 'unknown' };
      if (kind === 'write' || kind === 'cas') o.value = `s${opts.seed}-p${p}-${n++}`;
      if (kind === 'cas') o.expectVersion = seen.get(key) ?? 0;
      ops.push(o);
      await perform(o, base, opts.token, opts.requestTimeoutMs);
      if (o.outcome === 'ok' && o.result !== undefined) {
        if (kind === 'delete') seen.set(key, 0);
        else if (o.result.version !== null) seen.set(key, o.result.version);
        else if (kind === 'read') seen.set(key, 0);
      }
      // Back off a little after a failure so an unavailable cluster is not hammered.
      const pause = o.outcome === 'ok' ? rnd() * think : 20 + rnd() * 80;
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    }
  }

  await Promise.all(Array.from({ length: opts.workers }, (_, p) => worker(p)));
  return ops.sort((a, b) => a.invokeMs - b.invokeMs);
}

/**
 * Refuses an endpoint that is neither loopback nor reachable only inside a network namespace:
 * a non-loopback address is allowed only when this process runs in a network namespace other
 * than the machine's (so private addresses cannot leave the machine).
 *
 * @param url - endpoint
 * @throws {Error} when the address is not allowed
 */
export function checkNamespacedAddress(url: string): void {
  try {
    assertLoopback(url);
    return;
  } catch {
    // not loopback: only inside a namespace
  }
  const why = unsealedReason();
  if (why !== null) throw new Error(`refusing ${url}: non-loopback addresses are only used from inside a sealed test network namespace (${why})`);
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (!/^10\.\d+\.\d+\.\d+$/.test(host) && !/^fd[0-9a-f]{2}:/i.test(host)) throw new Error(`refusing ${url}: only private 10.x / fd00::/8 addresses inside namespaces`);
}

/** What one node holds for every name, read locally (`?consistency=stale`). */
export interface NodeFinalState {
  endpoint: string;
  /** False when some read did not answer 200/404. */
  complete: boolean;
  /** Per name: the current version and value, or null when absent. */
  state: Record<string, { version: number; value: string } | null>;
  /** sha256 over the sorted (name, version, value) triples; equal on converged nodes. */
  digest: string;
  /** Names whose read failed, with the status or error. */
  errors: Record<string, string>;
}

/**
 * Reads every name on one node from its local state.
 *
 * @param endpoint - API base URL
 * @param token - API token
 * @param keys - names to read
 * @param timeoutMs - per read
 * @returns the node's view and its digest
 */
export async function finalRead(endpoint: string, token: string, keys: readonly string[], timeoutMs: number): Promise<NodeFinalState> {
  const { createHash } = await import('node:crypto');
  const state: NodeFinalState['state'] = {};
  const errors: Record<string, string> = {};
  for (const key of [...keys].sort()) {
    try {
      const a = await call(endpoint, 'GET', `${secretPath(key)}?consistency=stale`, token, undefined, timeoutMs);
      const b = a.body as { version?: unknown; value?: unknown } | undefined;
      if (a.status === 200 && typeof b?.version === 'number' && typeof b.value === 'string') state[key] = { version: b.version, value: b.value };
      else if (a.status === 404 && errorOf(a.body).code === 'not_found') state[key] = null;
      else errors[key] = `${a.status} ${errorOf(a.body).code}`;
    } catch (err) {
      errors[key] = String((err as Error).name);
    }
  }
  const h = createHash('sha256');
  for (const key of Object.keys(state).sort()) {
    const v = state[key];
    h.update(`${key}\u0000${v === null || v === undefined ? '-' : `${v.version}\u0000${v.value}`}\n`);
  }
  return { endpoint, complete: Object.keys(errors).length === 0, state, digest: h.digest('hex'), errors };
}
