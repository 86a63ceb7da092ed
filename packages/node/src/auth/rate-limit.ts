/**
 * Per-role request rate limits (`"rateLimit": "100/m"` in a role document).
 *
 * Node-local on purpose: counting through consensus would turn every request into a replicated
 * write (see ARCHITECTURE.md, pitfalls). So a client spreading requests over N nodes gets up to N
 * times the rate; the limit protects each node, it is not a cluster-wide quota.
 *
 * Token bucket: capacity `count`, refilled continuously at `count / perMs`, so `100/m` allows a
 * burst of 100 and then one request every 600 ms.
 */
import type { RateLimit } from '../duration.js';

/** Answer of {@link RoleRateLimiter.take}. */
export type RateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSecs: number };

interface Bucket {
  tokens: number;
  updatedMs: number;
  count: number;
  perMs: number;
}

const ALLOWED: RateDecision = Object.freeze({ allowed: true });

/**
 * Token buckets keyed by role name, with an injectable clock.
 *
 * @example
 * ```ts
 * const limiter = new RoleRateLimiter();
 * const d = limiter.take('deployer', { count: 100, perMs: 60_000 });
 * if (!d.allowed) res.setHeader('Retry-After', String(d.retryAfterSecs)); // and answer 429
 * ```
 */
export class RoleRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  /** @param now - clock in milliseconds (default `Date.now`); tests pass a fake one */
  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /**
   * Takes one token from the role's bucket.
   *
   * @param role - role name
   * @param limit - the role's current limit; `undefined` means unlimited
   * @returns allowed, or refused with the whole seconds until one token is back (≥ 1)
   */
  take(role: string, limit: RateLimit | undefined): RateDecision {
    if (limit === undefined) {
      this.buckets.delete(role);
      return ALLOWED;
    }
    const now = this.now();
    let b = this.buckets.get(role);
    if (b === undefined || b.count !== limit.count || b.perMs !== limit.perMs) {
      // New role or its limit changed: start full, as a fresh limit would.
      b = { tokens: limit.count, updatedMs: now, count: limit.count, perMs: limit.perMs };
      this.buckets.set(role, b);
    } else if (now > b.updatedMs) {
      b.tokens = Math.min(b.count, b.tokens + ((now - b.updatedMs) * b.count) / b.perMs);
      b.updatedMs = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return ALLOWED;
    }
    const waitMs = ((1 - b.tokens) * b.perMs) / b.count;
    return { allowed: false, retryAfterSecs: Math.max(1, Math.ceil(waitMs / 1000)) };
  }

  /**
   * Drops a role's bucket (role deleted or its limit removed).
   *
   * @param role - role name
   */
  forget(role: string): void {
    this.buckets.delete(role);
  }

  /** @returns how many buckets are held (for tests and diagnostics) */
  get size(): number {
    return this.buckets.size;
  }
}
