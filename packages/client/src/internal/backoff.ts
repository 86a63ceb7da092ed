/** Retry timing: bounded exponential backoff with jitter, and `Retry-After` parsing. */

/** Backoff parameters. */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter. */
  baseDelayMs: number;
  /** Ceiling for any computed delay (jitter included). */
  maxDelayMs: number;
}

/**
 * Delay before retry number `retry` (1 for the first retry).
 *
 * "Equal jitter": half the exponential step is fixed and half is random, so a retry never
 * fires immediately (which would hammer a node that just said 503) yet clients that failed together
 * spread out.
 *
 * @param retry - 1-based retry number
 * @param opts - base and ceiling
 * @param random - uniform [0,1) source (injected for deterministic tests)
 * @returns milliseconds to wait, in [step/2, step] where step = min(max, base·2^(retry-1))
 */
export function backoffDelayMs(retry: number, opts: BackoffOptions, random: () => number): number {
  const exp = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** Math.max(0, retry - 1));
  const half = exp / 2;
  return Math.round(half + random() * half);
}

/**
 * Parse an HTTP `Retry-After` header (RFC 9110 §10.2.3): delta-seconds or an HTTP date.
 *
 * @param value - header value, if any
 * @param nowMs - current time, for the date form
 * @returns milliseconds to wait (≥ 0), or undefined when absent or unparseable
 */
export function parseRetryAfterMs(value: string | string[] | undefined, nowMs: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const trimmed = v.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
