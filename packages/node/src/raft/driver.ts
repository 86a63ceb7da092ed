/**
 * The Raft driver: owns the pure RawNode and does for it what it cannot do itself — time, disk,
 * network and applying.
 *
 * One ready loop runs at a time. For each Ready, in the order @coffer/raft's `Ready` type demands:
 *   1. persist hard state, entries and snapshot in one atomic, synced LevelDB batch;
 *   2. only then hand the messages to the transport;
 *   3. install a received snapshot, apply committed entries (commands and membership changes),
 *      answer the proposals and read barriers waiting on them;
 *   4. `advance()`.
 * Group commit falls out of this shape: everything proposed while one batch is being fsynced rides
 * in the next Ready, so one fsync covers many writes.
 *
 * Proposals are matched by (index, term): `propose` returns where the entry went, and when the
 * entry at that index is applied its term tells whether it was ours (answer with the apply result)
 * or a different leader's (ours was overwritten: it can never commit). A proposal that neither
 * applies nor is overwritten within the timeout has an unknown outcome.
 *
 * Linearizable reads use ReadIndex. Concurrent reads are coalesced: all barriers requested while
 * one ReadIndex round is open share it, so a burst of reads costs one heartbeat round
 * (read-rounds.ts; a follower sends its rounds in flight again to a new leader).
 *
 * A follower can also hand a proposal to the leader (MsgProp, `proposeViaLeader`): it is answered
 * when this node applies the entry, recognised by its request id (handed-proposals.ts).
 */
import { type ConfChange, type ConfState, decodeConfChange, type Entry, type Message, type MemoryStorage, type NodeId, RawNode, RaftError, type Ready, type Status } from '@coffer/raft';
import {
  type Applier,
  type ApplyOutcome,
  DriverError,
  type DriverEvents,
  type DriverOptions,
  type DurableLog,
  toDriverError,
} from './driver-types.js';
import { HandedProposals } from './handed-proposals.js';
import { ReadRounds } from './read-rounds.js';
import { Snapshotter } from './snapshotter.js';

// The driver's public API: its types live in driver-types.ts, boot-time storage in boot.ts.
export {
  type Applier,
  type ApplyOutcome,
  DEFAULT_SNAPSHOT_CATCHUP_ENTRIES,
  DriverError,
  type DriverErrorCode,
  type DriverEvents,
  type DriverOptions,
  type DurableLog,
  type LoadedLog,
} from './driver-types.js';
export { loadStorage } from './boot.js';

interface PendingProposal {
  term: number;
  resolve: (v: ApplyOutcome) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const EMPTY = new Uint8Array(0);

/**
 * Runs one Raft member.
 *
 * @example
 * ```ts
 * const d = new RaftDriver(opts, storage, log, applier, (msgs) => transport.send(msgs), events);
 * d.start();
 * const result = await d.propose(encodeCommand(cmd));
 * await d.readBarrier(); // then read local state: linearizable
 * ```
 */
export class RaftDriver {
  readonly storage: MemoryStorage;
  private readonly node: RawNode;
  private readonly opts: DriverOptions;
  private readonly log: DurableLog;
  private readonly applier: Applier;
  private readonly sendMessages: (msgs: Message[]) => void;
  private readonly events: DriverEvents;
  private readonly pending = new Map<number, PendingProposal>();
  /** Proposals this follower handed to the leader, by request id, and their MsgProps not sent yet. */
  private readonly handed: HandedProposals;
  private readonly handedOut: Message[] = [];
  /** Messages whose sending waits for the end of this turn of the event loop ({@link sendLater}). */
  private readonly deferred: Message[] = [];
  private wasLeader = false;
  private readonly appliedWaiters: { index: number; resolve: () => void }[] = [];
  /** Linearizable read barriers (ReadIndex rounds). */
  private readonly reads: ReadRounds;
  private ticker: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = false;
  private lead: NodeId | null = null;
  private term = 0;
  /** Role as of the last Ready (`leader` lets messages go out before the leader's own fsync). */
  private role = 'follower';
  /** Term and vote as last persisted. */
  private durableTerm = 0;
  private durableVote: NodeId | null = null;
  private confState: ConfState;
  /** Bumped whenever `confState` changes (a background snapshot checks it did not meanwhile). */
  private confEpoch = 0;
  /** Periodic (meta-only) snapshots and snapshots built for lagging followers. */
  private readonly snapshots: Snapshotter;

