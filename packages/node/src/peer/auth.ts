/**
 * Authentication of peer (Raft port) requests with `COFFER_CLUSTER_KEY`.
 *
 * Every peer request carries:
 * - `x-coffer-from`: the sender's member id
 * - `x-coffer-ts`: the sender's clock, Unix ms
 * - `x-coffer-nonce`: 16 random bytes, hex
 * - `x-coffer-body-sha256`: hex sha256 of the body (the receiver checks the signature over the
 *   headers before it reads a byte of the body, then checks the body against this hash)
 * - `x-coffer-sig`: hex HMAC-SHA256 over
 *   `"coffer-peer-v1\n" + METHOD + "\n" + path + "\n" + from + "\n" + to + "\n" + ts + "\n" + nonce + "\n" + hex(sha256(body))`
 *
 * The HMAC key is derived, never the cluster key itself: HKDF-SHA256(clusterKey, salt = empty,
 * info = "coffer peer auth v1", 32 bytes), so the raw key is used for nothing else and a future
 * scheme can derive an independent key. `to` is the receiver's own id (not sent; the receiver
 * supplies it), so a request captured on its way to one member cannot be replayed to another.
 *
 * Verification order: headers present → well-formed → signature (constant-time) → timestamp
 * within ±skew → nonce unseen. Only authentic requests enter the nonce cache, so unauthenticated
 * traffic cannot flush it. The cache remembers each nonce until its timestamp leaves the window;
 * if it ever fills up, the oldest entries are evicted and the accepted window's lower edge moves
 * up past them, so an evicted nonce still cannot be replayed (it is refused as stale).
 */
import { createHash, createHmac, hash, hkdfSync, randomFillSync, timingSafeEqual } from 'node:crypto';

/** HKDF info string; changing it is a wire-protocol break. */
export const PEER_AUTH_INFO = 'coffer peer auth v1';
/** Header names (lowercase, as node reports them). */
export const PEER_HEADERS: {
  readonly from: 'x-coffer-from';
  readonly ts: 'x-coffer-ts';
  readonly nonce: 'x-coffer-nonce';
  readonly sig: 'x-coffer-sig';
  readonly bodyHash: 'x-coffer-body-sha256';
} = Object.freeze({ from: 'x-coffer-from', ts: 'x-coffer-ts', nonce: 'x-coffer-nonce', sig: 'x-coffer-sig', bodyHash: 'x-coffer-body-sha256' } as const);

/** Why a peer request was refused; the label of `coffer_peer_refusals_total`. */
export type PeerRefusal = 'missing' | 'malformed' | 'bad_signature' | 'stale' | 'replayed';
/** All refusal reasons (metric label values). */
export const PEER_REFUSALS: readonly PeerRefusal[] = Object.freeze(['missing', 'malformed', 'bad_signature', 'stale', 'replayed'] as const);

/** Default accepted clock difference between peers. */
export const DEFAULT_SKEW_MS = 30_000;
/** Default most nonces remembered. */
export const DEFAULT_MAX_NONCES = 200_000;

const NONCE_RE = /^[0-9a-f]{32}$/;
const SIG_RE = /^[0-9a-f]{64}$/;
const HASH_RE = /^[0-9a-f]{64}$/;
const TS_RE = /^\d{1,16}$/;
const ID_RE = /^[A-Za-z0-9._-]{1,64}$/;
const EMPTY = new Uint8Array(0);
/** sha256 of the empty body. */
const EMPTY_DIGEST = createHash('sha256').update(EMPTY).digest('hex');

/**
 * Nonces are cut from a pool of CSPRNG bytes refilled 256 nonces at a time: one RNG call per 256
 * signed requests instead of one each (~3 of the ~10 µs of CPU a signature took). Every
 * nonce is still 16 fresh random bytes, used once; they are public (sent in clear), so holding the
 * next ones in memory reveals nothing a peer would not see anyway.
 */
