/**
 * The server's configuration: parsed once, validated, frozen, passed down. Nothing else in the
 * node reads `process.env` (use {@link readEnv} at the entry point and hand the result here).
 *
 * Sources: `COFFER_*` environment variables and the matching flags (`COFFER_NODE_ID` ↔
 * `--node-id`); a flag wins over the variable. An empty variable counts as unset (env files and
 * container runtimes often produce `VAR=`). Every bad value throws a {@link ConfigError} whose
 * one-line message names the variable and the problem; secret values are never echoed.
 * docs/config.md documents every variable; CONTRACT.md is the source of names and defaults.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from './errors.js';
import { parseDuration } from './duration.js';
import { validateCidrs } from './net/allowlist.js';
import { checkNodeId } from './validate.js';

/** Environment variable names, exported so that no other module spells them. */
export const CONFIG_ENV = {
  NODE_ID: 'COFFER_NODE_ID',
  DATA_DIR: 'COFFER_DATA_DIR',
  API_ADDR: 'COFFER_API_ADDR',
  RAFT_ADDR: 'COFFER_RAFT_ADDR',
  ADVERTISE_API: 'COFFER_ADVERTISE_API',
  ADVERTISE_RAFT: 'COFFER_ADVERTISE_RAFT',
  INITIAL_CLUSTER: 'COFFER_INITIAL_CLUSTER',
  JOIN: 'COFFER_JOIN',
  KMS_MODE: 'COFFER_KMS_MODE',
  LOCAL_MASTER_KEY: 'COFFER_LOCAL_MASTER_KEY',
  KMS_KEY_ID: 'COFFER_KMS_KEY_ID',
  KMS_ENDPOINT: 'COFFER_KMS_ENDPOINT',
  DEK_CACHE_TTL_SECS: 'COFFER_DEK_CACHE_TTL_SECS',
  CLUSTER_KEY: 'COFFER_CLUSTER_KEY',
  PREVIOUS_CLUSTER_KEY: 'COFFER_PREVIOUS_CLUSTER_KEY',
  INTEGRITY_ADOPT: 'COFFER_INTEGRITY_ADOPT',
  BOOTSTRAP_TOKEN: 'COFFER_BOOTSTRAP_TOKEN',
  READ_ALLOWLIST: 'COFFER_READ_ALLOWLIST',
  TRUST_PROXY: 'COFFER_TRUST_PROXY',
  TRUSTED_PROXIES: 'COFFER_TRUSTED_PROXIES',
  TOKEN_MAX_TTL: 'COFFER_TOKEN_MAX_TTL',
  READ_AUTH: 'COFFER_READ_AUTH',
  TLS_CERT_FILE: 'COFFER_TLS_CERT_FILE',
  TLS_KEY_FILE: 'COFFER_TLS_KEY_FILE',
  AUDIT_FILE: 'COFFER_AUDIT_FILE',
  KMS_REWRAP_ENABLED: 'COFFER_KMS_REWRAP_ENABLED',
  KMS_REWRAP_POLL_SECS: 'COFFER_KMS_REWRAP_POLL_SECS',
  KMS_REWRAP_MAX_PER_SEC: 'COFFER_KMS_REWRAP_MAX_PER_SEC',
  ROTATION_POLL_SECS: 'COFFER_ROTATION_POLL_SECS',
  AUTH_MAX_FAILURES: 'COFFER_AUTH_MAX_FAILURES',
  AUTH_WINDOW_SECS: 'COFFER_AUTH_WINDOW_SECS',
  AUTH_LOCKOUT_SECS: 'COFFER_AUTH_LOCKOUT_SECS',
  HEARTBEAT_MS: 'COFFER_HEARTBEAT_MS',
  ELECTION_MS: 'COFFER_ELECTION_MS',
  SNAPSHOT_ENTRIES: 'COFFER_SNAPSHOT_ENTRIES',
  SNAPSHOT_CATCHUP_ENTRIES: 'COFFER_SNAPSHOT_CATCHUP_ENTRIES',
  SNAPSHOT_INTERVAL: 'COFFER_SNAPSHOT_INTERVAL',
  SNAPSHOT_DIR: 'COFFER_SNAPSHOT_DIR',
  SNAPSHOT_RETAIN: 'COFFER_SNAPSHOT_RETAIN',
  LOG_LEVEL: 'COFFER_LOG_LEVEL',
} as const;

/** One of the variable names. */
export type ConfigVariable = (typeof CONFIG_ENV)[keyof typeof CONFIG_ENV];

/** Client-side variables that may share the environment with the server without a warning. */
const CLIENT_VARIABLES: ReadonlySet<string> = new Set(['COFFER_ADDR', 'COFFER_TOKEN']);

/** Description of one variable, for `--help` and docs. */
export interface VariableSpec {
  readonly name: ConfigVariable;
  /** Flag spelling, e.g. `--node-id`. */
  readonly flag: string;
  /** Default, as the contract words it. */
  readonly defaultText: string;
  readonly description: string;
  /** Takes no value as a flag (`--trust-proxy`). */
  readonly boolean: boolean;
  /** Never echoed in errors or logs. */
  readonly secret: boolean;
}

function spec(name: ConfigVariable, defaultText: string, description: string, kind: { boolean?: boolean; secret?: boolean } = {}): VariableSpec {
  return Object.freeze({
    name,
    flag: `--${name.slice('COFFER_'.length).toLowerCase().replaceAll('_', '-')}`,
    defaultText,
    description,
    boolean: kind.boolean === true,
    secret: kind.secret === true,
  });
}

