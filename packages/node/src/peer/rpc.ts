/**
 * Peer RPCs besides Raft messages: JSON over the peer port, each request signed with the cluster
 * key (peer/auth.ts) and authenticated by the peer server before a handler sees it.
 *
 * | method         | who answers | does |
 * |----------------|-------------|------|
 * | `hello`        | any member  | records the command versions the sender applies (upgrade gating); answers `{takesProposals:true, commands}` (this build takes a follower's Raft MsgProp; the versions it encodes) |
 * | `removed`      | any member  | a voter tells this node it was removed (marker file, 503 from then on) |
 * | `register`     | the leader  | proposes `member.upsert` with the sender's advertised addresses |
 * | `auth-failure` | the leader  | adds a follower's authentication failures to the cluster-wide lockout |
 * | `join`         | the leader  | adds the sender as a learner |
 * | `seal-status`  | any member  | 200 `{sealed:false}` when this node is unsealed, 503 `{sealed:true}` when sealed (COFFER_SEAL=shamir; a sealed leader looks for a successor) |
 *
 * Leader-only methods answer 421 `{leader}` elsewhere. {@link PeerCalls} is the calling side.
 */
import type { ConfState, NodeId } from '@coffer/raft';
import { type Command, type CommandResult, SUPPORTED_COMMAND_VERSIONS } from '@coffer/state';
import { Agent, request } from 'undici';
import type { CommandVersions } from '../cluster/command-versions.js';
import { parseCommandTable } from '../cluster/command-versions.js';
import type { PeerRpc } from '../raft/peer-server.js';
import { signPeerRequest } from './auth.js';

/** What the RPC handlers need from the node. */
export interface PeerRpcDeps {
  readonly nodeId: NodeId;
  readonly versions: CommandVersions;
  /** The configuration in force. */
  readonly members: () => ConfState;
  readonly isLeader: () => boolean;
  readonly leader: () => NodeId | null;
  /** The local applied index (a removal older than it is stale). */
  readonly appliedIndex: () => number;
  /** This node was removed: told by `by`. */
  readonly markSelfRemoved: (by: string) => void;
  readonly propose: (cmd: Command) => Promise<CommandResult>;
  /** A follower's failures for one lockout key. */
  readonly reportedFailures: (key: string, count: number) => void;
  readonly addMember: (id: string, raftAddr: string, apiAddr: string) => Promise<void>;
  /** Whether this node is sealed (COFFER_SEAL=shamir); absent: never. */
  readonly sealed?: () => boolean;
}

/**
 * The handlers of the table above.
 *
 * @param deps - see {@link PeerRpcDeps}
 * @returns the handler the peer server calls for `POST /raft/v1/rpc/<method>`
 */
export function createPeerRpc(deps: PeerRpcDeps): PeerRpc {
  return async (from, method, body) => {
    // Every RPC body is a JSON object (a member's JSON `null` or array would otherwise throw below).
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return { status: 400, body: { error: 'peer rpc bodies are JSON objects' } };
    if (method === 'hello') {
      // A member advertises the command versions it can apply (upgrade gating, see `propose`).
      const table = parseCommandTable((body as { commands?: unknown }).commands);
      if (table === undefined) return { status: 400, body: { error: 'bad hello body' } };
      deps.versions.record(from, table);
      // Once every member has said, the leader records what all of them apply (cluster.versions),
      // so a later leader need not wait for a member that is down to say it again.
      const floor = deps.isLeader() ? deps.versions.floorProposal(deps.members(), Date.now()) : undefined;
      if (floor !== undefined) deps.propose(floor).catch(() => undefined);
      // This build takes proposals a follower hands it (Raft's MsgProp): said here, so a follower
      // never sends one to a leader whose message codec predates it (it would drop the stream).
      return { status: 200, body: { takesProposals: true, commands: SUPPORTED_COMMAND_VERSIONS } };
    }
    if (method === 'seal-status') {
      // Only a boolean: whether this member holds the key (nothing about shares or progress).
      const sealed = deps.sealed?.() === true;
      return { status: sealed ? 503 : 200, body: { sealed } };
    }
    if (method === 'removed') {
      // A voter tells this node it was removed from the configuration (it may never see the
      // committed removal itself: the leader stops replicating to it).
      if (from === deps.nodeId || !deps.members().voters.includes(from)) return { status: 403, body: { error: 'only a voter may say so' } };
      // The removal must be news: a node that has applied entries past it was added again since
      // (a lagging member's stale word must not remove it).
      const index = (body as { index?: unknown }).index;
      if (typeof index !== 'number' || !Number.isSafeInteger(index) || index <= deps.appliedIndex()) return { status: 409, body: { error: 'stale removal' } };
      deps.markSelfRemoved(from);
      return { status: 200, body: {} };
    }
    if (!deps.isLeader()) return { status: 421, body: { leader: deps.leader() } };
    switch (method) {
      case 'register': {
        const b = body as { raftAddr?: unknown; apiAddr?: unknown };
        if (typeof b.raftAddr !== 'string' || typeof b.apiAddr !== 'string') return { status: 400, body: { error: 'bad register body' } };
        await deps.propose({ type: 'member.upsert', requestId: `register:${from}:${b.raftAddr}:${b.apiAddr}`, at: Date.now(), id: from, raftAddr: b.raftAddr, apiAddr: b.apiAddr });
        return { status: 200, body: {} };
      }
      case 'auth-failure': {
        // `ip` is a lockout key (an address or an IPv6 /64); `count` failures since the last report
        // (a member from before reports were batched sends one at a time, without a count).
        const b = body as { ip?: unknown; count?: unknown };
        const count = b.count === undefined ? 1 : b.count;
        if (typeof b.ip !== 'string' || !/^[0-9a-fA-F.:]{2,45}(\/64)?$/.test(b.ip) || typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) {
          return { status: 400, body: { error: 'bad auth-failure body' } };
        }
        deps.reportedFailures(b.ip, count);
        return { status: 200, body: {} };
      }
      case 'join': {
        const b = body as { raftAddr?: unknown; apiAddr?: unknown };
        if (typeof b.raftAddr !== 'string' || typeof b.apiAddr !== 'string') return { status: 400, body: { error: 'bad join body' } };
        await deps.addMember(from, b.raftAddr, b.apiAddr);
        return { status: 200, body: {} };
      }
      default:
        return { status: 404, body: { error: 'unknown peer rpc' } };
    }
  };
}

