/**
 * Value parsers for the configuration table (./table.ts). Each takes the variable's text (trimmed,
 * never empty) and a {@link ValueContext}, and returns the typed value or throws a
 * {@link ConfigError} naming the variable. Messages show a value only through `c.shown`, which is
 * "the value" for secret variables.
 */
import * as path from 'node:path';
import { ConfigError } from '../errors.js';
import { parseDuration } from '../duration.js';
import { validateCidrs } from '../net/allowlist.js';
import { checkNodeId } from '../validate.js';

/** What a parser knows besides the text. */
export interface ValueContext {
  /** The variable, e.g. `COFFER_API_ADDR`. */
  readonly name: string;
  /** The value as messages may show it: quoted and shortened, or `the value` for a secret. */
  readonly shown: string;
  /** Whether the variable is secret (its value is never echoed). */
  readonly secret: boolean;
  /** Base for relative paths that are not under the data dir (the working directory). */
  readonly cwd: string;
  /** The absolute data dir (resolved on first use; needs `COFFER_NODE_ID`). */
  dataDir(): string;
}

/** A listen address. */
export interface HostPort {
  /** Host as given (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
}

/** One `COFFER_INITIAL_CLUSTER` member. */
export interface ClusterMember {
  readonly id: string;
  /** Normalised origin, e.g. `http://10.0.0.1:8201`. */
  readonly raftUrl: string;
}

/** Log levels accepted by `COFFER_LOG_LEVEL`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** One log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `COFFER_READ_AUTH`: what a secret read needs. */
export type ReadAuthMode = 'allowlist' | 'token' | 'both';

/**
 * How a value appears in a message.
 *
 * @param v - the text
 * @param secret - whether it must not be echoed
 * @returns the quoted (shortened) text, or `the value`
 */
export function showValue(v: string, secret: boolean): string {
  if (secret) return 'the value';
  return JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}…` : v);
}

/**
 * A whole number in `[min, max]`.
 *
 * @returns the number
 * @throws {NODE_CONFIG_INVALID} not digits, or out of range
 */
export function wholeNumber(v: string, c: ValueContext, min: number, max: number): number {
  if (!/^\d+$/.test(v)) throw new ConfigError(c.name, `${c.shown} is not a whole number`);
  const n = Number(v);
  if (n < min) throw new ConfigError(c.name, `${v} is too small (minimum ${min})`);
  if (n > max) throw new ConfigError(c.name, `${v} is too large (maximum ${max})`);
  return n;
}

/**
 * `true`/`false`/`1`/`0`, any case.
 *
 * @returns the boolean
 * @throws {NODE_CONFIG_INVALID} anything else
 */
export function bool(v: string, c: ValueContext): boolean {
  const lower = v.toLowerCase();
  if (lower === 'true' || lower === '1') return true;
  if (lower === 'false' || lower === '0') return false;
  throw new ConfigError(c.name, `${c.shown} is not true or false`);
}

/**
 * One of a fixed list of words (as written; `ignoreCase` lower-cases first).
 *
 * @returns the word
 * @throws {NODE_CONFIG_INVALID} anything else, listing the choices
 */
export function oneOf<T extends string>(v: string, c: ValueContext, choices: readonly T[], ignoreCase = false): T {
  const w = ignoreCase ? v.toLowerCase() : v;
  const found = choices.find((x) => x === w);
  if (found !== undefined) return found;
  const list = choices.length <= 3 ? `${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1] ?? ''}` : `one of ${choices.join(', ')}`;
  throw new ConfigError(c.name, `${c.shown} is not ${list}`);
}

/**
 * A node id (1-64 bytes of `[A-Za-z0-9._-]`, not reserved).
 *
 * @returns the id
 * @throws {NODE_CONFIG_INVALID} the reason from checkNodeId
 */
export function nodeId(v: string, c: ValueContext): string {
  const check = checkNodeId(v);
  if (!check.ok) throw new ConfigError(c.name, check.reason);
  return v;
}

/**
 * The bootstrap token: 1-512 printable ASCII characters without spaces.
 *
 * @returns the token
 * @throws {NODE_CONFIG_INVALID} otherwise (the value is not echoed)
 */
export function bootstrapToken(v: string, c: ValueContext): string {
  if (v.length > 512 || !/^[\x21-\x7e]+$/.test(v)) throw new ConfigError(c.name, 'must be 1-512 printable ASCII characters without spaces');
  return v;
}

/**
 * A comma-separated list of CIDRs (or single addresses); empty text is an empty list.
 *
 * @returns canonical CIDRs, frozen
 * @throws {NODE_CONFIG_INVALID} every invalid entry, `; `-separated
 */
export function cidrs(v: string, c: ValueContext): readonly string[] {
  if (v.trim() === '') return Object.freeze([]);
  const r = validateCidrs(v.split(',').map((s) => s.trim()));
  if (!r.ok) throw new ConfigError(c.name, r.errors.join('; '));
  return Object.freeze([...r.cidrs]);
}

/**
 * A duration in the contract's syntax (`30d`, `12w`, `1y`; `m` is a month).
 *
 * @returns milliseconds
 * @throws {NODE_CONFIG_INVALID} parseDuration's message
 */
export function duration(v: string, c: ValueContext): number {
  try {
    return parseDuration(v);
  } catch (err) {
    throw new ConfigError(c.name, (err as Error).message);
  }
}

/** Shortest scheduled-snapshot interval accepted. */
const MIN_SNAPSHOT_INTERVAL_MS = 1_000;

/**
 * A scheduled-snapshot interval: `off` (also `0`, `false`, `none`) or a duration of at least 1s.
 *
 * @returns milliseconds, 0 = off
 * @throws {NODE_CONFIG_INVALID} malformed, ambiguous (`30m`) or too short
 */
export function snapshotInterval(v: string, c: ValueContext): number {
  if (/^(off|0|false|none)$/i.test(v)) return 0;
  // NB: in the contract's duration syntax `m` is a month; `30m` meant as minutes would silently
  // schedule one backup a month-and-a-half from now. Nobody asks for monthly snapshots in months
  // notation, so refuse it and name both spellings.
  if (/^\d+m$/.test(v)) throw new ConfigError(c.name, `${c.shown} is ambiguous: write ${v}in for minutes, or use d/w for longer periods`);
  let ms: number;
  try {
    ms = parseDuration(v);
  } catch (err) {
    throw new ConfigError(c.name, `${(err as Error).message} (or off)`);
  }
  if (ms < MIN_SNAPSHOT_INTERVAL_MS) throw new ConfigError(c.name, `${c.shown} is too short (minimum 1s)`);
  return ms;
}

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * `host:port` (IPv4, hostname or `[IPv6]`; port 1-65535).
 *
 * @returns the frozen address
 * @throws {NODE_CONFIG_INVALID} otherwise
 */
export function hostPort(v: string, c: ValueContext): HostPort {
  const bad = (): ConfigError => new ConfigError(c.name, `${c.shown} is not host:port`);
  if (v.includes('://')) throw new ConfigError(c.name, `${c.shown} is not host:port (no scheme here)`);
  let host: string;
  let portText: string;
  if (v.startsWith('[')) {
    const close = v.indexOf(']');
    if (close === -1 || v[close + 1] !== ':') throw bad();
    host = v.slice(1, close);
    portText = v.slice(close + 2);
    // Let URL parsing judge the IPv6 literal.
    try {
      new URL(`http://[${host}]/`);
    } catch {
      throw bad();
    }
  } else {
    const colon = v.lastIndexOf(':');
    if (colon <= 0) throw bad();
    host = v.slice(0, colon);
    portText = v.slice(colon + 1);
    if (host.includes(':')) throw new ConfigError(c.name, `${c.shown} is not host:port (write IPv6 addresses as [::1]:8200)`);
    if (!IPV4_RE.test(host) && !HOSTNAME_RE.test(host)) throw bad();
  }
  if (!/^\d{1,5}$/.test(portText)) throw bad();
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new ConfigError(c.name, `${c.shown}: port must be 1-65535`);
  return Object.freeze({ host, port });
}

