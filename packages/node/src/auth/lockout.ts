/**
 * Cluster-wide lockout of client addresses after repeated authentication failures
 * (`COFFER_AUTH_MAX_FAILURES` within `_WINDOW_SECS` locks an address out for `_LOCKOUT_SECS`).
 *
 * How it holds against an attacker:
 * - **Counted atomically where the failure happens.** Each node counts the failures it sees in
 *   memory before it answers, so parallel bad requests cannot all slip through while a replicated
 *   counter is still committing: the request after the limit is refused on that node at once.
 * - **Successes do not erase failures.** Failures age out of the window; a valid token sent from
 *   the same address in between changes nothing (4 bad + 1 good, repeated, still locks).
 * - **No write amplification.** A failure is not a Raft write. Followers report their failures to
 *   the leader in one message per address per {@link REPORT_DELAY_MS}; the leader aggregates and
 *   proposes only when an address crosses the limit (`maxFailures` `auth.failure` entries, once per
 *   lockout), which makes the lockout cluster-wide and durable across leader changes.
 * - **Bounded tables.** Addresses are keyed by IPv4 address or IPv6 /64 (one host's whole
 *   allocation), the in-memory table is bounded ({@link MAX_TRACKED_KEYS}, oldest evicted), and the
 *   leader stops adding entries to the replicated table past {@link MAX_REPLICATED_LOCKOUTS}
 *   (addresses beyond that are still locked by every node's in-memory count).
 * - **Bounded audit volume.** Once an address is locked, its denials are audited once per
 *   {@link LOCKED_AUDIT_WINDOW_MS}, plus one summary line with how many were not written singly.
 *
 * NB: the in-memory counts are per node and are lost on restart; the replicated entries are not.
 * An attacker spreading requests over every node gets at most `maxFailures` per node before the
 * leader's aggregate locks it everywhere (one report delay later).
 */
import type { StateMachine } from '@coffer/state';
import { addressKey } from '../net/allowlist.js';

/** How long a follower batches its failure reports to the leader. */
export const REPORT_DELAY_MS = 50;
/** Addresses tracked in memory per node. */
export const MAX_TRACKED_KEYS = 100_000;
/** Entries the leader lets into the replicated lockout table. */
export const MAX_REPLICATED_LOCKOUTS = 10_000;
/** Once locked, an address's denials are audited once per this window. */
export const LOCKED_AUDIT_WINDOW_MS = 60_000;

/** Lockout policy in milliseconds; `enabled` is false when any of the three variables is 0. */
export interface LockoutPolicy {
  readonly enabled: boolean;
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly lockoutMs: number;
}

/** What the lockout needs from the node. */
export interface LockoutDeps {
  readonly policy: LockoutPolicy;
  readonly now: () => number;
  readonly state: () => StateMachine;
  readonly isLeader: () => boolean;
  /** Proposes one `auth.failure` entry for `key` at time `at` (leader only). */
  readonly propose: (key: string, at: number) => Promise<void>;
  /** Sends a follower's failures to the leader (`auth-failure` peer RPC). */
  readonly report: (key: string, count: number) => Promise<void>;
  readonly warn: (msg: string, err: unknown) => void;
  /** Called when an address becomes locked (metrics). */
  readonly onLocked?: () => void;
}

/** Whether an address is locked out, and for how much longer. */
export interface LockVerdict {
  readonly locked: boolean;
  readonly retryAfterMs: number;
}

/** What to audit for a denial of a locked address. */
export type LockedAudit = { readonly audit: boolean; readonly suppressed: number };

const UNLOCKED: LockVerdict = Object.freeze({ locked: false, retryAfterMs: 0 });

/**
 * The lockout key of an address: an IPv4 address as is, an IPv6 address by its /64.
 *
 * @param ip - a normalised address (IPv4-mapped IPv6 already mapped to IPv4)
 * @returns the key, e.g. `10.0.0.7` or `2001:db8:1:2::/64`
 */
export const lockoutKey: (ip: string) => string = addressKey;

/** One node's lockout bookkeeping. */
export class Lockout {
  private readonly deps: LockoutDeps;
  /** key → failure times seen (here, or reported to this leader) within the window, ascending. */
  private readonly seen = new Map<string, number[]>();
  /** Follower: key → failures not yet reported to the leader. */
  private readonly unreported = new Map<string, number>();
  private reportTimer: NodeJS.Timeout | undefined;
  /** key → requests whose unknown token is still being looked up cluster-wide (failures-to-be). */
  private readonly pending = new Map<string, number>();
  /** Leader: keys whose lockout proposal is in flight. */
  private readonly proposing = new Set<string>();
  /** key → start of its current audit window while locked, and denials not audited in it. */
  private readonly lockedAudit = new Map<string, { start: number; suppressed: number }>();

  /** @param deps - see {@link LockoutDeps} */
  constructor(deps: LockoutDeps) {
    this.deps = deps;
  }

  /** @returns whether lockout is enabled at all */
  get enabled(): boolean {
    return this.deps.policy.enabled;
  }

  /**
   * Whether `ip` is locked out: by the replicated table, or by this node's own count.
   *
   * @param ip - the client address
   * @returns the verdict
   */
  check(ip: string): LockVerdict {
    if (!this.enabled) return UNLOCKED;
    const key = lockoutKey(ip);
    const now = this.deps.now();
    const { maxFailures, windowMs, lockoutMs } = this.deps.policy;
    const replicated = this.deps.state().isLockedOut(key, now, { maxFailures, windowMs, lockoutMs });
    const local = this.localVerdict(key, now);
    return replicated.retryAfterMs >= local.retryAfterMs ? replicated : local;
  }

