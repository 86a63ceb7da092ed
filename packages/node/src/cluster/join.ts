/**
 * Joining a running cluster (COFFER_JOIN), both sides.
 *
 * The join endpoint lives on the API port (COFFER_JOIN names an API URL) but is authenticated with
 * the cluster key like every peer RPC; it accepts no client token. The leader adds the caller as a
 * learner (promoted once caught up, cluster/membership.ts) and answers with the members' Raft
 * addresses; any other member answers 421 with the leader's API address.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConfState, NodeId } from '@coffer/raft';
import { type Dispatcher, request } from 'undici';
import type { ServerConfig } from '../config.js';
import { readBody, sendJson } from '../http/body.js';
import { ServiceError } from '../service/errors.js';
import type { Logger } from '../logger.js';
import type { CofferMetrics } from '../metrics.js';
import { bodyMatches, type PeerVerifier, signPeerRequest } from '../peer/auth.js';

/** API path a new node calls to be added (signed with the cluster key). */
export const JOIN_PATH = '/v1/cluster/join';
/** Largest join request body. */
const MAX_JOIN_BYTES = 64 * 1024;

/** What {@link Joins} needs. */
export interface JoinDeps {
  readonly config: Readonly<ServerConfig>;
  readonly logger: Logger;
  readonly metrics: CofferMetrics;
  /** Signs this node's own join request. */
  readonly peerKey: Uint8Array;
  /** Verifies the signature of a join request that arrives here. */
  readonly verifier: PeerVerifier;
  /** For this node's own join (health probe and the signed POST). */
  readonly dispatcher: Dispatcher;
  readonly isLeader: () => boolean;
  readonly leaderApiAddr: () => string | undefined;
  readonly members: () => ConfState;
  readonly raftAddrOf: (id: NodeId) => string | undefined;
  readonly hint: (id: NodeId, raftAddr: string) => void;
  readonly addMember: (id: string, raftAddr: string, apiAddr: string) => Promise<void>;
  readonly closing: () => boolean;
}

/** Both sides of a join. */
export class Joins {
  private readonly deps: JoinDeps;

  /** @param deps - see {@link JoinDeps} */
  constructor(deps: JoinDeps) {
    this.deps = deps;
  }

  /** @returns whether the API request is a join (it bypasses the API's pipeline) */
  static isJoin(req: IncomingMessage): boolean {
    return req.method === 'POST' && req.url === JOIN_PATH;
  }

  /**
   * Answers `POST /v1/cluster/join` (never rejects: a failure is a 503).
   *
   * @param req - the request
   * @param res - its response
   */
  serve(req: IncomingMessage, res: ServerResponse): void {
    void this.handle(req, res).catch((err) => {
      this.deps.logger.warn({ err: String(err) }, 'join request failed');
      if (!res.headersSent) sendJson(res, 503, { error: { code: 'no_leader', message: 'the join could not be completed; retry' } });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { deps } = this;
    // The signed headers first (they carry the body's hash): an unauthenticated body is never read.
    const v = deps.verifier.verify({ method: 'POST', path: JOIN_PATH, headers: req.headers });
    const refused = { error: { code: 'invalid_token', message: 'join requests must be signed with the cluster key' } };
    if (!v.ok) {
      deps.metrics.peerRefusals.inc({ reason: v.reason });
      res.setHeader('connection', 'close');
      return sendJson(res, 401, refused);
    }
    let body: Uint8Array;
    try {
      body = await readBody(req, MAX_JOIN_BYTES);
    } catch (err) {
      if (err instanceof ServiceError && err.code === 'body_too_large') return sendJson(res, 413, { error: { code: 'body_too_large', message: 'join request too large' } });
      throw err;
    }
    if (!bodyMatches(v, body)) {
      deps.metrics.peerRefusals.inc({ reason: 'bad_signature' });
      return sendJson(res, 401, refused);
    }
    if (!deps.isLeader()) return sendJson(res, 421, { leaderApiAddr: deps.leaderApiAddr() ?? '' });
    let parsed: { raftAddr?: unknown; apiAddr?: unknown };
    try {
      parsed = JSON.parse(new TextDecoder().decode(body)) as typeof parsed;
    } catch {
      return sendJson(res, 400, { error: { code: 'invalid_json', message: 'join body is not JSON' } });
    }
    if (typeof parsed.raftAddr !== 'string' || typeof parsed.apiAddr !== 'string') {
      return sendJson(res, 400, { error: { code: 'invalid_request', message: 'join needs raftAddr and apiAddr' } });
    }
    await deps.addMember(v.from, parsed.raftAddr, parsed.apiAddr);
    // The new member knows no peer address until the first snapshot or entries reach it: tell it
    // where the members' Raft listeners are, or it cannot answer the leader.
    const members = deps.members();
    const peers = [...members.voters, ...members.learners]
      .filter((id) => id !== v.from)
      .map((id) => ({ id, raftAddr: id === deps.config.nodeId ? deps.config.advertiseRaft : (deps.raftAddrOf(id) ?? '') }))
      .filter((m) => m.raftAddr !== '');
    sendJson(res, 200, { id: v.from, members: peers });
  }

  /**
   * Asks the member at COFFER_JOIN (and then whichever leader it names) to add this node as a
   * learner. Retried until it succeeds or the node stops.
   *
   * @param joinUrl - the API URL of a running member
   */
  async join(joinUrl: string): Promise<void> {
    const { config, logger, dispatcher } = this.deps;
    let target = joinUrl;
    for (let attempt = 0; !this.deps.closing(); attempt++) {
      try {
        const health = await request(new URL('/v1/sys/health?standbyok=true', target), { method: 'GET', dispatcher });
        await health.body.dump();
        const peerId = health.headers['x-coffer-node-id'];
        if (typeof peerId !== 'string') throw new Error(`${target} did not name itself`);
        const bytes = new TextEncoder().encode(JSON.stringify({ raftAddr: config.advertiseRaft, apiAddr: config.advertiseApi }));
        const headers = signPeerRequest(this.deps.peerKey, { method: 'POST', path: JOIN_PATH, from: config.nodeId, to: peerId, body: bytes });
        const res = await request(new URL(JOIN_PATH, target), { method: 'POST', body: bytes, headers: { ...headers, 'content-type': 'application/json' }, dispatcher });
        const answer = (await res.body.json().catch(() => ({}))) as { leaderApiAddr?: string; members?: unknown };
        if (res.statusCode === 200) {
          for (const m of Array.isArray(answer.members) ? (answer.members as unknown[]) : []) {
            const { id, raftAddr } = (m ?? {}) as { id?: unknown; raftAddr?: unknown };
            if (typeof id === 'string' && id !== config.nodeId && typeof raftAddr === 'string' && /^https?:\/\/[^\s/]+\/?$/.test(raftAddr)) this.deps.hint(id, raftAddr);
          }
          logger.info({ via: target }, `${config.nodeId} was added to the cluster as a learner`);
          return;
        }
        if (res.statusCode === 421 && typeof answer.leaderApiAddr === 'string' && answer.leaderApiAddr !== '') target = answer.leaderApiAddr;
        else target = joinUrl;
      } catch (err) {
        logger.warn({ err: String(err), via: target }, 'join attempt failed; retrying');
        target = joinUrl;
      }
      await new Promise((r) => setTimeout(r, Math.min(2_000, 200 * (attempt + 1))));
    }
  }
}
