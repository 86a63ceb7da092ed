/**
 * The write path and the read barrier over the driver: upgrade gating, the proposal-duration
 * metric, and the one translation of driver errors (raft/errors.ts).
 */
import { type Command, type CommandResult, encodeCommand } from '@coffer/state';
import type { CommandVersions } from '../cluster/command-versions.js';
import type { RaftEvents } from './events.js';
import type { NodeId } from '@coffer/raft';
import type { ProposeOptions, Proposer, ReadConsistency } from '../context.js';
import { ServiceError } from '../service/errors.js';
import type { CofferMetrics } from '../metrics.js';
import { DriverError } from './driver-types.js';
import type { RaftDriver } from './driver.js';
import { driverErrorToService } from './errors.js';

/** What {@link RaftProposer} needs. */
export interface RaftProposerDeps {
  readonly driver: RaftDriver;
  readonly versions: CommandVersions;
  readonly metrics: CofferMetrics;
  readonly leaders: RaftEvents;
  readonly closing: () => boolean;
  /** How long a read waits for a first leader after start (two election timeouts). */
  readonly firstLeaderWaitMs: number;
}

/** `propose` and `readBarrier` of the node context. */
export class RaftProposer implements Proposer {
  private readonly deps: RaftProposerDeps;
  /** The last leader that said (hello answer) it takes proposals a follower hands it, encoded as this build does. */
  private takesProposals: NodeId | null = null;

  /** @param deps - see {@link RaftProposerDeps} */
  constructor(deps: RaftProposerDeps) {
    this.deps = deps;
  }

  /**
   * The leader `lead` said (hello answer) it takes proposals a follower hands it (Raft MsgProp);
   * null: nobody is known to (a hello to a new leader is under way).
   */
  leaderTakesProposals(lead: NodeId | null): void {
    this.takesProposals = lead;
  }

  /** See {@link Proposer.canProposeViaLeader}. */
  canProposeViaLeader(): boolean {
    const lead = this.deps.driver.leader();
    return lead !== null && lead === this.takesProposals && !this.deps.driver.isLeader();
  }

  /** See {@link Proposer.propose}. */
  async propose(cmd: Command, opts?: ProposeOptions): Promise<CommandResult> {
    const { driver, metrics } = this.deps;
    if (this.deps.closing()) throw new ServiceError('shutting_down', 'the node is shutting down', { retryAfterSecs: 1 });
    // Upgrade gating: never propose a command version some voter cannot apply (it would stop).
    this.deps.versions.check(cmd.type, driver.members());
    const started = process.hrtime.bigint();
    let outcome = 'ok';
    try {
      const data = encodeCommand(cmd);
      const handed = opts?.viaLeader === true && this.canProposeViaLeader();
      const out = (await (handed ? driver.proposeViaLeader(data, cmd.requestId) : driver.propose(data))) as { result?: CommandResult } | undefined;
      if (out === undefined || out.result === undefined) throw new ServiceError('internal', 'the write was applied without a result');
      return out.result;
    } catch (err) {
      outcome = err instanceof DriverError ? err.code : 'error';
      throw driverErrorToService(err, driver.leader());
    } finally {
      metrics.raftProposalDuration.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  /** See `ReadPath.readBarrier`. */
  async readBarrier(consistency: ReadConsistency): Promise<void> {
    if (consistency === 'stale') return;
    const { driver } = this.deps;
    await this.deps.leaders.firstLeader(() => driver.leader() !== null, this.deps.firstLeaderWaitMs);
    try {
      await driver.readBarrier();
    } catch (err) {
      throw driverErrorToService(err, driver.leader());
    }
  }
}