/** Every server variable, in CONTRACT.md's order. */
export const CONFIG_VARIABLES: readonly VariableSpec[] = Object.freeze([
  spec(CONFIG_ENV.NODE_ID, 'required', 'stable member id, e.g. n1 (1-64 of A-Z a-z 0-9 . _ -)'),
  spec(CONFIG_ENV.DATA_DIR, './data/<id>', 'Raft log, state, snapshots, audit log'),
  spec(CONFIG_ENV.API_ADDR, '127.0.0.1:8200', 'client-facing HTTP(S) listener, host:port'),
  spec(CONFIG_ENV.RAFT_ADDR, '127.0.0.1:8201', 'peer listener, host:port (private network / WireGuard only)'),
  spec(CONFIG_ENV.ADVERTISE_API, 'the API listen address', 'API URL that peers and redirects use'),
  spec(CONFIG_ENV.ADVERTISE_RAFT, 'the Raft listen address', 'peer URL that other members use'),
  spec(CONFIG_ENV.INITIAL_CLUSTER, 'single node', 'n1=http://h1:8201,n2=http://h2:8201,...; read only when the data dir is new'),
  spec(CONFIG_ENV.JOIN, 'none', 'API URL of a running member to join (as learner, promoted once caught up)'),
  spec(CONFIG_ENV.KMS_MODE, 'local', 'local or aws'),
  spec(CONFIG_ENV.LOCAL_MASTER_KEY, 'random, with a loud warning', 'base64 of 32 bytes; same on every node', { secret: true }),
  spec(CONFIG_ENV.KMS_KEY_ID, '-', 'AWS mode: key id, ARN or alias'),
  spec(CONFIG_ENV.KMS_ENDPOINT, 'SDK default', 'KMS endpoint override (VPC endpoint, emulator)'),
  spec(CONFIG_ENV.DEK_CACHE_TTL_SECS, '300', 'unwrapped-DEK cache lifetime in seconds; 0 disables'),
  spec(CONFIG_ENV.CLUSTER_KEY, 'required with >1 node', 'base64 of >=32 bytes, same on every node; authenticates every peer RPC', { secret: true }),
  spec(CONFIG_ENV.PREVIOUS_CLUSTER_KEY, 'none', 'the cluster key before a rotation: a data dir tagged under it is re-tagged under COFFER_CLUSTER_KEY at start; unset it afterwards', { secret: true }),
  spec(CONFIG_ENV.INTEGRITY_ADOPT, 'false', 'once, after upgrading from a version without storage integrity tags: adopt the untagged data dir as it is (trust on first use); unset it afterwards', { boolean: true }),
  spec(CONFIG_ENV.BOOTSTRAP_TOKEN, 'none', 'seeds role admin and token bootstrap-admin on first start', { secret: true }),
  spec(CONFIG_ENV.READ_ALLOWLIST, 'empty (deny all reads)', 'comma-separated CIDRs seeding the replicated allowlist on first start'),
  spec(CONFIG_ENV.TRUST_PROXY, 'false', 'use X-Forwarded-For for the client IP: the direct peer is the one trusted proxy', { boolean: true }),
  spec(CONFIG_ENV.TRUSTED_PROXIES, 'none', 'comma-separated CIDRs of reverse proxies; the client IP is the right-most X-Forwarded-For address not in this list'),
  spec(CONFIG_ENV.TOKEN_MAX_TTL, '1y', 'longest lifetime of a minted or rotated token (e.g. 30d, 12w, 1y); a role may set a shorter maxTtl'),
  spec(CONFIG_ENV.READ_AUTH, 'allowlist', 'how secret reads are authorised: allowlist (client address), token (a token granting secret.read on the name) or both'),
  spec(CONFIG_ENV.TLS_CERT_FILE, 'none', 'PEM certificate: serve the API over HTTPS (with the key file)'),
  spec(CONFIG_ENV.TLS_KEY_FILE, 'none', 'PEM private key for the certificate'),
  spec(CONFIG_ENV.AUDIT_FILE, '<data>/audit.jsonl', 'append-only, hash-chained JSON lines'),
  spec(CONFIG_ENV.KMS_REWRAP_ENABLED, 'false', 'run the re-wrap worker on the leader', { boolean: true }),
  spec(CONFIG_ENV.KMS_REWRAP_POLL_SECS, '86400', 'how often the worker asks the KMS for rotations'),
  spec(CONFIG_ENV.KMS_REWRAP_MAX_PER_SEC, '50', 'pacing of re-wrap commands'),
  spec(CONFIG_ENV.ROTATION_POLL_SECS, '15', 'how often the leader looks for secrets due for automatic rotation'),
  spec(CONFIG_ENV.AUTH_MAX_FAILURES, '5', 'auth failures before a client IP is locked out (429); 0 disables'),
  spec(CONFIG_ENV.AUTH_WINDOW_SECS, '300', 'window in which failures are counted; 0 disables lockout'),
  spec(CONFIG_ENV.AUTH_LOCKOUT_SECS, '900', 'how long a lockout lasts; 0 disables lockout'),
  spec(CONFIG_ENV.HEARTBEAT_MS, '100', 'Raft heartbeat interval in ms'),
  spec(CONFIG_ENV.ELECTION_MS, '1000', 'Raft election timeout in ms (> 2 x heartbeat)'),
  spec(CONFIG_ENV.SNAPSHOT_ENTRIES, '10000', 'compact the log after this many applied entries'),
  spec(CONFIG_ENV.SNAPSHOT_CATCHUP_ENTRIES, '1000', 'entries kept behind a snapshot so lagging followers catch up without one'),
  spec(CONFIG_ENV.SNAPSHOT_INTERVAL, 'off', 'write a sealed backup snapshot this often, on the leader only (e.g. 6h, 30min, 45s; off disables)'),
  spec(CONFIG_ENV.SNAPSHOT_DIR, '<data>/snapshots', 'directory of the scheduled snapshots (relative to the data dir)'),
  spec(CONFIG_ENV.SNAPSHOT_RETAIN, '7', 'scheduled snapshots kept in the directory; older ones are deleted'),
  spec(CONFIG_ENV.LOG_LEVEL, 'info', 'fatal, error, warn, info, debug, trace or silent'),
]);

