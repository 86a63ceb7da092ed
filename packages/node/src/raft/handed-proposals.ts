/**
 * Proposals this follower handed to its leader (MsgProp), waiting to be applied here.
 *
 * The leader appends a handed proposal in its own term and says nothing back, so the proposal is
 * recognised by its command's request id when this node applies it, and answered with that
 * apply's outcome. Every request id is fresh.
 *
 * When the leader changes, every proposal still waiting is handed again, with the same bytes, to
 * the new leader (or proposed here, if this node is the new leader): a leader that was handing
 * over leadership drops what it is handed meanwhile, and one that crashed may never have passed
 * it on. If the first copy was committed after all, the state machine's idempotency table answers
 * the second with the first one's result (same request id) and changes nothing, and the first
 * apply is the one that answers here (a second copy that comes after the table has let go of the
 * first fails its version check instead: it carries the version the first one took). A proposal
 * not applied here an election timeout after it was handed is handed again to the same leader
 * too: a leader whose hand-over did not complete dropped it meanwhile, and a stream that broke
 * lost it, and neither says so. While no leader is known a proposal waits one election
 * timeout for the next; it fails with an unknown outcome when none comes, when it is not applied
 * within the proposal timeout, or when a snapshot from the leader replaced the state here.
 */
import type { NodeId } from '@coffer/raft';
import { type ApplyOutcome, DriverError } from './driver-types.js';

interface Waiter {
  readonly data: Uint8Array;
  /** The leader it was last handed to. */
  leader: NodeId;
  /** When it was last handed (performance.now(): a monotonic clock). */
  handedAt: number;
  readonly resolve: (v: ApplyOutcome) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
  /** Running while no leader is known. */
  grace: NodeJS.Timeout | undefined;
}

/** The request id an applied command carries (the state machine's ApplyResult), if any. */
function requestIdOf(outcome: ApplyOutcome): string | undefined {
  if (typeof outcome !== 'object' || outcome === null) return undefined;
  const id = (outcome as { requestId?: unknown }).requestId;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/** What {@link HandedProposals} needs. */
export interface HandedProposalsDeps {
  /** How long a proposal may take to be applied here. */
  readonly timeoutMs: number;
  /** How long it waits for a next leader while none is known. */
  readonly graceMs: number;
  /** Hands `data` again to the leader now known (or proposes it here on the leader); throws when it cannot. */
  readonly handAgain: (data: Uint8Array) => void;
}

/** See the module comment. */
export class HandedProposals {
  private readonly waiting = new Map<string, Waiter>();
  private readonly deps: HandedProposalsDeps;
  /** Runs while proposals wait: hands again those an election timeout old ({@link handStale}). */
  private sweep: NodeJS.Timeout | undefined;

  /** @param deps - see {@link HandedProposalsDeps} */
  constructor(deps: HandedProposalsDeps) {
    this.deps = deps;
  }

  /** How many are waiting. */
  get size(): number {
    return this.waiting.size;
  }

  /** Whether `requestId` can name a new handed proposal (non-empty, not waiting already). */
  isFresh(requestId: string): boolean {
    return requestId !== '' && !this.waiting.has(requestId);
  }

  /**
   * Waits for the command with `requestId`, handed to `leader` as `data`, to be applied here.
   *
   * @throws {DriverError} `outcome_unknown` (see the module comment)
   */
  wait(requestId: string, data: Uint8Array, leader: NodeId): Promise<ApplyOutcome> {
    if (!this.isFresh(requestId)) {
      return Promise.reject(new Error(`a handed proposal needs a fresh request id, got ${JSON.stringify(requestId)}`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(requestId, 'the write was not confirmed in time; it may or may not have been applied'), this.deps.timeoutMs);
      this.waiting.set(requestId, { data, leader, handedAt: performance.now(), resolve, reject, timer, grace: undefined });
      this.sweep ??= setInterval(() => this.handStale(), this.deps.graceMs).unref();
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
      this.forget(id, w);
      w.resolve(o);
    }
  }

  /** The leader this node knows changed to `lead` (null: none known). */
  leaderChanged(lead: NodeId | null): void {
    for (const [id, w] of this.waiting) {
      if (lead === null) {
        w.grace ??= setTimeout(() => this.fail(id, 'leadership changed while the write was with the old leader, and no new leader took over in time; it may or may not have been applied'), this.deps.graceMs);
        continue;
      }
      const hadNone = w.grace !== undefined;
      if (w.grace !== undefined) clearTimeout(w.grace);
      w.grace = undefined;
      if (w.leader === lead && !hadNone) continue;
      w.leader = lead;
      // Later in this turn of the event loop: not from inside the Ready being handled.
      setImmediate(() => {
        if (this.waiting.get(id) !== w || w.leader !== lead) return;
        try {
          w.handedAt = performance.now();
          this.deps.handAgain(w.data);
        } catch {
          this.fail(id, 'leadership changed while the write was with the old leader; it may or may not have been applied');
        }
      });
    }
  }

  /** Fails every waiting proposal (a snapshot replaced the state, or the node stops). */
  failAll(err: Error): void {
    for (const [id, w] of this.waiting) {
      this.forget(id, w);
      w.reject(err);
    }
  }

  /**
   * Hands again, to the leader it went to, each proposal waiting for an election timeout since it
   * was last handed while that leader stayed (see the module comment).
   */
  private handStale(): void {
    const now = performance.now();
    for (const w of this.waiting.values()) {
      if (w.grace !== undefined || now - w.handedAt < this.deps.graceMs) continue;
      w.handedAt = now;
      try {
        this.deps.handAgain(w.data);
      } catch {
        // No leader to hand it to right now: the leader change that follows decides.
      }
    }
  }

  private fail(id: string, message: string): void {
    const w = this.waiting.get(id);
    if (w === undefined) return;
    this.forget(id, w);
    w.reject(new DriverError('outcome_unknown', message));
  }

  private forget(id: string, w: Waiter): void {
    this.waiting.delete(id);
    clearTimeout(w.timer);
    if (w.grace !== undefined) clearTimeout(w.grace);
    if (this.waiting.size === 0 && this.sweep !== undefined) {
      clearInterval(this.sweep);
      this.sweep = undefined;
    }
  }
}
