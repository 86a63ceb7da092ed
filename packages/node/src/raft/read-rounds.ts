/**
 * Linearizable read barriers over Raft's ReadIndex, coalesced: all barriers requested while one
 * round is open share it, so a burst of reads costs one heartbeat round. One round is in flight at
 * a time; the next one goes when it completes (one quorum round serves every read that arrived
 * meanwhile), or after a short wait in case raft dropped it.
 *
 * A round in flight on a follower whose leader changes is sent again to the new leader: the old
 * one answers nothing once it has stepped down, and a read point from the new leader is as good
 * (it is taken after the change). When the follower loses its leader altogether (cut off from
 * it, or an election is on), its rounds in flight wait one election timeout for the next leader,
 * then fail. Without this, a follower's reads
 * and secret puts waited out the read timeout after every failover and on the minority side of a
 * partition.
 */
import { randomInt } from 'node:crypto';
import { RaftError, type ReadState } from '@coffer/raft';
import { DriverError } from './driver-types.js';

interface ReadRound {
  id: number;
  waiters: { resolve: () => void; reject: (e: Error) => void }[];
  timer?: NodeJS.Timeout;
}

/** How long a new read round waits for the one in flight before it is sent anyway. */
const ROUND_FALLBACK_MS = 20;

function ctxOf(id: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, id);
  return b;
}

function idOf(ctx: Uint8Array): number {
  if (ctx.length !== 8) return -1;
  return new DataView(ctx.buffer, ctx.byteOffset, 8).getFloat64(0);
}

/** What {@link ReadRounds} needs from the driver. */
export interface ReadRoundsDeps {
  /** Asks raft for a read index (throws RAFT_NOT_LEADER when no leader is known). */
  readonly readIndex: (context: Uint8Array) => void;
  /** Runs the ready loop (the request goes out with the next Ready). */
  readonly kick: () => void;
  readonly waitApplied: (index: number) => Promise<void>;
  readonly stopped: () => boolean;
  readonly timeoutMs: number;
  /** How long rounds in flight wait for a next leader once this node knows none (an election timeout). */
  readonly graceMs: number;
}

/** See the module comment. */
export class ReadRounds {
  private readonly deps: ReadRoundsDeps;
  private readonly rounds = new Map<number, ReadRound>();
  private open: ReadRound | undefined;
  /** Sends the open round if the rounds in flight take too long (a dropped ReadIndex). */
  private openTimer: NodeJS.Timeout | undefined;
  /**
   * Read-round ids are the ReadIndex context, and the leader merges requests with equal contexts
   * into one (answering only the first sender): ids that every node counted from 1 collided across
   * nodes, and a follower whose round shared an id with another's waited out the read timeout (503
   * no_quorum). Each driver starts at a random point of a 2^47 space instead.
   */
  private nextId = randomInt(1, 2 ** 47);

  /** @param deps - see {@link ReadRoundsDeps} */
  constructor(deps: ReadRoundsDeps) {
    this.deps = deps;
  }

  /** A barrier: resolves once a read index was confirmed and applied here. */
  barrier(): Promise<void> {
    return new Promise((resolve, reject) => {
      let r = this.open;
      if (r === undefined) {
        r = { id: this.nextId++, waiters: [] };
        this.open = r;
        if (this.rounds.size === 0) {
          // Open the round for the rest of this turn of the event loop, then ask raft once.
          setImmediate(() => this.send());
        } else {
          this.openTimer = setTimeout(() => this.send(), ROUND_FALLBACK_MS);
        }
      }
      r.waiters.push({ resolve, reject });
    });
  }

  /** Read points raft confirmed (a Ready's `readStates`). */
  confirmed(readStates: readonly ReadState[]): void {
    if (readStates.length === 0) return;
    for (const rs of readStates) {
      const r = this.rounds.get(idOf(rs.context));
      if (r === undefined) continue;
      this.rounds.delete(r.id);
      if (r.timer !== undefined) clearTimeout(r.timer);
      const waiters = r.waiters;
      void this.deps.waitApplied(rs.index).then(() => {
        for (const w of waiters) w.resolve();
      });
    }
    if (this.open !== undefined && this.rounds.size === 0) setImmediate(() => this.send());
  }

  /**
   * The leader this node knows changed to `lead`: rounds in flight go again to it. With no leader
   * (this node stopped hearing from one: it is cut off, or an election is on) they wait one grace
   * period for the next leader, then fail with no_quorum instead of waiting out the read timeout.
   */
  leaderChanged(lead: string | null): void {
    if (lead === null) {
      for (const r of this.rounds.values()) {
        if (r.timer !== undefined) clearTimeout(r.timer);
        r.timer = setTimeout(() => {
          this.rounds.delete(r.id);
          this.fail(r, new DriverError('no_quorum', 'the leader was lost and no other was elected in time to confirm the read'));
        }, this.deps.graceMs);
      }
      return;
    }
    if (this.rounds.size === 0) return;
    const open = this.open ?? { id: this.nextId++, waiters: [] };
    for (const r of this.rounds.values()) {
      if (r.timer !== undefined) clearTimeout(r.timer);
      open.waiters.push(...r.waiters);
    }
    this.rounds.clear();
    this.open = open;
    setImmediate(() => this.send());
  }

  /** Fails the rounds in flight (this node lost leadership: a read has no effect, the client may retry). */
  failInFlight(err: Error): void {
    for (const r of this.rounds.values()) this.fail(r, err);
    this.rounds.clear();
  }

  /** Fails every round, the open one included (the node stops). */
  failAll(err: Error): void {
    if (this.openTimer !== undefined) clearTimeout(this.openTimer);
    for (const r of this.rounds.values()) this.fail(r, err);
    this.rounds.clear();
    if (this.open !== undefined) this.fail(this.open, err);
    this.open = undefined;
  }

  private send(): void {
    const r = this.open;
    if (r === undefined || this.deps.stopped()) return;
    this.open = undefined;
    if (this.openTimer !== undefined) clearTimeout(this.openTimer);
    this.openTimer = undefined;
    this.rounds.set(r.id, r);
    r.timer = setTimeout(() => {
      this.rounds.delete(r.id);
      this.fail(r, new DriverError('no_quorum', 'no read index from a quorum in time'));
    }, this.deps.timeoutMs);
    try {
      this.deps.readIndex(ctxOf(r.id));
    } catch (err) {
      this.rounds.delete(r.id);
      clearTimeout(r.timer);
      this.fail(r, err instanceof RaftError && err.code === 'RAFT_NOT_LEADER' ? new DriverError('no_quorum', 'no leader') : (err as Error));
      return;
    }
    this.deps.kick();
  }

  private fail(r: ReadRound, err: Error): void {
    if (r.timer !== undefined) clearTimeout(r.timer);
    for (const w of r.waiters) w.reject(err);
    r.waiters = [];
    if (this.open !== undefined && this.open !== r && this.rounds.size === 0 && !this.deps.stopped()) setImmediate(() => this.send());
  }
}