const BY_NAME: ReadonlyMap<string, VariableSpec> = new Map(CONFIG_VARIABLES.map((s) => [s.name, s]));
const BY_FLAG: ReadonlyMap<string, VariableSpec> = new Map(CONFIG_VARIABLES.map((s) => [s.flag.slice(2), s]));

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

/** The validated configuration. Key material is held as bytes; see {@link redactConfig}. */
export interface ServerConfig {
  readonly nodeId: string;
  /** Absolute. */
  readonly dataDir: string;
  readonly apiAddr: HostPort;
  readonly raftAddr: HostPort;
  /** URL (origin) peers and redirects use for this node's API. */
  readonly advertiseApi: string;
  /** URL (origin) peers use for this node's Raft port. */
  readonly advertiseRaft: string;
  /** Members to bootstrap with on a new data dir; just this node when the variable is unset. */
  readonly initialCluster: readonly ClusterMember[];
  /** Origin of the member to join, if any. */
  readonly join: string | undefined;
  readonly kmsMode: 'local' | 'aws';
  /**
   * The local key ring, current key first (32 bytes each), or `undefined` = generate a random key
   * (development only; data is lost on restart). Older keys only unwrap what they wrapped.
   */
  readonly localMasterKeys: readonly Uint8Array[] | undefined;
  readonly kmsKeyId: string | undefined;
  readonly kmsEndpoint: string | undefined;
  readonly dekCacheTtlSecs: number;
  /** ≥ 32 bytes; `undefined` only for a single-node cluster (then the peer port refuses everything). */
  readonly clusterKey: Uint8Array | undefined;
  /** The cluster key before a rotation (re-tags the data dir at start); usually undefined. */
  readonly previousClusterKey: Uint8Array | undefined;
  /** Adopt a data dir written before storage integrity tags (one start after the upgrade). */
  readonly integrityAdopt: boolean;
  readonly bootstrapToken: string | undefined;
  /** Canonical CIDRs. */
  readonly readAllowlist: readonly string[];
  readonly trustProxy: boolean;
  /** Canonical CIDRs of trusted reverse proxies (`COFFER_TRUSTED_PROXIES`). */
  readonly trustedProxies: readonly string[];
  /** How secret reads are authorised (`COFFER_READ_AUTH`). */
  readonly readAuth: ReadAuthMode;
  /** Cluster-wide cap on token lifetimes, in ms (`COFFER_TOKEN_MAX_TTL`). */
  readonly tokenMaxTtlMs: number;
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** Absolute. */
  readonly auditFile: string;
  readonly kmsRewrapEnabled: boolean;
  readonly kmsRewrapPollSecs: number;
  readonly kmsRewrapMaxPerSec: number;
  readonly rotationPollSecs: number;
  readonly authMaxFailures: number;
  readonly authWindowSecs: number;
  readonly authLockoutSecs: number;
  /** False when any of the three lockout variables is 0. */
  readonly authLockoutEnabled: boolean;
  readonly heartbeatMs: number;
  readonly electionMs: number;
  readonly snapshotEntries: number;
  /** Log entries kept behind a snapshot for followers that lag only a little. */
  readonly snapshotCatchUpEntries: number;
  /** Scheduled backup snapshots: the interval in ms, 0 = off (`COFFER_SNAPSHOT_INTERVAL`). */
  readonly snapshotIntervalMs: number;
  /** Absolute directory of the scheduled snapshots. */
  readonly snapshotDir: string;
  /** Newest scheduled snapshots kept. */
  readonly snapshotRetain: number;
  readonly logLevel: LogLevel;
  /** Things worth a loud log line at start-up (random master key, ignored variables, …). */
  readonly warnings: readonly string[];
}

/** File checks, injectable for tests. */
export interface ConfigIo {
  /** @returns whether the file exists and is readable */
  readable(file: string): boolean;
  /** Base for relative paths (default `process.cwd()`). */
  readonly cwd: string;
}

const defaultIo: ConfigIo = {
  readable(file: string): boolean {
    try {
      accessSync(file, fsConstants.R_OK);
      return true;
    } catch {
      return false;
    }
  },
  get cwd(): string {
    return process.cwd();
  },
};

/**
 * Reads the environment. The only place the node touches `process.env`.
 *
 * @param source - defaults to `process.env`
 * @returns a copy holding only `COFFER_*` variables
 * @example
 * ```ts
 * const cfg = loadConfig(readEnv(), parseServerFlags(process.argv.slice(3)));
 * ```
 */
