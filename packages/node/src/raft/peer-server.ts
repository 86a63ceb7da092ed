/**
 * The peer listener (`COFFER_RAFT_ADDR`): plain `node:http`, one route, no client commands.
 *
 * It is not a public API, so it skips the framework: a request's signed headers are verified with
 * the cluster key (peer/auth.ts) before a byte of its body is read; the body is then read up to its
 * declared length (and a hard cap) and must match the signed hash before anything is decoded. A
 * sender from before body hashes were declared is still heard (rolling upgrades), but at most
 * {@link MAX_LEGACY_READS} such bodies are buffered unauthenticated at a time. Decoded with
 * @coffer/raft's codec, handed to the driver, and answered 204 at once (Raft is asynchronous: the
 * answer to a message is another message) — or, when the sender asks for it (`x-coffer-return: 1`)
 * and the owner offers `holdReturn`, the answer is held briefly so that this node's next messages
 * to the sender travel back in its body (signed like a request; see transport.ts). That saves one
 * HTTP exchange per replication round.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { decodeMessages, type Message, RaftError } from '@coffer/raft';
import { bodyMatches, PEER_HEADERS, type PeerRefusal, type PeerVerifier } from '../peer/auth.js';
import { STREAM_LANES, STREAM_PROTOCOL, streamPath, type StreamLane } from './stream.js';
import { RAFT_MESSAGES_PATH, RETURN_HEADER } from './transport.js';

/** Largest accepted peer request body (a batch is at most 8 MiB of data plus framing). */
const MAX_BODY_BYTES = 80 * 1024 * 1024;
/** Largest peer RPC body (register, auth failure, join). */
const MAX_RPC_BYTES = 64 * 1024;
/** Unauthenticated bodies (senders that do not declare a body hash) buffered at once. */
export const MAX_LEGACY_READS = 2;

/** A member-to-member call other than Raft messages (register, auth failure, join). */
export type PeerRpc = (from: string, method: string, body: unknown) => Promise<{ status: number; body: unknown }>;

/** Prefix of the peer RPC paths. */
export const PEER_RPC_PREFIX = '/raft/v1/rpc/';

/** What the peer server needs from its owner. */
export interface PeerServerOptions {
  readonly verifier: PeerVerifier;
  /** This node's id: messages addressed to anyone else are dropped. */
  readonly nodeId: string;
  /** Receives every authenticated, well-formed batch. */
  readonly onMessages: (from: string, msgs: Message[]) => void;
  /** Handles `POST /raft/v1/rpc/<method>` (JSON in, JSON out) from an authenticated member. */
  readonly rpc?: PeerRpc;
  /**
   * Offered the response of a batch whose sender accepts messages back in it: call `respond` once,
   * with an encoded, signed batch or with null (204).
   */
  readonly holdReturn?: (from: string, respond: (body: Uint8Array | null, headers?: Record<string, string>) => void) => void;
  /**
   * Takes over a Raft stream (raft/stream.ts) whose signed upgrade request verified: `nonce` is
   * the request's, `head` the bytes that followed it. Without it, upgrades are answered 404 and
   * members send plain requests.
   */
  readonly onStream?: (from: string, nonce: string, lane: StreamLane, socket: Duplex, head: Buffer) => void;
  /** Counts refusals by reason (metrics). */
  readonly onRefused?: (reason: PeerRefusal | 'decode' | 'too_large' | 'not_found') => void;
}

/**
 * Authenticates a peer request and reads its body: the signed headers first (the declared body
 * hash), then at most `limit` bytes, which must hash to what was signed. Answers the refusal itself.
 *
 * @returns the sender and body, or null when the request was refused (already answered)
 */
async function authenticated(opts: PeerServerOptions, req: IncomingMessage, res: ServerResponse, path: string, limit: number): Promise<{ from: string; body: Uint8Array } | null> {
  const refuse = (reason: PeerRefusal | 'too_large', status: number): null => {
    opts.onRefused?.(reason);
    req.resume();
    res.setHeader('connection', 'close');
    answer(res, status);
    return null;
  };
  const declaredLength = Number(req.headers['content-length'] ?? 'NaN');
  if (Number.isFinite(declaredLength) && declaredLength > limit) return refuse('too_large', 413);
  if (req.headers[PEER_HEADERS.bodyHash] === undefined) {
    // A sender from before declared body hashes: its body has to be read to be verified.
    if (legacyReads >= MAX_LEGACY_READS) return refuse('too_large', 503);
    legacyReads++;
    let body: Uint8Array | null;
    try {
      body = await readBody(req, Math.min(limit, LEGACY_MAX_BYTES));
    } finally {
      legacyReads--;
    }
    if (body === null) return refuse('too_large', 413);
    const verdict = opts.verifier.verify({ method: 'POST', path, headers: req.headers, body });
    return verdict.ok ? { from: verdict.from, body } : refuse(verdict.reason, 401);
  }
  const verdict = opts.verifier.verify({ method: 'POST', path, headers: req.headers });
  if (!verdict.ok) return refuse(verdict.reason, 401);
  const body = await readBody(req, limit);
  if (body === null) return refuse('too_large', 413);
  if (!bodyMatches(verdict, body)) return refuse('bad_signature', 401);
  return { from: verdict.from, body };
}

