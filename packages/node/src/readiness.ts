/**
 * Whether this node can serve (CONTRACT.md, "Health means ready"): load balancers route to a node
 * as soon as `/v1/sys/health` says 200 or 429, so that answer must mean the next request works.
 *
 * Ready when all of these hold:
 * - a leader is known, and so is its API address (a follower forwards writes there);
 * - since it learned of that leader, this node completed one ReadIndex round: it has applied
 *   everything the leader had committed by then (so tokens and the allowlist are current);
 * - the cluster's seed is applied when this node is configured to plant one (the bootstrap token's
 *   `admin` seed, the `COFFER_READ_ALLOWLIST` seed);
 * - it is a voter (a learner is still catching up and refuses requests).
 *
 * A change of leader makes the node not ready until the round completes under the new leader.
 */

/** What readiness looks at. */
export interface ReadinessDeps {
  readonly leader: () => string | null;
  readonly leaderApiAddr: () => string | undefined;
  /** One ReadIndex round: resolves once local state has applied the leader's commit index. */
  readonly readBarrier: () => Promise<void>;
  /** Whether the seeds this node's configuration plants are applied. */
  readonly seeded: () => boolean;
  readonly isVoter: () => boolean;
  /** Pause between attempts of a round that failed (e.g. an election under way). */
  readonly retryMs: number;
  /**
   * How long one attempt may take before another is sent: a ReadIndex request lost on the way
   * (the peer connection not up yet right after a start) would otherwise hold readiness for the
   * whole read timeout.
   */
  readonly attemptMs: number;
}

/** Tracks readiness across leader changes. */
export class Readiness {
  private readonly deps: ReadinessDeps;
  /** The leader under which a round completed, or null. */
  private caughtUpWith: string | null = null;
  /** The leader a round is running for. */
  private chasing: string | null = null;
  private stopped = false;

  /** @param deps - see {@link ReadinessDeps} */
  constructor(deps: ReadinessDeps) {
    this.deps = deps;
  }

  /**
   * Call on every leader change (null: none known).
   *
   * @param lead - the new leader's id
   */
  onLeader(lead: string | null): void {
    if (lead === this.caughtUpWith) return;
    this.caughtUpWith = null;
    if (lead === null || lead === this.chasing || this.stopped) return;
    this.chasing = lead;
    void this.chase(lead);
  }

  /** @returns whether this node can serve requests now */
  isReady(): boolean {
    const lead = this.deps.leader();
    return lead !== null && lead === this.caughtUpWith && this.deps.leaderApiAddr() !== undefined && this.deps.isVoter() && this.deps.seeded();
  }

  /** Stops chasing rounds (shutdown). */
  stop(): void {
    this.stopped = true;
  }

  private async chase(lead: string): Promise<void> {
    while (!this.stopped && this.deps.leader() === lead && this.chasing === lead) {
      let timer: NodeJS.Timeout | undefined;
      const slow = new Promise<'slow'>((r) => {
        timer = setTimeout(() => r('slow'), this.deps.attemptMs);
        timer.unref();
      });
      try {
        // NB: a slow attempt is not cancelled; its round still resolves or times out on its own.
        const barrier = this.deps.readBarrier().then(() => 'done' as const);
        barrier.catch(() => undefined);
        if ((await Promise.race([barrier, slow])) === 'slow') continue;
        if (this.deps.leader() === lead) this.caughtUpWith = lead;
        break;
      } catch {
        await new Promise((r) => setTimeout(r, this.deps.retryMs).unref());
      } finally {
        clearTimeout(timer);
      }
    }
    if (this.chasing === lead) this.chasing = null;
    // The leader moved while the round ran: chase the new one.
    const now = this.deps.leader();
    if (!this.stopped && now !== null && now !== lead && now !== this.caughtUpWith) this.onLeader(now);
  }
}
