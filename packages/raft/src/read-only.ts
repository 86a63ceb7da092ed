// Linearizable reads by ReadIndex (Raft thesis §6.4; etcd-io/raft `read_only.go`): the leader
// records its commit index for each request, confirms its leadership with a heartbeat round that
// carries the request's context, and answers once a quorum acknowledged that round. Confirming
// one request confirms every earlier one too.
import { hasQuorum } from './quorum.js';
import type { Raft } from './raft.js';
import type { Message, NodeId } from './types.js';

/** A read waiting for a heartbeat quorum. */
export interface ReadIndexStatus {
  /** The leader's commit index when the request arrived: the read point to answer with. */
  index: number;
  /** The request (its `from` gets the answer, its `context` identifies it). */
  req: Message;
  /** Nodes that acknowledged a heartbeat carrying this context. */
  acks: Set<NodeId>;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function ctxKey(ctx: Uint8Array): string {
  let s = '';
  for (let i = 0; i < ctx.length; i++) s += HEX[ctx[i]!]!;
  return s;
}

/** The leader's pending ReadIndex requests, in arrival order. */
export class ReadOnly {
  private readonly pending: Map<string, ReadIndexStatus> = new Map();
  private queue: string[] = [];

  /**
   * Records a request at read point `index`, unless one with the same context is pending (equal
   * contexts are merged: only the first sender is answered).
   */
  addRequest(index: number, req: Message): void {
    const key = ctxKey(req.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, req, acks: new Set() });
    this.queue.push(key);
  }

  /**
   * Notes an acknowledgement of the heartbeat round carrying `ctx`.
   *
   * @returns everyone who acknowledged it so far, or undefined for no pending request
   */
  recvAck(from: NodeId, ctx: Uint8Array): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(ctxKey(ctx));
    if (rs === undefined) return undefined;
    rs.acks.add(from);
    return rs.acks;
  }

  /**
   * Removes and returns the request with context `ctx` and every one queued before it.
   *
   * @returns the confirmed requests, oldest first
   */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const at = this.queue.indexOf(ctxKey(ctx));
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      out.push(this.pending.get(k)!);
      this.pending.delete(k);
    }
    return out;
  }

  /** Context of the newest pending request (heartbeats carry it), or null when none is pending. */
  lastPendingContext(): Uint8Array | null {
    return this.queue.length > 0 ? this.pending.get(this.queue[this.queue.length - 1]!)!.req.context : null;
  }

  /** Drops every pending request (term or role change: their senders time out and retry). */
  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}

// The leader's side, as free functions over the raft (etcd `sendMsgReadIndexResponse`).

/** Answers one confirmed read: locally (a ReadState) or to the follower that forwarded it. */
export function respondRead(r: Raft, req: Message, index: number): void {
  if (req.from === r.id) r.readStates.push({ index, context: req.context });
  else r.send({ type: 'MsgReadIndexResp', to: req.from, index, context: req.context });
}

/** Leader: takes a read request once it has committed in its term; a single voter answers at once. */
export function sendReadIndexResponse(r: Raft, m: Message): void {
  if (r.voters.size === 1 && r.voters.has(r.id)) {
    respondRead(r, m, r.log.committed);
    return;
  }
  r.readOnly.addRequest(r.log.committed, m);
  if (r.voters.has(r.id)) r.readOnly.recvAck(r.id, m.context);
  r.bcastHeartbeat(m.context);
}

/** Leader: a heartbeat response carrying a read context; answers what a quorum has confirmed. */
export function handleReadAck(r: Raft, from: NodeId, ctx: Uint8Array): void {
  const acks = r.readOnly.recvAck(from, ctx);
  if (acks === undefined || !hasQuorum(r.voters, acks)) return;
  // Confirming one request confirms every earlier one too.
  for (const rs of r.readOnly.advance(ctx)) respondRead(r, rs.req, rs.index);
}
