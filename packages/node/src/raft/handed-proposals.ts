/**
 * Proposals this follower handed to its leader (MsgProp), waiting to be applied here.
 *
 * The leader appends a handed proposal in its own term and says nothing back, so the proposal is
 * recognised by its command's request id when this node applies it, and answered with that
 * apply's outcome. Every request id is fresh (a re-proposed id would be answered by the state
 * machine's idempotency table anyway). What can go wrong is answered as the forwarding of a
 * request over HTTP is: a leader change gives the proposal one more election timeout (the new
 * leader may still commit it), then it fails with an unknown outcome; so does a proposal that is
 * not applied within the proposal timeout (lost on the way, or dropped by a leader that was
 * transferring leadership), or one whose entry a snapshot from the leader replaced.
 */
import type { NodeId } from '@coffer/raft';
import { type ApplyOutcome, DriverError } from './driver-types.js';

interface Waiter {
  readonly leader: NodeId;
  readonly resolve: (v: ApplyOutcome) => void;
  readonly reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  /** Set once the leader it went to is no longer the leader. */
  graced: boolean;
}

/** The request id an applied command carries (the state machine's ApplyResult), if any. */
function requestIdOf(outcome: ApplyOutcome): string | undefined {
  if (typeof outcome !== 'object' || outcome === null) return undefined;
  const id = (outcome as { requestId?: unknown }).requestId;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/** See the module comment. */
export class HandedProposals {
  private readonly waiting = new Map<string, Waiter>();
  private readonly timeoutMs: number;
  private readonly graceMs: number;

  /**
   * @param timeoutMs - how long a proposal may take to be applied here
   * @param graceMs - how long it may still take once the leader it went to lost leadership
   */
  constructor(timeoutMs: number, graceMs: number) {
    this.timeoutMs = timeoutMs;
    this.graceMs = graceMs;
  }

  /** How many are waiting. */
  get size(): number {
    return this.waiting.size;
  }

  /**
   * Waits for the command with `requestId`, handed to `leader`, to be applied here.
   *
   * @throws {DriverError} `outcome_unknown` (see the module comment)
   */
  wait(requestId: string, leader: NodeId): Promise<ApplyOutcome> {
    if (requestId === '' || this.waiting.has(requestId)) {
      return Promise.reject(new Error(`a handed proposal needs a fresh request id, got ${JSON.stringify(requestId)}`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(requestId, 'the write was not confirmed in time; it may or may not have been applied'), this.timeoutMs);
      this.waiting.set(requestId, { leader, resolve, reject, timer, graced: false });
    });
  }

  /** Answers the waiting proposals among applied outcomes. */
  settle(outcomes: Iterable<ApplyOutcome>): void {
    if (this.waiting.size === 0) return;
    for (const o of outcomes) {
      const id = requestIdOf(o);
      if (id === undefined) continue;
      const w = this.waiting.get(id);
      if (w === undefined) continue;
      this.waiting.delete(id);
      clearTimeout(w.timer);
      w.resolve(o);
    }
  }

  /** The leader changed: proposals handed to another leader get one grace period. */
  leaderChanged(lead: NodeId | null): void {
    for (const [id, w] of this.waiting) {
      if (w.leader === lead || w.graced) continue;
      w.graced = true;
      clearTimeout(w.timer);
      w.timer = setTimeout(() => this.fail(id, 'leadership changed while the write was with the old leader; it may or may not have been applied'), this.graceMs);
    }
  }

  /** Fails every waiting proposal (a snapshot replaced the state, or the node stops). */
  failAll(err: Error): void {
    for (const [id, w] of this.waiting) {
      this.waiting.delete(id);
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  private fail(id: string, message: string): void {
    const w = this.waiting.get(id);
    if (w === undefined) return;
    this.waiting.delete(id);
    w.reject(new DriverError('outcome_unknown', message));
  }
}