export function readEnv(source: Readonly<Record<string, string | undefined>> = process.env): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(source)) if (k.startsWith('COFFER_')) out[k] = v;
  return out;
}

/**
 * Parses `coffer server` arguments: `--name=value`, `--name value`, and bare `--name` for the
 * boolean variables (`--trust-proxy`, `--kms-rewrap-enabled`); `--help` is passed through.
 *
 * @param argv - arguments after `server`
 * @returns flags keyed by name without dashes
 * @throws {NODE_CONFIG_INVALID} unknown flag, missing value or positional argument
 * @example
 * ```ts
 * parseServerFlags(['--node-id', 'n1', '--trust-proxy']); // { 'node-id': 'n1', 'trust-proxy': true }
 * ```
 */
export function parseServerFlags(argv: readonly string[]): Record<string, string | boolean> {
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) throw new ConfigError(arg, 'unexpected argument; coffer server takes only --flags (see --help)');
    const eq = arg.indexOf('=');
    const name = (eq === -1 ? arg.slice(2) : arg.slice(2, eq)).toLowerCase();
    if (name === 'help') {
      flags['help'] = true;
      continue;
    }
    const s = BY_FLAG.get(name);
    if (s === undefined) throw new ConfigError(`--${name}`, 'unknown flag (see coffer server --help)');
    if (eq !== -1) flags[name] = arg.slice(eq + 1);
    else if (s.boolean && (argv[i + 1] === undefined || argv[i + 1]?.startsWith('--') === true || !/^(true|false|1|0)$/i.test(argv[i + 1] ?? ''))) flags[name] = true;
    else if (argv[i + 1] === undefined || argv[i + 1]?.startsWith('--') === true) throw new ConfigError(s.name, `${s.flag} needs a value`);
    else flags[name] = argv[++i] ?? '';
  }
  return flags;
}

class Reader {
  private readonly env: Readonly<Record<string, string | undefined>>;
  private readonly flags: ReadonlyMap<string, string | boolean>;
  constructor(env: Readonly<Record<string, string | undefined>>, flags: Readonly<Record<string, string | boolean>>) {
    this.env = env;
    const m = new Map<string, string | boolean>();
    for (const [rawName, v] of Object.entries(flags)) {
      const name = rawName.replace(/^--?/, '').toLowerCase();
      if (name === 'help') continue;
      if (!BY_FLAG.has(name)) throw new ConfigError(`--${name}`, 'unknown flag (see coffer server --help)');
      m.set(name, v);
    }
    this.flags = m;
  }

  /** Raw text of a variable: flag first, then env; empty means unset. */
  get(name: ConfigVariable): string | undefined {
    const s = BY_NAME.get(name) as VariableSpec;
    const f = this.flags.get(s.flag.slice(2));
    if (f !== undefined) {
      if (typeof f === 'boolean') {
        if (!s.boolean) throw new ConfigError(name, `${s.flag} needs a value`);
        return f ? 'true' : 'false';
      }
      return f.trim() === '' ? undefined : f.trim();
    }
    const e = this.env[name];
    return e === undefined || e.trim() === '' ? undefined : e.trim();
  }
}

function shown(name: ConfigVariable, v: string): string {
  if (BY_NAME.get(name)?.secret === true) return 'the value';
  return JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}…` : v);
}

function parseIntVar(r: Reader, name: ConfigVariable, def: number, min: number, max: number): number {
  const v = r.get(name);
  if (v === undefined) return def;
  if (!/^\d+$/.test(v)) throw new ConfigError(name, `${shown(name, v)} is not a whole number`);
  const n = Number(v);
  if (n < min) throw new ConfigError(name, `${v} is too small (minimum ${min})`);
  if (n > max) throw new ConfigError(name, `${v} is too large (maximum ${max})`);
  return n;
}

function parseBoolVar(r: Reader, name: ConfigVariable, def: boolean): boolean {
  const v = r.get(name);
  if (v === undefined) return def;
  const lower = v.toLowerCase();
  if (lower === 'true' || lower === '1') return true;
  if (lower === 'false' || lower === '0') return false;
  throw new ConfigError(name, `${shown(name, v)} is not true or false`);
}

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function parseHostPort(name: ConfigVariable, v: string): HostPort {
  const bad = (): ConfigError => new ConfigError(name, `${shown(name, v)} is not host:port`);
  if (v.includes('://')) throw new ConfigError(name, `${shown(name, v)} is not host:port (no scheme here)`);
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
    if (host.includes(':')) throw new ConfigError(name, `${shown(name, v)} is not host:port (write IPv6 addresses as [::1]:8200)`);
    if (!IPV4_RE.test(host) && !HOSTNAME_RE.test(host)) throw bad();
  }
  if (!/^\d{1,5}$/.test(portText)) throw bad();
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new ConfigError(name, `${shown(name, v)}: port must be 1-65535`);
  return { host, port };
}

/** Parses an http(s) URL naming a server root; returns its origin. */
function parseOrigin(name: ConfigVariable, v: string, what: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ConfigError(name, `${shown(name, v)} is not a URL (expected ${what})`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(name, `${shown(name, v)} must use http:// or https://`);
  if (u.username !== '' || u.password !== '') throw new ConfigError(name, `${shown(name, v)} must not contain credentials`);
  if ((u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '') {
    throw new ConfigError(name, `${shown(name, v)} must be a bare origin with no path, query or fragment (expected ${what})`);
  }
  if (u.hostname === '') throw new ConfigError(name, `${shown(name, v)} has no host`);
  return u.origin;
}