/**
 * An http(s) URL naming a server root (no credentials, path, query or fragment).
 *
 * @param what - the expected form, for messages
 * @returns its origin
 * @throws {NODE_CONFIG_INVALID} otherwise
 */
export function origin(v: string, c: ValueContext, what: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ConfigError(c.name, `${c.shown} is not a URL (expected ${what})`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(c.name, `${c.shown} must use http:// or https://`);
  if (u.username !== '' || u.password !== '') throw new ConfigError(c.name, `${c.shown} must not contain credentials`);
  if ((u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '') {
    throw new ConfigError(c.name, `${c.shown} must be a bare origin with no path, query or fragment (expected ${what})`);
  }
  if (u.hostname === '') throw new ConfigError(c.name, `${c.shown} has no host`);
  return u.origin;
}

/**
 * @returns the origin `scheme://host:port` (IPv6 in brackets)
 */
export function hostPortUrl(hp: HostPort, scheme: 'http' | 'https'): string {
  const host = hp.host.includes(':') ? `[${hp.host}]` : hp.host;
  return new URL(`${scheme}://${host}:${hp.port}`).origin;
}

/**
 * @returns whether `host` is an any-address (`0.0.0.0`, `::`)
 */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
}

/**
 * An advertised address: an origin, or `host:port` given the scheme.
 *
 * @returns the origin
 * @throws {NODE_CONFIG_INVALID} otherwise
 */
export function advertise(v: string, c: ValueContext, scheme: 'http' | 'https'): string {
  if (v.includes('://')) return origin(v, c, `${scheme}://host:port`);
  return hostPortUrl(hostPort(v, c), scheme);
}

/**
 * Base64 (standard or URL-safe) key material of at least (or exactly) `min` bytes.
 *
 * @returns the bytes (the caller owns them and zeroes them when done; best effort)
 * @throws {NODE_CONFIG_INVALID} malformed or wrong length; the value is never echoed
 */
export function key(v: string, c: ValueContext, rule: { min: number; exact?: boolean }): Uint8Array {
  // Buffer's base64 decoder skips junk silently, so check the alphabet and length first.
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(v) || v.replace(/=+$/, '').length % 4 === 1) {
    throw new ConfigError(c.name, 'is not valid base64');
  }
  const bytes = new Uint8Array(Buffer.from(v, 'base64'));
  const n = bytes.length;
  if (rule.exact === true && n !== rule.min) {
    bytes.fill(0);
    throw new ConfigError(c.name, `decodes to ${n} bytes; exactly ${rule.min} are required`);
  }
  if (n < rule.min) {
    bytes.fill(0);
    throw new ConfigError(c.name, `decodes to ${n} bytes; at least ${rule.min} are required`);
  }
  return bytes;
}

