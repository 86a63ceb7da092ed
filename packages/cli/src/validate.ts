/**
 * Local syntax checks so that obvious mistakes are usage errors (exit 2) before any request.
 * The server stays the authority: it parses durations and CIDRs itself.
 */
import { isIP } from 'node:net';
import { usage } from './errors.js';

/**
 * NB: in a duration `m` is a MONTH (`6m` = six months, as the contract writes it); minutes are
 * `min`. Same grammar as the server's parser: one positive integer and one unit.
 */
const DURATION_RE = /^(\d+)(s|min|h|d|w|m|y)$/;

/**
 * Check a TTL such as `90d`, `12w`, `6m` (months), `36h`, `30min`, `1y`.
 *
 * @param value - the text
 * @returns the same text, to pass through to the server
 * @throws {CLI_USAGE} malformed, zero or unknown unit
 */
export function checkDuration(value: string): string {
  const m = DURATION_RE.exec(value);
  if (m === null || Number(m[1]) === 0) {
    throw usage(`invalid duration ${JSON.stringify(value)}: use <positive integer><unit> with unit s, min, h, d, w, m (months) or y, e.g. 90d`);
  }
  return value;
}

/**
 * Check an allowlist entry: a CIDR (`10.8.0.0/24`, `::1/128`) or a single address (`::1`,
 * `10.8.0.5`), which the server takes as /32 or /128 — the same rule as `COFFER_READ_ALLOWLIST`.
 *
 * @param value - the text
 * @returns the same text
 * @throws {CLI_USAGE} not an address or address/prefix, or prefix out of range
 */
export function checkCidr(value: string): string {
  const slash = value.lastIndexOf('/');
  const addr = slash === -1 ? value : value.slice(0, slash);
  const family = isIP(addr);
  const max = family === 4 ? 32 : family === 6 ? 128 : -1;
  const prefixOk = slash === -1 || (/^\d{1,3}$/.test(value.slice(slash + 1)) && Number(value.slice(slash + 1)) <= max);
  if (max === -1 || !prefixOk) {
    throw usage(`invalid allowlist entry ${JSON.stringify(value)}: expected an address or address/prefix, e.g. 10.8.0.0/24, ::1/128 or 10.8.0.5`);
  }
  return value;
}

/**
 * Check an http(s) URL.
 *
 * @param value - the text
 * @param what - flag name for the message
 * @returns the same text
 * @throws {CLI_USAGE} not an http(s) URL
 */
export function checkUrl(value: string, what: string): string {
  let ok = false;
  try {
    const u = new URL(value);
    ok = u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    ok = false;
  }
  if (!ok) throw usage(`${what}: ${JSON.stringify(value)} is not an http(s) URL`);
  return value;
}

/**
 * Parse a version list such as `3` or `1,2,5`.
 *
 * @param value - the text
 * @returns positive integers
 * @throws {CLI_USAGE} anything else
 */
export function parseVersions(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((p) => !/^\d+$/.test(p) || Number(p) === 0)) {
    throw usage(`invalid version ${JSON.stringify(value)}: expected a positive integer or a comma-separated list`);
  }
  return parts.map(Number);
}

/**
 * Parse a non-negative integer flag.
 *
 * @param value - the text
 * @param what - flag name for the message
 * @returns the integer
 * @throws {CLI_USAGE} not a non-negative integer
 */
export function parseCount(value: string, what: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw usage(`${what}: ${JSON.stringify(value)} is not a non-negative integer`);
  return Number(value);
}