  /**
   * Records one failed authentication from `ip`: counted here at once, then made cluster-wide.
   * Never throws; the cluster-wide part is best effort.
   *
   * @param ip - the client address
   */
  fail(ip: string): void {
    if (!this.enabled) return;
    const key = lockoutKey(ip);
    const wasLocked = this.localVerdict(key, this.deps.now()).locked;
    this.count(key, 1);
    if (!wasLocked && this.localVerdict(key, this.deps.now()).locked) this.deps.onLocked?.();
    if (this.deps.isLeader()) this.maybePropose(key);
    else this.queueReport(key);
  }

  /**
   * Reserves a failure slot for a request whose token is unknown here while the node catches up
   * with the cluster to be sure (an await): parallel such requests cannot all get past the limit
   * before any of them is counted. Release the slot, then call {@link fail} if it did fail.
   *
   * @param ip - the client address
   * @returns the release function, or null when the address has no slot left (answer 429)
   */
  hold(ip: string): (() => void) | null {
    if (!this.enabled) return () => undefined;
    const key = lockoutKey(ip);
    const now = this.deps.now();
    const recent = (this.seen.get(key) ?? []).filter((t) => t > now - this.deps.policy.windowMs).length;
    const held = this.pending.get(key) ?? 0;
    if (recent + held >= this.deps.policy.maxFailures) return null;
    this.pending.set(key, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.pending.get(key) ?? 1) - 1;
      if (left <= 0) this.pending.delete(key);
      else this.pending.set(key, left);
    };
  }

  /**
   * Leader: failures a follower saw (the `auth-failure` peer RPC).
   *
   * @param key - the lockout key the follower computed (checked to be one)
   * @param count - how many failures (1-1000)
   */
  reported(key: string, count: number): void {
    if (!this.enabled) return;
    this.count(key, Math.min(Math.max(1, Math.floor(count)), 1000));
    if (this.deps.isLeader()) this.maybePropose(key);
  }

  /**
   * For a denial of a locked-out address: whether to write its audit line, and how many earlier
   * denials were left out (to be written as one summary line).
   *
   * @param ip - the client address
   * @returns `{audit, suppressed}`
   */
  auditLocked(ip: string): LockedAudit {
    const key = lockoutKey(ip);
    const now = this.deps.now();
    const w = this.lockedAudit.get(key);
    if (w === undefined || now - w.start >= LOCKED_AUDIT_WINDOW_MS) {
      const suppressed = w?.suppressed ?? 0;
      this.lockedAudit.delete(key);
      this.lockedAudit.set(key, { start: now, suppressed: 0 });
      if (this.lockedAudit.size > MAX_TRACKED_KEYS) this.lockedAudit.delete(this.lockedAudit.keys().next().value as string);
      return { audit: true, suppressed };
    }
    w.suppressed++;
    return { audit: false, suppressed: 0 };
  }

  /** Stops the report timer (shutdown). */
  close(): void {
    if (this.reportTimer !== undefined) clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
  }

  private count(key: string, n: number): void {
    const now = this.deps.now();
    const keepFrom = now - Math.max(this.deps.policy.windowMs, 1);
    let times = this.seen.get(key);
    if (times === undefined) {
      if (this.seen.size >= MAX_TRACKED_KEYS) this.evictOldest();
      times = [];
      this.seen.set(key, times);
    }
    for (let i = 0; i < n; i++) times.push(now);
    while (times.length > 0 && ((times[0] as number) < keepFrom || times.length > this.deps.policy.maxFailures)) times.shift();
  }

  private evictOldest(): void {
    // Maps iterate in insertion order: the first keys are the longest untouched.
    let dropped = 0;
    for (const k of this.seen.keys()) {
      this.seen.delete(k);
      if (++dropped >= MAX_TRACKED_KEYS / 10) break;
    }
  }

  private localVerdict(key: string, now: number): LockVerdict {
    const times = this.seen.get(key);
    const { maxFailures, windowMs, lockoutMs } = this.deps.policy;
    if (times === undefined || times.length < maxFailures) return UNLOCKED;
    const last = times[times.length - 1] as number;
    const first = times[times.length - maxFailures] as number;
    if (last - first >= windowMs) return UNLOCKED;
    const until = last + lockoutMs;
    return until > now ? { locked: true, retryAfterMs: until - now } : UNLOCKED;
  }

  private maybePropose(key: string): void {
    const now = this.deps.now();
    if (!this.localVerdict(key, now).locked || this.proposing.has(key)) return;
    const { maxFailures, windowMs, lockoutMs } = this.deps.policy;
    const state = this.deps.state();
    if (state.isLockedOut(key, now, { maxFailures, windowMs, lockoutMs }).locked) return;
    if (state.lockoutCount >= MAX_REPLICATED_LOCKOUTS) return;
    const times = [...(this.seen.get(key) ?? [])];
    this.proposing.add(key);
    void (async () => {
      try {
        // Proposed together, so they commit in one round.
        await Promise.all(times.map((at) => this.deps.propose(key, at)));
      } catch (err) {
        this.deps.warn('could not record a lockout cluster-wide', err);
      } finally {
        this.proposing.delete(key);
      }
    })();
  }

  private queueReport(key: string): void {
    this.unreported.set(key, (this.unreported.get(key) ?? 0) + 1);
    if (this.reportTimer !== undefined) return;
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      const batch = [...this.unreported];
      this.unreported.clear();
      for (const [k, n] of batch) {
        this.deps.report(k, n).catch((err: unknown) => this.deps.warn('could not report authentication failures to the leader', err));
      }
    }, REPORT_DELAY_MS);
    this.reportTimer.unref();
  }
}
