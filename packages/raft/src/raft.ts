// The Raft core (etcd-io/raft `raft.go`): roles, elections, replication, commit, membership and
// the step functions. Split out as in etcd: majority arithmetic (quorum.ts), ReadIndex
// (read-only.ts), chunked snapshot transfer (snapshot-transfer.ts), the configuration log
// (conf-log.ts) and the per-follower progress (progress.ts).
import { checkMembershipChange } from './conf-change.js';
import { ConfLog } from './conf-log.js';
import { decodeConfChange } from './codec.js';
import type { ResolvedConfig } from './config.js';
import { RaftError, invariant } from './errors.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import { committedIndex, majority, voteResult, type VoteResult } from './quorum.js';
import { ReadOnly, sendReadIndexResponse } from './read-only.js';
import { SnapshotReceiver, nextChunks } from './snapshot-transfer.js';
import { stepCandidate, stepFollower } from './step-follower.js';
import { stepLeader } from './step-leader.js';
import type { Storage } from './storage.js';
import type { ConfChange, ConfState, Entry, EntryType, Message, MessageType, NodeId, RaftRole, ReadState, Snapshot } from './types.js';

const EMPTY = new Uint8Array(0);
// Marks a vote request caused by leadership transfer: voters must not ignore it because of the
// CheckQuorum lease (etcd's campaignTransfer context).
const TRANSFER_CONTEXT = new Uint8Array([0x54]);

function isTransfer(ctx: Uint8Array): boolean {
  return ctx.length === 1 && ctx[0] === 0x54;
}

/** Fields a caller may leave out of an outgoing message. */
type MessageInit = Partial<Message> & { type: MessageType; to: NodeId };

/**
 * The raft state machine (etcd-io/raft `raft.go`). Internal: drive it through `RawNode`.
 *
 * As in etcd, the per-role step functions are free functions over the raft (`stepLeader` in
 * step-leader.ts; `stepFollower`, `stepCandidate` and the follower's message handlers in
 * step-follower.ts), so the members they use are not `private`; nothing outside this package
 * sees this class.
 *
 * Membership is single-server changes that take effect when the entry is APPENDED to a log (Raft
 * thesis §4.1), not when it is applied: the configuration in force is always the latest one in
 * this node's log, and a truncated change is rolled back with the entries.
 */
export class Raft {
  readonly id: NodeId;
  readonly cfg: ResolvedConfig;
  readonly log: RaftLog;

  term = 0;
  vote: NodeId | null = null;
  lead: NodeId | null = null;
  role: RaftRole = 'follower';

  voters: Set<NodeId> = new Set();
  learners: Set<NodeId> = new Set();
  readonly progress: Map<NodeId, Progress> = new Map();
  private readonly votes: Map<NodeId, boolean> = new Map();

  msgs: Message[] = [];
  readStates: ReadState[] = [];

  electionElapsed = 0;
  private heartbeatElapsed = 0;
  // Ticks since this node became leader; peers' lastHeardTick is measured against it.
  private leaderTicks = 0;
  private randomizedElectionTimeout = 0;
  leadTransferee: NodeId | null = null;

  // Configuration as of the latest snapshot, and every confChange entry after it (in log order).
  private readonly confLog: ConfLog;

  // ReadIndex (Raft thesis §6.4): requests waiting for a heartbeat quorum, in arrival order.
  readonly readOnly: ReadOnly = new ReadOnly();
  // Reads that arrived before this leader committed an entry of its own term.
  pendingReadIndexMessages: Message[] = [];

  readonly snapRecv: SnapshotReceiver = new SnapshotReceiver();
  // Proposals append at once but replicate lazily, so many proposals share one MsgApp.
  private needBcast = false;