  /**
   * @param opts - timing and limits
   * @param storage - raft's in-memory view, already populated from disk (see {@link loadStorage})
   * @param log - the durable log
   * @param applier - the state machine
   * @param sendMessages - the transport
   * @param events - hooks; `onFatal` must stop the process
   */
  constructor(opts: DriverOptions, storage: MemoryStorage, log: DurableLog, applier: Applier, sendMessages: (msgs: Message[]) => void, events: DriverEvents) {
    this.opts = opts;
    this.storage = storage;
    const boot = storage.initialState().hardState;
    this.durableTerm = boot.term;
    this.durableVote = boot.vote;
    this.log = log;
    this.applier = applier;
    this.sendMessages = sendMessages;
    this.events = events;
    this.handed = new HandedProposals({
      timeoutMs: opts.proposalTimeoutMs ?? 10_000,
      graceMs: opts.electionTicks * opts.tickMs,
      handAgain: (data) => {
        if (this.stopped) throw new DriverError('stopped', 'the node is shutting down');
        if (this.isLeader()) this.node.propose(data);
        else this.handOut(this.node.proposeViaLeader(data));
        this.kick();
      },
    });
    this.reads = new ReadRounds({
      readIndex: (ctx) => this.node.readIndex(ctx),
      kick: () => this.kick(),
      waitApplied: (index) => this.waitApplied(index),
      stopped: () => this.stopped,
      timeoutMs: opts.readTimeoutMs ?? 5_000,
      graceMs: opts.electionTicks * opts.tickMs,
    });
    const snap = storage.snapshot();
    this.confState = snap.meta.confState;
    this.snapshots = new Snapshotter(
      {
        storage,
        log,
        applier,
        events,
        opts,
        stopped: () => this.stopped,
        conf: () => ({ state: this.confState, epoch: this.confEpoch }),
        fail: (err) => {
          if (this.stopped) return;
          this.stopped = true;
          this.events.onFatal(err);
        },
      },
      snap.meta.index,
    );
    this.node = new RawNode(
      {
        id: opts.nodeId,
        electionTicks: opts.electionTicks,
        // Elections start within [1, 1.5) election timeouts of losing the leader, so a majority
        // that loses its leader elects another and commits again within 2 election timeouts —
        // unless two followers stand at once and split the vote: each further round (term) adds
        // up to 1.5 timeouts (measured: about 1 leader crash in 16 on an idle machine).
        electionJitterTicks: Math.max(1, Math.floor(opts.electionTicks / 2)),
        heartbeatTicks: opts.heartbeatTicks,
        rng: opts.rng ?? Math.random,
        preVote: true,
        checkQuorum: true,
        applied: applier.appliedIndex(),
        maxSizePerMsg: 1024 * 1024,
        // One MsgApp with entries in flight per follower: whatever is proposed meanwhile goes in the
        // next one. Each message costs an HTTP round on both sides here, so bigger batches win:
        // measured with 64 writers, half the peer requests and ~15% less CPU per write than a
        // window of 256 (and more writes/s). Catch-up still moves up to maxSizePerMsg per round trip.
        maxInflightMsgs: 1,
        maxInflightBytes: 32 * 1024 * 1024,
        maxSnapshotChunkBytes: 1024 * 1024,
        ...(opts.logger === undefined ? {} : { logger: opts.logger }),
      },
      storage,
    );
    // The configuration as of the applied index (what a snapshot must record), not the one in force.
    this.confState = this.node.appliedConfState();
  }

  /** Starts ticking. */
  start(): void {
    this.ticker = setInterval(() => {
      if (this.stopped) return;
      this.node.tick();
      this.kick();
    }, this.opts.tickMs);
    this.kick();
  }

