/**
 * Keeping the membership healthy, from every node: the leader promotes learners that have caught
 * up; every member tells a new leader which command versions it applies, and registers its advertised addresses with the leader when the replicated address
 * book does not have them; a leader asked to stop hands leadership over first.
 */
import { type NodeStore, SUPPORTED_COMMAND_VERSIONS } from '@coffer/state';
import { parseCommandTable, sameHandedVersions } from './command-versions.js';
import type { ServerConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { CofferMetrics } from '../metrics.js';
import type { PeerCalls } from '../peer/rpc.js';
import type { RaftDriver } from '../raft/driver.js';
import { encodeMemberContext } from '../raft/members.js';

/** How often the housekeeping runs (registration, promotion, commit/term gauges). */
const HOUSEKEEPING_MS = 500;

/** What {@link MembershipDuties} needs. */
export interface MembershipDeps {
  readonly config: Readonly<ServerConfig>;
  readonly driver: RaftDriver;
  readonly store: NodeStore;
  readonly logger: Logger;
  readonly metrics: CofferMetrics;
  readonly calls: PeerCalls;
  readonly transferLeadership: (to: string | undefined) => Promise<string>;
  readonly isRemoved: () => boolean;
  readonly closing: () => boolean;
  /** Whether this node is sealed (COFFER_SEAL=shamir); absent: never. */
  readonly sealed?: () => boolean;
  /**
   * The leader answered a hello saying it takes proposals a follower hands it (Raft MsgProp);
   * null when a hello to a new leader starts (until it answers, nobody is known to).
   */
  readonly leaderTakesProposals?: (lead: string | null) => void;
}

/** The periodic membership work, and the hand-off on shutdown. */
export class MembershipDuties {
  private readonly deps: MembershipDeps;
  private registering = false;
  private handingOff = false;
  private timer: NodeJS.Timeout | undefined;

  /** @param deps - see {@link MembershipDeps} */
  constructor(deps: MembershipDeps) {
    this.deps = deps;
  }

  /** Starts the housekeeping interval. */
  start(): void {
    this.timer = setInterval(() => {
      void this.registerSelf();
      void this.promoteCaughtUpLearners();
      void this.handOffWhileSealed();
      const st = this.deps.driver.status();
      this.deps.metrics.raftCommitIndex.set(st.commit);
      this.deps.metrics.raftTerm.set(st.term);
    }, HOUSEKEEPING_MS);
  }

  /** Stops it. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** Leader: promotes one learner within a few entries of the commit index (one change at a time). */
  async promoteCaughtUpLearners(): Promise<void> {
    const { driver, store, logger } = this.deps;
    if (!driver.isLeader()) return;
    const st = driver.status();
    const cs = driver.members();
    for (const id of cs.learners) {
      const p = st.progress?.[id];
      // Only a learner that has acknowledged entries and is being replicated to (not probed, not
      // mid-snapshot) can be caught up; a brand-new one starts with matchIndex 0.
      if (p === undefined || !p.recentActive || p.state !== 'replicate' || p.matchIndex === 0) continue;
      // Caught up: within a small distance of the leader's commit index.
      if (p.matchIndex + 10 < st.commit) continue;
      const m = store.state.listMembers().find((x) => x.id === id);
      try {
        await driver.proposeConfChange({ type: 'addVoter', nodeId: id, context: encodeMemberContext({ raftAddr: m?.raftAddr ?? '', apiAddr: m?.apiAddr ?? '' }) });
        logger.info({ member: id }, `promoted learner ${id} to voter`);
      } catch (err) {
        logger.debug({ err: String(err) }, 'promotion will be retried');
      }
      return; // one change at a time
    }
  }

  /**
   * A sealed leader cannot encrypt, so every write would stall although a majority may be
   * unsealed: it hands leadership to a caught-up voter that says it is unsealed (peer RPC
   * `seal-status`). Sealed nodes still campaign: before init every node is sealed, and someone
   * must commit `seal.init`.
   */
  async handOffWhileSealed(): Promise<void> {
    const { driver, calls, config, logger } = this.deps;
    if (this.handingOff || this.deps.sealed?.() !== true || !driver.isLeader() || this.deps.closing()) return;
    this.handingOff = true;
    try {
      const st = driver.status();
      for (const id of driver.members().voters) {
        if (id === config.nodeId) continue;
        const p = st.progress?.[id];
        if (p === undefined || !p.recentActive || p.matchIndex + 10 < st.commit) continue;
        // callLeader calls the member named (the name is historical): true means 200, i.e. unsealed.
        if (!(await calls.callLeader(id, 'seal-status', {}))) continue;
        if (!driver.isLeader() || this.deps.sealed?.() !== true) return;
        logger.warn({ to: id }, `${config.nodeId} is sealed and leads: handing leadership to unsealed ${id}`);
        await this.deps.transferLeadership(id);
        return;
      }
    } catch (err) {
      logger.debug({ err: String(err) }, 'sealed leader hand-off will be retried');
    } finally {
      this.handingOff = false;
    }
  }

  /** A member whose advertised addresses the address book lacks asks the leader to record them. */
  async registerSelf(): Promise<void> {
    const { config, driver, store } = this.deps;
    if (this.registering || this.deps.closing()) return;
    const me = store.state.listMembers().find((m) => m.id === config.nodeId);
    const isMember = driver.members().voters.includes(config.nodeId) || driver.members().learners.includes(config.nodeId);
    if (!isMember || (me !== undefined && me.apiAddr === config.advertiseApi && me.raftAddr === config.advertiseRaft)) return;
    this.registering = true;
    try {
      await this.deps.calls.callLeader(driver.leader(), 'register', { raftAddr: config.advertiseRaft, apiAddr: config.advertiseApi });
    } catch (err) {
      this.deps.logger.debug({ err: String(err) }, 'member registration will be retried');
    } finally {
      this.registering = false;
    }
  }

  /**
   * Tells a new leader which command versions this build applies (upgrade gating; retried a few
   * times while it still leads), and learns whether it takes proposals handed to it (MsgProp).
   *
   * @param lead - the leader
   */
  async sayHello(lead: string): Promise<void> {
    const { driver, calls, logger } = this.deps;
    // What an earlier leader said does not hold for this one, even under the same id (it may have
    // restarted on an older build, whose Raft codec would refuse a MsgProp and drop the stream).
    this.deps.leaderTakesProposals?.(null);
    for (let attempt = 0; attempt < 5 && !this.deps.closing() && driver.leader() === lead; attempt++) {
      try {
        const answer = await calls.askLeader(lead, 'hello', { commands: SUPPORTED_COMMAND_VERSIONS });
        if (answer?.status === 200) {
          // A leader that takes proposals handed to it, and encodes the handed commands as this build does.
          const said = answer.body as { takesProposals?: unknown; commands?: unknown } | null;
          if (typeof said === 'object' && said !== null && said.takesProposals === true && sameHandedVersions(parseCommandTable(said.commands))) this.deps.leaderTakesProposals?.(lead);
          return;
        }
      } catch (err) {
        logger.debug({ err: String(err) }, 'hello to the leader failed; retrying');
      }
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }

  /**
   * A leader that is asked to stop first hands leadership to the most up-to-date voter (as etcd
   * does), so the cluster keeps taking writes within a round trip instead of waiting out an
   * election timeout. Bounded: if no voter takes over in time (others down, no quorum), the node
   * stops anyway and the rest elect a leader as after a crash.
   */
  async handOffLeadership(): Promise<void> {
    const { config, driver, logger } = this.deps;
    const nodeId = config.nodeId;
    if (!driver.isLeader() || this.deps.isRemoved() || !driver.members().voters.some((id) => id !== nodeId)) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      const to = await Promise.race([
        this.deps.transferLeadership(undefined),
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), config.electionMs))),
      ]);
      if (to === undefined) logger.warn(`${nodeId} is stopping as leader: no voter took over within ${config.electionMs} ms`);
      else logger.info({ to }, `${nodeId} handed leadership to ${to} before stopping`);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, `${nodeId} is stopping as leader: the hand-off failed`);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}