  constructor(cfg: ResolvedConfig, storage: Storage) {
    this.id = cfg.id;
    this.cfg = cfg;
    this.log = new RaftLog(storage);
    const { hardState, confState } = storage.initialState();
    this.confLog = new ConfLog(confState);
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    if (last >= first) {
      for (const e of storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER)) this.confLog.note(e, this.id);
    }
    this.log.onAppend = (ents) => this.onAppend(ents);
    if (hardState.term !== 0 || hardState.vote !== null || hardState.commit !== 0) {
      invariant(
        hardState.commit >= this.log.committed && hardState.commit <= this.log.lastIndex(),
        `${this.id} state.commit ${hardState.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`,
      );
      this.log.committed = hardState.commit;
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    if (cfg.applied > 0) this.log.appliedTo(Math.min(cfg.applied, this.log.committed));
    this.switchConfig();
    this.becomeFollower(this.term, null);
    this.cfg.logger.info(`${this.id} newRaft [term: ${this.term}, commit: ${this.log.committed}, applied: ${this.log.applied}, lastindex: ${this.log.lastIndex()}]`);
  }

  // ---------------------------------------------------------------- configuration

  currentConf(): ConfState {
    return this.confLog.current();
  }

  /** Index of the latest confChange entry in the log (0 when none after the snapshot). */
  lastConfIndex(): number {
    return this.confLog.lastIndex();
  }

  private onAppend(ents: Entry[]): void {
    // Invariant: the configuration in force is the latest in the log, so a truncated change is undone.
    let changed = this.confLog.truncateFrom(ents[0]!.index);
    for (const e of ents) if (this.confLog.note(e, this.id)) changed = true;
    if (changed) this.switchConfig();
  }