const NONCE_BYTES = 16;
const noncePool = Buffer.alloc(NONCE_BYTES * 256);
let nonceOffset = noncePool.length;

function freshNonce(): string {
  if (nonceOffset === noncePool.length) {
    randomFillSync(noncePool);
    nonceOffset = 0;
  }
  const nonce = noncePool.toString('hex', nonceOffset, nonceOffset + NONCE_BYTES);
  nonceOffset += NONCE_BYTES;
  return nonce;
}

/**
 * Derives the peer-auth HMAC key.
 *
 * @param clusterKey - the decoded cluster key (≥ 32 bytes); not modified
 * @returns a fresh 32-byte key; zero it with `.fill(0)` when done (best effort: JS gives no
 *   guarantee that no copy survives)
 * @throws {RangeError} if the key is shorter than 32 bytes
 * @example
 * ```ts
 * const key = derivePeerKey(cfg.clusterKey);
 * ```
 */
export function derivePeerKey(clusterKey: Uint8Array): Uint8Array {
  if (!(clusterKey instanceof Uint8Array) || clusterKey.length < 32) throw new RangeError('cluster key must be at least 32 bytes');
  return new Uint8Array(hkdfSync('sha256', clusterKey, EMPTY, PEER_AUTH_INFO, 32));
}

/**
 * The session key of a Raft stream (raft/stream.ts): HMAC-SHA256 under the peer-auth key over
 * `"coffer-raft-stream-v1\n" + from + "\n" + to + "\n" + nonce`, where `nonce` is the one of the
 * stream's signed upgrade request. The verifier accepts a nonce once, so no two streams share a key.
 *
 * @param peerKey - the derived peer-auth key ({@link derivePeerKey})
 * @param from - the dialing member
 * @param to - the listening member
 * @param nonce - the upgrade request's `x-coffer-nonce`
 * @returns 32 bytes
 */
export function deriveStreamKey(peerKey: Uint8Array, from: string, to: string, nonce: string): Buffer {
  return createHmac('sha256', peerKey).update(`coffer-raft-stream-v1\n${from}\n${to}\n${nonce}`, 'utf8').digest();
}

/** What is signed, besides the key. */
export interface PeerRequestParts {
  readonly method: string;
  /** Request target including any query string, e.g. `/raft/v1/msgs`. */
  readonly path: string;
  readonly from: string;
  readonly to: string;
  readonly ts: number;
  readonly nonce: string;
  /** Body bytes (empty when absent). */
  readonly body?: Uint8Array | undefined;
  /** Hex sha256 of the body, when already known (then `body` is not hashed). */
  readonly bodyHash?: string | undefined;
}

/**
 * Hex sha256 of a body.
 *
 * @param body - the bytes (empty when absent)
 * @returns 64 hex characters
 */
export function bodyDigest(body: Uint8Array | undefined): string {
  if (body === undefined || body.length === 0) return EMPTY_DIGEST;
  // One-shot digest: no Hash object per request (half the CPU for a small body).
  return hash('sha256', body, 'hex');
}

/**
 * Computes the signature of one request.
 *
 * @param key - from {@link derivePeerKey}
 * @param parts - method, path, from, to, ts, nonce, body
 * @returns hex HMAC-SHA256
 */
export function peerSignature(key: Uint8Array, parts: PeerRequestParts): string {
  return signatureBytes(key, parts).toString('hex');
}

/** {@link peerSignature} as bytes (what the verifier compares). */
function signatureBytes(key: Uint8Array, parts: PeerRequestParts): Buffer {
  const bodyHash = parts.bodyHash ?? bodyDigest(parts.body);
  const msg = `coffer-peer-v1\n${parts.method.toUpperCase()}\n${parts.path}\n${parts.from}\n${parts.to}\n${parts.ts}\n${parts.nonce}\n${bodyHash}`;
  return createHmac('sha256', key).update(msg, 'utf8').digest();
}