/**
 * A comma-separated key ring, current key first: each entry base64 of exactly 32 bytes, no
 * duplicates.
 *
 * @returns the keys
 * @throws {NODE_CONFIG_INVALID} naming the entry (`key 2 of 3`); keys parsed so far are zeroed
 */
export function keyRing(v: string, c: ValueContext): readonly Uint8Array[] {
  const parts = v.split(',').map((x) => x.trim());
  const keys: Uint8Array[] = [];
  const wipe = (): void => {
    for (const k of keys) k.fill(0);
  };
  for (let i = 0; i < parts.length; i++) {
    const where = parts.length > 1 ? ` (key ${i + 1} of ${parts.length})` : '';
    let k: Uint8Array;
    try {
      k = key(parts[i] ?? '', c, { min: 32, exact: true });
    } catch (err) {
      wipe();
      if (err instanceof ConfigError) throw new ConfigError(c.name, `${err.message.slice(c.name.length + 2)}${where}`);
      throw err;
    }
    if (keys.some((o) => Buffer.from(o).equals(Buffer.from(k)))) {
      k.fill(0);
      wipe();
      throw new ConfigError(c.name, `key ${i + 1} of ${parts.length} repeats an earlier key`);
    }
    keys.push(k);
  }
  return keys;
}

/**
 * `id=URL` pairs separated by commas; no duplicate ids or URLs.
 *
 * @returns the members, frozen
 * @throws {NODE_CONFIG_INVALID} naming the bad entry
 */
export function initialCluster(v: string, c: ValueContext): readonly ClusterMember[] {
  const members: ClusterMember[] = [];
  const ids = new Set<string>();
  const urls = new Set<string>();
  for (const part of v.split(',')) {
    const entry = part.trim();
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new ConfigError(c.name, `entry ${JSON.stringify(entry)} is not id=URL (e.g. n1=http://10.0.0.1:8201)`);
    const id = entry.slice(0, eq).trim();
    const idCheck = checkNodeId(id);
    if (!idCheck.ok) throw new ConfigError(c.name, `entry ${JSON.stringify(entry)}: ${idCheck.reason}`);
    const urlText = entry.slice(eq + 1).trim();
    let raftUrl: string;
    try {
      raftUrl = origin(urlText, { ...c, shown: showValue(urlText, c.secret) }, 'http://host:port');
    } catch (e) {
      throw new ConfigError(c.name, `entry ${JSON.stringify(entry)}: ${(e as ConfigError).message.slice(c.name.length + 2)}`);
    }
    if (ids.has(id)) throw new ConfigError(c.name, `member id ${JSON.stringify(id)} appears twice`);
    if (urls.has(raftUrl)) throw new ConfigError(c.name, `URL ${raftUrl} appears twice`);
    ids.add(id);
    urls.add(raftUrl);
    members.push(Object.freeze({ id, raftUrl }));
  }
  return Object.freeze(members);
}

/**
 * A path; relative paths resolve against the data dir.
 *
 * @returns the absolute path
 */
export function pathInDataDir(v: string, c: ValueContext): string {
  return path.resolve(c.dataDir(), v);
}

/**
 * A path; relative paths resolve against the working directory.
 *
 * @returns the absolute path
 */
export function pathInCwd(v: string, c: ValueContext): string {
  return path.resolve(c.cwd, v);
}
