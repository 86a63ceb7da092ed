/**
 * What a new leader does once it leads: after raft has committed an entry of its term, it makes
 * sure the cluster's seeds exist (the bootstrap token's `admin` seed, the COFFER_READ_ALLOWLIST
 * seed). Both are idempotent through consensus, so every node may try; retried while this node
 * leads, because right after an election the followers may not have said which command versions
 * they apply yet (upgrade gating), and readiness waits for the seeds.
 */
import { hashToken } from '@coffer/crypto';
import type { Command, CommandResult, NodeStore } from '@coffer/state';
import type { ServerConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { RaftDriver } from '../raft/driver.js';

/** What {@link LeaderDuties} needs. */
export interface LeaderDutiesDeps {
  readonly config: Readonly<ServerConfig>;
  readonly driver: RaftDriver;
  readonly store: NodeStore;
  readonly logger: Logger;
  readonly propose: (cmd: Command) => Promise<CommandResult>;
  readonly closing: () => boolean;
}

/** The seeding a leader does on gaining leadership. */
export class LeaderDuties {
  private readonly deps: LeaderDutiesDeps;
  private allowlistWarned = false;

  /** @param deps - see {@link LeaderDutiesDeps} */
  constructor(deps: LeaderDutiesDeps) {
    this.deps = deps;
  }

  /** Runs the duties for the term this node leads now (until done, or leadership or the term ends). */
  async run(): Promise<void> {
    const { config, driver, store, logger } = this.deps;
    const term = driver.status().term;
    for (let attempt = 1; driver.isLeader() && driver.status().term === term && !this.deps.closing(); attempt++) {
      try {
        await driver.readBarrier();
        if (config.bootstrapToken !== undefined && !store.state.bootstrapped) {
          await this.deps.propose({ type: 'bootstrap', requestId: `bootstrap:${Buffer.from(hashToken(config.bootstrapToken)).toString('hex')}`, at: Date.now(), tokenHash: hashToken(config.bootstrapToken), cidrs: [...config.readAllowlist] });
          logger.info('bootstrap seed applied: role admin and token bootstrap-admin exist');
        }
        if (config.readAllowlist.length > 0 && !store.state.hasAllowlist) {
          // COFFER_READ_ALLOWLIST seeds a new cluster even without a bootstrap token.
          await this.deps.propose({ type: 'allowlist.seed', requestId: `allowlist-seed:${config.readAllowlist.join(',')}`, at: Date.now(), cidrs: [...config.readAllowlist] });
          logger.info({ cidrs: config.readAllowlist }, 'read allowlist seeded from COFFER_READ_ALLOWLIST');
        }
        this.warnIfAllowlistDiffers();
        return;
      } catch (err) {
        if (attempt === 1 || attempt % 50 === 0) logger.warn({ err: String(err), attempt }, 'leader start-up duties failed; retrying while this node leads');
        await new Promise((r) => setTimeout(r, 200).unref());
      }
    }
  }

  /** COFFER_READ_ALLOWLIST only seeds a new cluster: say loudly when it no longer matches. */
  private warnIfAllowlistDiffers(): void {
    const { config, store } = this.deps;
    if (this.allowlistWarned || config.readAllowlist.length === 0 || !store.state.hasAllowlist) return;
    const replicated = [...store.state.getAllowlist()].sort().join(',');
    if (replicated === [...config.readAllowlist].sort().join(',')) return;
    this.allowlistWarned = true;
    this.deps.logger.warn(
      { configured: config.readAllowlist, replicated: store.state.getAllowlist() },
      'COFFER_READ_ALLOWLIST differs from the replicated read allowlist, which is what is enforced: the variable only seeds a new cluster; change the list with PUT /v1/allowlist (coffer allowlist set) and update or remove the variable',
    );
  }
}