/** Input of {@link signPeerRequest}. */
export interface SignInput {
  readonly method: string;
  readonly path: string;
  readonly from: string;
  readonly to: string;
  readonly body?: Uint8Array | undefined;
  /** Clock (default `Date.now()`). */
  readonly now?: number;
  /** Nonce (default 16 random bytes); tests only. */
  readonly nonce?: string;
}

/**
 * Produces the auth headers for an outgoing peer request.
 *
 * @param key - from {@link derivePeerKey}
 * @param input - method, path, sender id, receiver id, body
 * @returns the four `x-coffer-*` headers
 * @example
 * ```ts
 * const headers = signPeerRequest(key, { method: 'POST', path: '/raft/v1/msgs', from: 'n1', to: 'n2', body });
 * ```
 */
export function signPeerRequest(key: Uint8Array, input: SignInput): Record<string, string> {
  const ts = input.now ?? Date.now();
  const nonce = input.nonce ?? freshNonce();
  const bodyHash = bodyDigest(input.body);
  const sig = peerSignature(key, { method: input.method, path: input.path, from: input.from, to: input.to, ts, nonce, bodyHash });
  return { [PEER_HEADERS.from]: input.from, [PEER_HEADERS.ts]: String(ts), [PEER_HEADERS.nonce]: nonce, [PEER_HEADERS.bodyHash]: bodyHash, [PEER_HEADERS.sig]: sig };
}

/** An incoming request as the verifier sees it. */
export interface IncomingPeerRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * Body bytes. Leave undefined to verify the headers alone against the declared
   * `x-coffer-body-sha256` (required then); the caller must check the body it reads afterwards with
   * {@link bodyMatches}. A request without a body and without the header is taken as empty.
   */
  readonly body?: Uint8Array | undefined;
}

/** Verdict of {@link PeerVerifier.verify}; `bodyHash` is what the signature covers. */
export type PeerVerdict = { readonly ok: true; readonly from: string; readonly bodyHash: string; readonly nonce: string } | { readonly ok: false; readonly reason: PeerRefusal };

/**
 * Whether a body read after a headers-only verification is the one that was signed.
 *
 * @param verdict - an accepted verdict
 * @param body - the bytes read (empty when none)
 * @returns true when `sha256(body)` equals the signed hash (constant-time)
 */
export function bodyMatches(verdict: { readonly bodyHash: string }, body: Uint8Array | undefined): boolean {
  return timingSafeEqual(Buffer.from(bodyDigest(body), 'hex'), Buffer.from(verdict.bodyHash, 'hex'));
}

/** Options of {@link PeerVerifier}. */
export interface PeerVerifierOptions {
  /** Decoded cluster key; the verifier keeps only the derived key. */
  readonly clusterKey: Uint8Array;
  /** This node's id (the `to` of every request it accepts). */
  readonly nodeId: string;
  /** Accepted clock difference (default 30 s). */
  readonly skewMs?: number;
  /** Nonce cache bound (default 200,000). */
  readonly maxNonces?: number;
  /** Clock in ms (default `Date.now`). */
  readonly now?: () => number;
}

