/**
 * The peer listener (`COFFER_RAFT_ADDR`): plain `node:http`, one route, no client commands.
 *
 * It is not a public API, so it skips the framework: a request is read up to a hard size cap,
 * authenticated with the cluster key (peer/auth.ts) before anything is decoded, decoded with
 * @coffer/raft's codec, handed to the driver, and answered 204 at once (Raft is asynchronous: the
 * answer to a message is another message) — or, when the sender asks for it (`x-coffer-return: 1`)
 * and the owner offers `holdReturn`, the answer is held briefly so that this node's next messages
 * to the sender travel back in its body (signed like a request; see transport.ts). That saves one
 * HTTP exchange per replication round.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { decodeMessages, type Message, RaftError } from '@coffer/raft';
import type { PeerRefusal, PeerVerifier } from '../peer/auth.js';
import { RAFT_MESSAGES_PATH, RETURN_HEADER } from './transport.js';

/** Largest accepted peer request body (a batch is at most 8 MiB of data plus framing). */
const MAX_BODY_BYTES = 80 * 1024 * 1024;

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
  /** Counts refusals by reason (metrics). */
  readonly onRefused?: (reason: PeerRefusal | 'decode' | 'too_large' | 'not_found') => void;
}

function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        return;
      }
      if (!over) chunks.push(c);
    });
    req.on('end', () => resolve(over ? null : new Uint8Array(Buffer.concat(chunks, size))));
    req.on('error', reject);
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
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    void handle(opts, req, res).catch(() => {
      if (!res.headersSent) answer(res, 500);
      else res.destroy();
    });
  });
  return server;
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
  const body = await readBody(req, MAX_BODY_BYTES);
  if (body === null) {
    opts.onRefused?.('too_large');
    answer(res, 413);
    return;
  }
  const verdict = opts.verifier.verify({ method: 'POST', path: RAFT_MESSAGES_PATH, headers: req.headers, body });
  if (!verdict.ok) {
    opts.onRefused?.(verdict.reason);
    answer(res, 401);
    return;
  }
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
  const body = await readBody(req, 64 * 1024);
  if (body === null) {
    opts.onRefused?.('too_large');
    answer(res, 413);
    return;
  }
  const verdict = opts.verifier.verify({ method: 'POST', path: url, headers: req.headers, body });
  if (!verdict.ok) {
    opts.onRefused?.(verdict.reason);
    answer(res, 401);
    return;
  }
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