function hostPortUrl(hp: HostPort, scheme: 'http' | 'https'): string {
  const host = hp.host.includes(':') ? `[${hp.host}]` : hp.host;
  return new URL(`${scheme}://${host}:${hp.port}`).origin;
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
}

function parseAdvertise(name: ConfigVariable, v: string, scheme: 'http' | 'https'): string {
  if (v.includes('://')) return parseOrigin(name, v, `${scheme}://host:port`);
  const hp = parseHostPort(name, v);
  return hostPortUrl(hp, scheme);
}

function parseKey(name: ConfigVariable, v: string, rule: { min: number; exact?: boolean }): Uint8Array {
  // Buffer's base64 decoder skips junk silently, so check the alphabet and length first.
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(v) || v.replace(/=+$/, '').length % 4 === 1) {
    throw new ConfigError(name, 'is not valid base64');
  }
  const bytes = new Uint8Array(Buffer.from(v, 'base64'));
  if (rule.exact === true && bytes.length !== rule.min) {
    bytes.fill(0);
    throw new ConfigError(name, `decodes to ${bytes.length} bytes; exactly ${rule.min} are required`);
  }
  if (bytes.length < rule.min) {
    const n = bytes.length;
    bytes.fill(0);
    throw new ConfigError(name, `decodes to ${n} bytes; at least ${rule.min} are required`);
  }
  return bytes;
}

/** A comma-separated key ring (current key first): each entry base64 of exactly 32 bytes, no duplicates. */
function parseKeyRing(name: ConfigVariable, v: string): Uint8Array[] {
  const parts = v.split(',').map((x) => x.trim());
  const keys: Uint8Array[] = [];
  const wipe = (): void => {
    for (const k of keys) k.fill(0);
  };
  for (let i = 0; i < parts.length; i++) {
    const where = parts.length > 1 ? ` (key ${i + 1} of ${parts.length})` : '';
    try {
      keys.push(parseKey(name, parts[i] as string, { min: 32, exact: true }));
    } catch (err) {
      wipe();
      if (err instanceof ConfigError) throw new ConfigError(name, `${err.message.slice(name.length + 2)}${where}`);
      throw err;
    }
    const k = keys[keys.length - 1] as Uint8Array;
    if (keys.slice(0, -1).some((o) => Buffer.from(o).equals(Buffer.from(k)))) {
      wipe();
      throw new ConfigError(name, `key ${i + 1} of ${parts.length} repeats an earlier key`);
    }
  }
  return keys;
}

function parseInitialCluster(v: string): ClusterMember[] {
  const name = CONFIG_ENV.INITIAL_CLUSTER;
  const members: ClusterMember[] = [];
  const ids = new Set<string>();
  const urls = new Set<string>();
  for (const part of v.split(',')) {
    const entry = part.trim();
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new ConfigError(name, `entry ${JSON.stringify(entry)} is not id=URL (e.g. n1=http://10.0.0.1:8201)`);
    const id = entry.slice(0, eq).trim();
    const idCheck = checkNodeId(id);
    if (!idCheck.ok) throw new ConfigError(name, `entry ${JSON.stringify(entry)}: ${idCheck.reason}`);
    let raftUrl: string;
    try {
      raftUrl = parseOrigin(name, entry.slice(eq + 1).trim(), 'http://host:port');
    } catch (e) {
      throw new ConfigError(name, `entry ${JSON.stringify(entry)}: ${(e as ConfigError).message.slice(name.length + 2)}`);
    }
    if (ids.has(id)) throw new ConfigError(name, `member id ${JSON.stringify(id)} appears twice`);
    if (urls.has(raftUrl)) throw new ConfigError(name, `URL ${raftUrl} appears twice`);
    ids.add(id);
    urls.add(raftUrl);
    members.push(Object.freeze({ id, raftUrl }));
  }
  return members;
}

