/**
 * Token TTL and role rate-limit syntax.
 *
 * NB: the contract's TTL syntax puts `6m` beside `90d` and `12w`, so in a *duration* `m` means
 * MONTHS (30 days each), not minutes; minutes are spelled `min`. In a *rate* (`100/m`) the unit is
 * the period of the rate, and there `m` is a minute, because nobody means "100 per month" for a
 * request rate limit. The two parsers are deliberately separate so that neither meaning leaks.
 */
import { NodeError } from './errors.js';

const SECOND_MS = 1000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/**
 * Duration units in milliseconds. `m` is a month of 30 days and `y` a year of 365 days: these are
 * calendar-free approximations, which is what a TTL needs.
 */
export const DURATION_UNITS_MS: Readonly<Record<string, number>> = Object.freeze({
  s: SECOND_MS,
  min: MINUTE_MS,
  h: HOUR_MS,
  d: DAY_MS,
  w: 7 * DAY_MS,
  m: 30 * DAY_MS,
  y: 365 * DAY_MS,
});

/** Rate-limit periods in milliseconds; here `m` is a minute. */
export const RATE_UNITS_MS: Readonly<Record<string, number>> = Object.freeze({
  s: SECOND_MS,
  m: MINUTE_MS,
  min: MINUTE_MS,
  h: HOUR_MS,
  d: DAY_MS,
});

const DURATION_RE = /^(\d+)([a-z]+)$/;
const RATE_RE = /^(\d+)\/([a-z]+)$/;
const MAX_INPUT = 32;

function show(input: unknown): string {
  if (typeof input !== 'string') return String(typeof input);
  return JSON.stringify(input.length > MAX_INPUT ? `${input.slice(0, MAX_INPUT)}…` : input);
}

/**
 * Parses a TTL such as `90d`, `12w`, `6m` (six months), `36h`, `30min`, `30s` or `1y`.
 *
 * One positive integer followed by one unit: `s`, `min`, `h`, `d`, `w`, `m` (month = 30 days),
 * `y` (365 days). No fractions, no sign, no spaces, no compound forms.
 *
 * @param input - the duration text
 * @returns the duration in milliseconds (a positive safe integer)
 * @throws {NODE_INVALID_DURATION} empty, zero, negative, fractional, unknown unit or overflow;
 *   the message names the input
 * @example
 * ```ts
 * parseDuration('90d'); // 7_776_000_000
 * parseDuration('6m');  // six months: 15_552_000_000
 * ```
 */
export function parseDuration(input: string): number {
  if (typeof input !== 'string' || input.length === 0) {
    throw new NodeError('NODE_INVALID_DURATION', `duration ${show(input)} is empty`);
  }
  const m = input.length <= MAX_INPUT ? DURATION_RE.exec(input) : null;
  if (m === null) {
    const hint = input.startsWith('-') ? ' (negative durations are not allowed)' : '';
    throw new NodeError(
      'NODE_INVALID_DURATION',
      `duration ${show(input)} is not <positive integer><unit> with unit s, min, h, d, w, m (months) or y${hint}`,
    );
  }
  const [, digits = '', unit = ''] = m;
  const unitMs = Object.hasOwn(DURATION_UNITS_MS, unit) ? DURATION_UNITS_MS[unit] : undefined;
  if (unitMs === undefined) {
    throw new NodeError(
      'NODE_INVALID_DURATION',
      `duration ${show(input)} has unknown unit "${unit}" (use s, min, h, d, w, m for months, or y)`,
    );
  }
  const n = Number(digits);
  if (n === 0) throw new NodeError('NODE_INVALID_DURATION', `duration ${show(input)} must be greater than zero`);
  const ms = n * unitMs;
  if (!Number.isSafeInteger(ms)) {
    throw new NodeError('NODE_INVALID_DURATION', `duration ${show(input)} is too large`);
  }
  return ms;
}

/**
 * Writes a whole number of seconds as the shortest duration {@link parseDuration} reads back
 * exactly (`30d`, `36h`, `90min`, `45s`).
 *
 * @param secs - a positive whole number of seconds
 * @returns the duration text
 */
export function formatDuration(secs: number): string {
  if (secs % 86_400 === 0) return `${secs / 86_400}d`;
  if (secs % 3_600 === 0) return `${secs / 3_600}h`;
  if (secs % 60 === 0) return `${secs / 60}min`;
  return `${secs}s`;
}

/** A parsed rate limit: at most `count` requests per `perMs` milliseconds. */
export interface RateLimit {
  readonly count: number;
  readonly perMs: number;
}

/**
 * Parses a role rate limit such as `100/m` (per minute), `10/s`, `5000/h` or `100000/d`.
 *
 * @param input - `<positive integer>/<s|m|min|h|d>`
 * @returns `{count, perMs}`
 * @throws {NODE_INVALID_RATE_LIMIT} malformed, zero, unknown period or too large; the message names
 *   the input
 * @example
 * ```ts
 * parseRateLimit('100/m'); // { count: 100, perMs: 60_000 }
 * ```
 */
export function parseRateLimit(input: string): RateLimit {
  if (typeof input !== 'string' || input.length === 0) {
    throw new NodeError('NODE_INVALID_RATE_LIMIT', `rate limit ${show(input)} is empty`);
  }
  const m = input.length <= MAX_INPUT ? RATE_RE.exec(input) : null;
  if (m === null) {
    throw new NodeError(
      'NODE_INVALID_RATE_LIMIT',
      `rate limit ${show(input)} is not <positive integer>/<period> with period s, m (minute), h or d`,
    );
  }
  const [, digits = '', unit = ''] = m;
  const perMs = Object.hasOwn(RATE_UNITS_MS, unit) ? RATE_UNITS_MS[unit] : undefined;
  if (perMs === undefined) {
    throw new NodeError(
      'NODE_INVALID_RATE_LIMIT',
      `rate limit ${show(input)} has unknown period "${unit}" (use s, m, h or d)`,
    );
  }
  const count = Number(digits);
  if (count === 0) throw new NodeError('NODE_INVALID_RATE_LIMIT', `rate limit ${show(input)} must allow at least one request`);
  if (!Number.isSafeInteger(count) || count > 1_000_000_000) {
    throw new NodeError('NODE_INVALID_RATE_LIMIT', `rate limit ${show(input)} is too large`);
  }
  return { count, perMs };
}
