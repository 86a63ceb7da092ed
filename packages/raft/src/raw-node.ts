import { applyConfChangeTo } from './conf-change.js';
import { decodeConfChange, encodeConfChange } from './codec.js';
import { validateConfig, type Config } from './config.js';
import { RaftError } from './errors.js';
import { proposeViaLeader } from './proposals.js';
import { Raft } from './raft.js';
import type { Storage } from './storage.js';
import type { ConfChange, ConfState, HardState, Message, NodeId, PeerProgress, Ready, SoftState, Status } from './types.js';

const EMPTY = new Uint8Array(0);
const LOCAL_ONLY = new Set(['MsgHup', 'MsgBeat', 'MsgUnreachable']);

/**
 * One raft node, driven entirely by the caller (etcd-io/raft `rawnode.go`): the caller ticks it,
 * feeds it messages, and handles each {@link Ready} (persist, then send, then apply, then
 * `advance()`). Synchronous and pure: no clock, no I/O, no randomness of its own.
 *
 * @example
 * ```ts
 * const storage = MemoryStorage.bootstrap(['n1', 'n2', 'n3']);
 * const node = new RawNode({ id: 'n1', electionTicks: 10, heartbeatTicks: 1, rng }, storage);
 * driverClock.every(100, () => node.tick()); // the driver owns time
 * // on every tick / message / proposal:
 * if (node.hasReady()) {
 *   const rd = node.ready();
 *   if (rd.snapshot) storage.applySnapshot(rd.snapshot);
 *   storage.append(rd.entries);
 *   if (rd.hardState) storage.setHardState(rd.hardState);
 *   send(rd.messages);
 *   for (const e of rd.committedEntries) apply(e);
 *   node.advance();
 * }
 * ```
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private appliedConf: ConfState;
  private pending: Ready | null = null;

  /**
   * @param config - node settings (validated)
   * @param storage - the persisted log; `MemoryStorage.bootstrap(voters)` for a new cluster,
   *   an empty `MemoryStorage` for a node that will join, or one repopulated from disk on restart
   * @throws {RAFT_CONFIG} when the configuration is invalid
   */
  constructor(config: Config, storage: Storage) {
    const cfg = validateConfig(config);
    this.raft = new Raft(cfg, storage);
    this.prevSoft = { lead: this.raft.lead, raftState: this.raft.role };
    this.prevHard = { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
    // The configuration as of the applied index: the snapshot's, plus stored changes up to `applied`.
    let cs = storage.initialState().confState;
    cs = { voters: [...cs.voters], learners: [...cs.learners] };
    const first = storage.firstIndex();
    const upTo = Math.min(this.raft.log.applied, storage.lastIndex());
    if (upTo >= first) {
      for (const e of storage.entries(first, upTo + 1, Number.MAX_SAFE_INTEGER)) {
        if (e.type === 'confChange') cs = applyConfChangeTo(cs, decodeConfChange(e.data));
      }
    }
    this.appliedConf = cs;
  }

  /** Advances logical time by one tick (elections, heartbeats, CheckQuorum). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (a pre-election first when PreVote is on). */
  campaign(): void {
    this.raft.step(this.localMsg('MsgHup'));
  }

  /**
   * Feeds a message received from a peer. Local-only message types are ignored.
   *
   * @param m - a decoded message addressed to this node
   */
  step(m: Message): void {
    if (LOCAL_ONLY.has(m.type)) return;
    this.raft.step(m);
  }

  /**
   * Proposes data to append to the log (leader only). The entry is replicated with the next Ready.
   *
   * @param data - opaque command bytes
   * @returns index and term of the appended entry: if the committed entry at that index has
   *   another term, the proposal was lost (overwritten after a leader change)
   * @throws {RAFT_NOT_LEADER} on a follower or candidate (`leaderId` is the known leader or null)
   * @throws {RAFT_PROPOSAL_DROPPED} during a leadership transfer
   */
  propose(data: Uint8Array): { index: number; term: number } {
    return this.raft.propose('normal', data);
  }

  /**
   * A follower hands a proposal to its leader: returns the MsgProp for the caller to send now (it
   * promises nothing about this node's disk, so it does not wait for a Ready). The leader appends
   * it in its term. Nothing comes back: recognise the entry when it is applied (by an id inside
   * `data`), and time out — a proposal lost on the way, or dropped by a leader that is
   * transferring leadership or has lost it, is never answered.
   *
   * @param data - opaque command bytes
   * @returns the message (`to` is the leader)
   * @throws {RAFT_PROPOSAL_DROPPED} when this node is not a follower that knows a leader
   */
  proposeViaLeader(data: Uint8Array): Message {
    return proposeViaLeader(this.raft, data);
  }

  /**
   * Proposes a single-server membership change (leader only). It takes effect on each node when
   * appended to its log; at most one may be uncommitted at a time.
   *
   * @param cc - the change; `cc.context` comes back in the committed entry
   * @returns index and term of the appended entry
   * @throws {RAFT_NOT_LEADER} on a follower or candidate
   * @throws {RAFT_PROPOSAL_DROPPED} during a leadership transfer
   * @throws {RAFT_CONF_CHANGE_PENDING} while a change is uncommitted or the leader has not yet committed in its term
   * @throws {RAFT_INVALID_CONF_CHANGE} when the change does not fit the configuration
   */
  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    return this.raft.propose('confChange', encodeConfChange(cc));
  }

  /**
   * Requests a linearizable read point. The answer arrives in `Ready.readStates` with the same
   * context once the leader confirmed its leadership with a heartbeat round; serve the read when
   * `applied >= index`. Contexts must be unique across the cluster (e.g. node id + counter).
   *
   * Once accepted, a request may be dropped silently (message loss, leader change): the caller
   * must time out and retry.
   *
   * @param context - opaque request id
   * @throws {RAFT_NOT_LEADER} (leaderId null) when this node knows no leader to ask
   */
  readIndex(context: Uint8Array): void {
    if (this.raft.role !== 'leader' && this.raft.lead === null) {
      throw new RaftError('RAFT_NOT_LEADER', `${this.raft.id} knows no leader to serve a read index`, { leaderId: null });
    }
    this.raft.step({ ...this.localMsg('MsgReadIndex'), from: this.raft.id, context });
  }

  /**
   * Asks the leader to hand leadership to `to`: the leader brings `to` up to date, then tells it
   * to campaign at once. Proposals are refused meanwhile; the attempt is abandoned after an
   * election timeout. On a follower the request is forwarded to the leader.
   *
   * @param to - a voter
   */
  transferLeadership(to: NodeId): void {
    this.raft.step({ ...this.localMsg('MsgTransferLeader'), from: to });
  }

  /**
   * Tells the leader that `id` could not be reached, so it stops streaming and probes instead.
   *
   * @param id - the peer
   */
  reportUnreachable(id: NodeId): void {
    this.raft.step({ ...this.localMsg('MsgUnreachable'), from: id });
  }

  /**
   * Call for each committed confChange entry as it is applied. Raft itself already uses the
   * change (since it was appended); this returns the configuration as of the applied index, which
   * is what `MemoryStorage.createSnapshot` needs.
   *
   * @param cc - the decoded entry data
   * @returns the configuration after the change
   */
  applyConfChange(cc: ConfChange): ConfState {
    this.appliedConf = applyConfChangeTo(this.appliedConf, cc);
    return { voters: [...this.appliedConf.voters], learners: [...this.appliedConf.learners] };
  }

  /**
   * The configuration as of the applied index: what a snapshot taken now must record. It differs
   * from `status().confState` (the configuration in force, the latest in the log) while a change
   * is appended but not yet applied.
   *
   * @returns a copy of the applied configuration
   */
  appliedConfState(): ConfState {
    return { voters: [...this.appliedConf.voters], learners: [...this.appliedConf.learners] };
  }

  /** @returns whether `ready()` has anything to do */
  hasReady(): boolean {
    const r = this.raft;
    r.flush();
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.unstableEntries.length > 0 || r.log.unstableSnapshot !== null || r.log.hasNextCommittedEnts()) return true;
    if (r.lead !== this.prevSoft.lead || r.role !== this.prevSoft.raftState) return true;
    const h = this.prevHard;
    return r.term !== h.term || r.vote !== h.vote || r.log.committed !== h.commit;
  }

  /**
   * Collects the work to do. Handle it in the order documented on {@link Ready}, then call
   * `advance()` before calling `ready()` again.
   *
   * @returns the Ready
   */
  ready(): Ready {
    const r = this.raft;
    r.flush();
    const rd: Ready = {
      entries: r.log.unstableEntries.slice(),
      committedEntries: r.log.nextCommittedEnts(),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    r.msgs = [];
    r.readStates = [];
    if (r.lead !== this.prevSoft.lead || r.role !== this.prevSoft.raftState) {
      this.prevSoft = { lead: r.lead, raftState: r.role };
      rd.softState = { ...this.prevSoft };
    }
    const h = this.prevHard;
    if (r.term !== h.term || r.vote !== h.vote || r.log.committed !== h.commit) {
      rd.mustSync = r.term !== h.term || r.vote !== h.vote;
      this.prevHard = { term: r.term, vote: r.vote, commit: r.log.committed };
      rd.hardState = { ...this.prevHard };
    }
    if (r.log.unstableSnapshot !== null) rd.snapshot = r.log.unstableSnapshot;
    if (rd.entries.length > 0 || rd.snapshot !== undefined) rd.mustSync = true;
    this.pending = rd;
    return rd;
  }

  /** Acknowledges the last Ready: its entries and snapshot are durable and its committed entries applied. */
  advance(): void {
    const rd = this.pending;
    if (rd === null) return;
    this.pending = null;
    const log = this.raft.log;
    if (rd.snapshot !== undefined) {
      log.stableSnapTo(rd.snapshot.meta.index);
      log.appliedTo(rd.snapshot.meta.index);
      const cs = rd.snapshot.meta.confState;
      this.appliedConf = { voters: [...cs.voters], learners: [...cs.learners] };
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      log.stableTo(last.index, last.term);
      this.raft.onPersisted();
    }
    if (rd.committedEntries.length > 0) log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index);
  }

  /** @returns the node's current state; `progress` on the leader only */
  status(): Status {
    const r = this.raft;
    const cs = r.currentConf();
    const s: Status = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      lead: r.lead,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      raftState: r.role,
      confState: { voters: [...cs.voters], learners: [...cs.learners] },
      leadTransferee: r.leadTransferee,
    };
    if (r.role === 'leader') {
      const progress: Record<NodeId, PeerProgress> = {};
      for (const [id, pr] of r.progress) {
        progress[id] = { matchIndex: pr.match, nextIndex: pr.next, state: pr.state, isLearner: pr.isLearner, recentActive: pr.recentActive };
      }
      s.progress = progress;
    }
    return s;
  }

  private localMsg(type: Message['type']): Message {
    return { type, to: this.raft.id, from: this.raft.id, term: 0, logTerm: 0, index: 0, commit: 0, entries: [], reject: false, rejectHint: 0, context: EMPTY };
  }
}