/**
 * Builds the server configuration from the environment and flags, validating every value and the
 * rules between them.
 *
 * @param env - environment (use {@link readEnv}); only `COFFER_*` keys are looked at
 * @param flags - flags keyed by name (`node-id` or `--node-id`), e.g. from {@link parseServerFlags}
 * @param io - file checks and cwd (tests); defaults to the real file system
 * @returns the frozen configuration
 * @throws {NODE_CONFIG_INVALID} a {@link ConfigError} naming the variable and the problem
 * @example
 * ```ts
 * const cfg = loadConfig({ COFFER_NODE_ID: 'n1' }, {});
 * cfg.apiAddr; // { host: '127.0.0.1', port: 8200 }
 * ```
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  flags: Record<string, string | boolean>,
  io: ConfigIo = defaultIo,
): Readonly<ServerConfig> {
  const r = new Reader(env, flags);
  const E = CONFIG_ENV;
  const warnings: string[] = [];
  for (const key of Object.keys(env)) {
    if (key.startsWith('COFFER_') && !BY_NAME.has(key) && !CLIENT_VARIABLES.has(key)) warnings.push(`${key}: unknown variable, ignored (typo?)`);
  }

  const nodeId = r.get(E.NODE_ID);
  if (nodeId === undefined) throw new ConfigError(E.NODE_ID, 'is required (e.g. n1)');
  const idCheck = checkNodeId(nodeId);
  if (!idCheck.ok) throw new ConfigError(E.NODE_ID, idCheck.reason);

  const dataDir = path.resolve(io.cwd, r.get(E.DATA_DIR) ?? path.join('data', nodeId));
  const apiAddr = Object.freeze(parseHostPort(E.API_ADDR, r.get(E.API_ADDR) ?? '127.0.0.1:8200'));
  const raftAddr = Object.freeze(parseHostPort(E.RAFT_ADDR, r.get(E.RAFT_ADDR) ?? '127.0.0.1:8201'));

  const certFile = r.get(E.TLS_CERT_FILE);
  const keyFile = r.get(E.TLS_KEY_FILE);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const missing = certFile === undefined ? E.TLS_CERT_FILE : E.TLS_KEY_FILE;
    const given = certFile === undefined ? E.TLS_KEY_FILE : E.TLS_CERT_FILE;
    throw new ConfigError(missing, `is required when ${given} is set (TLS needs both)`);
  }
  let tls: ServerConfig['tls'];
  if (certFile !== undefined && keyFile !== undefined) {
    const cert = path.resolve(io.cwd, certFile);
    const key = path.resolve(io.cwd, keyFile);
    if (!io.readable(cert)) throw new ConfigError(E.TLS_CERT_FILE, `${JSON.stringify(certFile)} does not exist or is not readable`);
    if (!io.readable(key)) throw new ConfigError(E.TLS_KEY_FILE, `${JSON.stringify(keyFile)} does not exist or is not readable`);
    tls = Object.freeze({ certFile: cert, keyFile: key });
  }

  const initialText = r.get(E.INITIAL_CLUSTER);
  const joinText = r.get(E.JOIN);
  if (initialText !== undefined && joinText !== undefined) {
    throw new ConfigError(E.JOIN, `cannot be combined with ${E.INITIAL_CLUSTER}: a node either bootstraps a new cluster or joins a running one`);
  }
  const join = joinText === undefined ? undefined : parseOrigin(E.JOIN, joinText, 'the API URL of a running member, e.g. http://10.0.0.1:8200');
  const explicitMembers = initialText === undefined ? undefined : parseInitialCluster(initialText);
  const self = explicitMembers?.find((m) => m.id === nodeId);
  if (explicitMembers !== undefined && self === undefined) {
    throw new ConfigError(E.INITIAL_CLUSTER, `does not contain ${E.NODE_ID} ${JSON.stringify(nodeId)}`);
  }
  const multiNode = (explicitMembers?.length ?? 1) > 1 || join !== undefined;

  const advApiText = r.get(E.ADVERTISE_API);
  const advRaftText = r.get(E.ADVERTISE_RAFT);
  if (multiNode && advRaftText === undefined && self === undefined && isWildcard(raftAddr.host)) {
    throw new ConfigError(E.ADVERTISE_RAFT, `is required when ${E.RAFT_ADDR} listens on a wildcard address (${raftAddr.host})`);
  }
  if (multiNode && advApiText === undefined && isWildcard(apiAddr.host)) {
    throw new ConfigError(E.ADVERTISE_API, `is required when ${E.API_ADDR} listens on a wildcard address (${apiAddr.host})`);
  }
  const loopbackIfWildcard = (hp: HostPort): HostPort => (isWildcard(hp.host) ? { host: hp.host === '0.0.0.0' ? '127.0.0.1' : '::1', port: hp.port } : hp);
  const advertiseApi = advApiText === undefined
    ? hostPortUrl(loopbackIfWildcard(apiAddr), tls === undefined ? 'http' : 'https')
    : parseAdvertise(E.ADVERTISE_API, advApiText, tls === undefined ? 'http' : 'https');
  let advertiseRaft: string;
  if (advRaftText !== undefined) {
    advertiseRaft = parseAdvertise(E.ADVERTISE_RAFT, advRaftText, 'http');
    if (self !== undefined && self.raftUrl !== advertiseRaft) {
      throw new ConfigError(E.ADVERTISE_RAFT, `${advertiseRaft} differs from this node's entry in ${E.INITIAL_CLUSTER} (${self.raftUrl})`);
    }
  } else {
    // The node's own INITIAL_CLUSTER entry is by definition the URL its peers use.
    advertiseRaft = self?.raftUrl ?? hostPortUrl(loopbackIfWildcard(raftAddr), 'http');
  }
  const initialCluster = Object.freeze(explicitMembers ?? [Object.freeze({ id: nodeId, raftUrl: advertiseRaft })]);

  const clusterKeyText = r.get(E.CLUSTER_KEY);
  const clusterKey = clusterKeyText === undefined ? undefined : parseKey(E.CLUSTER_KEY, clusterKeyText, { min: 32 });
  if (clusterKey === undefined && multiNode) {
    throw new ConfigError(E.CLUSTER_KEY, join !== undefined ? `is required with ${E.JOIN}` : `is required when ${E.INITIAL_CLUSTER} has more than one member`);
  }
  const previousKeyText = r.get(E.PREVIOUS_CLUSTER_KEY);
  const previousClusterKey = previousKeyText === undefined ? undefined : parseKey(E.PREVIOUS_CLUSTER_KEY, previousKeyText, { min: 32 });
  if (previousClusterKey !== undefined && clusterKey === undefined) throw new ConfigError(E.PREVIOUS_CLUSTER_KEY, `is only meaningful with ${E.CLUSTER_KEY} (the new key)`);

  const kmsModeText = r.get(E.KMS_MODE) ?? 'local';
  if (kmsModeText !== 'local' && kmsModeText !== 'aws') throw new ConfigError(E.KMS_MODE, `${shown(E.KMS_MODE, kmsModeText)} is not local or aws`);
  const kmsMode: 'local' | 'aws' = kmsModeText;
  const masterText = r.get(E.LOCAL_MASTER_KEY);
  const kmsKeyId = r.get(E.KMS_KEY_ID);
  const kmsEndpointText = r.get(E.KMS_ENDPOINT);
  const kmsEndpoint = kmsEndpointText === undefined ? undefined : parseOrigin(E.KMS_ENDPOINT, kmsEndpointText, 'https://host[:port]');
  let localMasterKeys: Uint8Array[] | undefined;
  if (kmsMode === 'aws') {
    if (kmsKeyId === undefined) throw new ConfigError(E.KMS_KEY_ID, `is required when ${E.KMS_MODE}=aws (key id, ARN or alias/name)`);
    if (kmsKeyId.length > 2048 || /\s/.test(kmsKeyId)) throw new ConfigError(E.KMS_KEY_ID, `${shown(E.KMS_KEY_ID, kmsKeyId)} is not a key id, ARN or alias`);
    if (masterText !== undefined) warnings.push(`${E.LOCAL_MASTER_KEY} is ignored because ${E.KMS_MODE}=aws`);
  } else {
    if (masterText !== undefined) localMasterKeys = parseKeyRing(E.LOCAL_MASTER_KEY, masterText);
    else {
      warnings.push(
        `${E.LOCAL_MASTER_KEY} is not set: using a RANDOM master key. Everything written now becomes unreadable after a restart, and nodes cannot read each other's data. Development only.`,
      );
    }
    if (kmsKeyId !== undefined) warnings.push(`${E.KMS_KEY_ID} is ignored because ${E.KMS_MODE}=local`);
    if (kmsEndpoint !== undefined) warnings.push(`${E.KMS_ENDPOINT} is ignored because ${E.KMS_MODE}=local`);
  }

  const bootstrapToken = r.get(E.BOOTSTRAP_TOKEN);
  if (bootstrapToken !== undefined) {
    if (bootstrapToken.length > 512 || !/^[\x21-\x7e]+$/.test(bootstrapToken)) {
      throw new ConfigError(E.BOOTSTRAP_TOKEN, 'must be 1-512 printable ASCII characters without spaces');
    }
    // A short bootstrap token is allowed (development clusters, scripts) but it is the key to
    // everything until it is rotated: say so loudly.
    if (bootstrapToken.length < 16) warnings.push(`${E.BOOTSTRAP_TOKEN} is shorter than 16 characters: use 32 random bytes, and rotate it once real admin tokens exist`);
  }

  const allowText = r.get(E.READ_ALLOWLIST);
  let readAllowlist: readonly string[] = [];
  if (allowText !== undefined) {
    const v = validateCidrs(allowText.split(',').map((s) => s.trim()));
    if (!v.ok) throw new ConfigError(E.READ_ALLOWLIST, v.errors.join('; '));
    readAllowlist = Object.freeze([...v.cidrs]);
  }

  const proxiesText = r.get(E.TRUSTED_PROXIES);
  let trustedProxies: readonly string[] = [];
  if (proxiesText !== undefined && proxiesText.trim() !== '') {
    const v = validateCidrs(proxiesText.split(',').map((s) => s.trim()));
    if (!v.ok) throw new ConfigError(E.TRUSTED_PROXIES, v.errors.join('; '));
    trustedProxies = Object.freeze([...v.cidrs]);
  }
  const ttlText = r.get(E.TOKEN_MAX_TTL);
  let tokenMaxTtlMs = 365 * 86_400_000;
  if (ttlText !== undefined) {
    try {
      tokenMaxTtlMs = parseDuration(ttlText);
    } catch (err) {
      throw new ConfigError(E.TOKEN_MAX_TTL, (err as Error).message);
    }
  }

  const heartbeatMs = parseIntVar(r, E.HEARTBEAT_MS, 100, 1, 60_000);
  const electionMs = parseIntVar(r, E.ELECTION_MS, 1000, 1, 600_000);
  if (electionMs <= 2 * heartbeatMs) {
    throw new ConfigError(E.ELECTION_MS, `${electionMs} must be greater than 2 x ${E.HEARTBEAT_MS} (${2 * heartbeatMs})`);
  }
  const authMaxFailures = parseIntVar(r, E.AUTH_MAX_FAILURES, 5, 0, 1_000_000);
  const authWindowSecs = parseIntVar(r, E.AUTH_WINDOW_SECS, 300, 0, 31_536_000);
  const authLockoutSecs = parseIntVar(r, E.AUTH_LOCKOUT_SECS, 900, 0, 31_536_000);

  const cfg: ServerConfig = {
    nodeId,
    dataDir,
    apiAddr,
    raftAddr,
    advertiseApi,
    advertiseRaft,
    initialCluster,
    join,
    kmsMode,
    localMasterKeys,
    kmsKeyId: kmsMode === 'aws' ? kmsKeyId : undefined,
    kmsEndpoint: kmsMode === 'aws' ? kmsEndpoint : undefined,
    dekCacheTtlSecs: parseIntVar(r, E.DEK_CACHE_TTL_SECS, 300, 0, 86_400),
    clusterKey,
    previousClusterKey,
    bootstrapToken,
    readAllowlist,
    trustProxy: parseBoolVar(r, E.TRUST_PROXY, false),
    integrityAdopt: parseBoolVar(r, E.INTEGRITY_ADOPT, false),
    trustedProxies,
    tokenMaxTtlMs,
    readAuth: parseReadAuth(r),
    tls,
    auditFile: path.resolve(dataDir, r.get(E.AUDIT_FILE) ?? 'audit.jsonl'),
    kmsRewrapEnabled: parseBoolVar(r, E.KMS_REWRAP_ENABLED, false),
    kmsRewrapPollSecs: parseIntVar(r, E.KMS_REWRAP_POLL_SECS, 86_400, 1, 31_536_000),
    kmsRewrapMaxPerSec: parseIntVar(r, E.KMS_REWRAP_MAX_PER_SEC, 50, 1, 100_000),
    rotationPollSecs: parseIntVar(r, E.ROTATION_POLL_SECS, 15, 1, 86_400),
    authMaxFailures,
    authWindowSecs,
    authLockoutSecs,
    authLockoutEnabled: authMaxFailures > 0 && authWindowSecs > 0 && authLockoutSecs > 0,
    heartbeatMs,
    electionMs,
    snapshotEntries: parseIntVar(r, E.SNAPSHOT_ENTRIES, 10_000, 1, 1_000_000_000),
    snapshotCatchUpEntries: parseIntVar(r, E.SNAPSHOT_CATCHUP_ENTRIES, 1_000, 0, 1_000_000_000),
    snapshotIntervalMs: parseSnapshotInterval(r),
    snapshotDir: path.resolve(dataDir, r.get(E.SNAPSHOT_DIR) ?? 'snapshots'),
    snapshotRetain: parseIntVar(r, E.SNAPSHOT_RETAIN, 7, 1, 100_000),
    logLevel: parseLogLevel(r),
    warnings: Object.freeze(warnings),
  };
  // NB: Object.freeze cannot freeze typed-array contents; the key bytes stay writable so the
  // owner can zero them (best effort) once they are no longer needed.
  return Object.freeze(cfg);
}

/** Shortest scheduled-snapshot interval accepted. */
const MIN_SNAPSHOT_INTERVAL_MS = 1_000;