/** What {@link PeerCalls} needs. */
export interface PeerCallsDeps {
  readonly nodeId: NodeId;
  /** Signs every call (derived from the cluster key). */
  readonly peerKey: Uint8Array;
  readonly raftAddrOf: (id: NodeId) => string | undefined;
}

/** The calling side: signed JSON calls to a member's peer port. */
export class PeerCalls {
  /** Few, short-lived calls (register, reports, join): a small pool with tight timeouts. */
  readonly dispatcher: Agent = new Agent({ connections: 2, headersTimeout: 5_000, bodyTimeout: 5_000, connectTimeout: 2_000 });
  private readonly deps: PeerCallsDeps;
  private local: PeerRpc | undefined;

  /** @param deps - see {@link PeerCallsDeps} */
  constructor(deps: PeerCallsDeps) {
    this.deps = deps;
  }

  /**
   * The handler a call to the leader goes to when this node is the leader. Set once, after the
   * handlers are built (they depend on the lockout, which reports through these calls).
   *
   * @param rpc - this node's own handlers
   */
  answerLocally(rpc: PeerRpc): void {
    this.local = rpc;
  }

  /**
   * @param to - the member
   * @param base - its Raft listener (origin)
   * @param method - the RPC
   * @param body - JSON
   * @returns its status and parsed JSON answer (`{}` when not JSON)
   */
  async callPeer(to: NodeId, base: string, method: string, body: unknown): Promise<{ status: number; body: unknown }> {
    const bytes = new TextEncoder().encode(JSON.stringify(body));
    const p = `/raft/v1/rpc/${method}`;
    const headers = signPeerRequest(this.deps.peerKey, { method: 'POST', path: p, from: this.deps.nodeId, to, body: bytes });
    const res = await request(new URL(p, base), { method: 'POST', body: bytes, headers: { ...headers, 'content-type': 'application/json' }, dispatcher: this.dispatcher });
    const text = await res.body.text();
    let parsed: unknown = {};
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = {};
    }
    return { status: res.statusCode, body: parsed };
  }

  /**
   * Calls the leader this node knows of (its own handlers when it leads).
   *
   * @param lead - the leader this node knows of (the driver's), or null
   * @returns whether the leader answered 200 (false when none is known or reachable by address)
   */
  async callLeader(lead: NodeId | null, method: string, body: unknown): Promise<boolean> {
    return (await this.askLeader(lead, method, body))?.status === 200;
  }

  /**
   * {@link callLeader}, with the answer.
   *
   * @returns its status and JSON answer; undefined when no leader is known or reachable by address
   */
  async askLeader(lead: NodeId | null, method: string, body: unknown): Promise<{ status: number; body: unknown } | undefined> {
    if (lead === null) return undefined;
    if (lead === this.deps.nodeId) return this.local === undefined ? undefined : this.local(this.deps.nodeId, method, body);
    const base = this.deps.raftAddrOf(lead);
    return base === undefined ? undefined : this.callPeer(lead, base, method, body);
  }

  /** Closes the connection pool. */
  close(): Promise<void> {
    return this.dispatcher.close();
  }
}