/** Largest body of a sender that does not declare its hash (one Raft batch and framing). */
const LEGACY_MAX_BYTES = 9 * 1024 * 1024;
let legacyReads = 0;

/** Reads the body; null as soon as it exceeds `limit` (nothing more is buffered). */
function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > limit) {
        chunks.length = 0;
        req.off('data', onData);
        req.off('end', onEnd);
        resolve(null);
        return;
      }
      chunks.push(c);
    };
    const onEnd = (): void => resolve(new Uint8Array(Buffer.concat(chunks, size)));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', reject);
    // A sender that goes away mid-body: settle (a no-op after 'end'), so its slot is given back.
    req.on('close', () => resolve(null));
  });
}

function answer(res: ServerResponse, status: number): void {
  res.statusCode = status;
  res.setHeader('content-length', '0');
  res.end();
}

/**
 * Creates (but does not start) the peer HTTP server.
 *
 * @param opts - see {@link PeerServerOptions}
 * @returns a `node:http` server; call `listen` on it
 */
export function createPeerServer(opts: PeerServerOptions): Server {
  // Slow-loris bounds: headers within 10 s, a whole request (up to one 80 MiB batch) within 60 s.
  const server = createServer({ keepAliveTimeout: 60_000, headersTimeout: 10_000, requestTimeout: 60_000 }, (req, res) => {
    void handle(opts, req, res).catch(() => {
      if (!res.headersSent) answer(res, 500);
      else res.destroy();
    });
  });
  // Members keep a few connections each; this bounds what anyone who reaches the port can hold open.
  server.maxConnections = 256;
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => upgrade(opts, req, socket, head));
  return server;
}

const EMPTY_BODY = new Uint8Array(0);

/** A Raft stream's upgrade request: verified like any peer request (empty body), then handed over. */
function upgrade(opts: PeerServerOptions, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', () => socket.destroy());
  const refuse = (status: string, reason: PeerRefusal | 'not_found'): void => {
    opts.onRefused?.(reason);
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  };
  const protocol = req.headers.upgrade;
  const lane = STREAM_LANES.find((l) => req.url === streamPath(l));
  if (opts.onStream === undefined || lane === undefined || req.method !== 'POST' || typeof protocol !== 'string' || protocol.toLowerCase() !== STREAM_PROTOCOL) return refuse('404 Not Found', 'not_found');
  const verdict = opts.verifier.verify({ method: 'POST', path: streamPath(lane), headers: req.headers, body: EMPTY_BODY });
  if (!verdict.ok) return refuse('401 Unauthorized', verdict.reason);
  opts.onStream(verdict.from, verdict.nonce, lane, socket, head);
}

async function handle(opts: PeerServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '';
  if (req.method === 'POST' && opts.rpc !== undefined && url.startsWith(PEER_RPC_PREFIX) && /^[a-z-]{1,32}$/.test(url.slice(PEER_RPC_PREFIX.length))) {
    await handleRpc(opts, opts.rpc, url, req, res);
    return;
  }
  if (req.method !== 'POST' || url !== RAFT_MESSAGES_PATH) {
    req.resume();
    opts.onRefused?.('not_found');
    answer(res, 404);
    return;
  }
  const auth = await authenticated(opts, req, res, RAFT_MESSAGES_PATH, MAX_BODY_BYTES);
  if (auth === null) return;
  const { body } = auth;
  const verdict = { from: auth.from };
  let msgs: Message[];
  try {
    msgs = decodeMessages(body);
  } catch (err) {
    if (!(err instanceof RaftError)) throw err;
    opts.onRefused?.('decode');
    answer(res, 400);
    return;
  }
  // A member may only speak for itself: the signature covers `from`, so drop forged senders.
  const mine = msgs.filter((m) => m.to === opts.nodeId && m.from === verdict.from);
  if (opts.holdReturn !== undefined && req.headers[RETURN_HEADER] === '1') {
    let done = false;
    opts.holdReturn(verdict.from, (out, headers) => {
      if (done) return;
      done = true;
      if (res.destroyed || res.headersSent) return;
      if (out === null) return answer(res, 204);
      res.statusCode = 200;
      for (const [k, v] of Object.entries(headers ?? {})) res.setHeader(k, v);
      res.setHeader('content-type', 'application/octet-stream');
      res.setHeader('content-length', String(out.length));
      res.end(out);
    });
  } else {
    answer(res, 204);
  }
  if (mine.length > 0) opts.onMessages(verdict.from, mine);
}

async function handleRpc(opts: PeerServerOptions, rpc: PeerRpc, url: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const auth = await authenticated(opts, req, res, url, MAX_RPC_BYTES);
  if (auth === null) return;
  const { body } = auth;
  const verdict = { from: auth.from };
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    opts.onRefused?.('decode');
    answer(res, 400);
    return;
  }
  let out: { status: number; body: unknown };
  try {
    out = await rpc(verdict.from, url.slice(PEER_RPC_PREFIX.length), parsed);
  } catch (err) {
    out = { status: 503, body: { error: String((err as Error).message ?? err) } };
  }
  const text = JSON.stringify(out.body);
  res.statusCode = out.status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}