function header(h: IncomingPeerRequest['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v;
}

/**
 * Verifies incoming peer requests and remembers nonces to refuse replays.
 *
 * @example
 * ```ts
 * const verifier = new PeerVerifier({ clusterKey: cfg.clusterKey, nodeId: cfg.nodeId });
 * const v = verifier.verify({ method: req.method, path: req.url, headers: req.headers, body });
 * if (!v.ok) { metrics.peerRefusals.inc({ reason: v.reason }); res.statusCode = 401; res.end(); }
 * ```
 */
export class PeerVerifier {
  private readonly key: Uint8Array;
  private readonly nodeId: string;
  private readonly skewMs: number;
  private readonly maxNonces: number;
  private readonly now: () => number;
  /** nonce → the request's ts; insertion order ≈ arrival order. */
  private readonly nonces = new Map<string, number>();
  /** Requests with ts ≤ floorTs are refused: their nonces may have been evicted. */
  private floorTs = -Infinity;

  /** @param opts - see {@link PeerVerifierOptions} */
  constructor(opts: PeerVerifierOptions) {
    this.key = derivePeerKey(opts.clusterKey);
    this.nodeId = opts.nodeId;
    this.skewMs = opts.skewMs ?? DEFAULT_SKEW_MS;
    this.maxNonces = opts.maxNonces ?? DEFAULT_MAX_NONCES;
    this.now = opts.now ?? Date.now;
    if (!(this.skewMs > 0) || !Number.isInteger(this.maxNonces) || this.maxNonces < 1) throw new RangeError('skewMs and maxNonces must be positive');
  }

  /**
   * Checks one request. Accepting it records its nonce.
   *
   * @param req - method, path (with query), headers, body bytes
   * @returns `{ok: true, from}` or `{ok: false, reason}`
   */
  verify(req: IncomingPeerRequest): PeerVerdict {
    const from = header(req.headers, PEER_HEADERS.from);
    const tsText = header(req.headers, PEER_HEADERS.ts);
    const nonce = header(req.headers, PEER_HEADERS.nonce);
    const sig = header(req.headers, PEER_HEADERS.sig);
    const declared = header(req.headers, PEER_HEADERS.bodyHash);
    if (from === undefined || tsText === undefined || nonce === undefined || sig === undefined) return { ok: false, reason: 'missing' };
    if (!ID_RE.test(from) || !TS_RE.test(tsText) || !NONCE_RE.test(nonce) || !SIG_RE.test(sig)) return { ok: false, reason: 'malformed' };
    if (declared !== undefined && !HASH_RE.test(declared)) return { ok: false, reason: 'malformed' };
    const ts = Number(tsText);
    // The signature covers the hash of the body: the one read, or, before reading, the declared one.
    const bodyHash = req.body !== undefined ? bodyDigest(req.body) : (declared ?? EMPTY_DIGEST);
    if (req.body !== undefined && declared !== undefined && declared !== bodyHash) return { ok: false, reason: 'bad_signature' };
    const expected = signatureBytes(this.key, { method: req.method, path: req.path, from, to: this.nodeId, ts, nonce, bodyHash });
    if (!timingSafeEqual(expected, Buffer.from(sig, 'hex'))) return { ok: false, reason: 'bad_signature' };
    const now = this.now();
    if (Math.abs(now - ts) > this.skewMs || ts <= this.floorTs) return { ok: false, reason: 'stale' };
    this.prune(now);
    if (this.nonces.has(nonce)) return { ok: false, reason: 'replayed' };
    if (this.nonces.size >= this.maxNonces) this.evictOldest();
    this.nonces.set(nonce, ts);
    return { ok: true, from, bodyHash, nonce };
  }

  /**
   * The session key of a stream whose upgrade request this verifier just accepted.
   *
   * @param from - the verified sender
   * @param nonce - the request's nonce
   */
  streamKey(from: string, nonce: string): Buffer {
    return deriveStreamKey(this.key, from, this.nodeId, nonce);
  }

  /** @returns how many nonces are remembered */
  get rememberedNonces(): number {
    return this.nonces.size;
  }

  /** Zeroes the derived key (best effort); the verifier refuses everything afterwards. */
  destroy(): void {
    this.key.fill(0);
    this.floorTs = Infinity;
  }

  private prune(now: number): void {
    // Entries arrive roughly in ts order; stop at the first one still inside the window.
    for (const [n, ts] of this.nonces) {
      if (ts + this.skewMs >= now) break;
      this.nonces.delete(n);
    }
  }

  private evictOldest(): void {
    // Full of live nonces: drop the oldest tenth and raise the floor past every evicted ts.
    const drop = Math.max(1, Math.floor(this.maxNonces / 10));
    let i = 0;
    for (const [n, ts] of this.nonces) {
      if (i++ >= drop) break;
      this.nonces.delete(n);
      if (ts > this.floorTs) this.floorTs = ts;
    }
  }
}