  /** Stops ticking and fails everything still waiting. */
  stop(): void {
    this.stopped = true;
    if (this.ticker !== undefined) clearInterval(this.ticker);
    const err = new DriverError('stopped', 'the node is shutting down');
    for (const [i, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(i);
    }
    this.handed.failAll(err);
    this.reads.failAll(err);
  }

  /** @returns raft's status (term, leader, commit, progress on the leader) */
  status(): Status {
    return this.node.status();
  }

  /** @returns the leader this node knows of */
  leader(): NodeId | null {
    return this.lead;
  }

  /** @returns whether this node is the leader now */
  isLeader(): boolean {
    return this.lead === this.opts.nodeId && this.node.status().raftState === 'leader';
  }

  /** @returns the latest configuration */
  members(): ConfState {
    return this.confState;
  }

  /** Feeds messages from a peer. */
  step(msgs: readonly Message[]): void {
    if (this.stopped) return;
    for (const m of msgs) {
      try {
        this.node.step(m);
      } catch (err) {
        // A message from a peer can be stale or from a removed member; raft refuses it with a
        // typed error and nothing changes. Anything else is a broken invariant.
        if (!(err instanceof RaftError)) throw err;
      }
    }
    this.kick();
  }

  /** Tells raft a peer did not answer (the leader falls back to probing it). */
  reportUnreachable(id: NodeId): void {
    if (this.stopped) return;
    try {
      this.node.step({ type: 'MsgUnreachable', from: id, to: this.opts.nodeId, term: 0, logTerm: 0, index: 0, commit: 0, entries: [], reject: false, rejectHint: 0, context: EMPTY });
    } catch {
      // Not a leader: nothing to report.
    }
  }

  /**
   * Proposes a command and waits until it is applied on this node.
   *
   * @param data - an encoded command
   * @returns the state machine's result for it
   * @throws {DriverError} not_leader (with the leader id), dropped, outcome_unknown, stopped
   */
  propose(data: Uint8Array): Promise<ApplyOutcome> {
    return this.track(() => this.node.propose(data));
  }

  /**
   * A follower hands a command to the leader (Raft's MsgProp) and waits until it applies it here,
   * recognising it by its request id (see handed-proposals.ts).
   *
   * @param data - an encoded command
   * @param requestId - the command's request id (fresh, non-empty)
   * @returns the state machine's result for it
   * @throws {DriverError} dropped (no leader known, or this node leads), outcome_unknown, stopped
   */
  proposeViaLeader(data: Uint8Array, requestId: string): Promise<ApplyOutcome> {
    if (this.stopped) return Promise.reject(new DriverError('stopped', 'the node is shutting down'));
    if (!this.handed.isFresh(requestId)) return Promise.reject(new Error(`a handed proposal needs a fresh request id, got ${JSON.stringify(requestId)}`));
    let m: Message;
    try {
      m = this.node.proposeViaLeader(data);
    } catch (err) {
      return Promise.reject(toDriverError(err));
    }
    const applied = this.handed.wait(requestId, data, m.to);
    this.handOut(m);
    return applied;
  }

  /**
   * Sends a MsgProp at the end of this turn of the event loop, with the others made meanwhile: not
   * behind a Ready (whose fsync the message does not need).
   */
  private handOut(m: Message): void {
    if (this.handedOut.push(m) === 1) setImmediate(() => !this.stopped && this.send(this.handedOut.splice(0)));
  }

  /**
   * Proposes a membership change and waits until it is applied here.
   *
   * @param cc - the change; `context` carries the member's addresses
   * @throws {DriverError} as {@link propose}, plus conf_change_pending / invalid_conf_change
   */
  proposeConfChange(cc: ConfChange): Promise<ApplyOutcome> {
    return this.track(() => this.node.proposeConfChange(cc));
  }

  /** Asks raft to hand leadership to `to` (returns at once; watch the leader). */
  transferLeadership(to: NodeId): void {
    this.node.transferLeadership(to);
    this.kick();
  }

  /**
   * Waits until this node's state reflects every write acknowledged before the call (ReadIndex).
   *
   * @throws {DriverError} no_quorum when no read index arrives in time, stopped
   */
  readBarrier(): Promise<void> {
    if (this.stopped) return Promise.reject(new DriverError('stopped', 'the node is shutting down'));
    return this.reads.barrier();
  }

  /** Resolves once the local applied index reaches `index`. */
  waitApplied(index: number): Promise<void> {
    if (this.applier.appliedIndex() >= index) return Promise.resolve();
    return new Promise((resolve) => this.appliedWaiters.push({ index, resolve }));
  }

  private track(fn: () => { index: number; term: number }): Promise<ApplyOutcome> {
    if (this.stopped) return Promise.reject(new DriverError('stopped', 'the node is shutting down'));
    let at: { index: number; term: number };
    try {
      at = fn();
    } catch (err) {
      return Promise.reject(toDriverError(err));
    }
    this.kick();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(at.index);
        reject(new DriverError('outcome_unknown', 'the write was not confirmed in time; it may or may not have been applied'));
      }, this.opts.proposalTimeoutMs ?? 10_000);
      this.pending.set(at.index, { term: at.term, resolve, reject, timer });
    });
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        while (!this.stopped && this.node.hasReady()) await this.handleReady(this.node.ready());
      } while (this.again && !this.stopped);
    } catch (err) {
      this.stopped = true;
      this.events.onFatal(err);
    } finally {
      this.running = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState !== undefined) this.role = rd.softState.raftState;
    // A leader's messages promise nothing about its own disk (raft counts the leader's copy of an
    // entry only once `advance` reports it persisted), so a leader that keeps its term and vote
    // sends them before its fsync: its own write overlaps the followers' (Raft thesis §10.2.1).
    // Everyone else sends only after persisting what their messages (acks, votes) promise. A
    // Ready without entries, snapshot or a new term/vote persists at most the commit index, which
    // no message promises (every earlier Ready is on disk already): its messages go at once too,
    // so a follower's answer to a heartbeat or a commit update does not wait for a disk write.
    const keepsTermAndVote = rd.hardState === undefined || (rd.hardState.term === this.durableTerm && rd.hardState.vote === this.durableVote);
    const early = rd.snapshot === undefined && keepsTermAndVote && (this.role === 'leader' || rd.entries.length === 0);
    // 1. Persist. The snapshot first: entries in the same Ready follow it.
    if (rd.snapshot !== undefined) {
      await this.log.saveSnapshot(rd.snapshot.meta, rd.snapshot.data, true);
      this.storage.applySnapshot(rd.snapshot);
    }
    const persisting = rd.entries.length > 0 || rd.hardState !== undefined ? this.log.append(rd.entries, rd.hardState, rd.mustSync) : undefined;
    // Early messages go out once the write is queued (a synced one has already started on an idle
    // group writer): the leader's fsync runs while its appends are being sent, not after. A Ready
    // that only tells the followers of a commit while a client waits here for one of its entries
    // sends at the end of this turn of the event loop instead: the waiter's answer (and its audit
    // line's write) go first, and what they wait for is not behind two socket writes.
    if (early) {
      const answerFirst = rd.entries.length === 0 && rd.committedEntries.length > 0 && (this.pending.size > 0 || this.handed.size > 0);
      if (answerFirst) this.sendLater(rd.messages);
      else this.send(rd.messages);
    }
    let applying: Promise<void> | undefined;
    if (persisting !== undefined) {
      // Apply while this Ready's log write is in flight instead of after it. Committed entries
      // are already on a quorum's disks (for the leader that quorum counts its own copy only once
      // an earlier Ready's fsync returned), so applying them never waits for this write. The
      // apply's own writes are queued in the same group writer behind this one, so the disk never
      // holds state ahead of the log (one LevelDB batch, or a later one). A lone write saves a
      // LevelDB write on the commit path: the commit index and the applied state go in one batch.
      if (rd.snapshot === undefined && rd.committedEntries.length > 0) {
        applying = this.applyCommitted(rd.committedEntries);
        // Awaited below; a rejection meanwhile must not count as unhandled.
        applying.catch(() => undefined);
      }
      try {
        await persisting;
      } catch (err) {
        await applying?.catch(() => undefined);
        throw err;
      }
      this.storage.append(rd.entries);
      if (rd.hardState !== undefined) {
        this.storage.setHardState(rd.hardState);
        this.durableTerm = rd.hardState.term;
        this.durableVote = rd.hardState.vote;
      }
    }
    // 2. Send, now that what the messages promise is durable.
    if (!early) this.send(rd.messages);
    // 3. Apply.
    if (rd.softState !== undefined) this.onSoftState(rd.softState.lead, rd.softState.raftState);
    if (rd.hardState !== undefined && rd.hardState.term !== this.term) this.term = rd.hardState.term;
    if (rd.snapshot !== undefined) {
      await this.applier.restore(rd.snapshot.meta.index, rd.snapshot.data);
      this.snapshots.snapshotIndex = rd.snapshot.meta.index;
      this.confState = rd.snapshot.meta.confState;
      this.confEpoch++;
      this.failOverwritten(rd.snapshot.meta.index, rd.snapshot.meta.term, true);
      this.handed.failAll(new DriverError('outcome_unknown', 'state was replaced by a snapshot; the write may or may not have been applied'));
      this.events.onSnapshotInstalled?.(rd.snapshot.meta.index);
    }
    if (applying !== undefined) await applying;
    else if (rd.committedEntries.length > 0) await this.applyCommitted(rd.committedEntries);
    this.reads.confirmed(rd.readStates);
    this.node.advance();
    this.releaseApplied();
    this.snapshots.maybeSnapshot();
  }

  private async applyCommitted(entries: Entry[]): Promise<void> {
    const confChanges = new Map<number, ConfChange>();
    for (const e of entries) {
      if (e.type === 'confChange') {
        const cc = decodeConfChange(e.data);
        confChanges.set(e.index, cc);
        this.confState = this.node.applyConfChange(cc);
        this.confEpoch++;
      }
    }
    // Proposals are answered as soon as their entries are applied in memory (this node's reads
    // see them from then on); the unsynced state write that follows adds no durability.
    const settle = (e: Entry, outcome: ApplyOutcome): void => {
      const p = this.pending.get(e.index);
      if (p === undefined) return;
      this.pending.delete(e.index);
      clearTimeout(p.timer);
      if (p.term === e.term) p.resolve(outcome);
      else p.reject(new DriverError('dropped', 'leadership changed before the write committed; it was not applied'));
    };
    const early = this.pending.size === 0 && this.handed.size === 0 ? undefined : (byIndex: ReadonlyMap<number, ApplyOutcome>): void => {
      for (const e of entries) if (byIndex.has(e.index)) settle(e, byIndex.get(e.index));
      this.handed.settle(byIndex.values());
    };
    const outcomes = await this.applier.apply(entries, confChanges, early);
    for (let i = 0; i < entries.length; i++) settle(entries[i] as Entry, outcomes[i]);
    this.handed.settle(outcomes);
    const last = entries[entries.length - 1] as Entry;
    this.events.onApplied?.(last.index);
  }

  /**
   * This node stopped being leader (CheckQuorum, a higher term, a transfer). Its read rounds
   * already sent to raft fail now (a read has no effect; the client may retry). Its pending writes may still be committed by the next leader,
   * so each waits at most one more election timeout for that, then fails with an unknown outcome:
   * a leader cut off from the majority answers within about two election timeouts instead of
   * holding requests until the proposal timeout.
   */
  private lostLeadership(): void {
    this.reads.failInFlight(new DriverError('no_quorum', 'leadership was lost before the read was confirmed'));
    const graceMs = this.opts.electionTicks * this.opts.tickMs;
    for (const [i, p] of this.pending) {
      clearTimeout(p.timer);
      p.timer = setTimeout(() => {
        if (this.pending.get(i) !== p) return;
        this.pending.delete(i);
        p.reject(new DriverError('outcome_unknown', 'leadership was lost before the write was confirmed; it may or may not have been applied'));
      }, graceMs);
    }
  }

  /** Fails proposals at or below `index` that a snapshot replaced (their fate is unknown here). */
  private failOverwritten(index: number, _term: number, unknown: boolean): void {
    for (const [i, p] of this.pending) {
      if (i > index) continue;
      this.pending.delete(i);
      clearTimeout(p.timer);
      p.reject(unknown ? new DriverError('outcome_unknown', 'state was replaced by a snapshot; the write may or may not have been applied') : new DriverError('dropped', 'the write was overwritten'));
    }
  }

  private releaseApplied(): void {
    if (this.appliedWaiters.length === 0) return;
    const applied = this.applier.appliedIndex();
    for (let i = this.appliedWaiters.length - 1; i >= 0; i--) {
      const w = this.appliedWaiters[i]!;
      if (w.index <= applied) {
        this.appliedWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Sends at the end of this turn of the event loop, before anything sent later (order kept). */
  private sendLater(messages: Message[]): void {
    if (messages.length === 0) return;
    if (this.deferred.length === 0) setImmediate(() => !this.stopped && this.send([]));
    for (const m of messages) this.deferred.push(m);
  }

  private send(messages: Message[]): void {
    if (this.deferred.length > 0) messages = this.deferred.splice(0).concat(messages);
    if (messages.length === 0) return;
    this.sendMessages(messages);
    for (const m of messages) {
      if (m.type === 'MsgSnap' && m.snapshot !== undefined && m.snapshot.offset === 0) this.events.onSnapshotSent?.(m.to, m.snapshot.meta.index);
    }
  }

  private onSoftState(lead: NodeId | null, role: string): void {
    const st = this.node.status();
    if (this.wasLeader && role !== 'leader') this.lostLeadership();
    this.wasLeader = role === 'leader';
    if (lead !== this.lead) {
      this.lead = lead;
      this.handed.leaderChanged(lead);
      this.reads.leaderChanged(lead);
      this.events.onLeaderChange?.(lead, st.term);
    }
    this.events.onRoleChange?.(role, st.term);
  }
}