function parseSnapshotInterval(r: Reader): number {
  const name = CONFIG_ENV.SNAPSHOT_INTERVAL;
  const v = r.get(name);
  if (v === undefined || /^(off|0|false|none)$/i.test(v)) return 0;
  // NB: in the contract's duration syntax `m` is a month; `30m` meant as minutes would silently
  // schedule one backup a month-and-a-half from now. Nobody asks for monthly snapshots in months
  // notation, so refuse it and name both spellings.
  if (/^\d+m$/.test(v)) throw new ConfigError(name, `${shown(name, v)} is ambiguous: write ${v}in for minutes, or use d/w for longer periods`);
  let ms: number;
  try {
    ms = parseDuration(v);
  } catch (err) {
    throw new ConfigError(name, `${(err as Error).message} (or off)`);
  }
  if (ms < MIN_SNAPSHOT_INTERVAL_MS) throw new ConfigError(name, `${shown(name, v)} is too short (minimum 1s)`);
  return ms;
}

/** `COFFER_READ_AUTH`: what a secret read needs. */
export type ReadAuthMode = 'allowlist' | 'token' | 'both';

function parseReadAuth(r: Reader): ReadAuthMode {
  const v = r.get(CONFIG_ENV.READ_AUTH);
  if (v === undefined) return 'allowlist';
  if (v === 'allowlist' || v === 'token' || v === 'both') return v;
  throw new ConfigError(CONFIG_ENV.READ_AUTH, `${JSON.stringify(v)} is not allowlist, token or both`);
}