  private newProgress(id: NodeId, isLearner: boolean): Progress {
    const pr = new Progress(this.log.lastIndex() + 1, isLearner, this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
    // A new member counts as just heard from, so CheckQuorum gives it a full election timeout to answer.
    pr.recentActive = true;
    pr.lastHeardTick = this.leaderTicks;
    if (id === this.id) pr.match = this.log.stableLastIndex();
    return pr;
  }

  private switchConfig(): void {
    const cs = this.currentConf();
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners);
    for (const id of cs.voters) {
      const pr = this.progress.get(id);
      if (pr === undefined) this.progress.set(id, this.newProgress(id, false));
      else pr.isLearner = false;
    }
    for (const id of cs.learners) {
      const pr = this.progress.get(id);
      if (pr === undefined) this.progress.set(id, this.newProgress(id, true));
      else pr.isLearner = true;
    }
    for (const id of [...this.progress.keys()]) {
      if (!this.voters.has(id) && !this.learners.has(id)) this.progress.delete(id);
    }
    if (this.leadTransferee !== null && !this.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
    if (this.role === 'leader' && this.maybeCommit()) this.commitAdvanced();
  }

  /** A node may campaign only when it is a voter in the configuration it knows. */
  promotable(): boolean {
    return this.voters.has(this.id);
  }

  private quorum(): number {
    return majority(this.voters.size);
  }

  // ---------------------------------------------------------------- sending

  send(m: MessageInit): void {
    this.msgs.push({
      type: m.type,
      to: m.to,
      from: this.id,
      term: m.term ?? this.term,
      logTerm: m.logTerm ?? 0,
      index: m.index ?? 0,
      commit: m.commit ?? 0,
      entries: m.entries ?? [],
      reject: m.reject ?? false,
      rejectHint: m.rejectHint ?? 0,
      context: m.context ?? EMPTY,
      ...(m.snapshot !== undefined ? { snapshot: m.snapshot } : {}),
    });
  }

  /** Sends MsgApp (or starts a snapshot) to `to`; returns whether a message went out. */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || to === this.id || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    let ents: Entry[] = [];
    let compacted = prevTerm === null;
    if (!compacted) {
      try {
        ents = this.log.slice(pr.next, this.log.lastIndex() + 1, this.cfg.maxSizePerMsg);
      } catch (e) {
        if (!(e instanceof RaftError && e.code === 'RAFT_COMPACTED')) throw e;
        compacted = true;
      }
    }
    if (compacted) return this.sendSnapshot(to, pr);
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'MsgApp', to, index: prevIndex, logTerm: prevTerm!, entries: ents, commit: this.log.committed });
    if (ents.length > 0) {
      const last = ents[ents.length - 1]!.index;
      if (pr.state === 'replicate') {
        let bytes = 0;
        for (const e of ents) bytes += e.data.length;
        pr.next = last + 1;
        pr.inflights.add(last, bytes);
      } else {
        pr.probeSent = true;
      }
    } else if (pr.state === 'probe') {
      pr.probeSent = true;
    }
    return true;
  }

  sendAppend(to: NodeId): void {
    // Pipelining: keep sending while the window allows (replicate); a probe sends one.
    if (this.maybeSendAppend(to, true)) while (this.maybeSendAppend(to, false));
  }

  bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  bcastHeartbeat(ctx?: Uint8Array): void {
    const context = ctx ?? this.readOnly.lastPendingContext() ?? EMPTY;
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      // Never tell a follower to commit beyond what it is known to hold.
      this.send({ type: 'MsgHeartbeat', to: id, commit: Math.min(pr.match, this.log.committed), context });
    }
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    const snap = this.log.snapshotToSend();
    if (snap === null) {
      // Being built on demand: try again on the follower's next heartbeat response.
      if (pr.state === 'snapshot') pr.becomeProbe();
      return false;
    }
    if (snap.meta.index === 0) {
      this.cfg.logger.warn(`${this.id} needs a snapshot for ${to} but none is available`);
      return false;
    }
    pr.becomeSnapshot(snap.meta.index);
    pr.transfer = { snapIndex: snap.meta.index, snapTerm: snap.meta.term, acked: 0, sent: 0, started: false, ackedAtLastHeartbeat: -1 };
    this.cfg.logger.info(`${this.id} [firstindex: ${this.log.firstIndex()}, commit: ${this.log.committed}] sent snapshot [index: ${snap.meta.index}, term: ${snap.meta.term}] to ${to}`);
    this.sendSnapChunks(to, pr);
    return true;
  }

  /** Sends the next chunks of a snapshot transfer, at most a window ahead of the acknowledged bytes. */
  sendSnapChunks(to: NodeId, pr: Progress): void {
    const tr = pr.transfer;
    if (tr === null) return;
    const snap = this.log.snapshotToSend();
    if (snap === null || snap.meta.index !== tr.snapIndex || snap.meta.term !== tr.snapTerm) {
      // A newer snapshot replaced the one in flight: start over with it.
      this.sendSnapshot(to, pr);
      return;
    }
    for (const snapshot of nextChunks(tr, snap, this.cfg.maxSnapshotChunkBytes, this.cfg.maxSnapshotChunksInflight)) {
      this.send({ type: 'MsgSnap', to, snapshot });
    }
  }

  sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'MsgTimeoutNow', to });
  }

  // ---------------------------------------------------------------- role changes

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.leaderTicks = 0;
    this.randomizedElectionTimeout = this.cfg.electionTicks + Math.floor(this.cfg.rng() * this.cfg.electionJitterTicks);
    this.abortLeaderTransfer();
    this.votes.clear();
    for (const id of [...this.progress.keys()]) this.progress.set(id, this.newProgress(id, this.learners.has(id)));
    this.readOnly.reset();
    this.pendingReadIndexMessages = [];
    this.needBcast = false;
  }

  becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
    this.cfg.logger.info(`${this.id} became follower at term ${this.term}`);
  }

  private becomeCandidate(): void {
    invariant(this.role !== 'leader', 'invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
    this.cfg.logger.info(`${this.id} became candidate at term ${this.term}`);
  }

  private becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'invalid transition [leader -> pre-candidate]');
    // No term bump and no vote: a pre-election changes nothing durable (Raft thesis §9.6).
    this.votes.clear();
    this.lead = null;
    this.role = 'preCandidate';
    this.cfg.logger.info(`${this.id} became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    invariant(this.role !== 'follower', 'invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const self = this.progress.get(this.id);
    if (self !== undefined) {
      self.becomeReplicate();
      self.match = this.log.stableLastIndex();
      self.next = this.log.lastIndex() + 1;
    }
    // The empty entry lets this leader commit (and so learn the commit index) in its own term.
    this.appendEntry('normal', EMPTY);
    this.cfg.logger.info(`${this.id} became leader at term ${this.term}`);
  }

  private appendEntry(type: EntryType, data: Uint8Array): Entry {
    const e: Entry = { term: this.term, index: this.log.lastIndex() + 1, type, data };
    this.log.append([e]);
    return e;
  }

  // ---------------------------------------------------------------- elections

  hup(transfer: boolean): void {
    if (this.role === 'leader') return;
    if (!this.promotable()) {
      this.cfg.logger.warn(`${this.id} is unpromotable and can not campaign`);
      return;
    }
    if (transfer) this.campaign('election', true);
    else if (this.cfg.preVote) this.campaign('preElection', false);
    else this.campaign('election', false);
  }

  campaign(kind: 'preElection' | 'election', transfer: boolean): void {
    let voteType: MessageType;
    let term: number;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      voteType = 'MsgPreVote';
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = 'MsgVote';
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      // Single voter: won at once.
      if (kind === 'preElection') this.campaign('election', transfer);
      else this.becomeLeader();
      return;
    }
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send({ type: voteType, to: id, term, index, logTerm, context: transfer ? TRANSFER_CONTEXT : EMPTY });
    }
  }

  poll(id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.voters, this.votes);
  }

  // ---------------------------------------------------------------- time

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    this.leaderTicks++;
    if (this.cfg.checkQuorum && !this.quorumActive()) {
      this.cfg.logger.warn(`${this.id} stepped down to follower since quorum is not active`);
      this.becomeFollower(this.term, null);
      return;
    }
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.leadTransferee !== null) this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /**
   * CheckQuorum over a sliding window: has a quorum of voters been heard from within the last
   * election timeout? A leader cut off from its quorum thus steps down exactly one election
   * timeout after its last contact, before followers' leases (same length) expire and they elect
   * another leader. Also refreshes each peer's `recentActive`.
   */
  private quorumActive(): boolean {
    let active = 0;
    for (const [id, pr] of this.progress) {
      pr.recentActive = id === this.id || this.leaderTicks - pr.lastHeardTick < this.cfg.electionTicks;
    }
    for (const id of this.voters) if (id === this.id || this.progress.get(id)?.recentActive === true) active++;
    return active >= this.quorum();
  }

  heard(pr: Progress): void {
    pr.recentActive = true;
    pr.lastHeardTick = this.leaderTicks;
  }

  // ---------------------------------------------------------------- proposals

  committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  propose(type: EntryType, data: Uint8Array): { index: number; term: number } {
    if (this.role !== 'leader') throw new RaftError('RAFT_NOT_LEADER', `${this.id} is not the leader`, { leaderId: this.lead });
    if (this.leadTransferee !== null) throw new RaftError('RAFT_PROPOSAL_DROPPED', `${this.id} is transferring leadership to ${this.leadTransferee}`);
    if (type === 'confChange') this.checkConfChange(decodeConfChange(data));
    const e = this.appendEntry(type, data);
    this.needBcast = true;
    return { index: e.index, term: e.term };
  }

  /** The leader appends proposals a voter handed it (MsgProp, see proposals.ts). */
  appendProposed(data: readonly Uint8Array[]): void {
    for (const d of data) this.appendEntry('normal', d);
    if (data.length > 0) this.needBcast = true;
  }

  private checkConfChange(cc: ConfChange): void {
    // One change at a time, and only after this leader committed in its term: together these keep
    // any two configurations in use at most one server apart (the thesis' fix for the
    // single-server change bug, §4.1 and the raft-dev erratum).
    if (this.lastConfIndex() > this.log.committed) {
      throw new RaftError('RAFT_CONF_CHANGE_PENDING', 'a membership change is still uncommitted');
    }
    if (!this.committedEntryInCurrentTerm()) {
      throw new RaftError('RAFT_CONF_CHANGE_PENDING', 'the leader has not committed an entry in its term yet');
    }
    checkMembershipChange(cc, this.voters, this.learners);
  }

  /** Replicates entries proposed since the last call (batching). */
  flush(): void {
    if (this.needBcast) {
      this.needBcast = false;
      if (this.role === 'leader') this.bcastAppend();
    }
  }

  /** The driver persisted entries up to the log's stable index: the leader counts its own copy now. */
  onPersisted(): void {
    if (this.role !== 'leader') return;
    const pr = this.progress.get(this.id);
    if (pr !== undefined && pr.maybeUpdate(this.log.stableLastIndex()) && this.maybeCommit()) this.commitAdvanced();
  }

  maybeCommit(): boolean {
    const index = committedIndex(this.voters, (id) => this.progress.get(id)?.match ?? 0);
    return index !== null && this.log.maybeCommit(index, this.term);
  }

  commitAdvanced(): void {
    this.bcastAppend();
    if (this.pendingReadIndexMessages.length > 0 && this.committedEntryInCurrentTerm()) {
      const pending = this.pendingReadIndexMessages;
      this.pendingReadIndexMessages = [];
      for (const m of pending) sendReadIndexResponse(this, m);
    }
    // A leader removed from the configuration steps down once the removal is committed
    // (Raft thesis §4.2.2); it hands over to the most caught-up voter at once.
    if (this.role === 'leader' && !this.voters.has(this.id) && this.lastConfIndex() <= this.log.committed) {
      let best: NodeId | null = null;
      let bestMatch = -1;
      for (const id of this.voters) {
        const m = this.progress.get(id)?.match ?? 0;
        if (m > bestMatch) {
          best = id;
          bestMatch = m;
        }
      }
      if (best !== null && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
      this.cfg.logger.info(`${this.id} removed from the configuration, stepping down at term ${this.term}`);
      this.becomeFollower(this.term, null);
    }
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = null;
  }

  // ---------------------------------------------------------------- step

  step(m: Message): void {
    if (m.term === 0) {
      // Local message (or a forwarded ReadIndex / TransferLeader).
    } else if (m.term > this.term) {
      if (m.type === 'MsgVote' || m.type === 'MsgPreVote') {
        const inLease = this.cfg.checkQuorum && this.lead !== null && this.electionElapsed < this.cfg.electionTicks;
        if (!isTransfer(m.context) && inLease) {
          // We heard from a leader within the minimum election timeout: a disruptive candidate
          // (e.g. one that was partitioned away) must not depose it (Raft thesis §4.2.3).
          this.cfg.logger.info(`${this.id} [term: ${this.term}] ignored ${m.type} from ${m.from} [term: ${m.term}]: lease is not expired`);
          return;
        }
      }
      if (m.type === 'MsgPreVote') {
        // A pre-vote never changes our term.
      } else if (m.type === 'MsgPreVoteResp' && !m.reject) {
        // We bump the term when we win the pre-election, not before.
      } else if (m.type === 'MsgApp' || m.type === 'MsgHeartbeat' || m.type === 'MsgSnap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'MsgHeartbeat' || m.type === 'MsgApp')) {
        // A stale leader (e.g. after a partition) learns our term from this and steps down;
        // otherwise, with PreVote, it would never hear of the higher term.
        this.send({ type: 'MsgAppResp', to: m.from });
      } else if (m.type === 'MsgPreVote') {
        this.send({ type: 'MsgPreVoteResp', to: m.from, reject: true });
      }
      return;
    }

    switch (m.type) {
      case 'MsgHup':
        this.hup(false);
        return;
      case 'MsgVote':
      case 'MsgPreVote': {
        const canVote =
          this.vote === m.from || (this.vote === null && this.lead === null) || (m.type === 'MsgPreVote' && m.term > this.term);
        const respType = m.type === 'MsgVote' ? 'MsgVoteResp' : 'MsgPreVoteResp';
        if (canVote && (this.cfg.skipVoteLogCheck || this.log.isUpToDate(m.index, m.logTerm))) {
          this.send({ type: respType, to: m.from, term: m.term });
          if (m.type === 'MsgVote') {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send({ type: respType, to: m.from, reject: true });
        }
        return;
      }
      default:
        break;
    }
    if (this.role === 'leader') stepLeader(this, m);
    else if (this.role === 'follower') stepFollower(this, m);
    else stepCandidate(this, m);
  }

  restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already hold the snapshot's last entry, hence (log matching) everything before it.
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.confLog.reset(s.meta.confState);
    this.switchConfig();
    return true;
  }
}