function parseLogLevel(r: Reader): LogLevel {
  const v = r.get(CONFIG_ENV.LOG_LEVEL) ?? 'info';
  const lower = v.toLowerCase();
  const level = LOG_LEVELS.find((l) => l === lower);
  if (level === undefined) throw new ConfigError(CONFIG_ENV.LOG_LEVEL, `${shown(CONFIG_ENV.LOG_LEVEL, v)} is not one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

/**
 * A loggable view of the configuration: key material and the bootstrap token replaced by
 * `"[set]"`/`"[unset]"`.
 *
 * @param cfg - the configuration
 * @returns a plain object safe to log
 */
export function redactConfig(cfg: Readonly<ServerConfig>): Record<string, unknown> {
  const mark = (v: unknown): string => (v === undefined ? '[unset]' : '[set]');
  return {
    ...cfg,
    localMasterKeys: cfg.localMasterKeys === undefined ? '[unset]' : `[${cfg.localMasterKeys.length} set]`,
    clusterKey: mark(cfg.clusterKey),
    previousClusterKey: mark(cfg.previousClusterKey),
    bootstrapToken: mark(cfg.bootstrapToken),
  };
}

/**
 * Help text for `coffer server --help`: every variable, its flag, default and meaning.
 *
 * @returns multi-line text
 */
export function describeConfig(): string {
  const width = Math.max(...CONFIG_VARIABLES.map((s) => s.name.length + s.flag.length + 2));
  const lines = [
    'Usage: coffer server [flags]',
    '',
    'Every setting is an environment variable and a flag; a flag wins over the variable.',
    'A bad value stops the server with one line naming the variable. See docs/config.md.',
    '',
  ];
  for (const s of CONFIG_VARIABLES) {
    const head = `${s.flag}, ${s.name}`.padEnd(width);
    lines.push(`  ${head}  ${s.description} [default: ${s.defaultText}]`);
  }
  return `${lines.join('\n')}\n`;
}
