/**
 * The configuration table: every `COFFER_*` variable once — its section, the `ServerConfig` field
 * it fills, its default (as text, parsed like a given value), its parser, and its description.
 * The loader (./load.ts), `describeConfig()`, docs/config.md (./docs.ts) and the `coffer server`
 * flags are all derived from it.
 *
 * Adding a variable is one row: with `field`, its parsed value appears in `ServerConfig` under
 * that name with the parser's return type (`T` with a `default`, else `T | undefined`). A row
 * without `field` is an input to a cross-field rule in ./load.ts, which sets the resulting field.
 *
 * NB: rows are plain literals with inline, annotated parsers so that `--isolatedDeclarations` can
 * emit the table's type, from which `ServerConfig` is computed; keep new rows in that form.
 * Order is CONTRACT.md's; `coffer server --help` and docs/config.md group rows by `section`.
 */
import { ConfigError } from '../errors.js';
import * as p from './parsers.js';
import type { ClusterMember, HostPort, LogLevel, ReadAuthMode, ValueContext } from './parsers.js';

/** Where a variable is listed in `--help` and docs/config.md. */
export const CONFIG_SECTIONS = {
  identity: 'Identity, storage and listeners',
  cluster: 'Cluster membership and peer security',
  keys: 'Keys and KMS',
  access: 'Access',
  operations: 'TLS, audit, Raft, logs',
} as const;
/** A section key. */
export type ConfigSection = keyof typeof CONFIG_SECTIONS;

/** The shape every row has (checked below; rows keep their literal types). */
export interface VariableRow {
  readonly section: ConfigSection;
  /** `ServerConfig` field that takes the parsed value as is; absent: a cross-field rule sets it. */
  readonly field?: string;
  /** Default as text, parsed like a given value. Absent: unset means `undefined` (or a rule's). */
  readonly default?: string;
  /** How `--help` and the docs show the default, when the text alone does not say it. */
  readonly defaultText?: string;
  readonly parse: (v: string, c: ValueContext) => unknown;
  /** One line for `coffer server --help`. */
  readonly help: string;
  /** The docs/config.md column: accepted values and what they do (Markdown). */
  readonly doc: string;
  /** A flag that may stand alone (`--trust-proxy`). */
  readonly boolean?: true;
  /** Never echoed in errors or logs. */
  readonly secret?: true;
}

/** Every server variable, keyed by its name without `COFFER_`. */
export const CONFIG_TABLE = {
  NODE_ID: {
    section: 'identity',
    defaultText: 'required',
    parse: (v: string, c: ValueContext): string => p.nodeId(v, c),
    help: 'stable member id, e.g. n1 (1-64 of A-Z a-z 0-9 . _ -)',
    doc: '1–64 bytes of `[A-Za-z0-9._-]`, not `self`; stable for the node\'s life',
  },
  DATA_DIR: {
    section: 'identity',
    defaultText: './data/<id>',
    parse: (v: string, c: ValueContext): string => p.pathInCwd(v, c),
    help: 'Raft log, state, snapshots, audit log',
    doc: 'path; relative paths resolve against the working directory. Holds the Raft log, state, snapshots and (by default) the audit log',
  },
  API_ADDR: {
    section: 'identity',
    field: 'apiAddr',
    default: '127.0.0.1:8200',
    parse: (v: string, c: ValueContext): HostPort => p.hostPort(v, c),
    help: 'client-facing HTTP(S) listener, host:port',
    doc: '`host:port`: IPv4, hostname or `[IPv6]`, port 1–65535. Client-facing HTTP(S) listener',
  },
  RAFT_ADDR: {
    section: 'identity',
    field: 'raftAddr',
    default: '127.0.0.1:8201',
    parse: (v: string, c: ValueContext): HostPort => p.hostPort(v, c),
    help: 'peer listener, host:port (private network / WireGuard only)',
    doc: '`host:port` as above. Peer listener: keep it on a private network / WireGuard',
  },
  ADVERTISE_API: {
    section: 'identity',
    defaultText: 'the API listen address',
    parse: (v: string): string => v,
    help: 'API URL that peers and redirects use',
    doc: '`http(s)://host:port` (bare origin, no path) or `host:port` (the scheme is `https` when TLS is on). What peers and redirects use. Required in a multi-node cluster when the API listens on a wildcard address (`0.0.0.0`, `[::]`): peers cannot dial it; a single node falls back to loopback',
  },
  ADVERTISE_RAFT: {
    section: 'identity',
    defaultText: 'the Raft listen address (or this node\'s COFFER_INITIAL_CLUSTER entry)',
    parse: (v: string): string => v,
    help: 'peer URL that other members use',
    doc: '`http://host:port` or `host:port`. Must equal this node\'s entry in `COFFER_INITIAL_CLUSTER` when both are set; required like `COFFER_ADVERTISE_API` when the Raft port listens on a wildcard address',
  },
  INITIAL_CLUSTER: {
    section: 'cluster',
    defaultText: 'single node (just this one)',
    parse: (v: string, c: ValueContext): readonly ClusterMember[] => p.initialCluster(v, c),
    help: 'n1=http://h1:8201,n2=http://h2:8201,...; read only when the data dir is new',
    doc: '`id=URL` pairs separated by commas: `n1=http://10.0.0.1:8201,n2=http://10.0.0.2:8201,n3=http://10.0.0.3:8201`. Ids follow the node-id rule; URLs are `http(s)://host:port` origins; no duplicate ids or URLs; **must contain `COFFER_NODE_ID`**. Read only when the data dir is new; safe to leave set on restart',
  },
  JOIN: {
    section: 'cluster',
    field: 'join',
    defaultText: 'none',
    parse: (v: string, c: ValueContext): string => p.origin(v, c, 'the API URL of a running member, e.g. http://10.0.0.1:8200'),
    help: 'API URL of a running member to join (as learner, promoted once caught up)',
    doc: 'API URL (origin) of a running member; the node joins as a learner and is promoted once caught up. Cannot be combined with `COFFER_INITIAL_CLUSTER`',
  },
  KMS_MODE: {
    section: 'keys',
    field: 'kmsMode',
    default: 'local',
    parse: (v: string, c: ValueContext): 'local' | 'aws' => p.oneOf(v, c, ['local', 'aws'] as const),
    help: 'local or aws',
    doc: '`local` or `aws`',
  },
  LOCAL_MASTER_KEY: {
    section: 'keys',
    defaultText: 'random, with a loud warning',
    parse: (v: string, c: ValueContext): readonly Uint8Array[] => p.keyRing(v, c),
    help: 'base64 of 32 bytes; same on every node (a key ring: several, comma-separated, current first)',
    doc: 'local mode: base64 of **exactly 32 bytes**, the same on every node; or a key ring: several such keys separated by commas, **the current key first** (new data keys are wrapped with it; older keys only unwrap what they wrapped — see `docs/OPERATIONS.md`, *Key rotation*). Unset means a random key per process: data written then is unreadable after a restart and across nodes (development only). Ignored, with a warning, in `aws` mode',
    secret: true,
  },
  KMS_KEY_ID: {
    section: 'keys',
    defaultText: '—',
    parse: (v: string): string => v,
    help: 'AWS mode: key id, ARN or alias',
    doc: '**required in `aws` mode**: key id, ARN or `alias/name` (no whitespace). Ignored, with a warning, in `local` mode',
  },
  KMS_ENDPOINT: {
    section: 'keys',
    defaultText: 'SDK default',
    parse: (v: string, c: ValueContext): string => p.origin(v, c, 'https://host[:port]'),
    help: 'KMS endpoint override (VPC endpoint, emulator)',
    doc: '`http(s)://host[:port]` origin (VPC endpoint, emulator such as moto). AWS credentials and region come from the standard AWS SDK environment',
  },
  SEAL: {
    section: 'keys',
    field: 'seal',
    default: 'none',
    parse: (v: string, c: ValueContext): 'none' | 'shamir' => p.oneOf(v, c, ['none', 'shamir'] as const),
    help: 'none, or shamir: the local master key is made by `coffer operator init`, split into shares, and every node starts sealed',
    doc: '`none` or `shamir`. `shamir`: the local master key is never configured — `PUT /v1/sys/init` (`coffer operator init`) generates it once per cluster and splits it into Shamir shares; every node starts sealed (after every restart too) and serves nothing but health, init, unseal and seal-status until threshold shares reach it (`coffer operator unseal`). Requires `COFFER_KMS_MODE=local` and `COFFER_CLUSTER_KEY` (also on one node); `COFFER_LOCAL_MASTER_KEY` must not be set. See `docs/OPERATIONS.md`, *Sealed clusters*',
  },
  DEK_CACHE_TTL_SECS: {
    section: 'keys',
    field: 'dekCacheTtlSecs',
    default: '300',
    parse: (v: string, c: ValueContext): number => p.wholeNumber(v, c, 0, 86_400),
    help: 'unwrapped-DEK cache lifetime in seconds; 0 disables',
    doc: 'whole number 0–86400; `0` disables the unwrapped-DEK cache',
  },
  CLUSTER_KEY: {
    section: 'cluster',
    field: 'clusterKey',
    defaultText: 'required with >1 node',
    parse: (v: string, c: ValueContext): Uint8Array => p.key(v, c, { min: 32 }),
    help: 'base64 of >=32 bytes, same on every node; authenticates every peer RPC',
    doc: 'base64 (standard or URL-safe) of **at least 32 bytes**, the same on every node. Required when `COFFER_INITIAL_CLUSTER` has more than one member or `COFFER_JOIN` is set. Every peer RPC is authenticated with a key derived from it (HKDF-SHA256, info `coffer peer auth v1`); unauthenticated peer traffic is refused. Generate: `openssl rand -base64 32`. It is also the root of the storage integrity keys (HKDF, info `coffer record mac v1` / `coffer snapshot mac v1`): records on disk and snapshots are tagged under keys derived from it, so a data dir or backup opens only with the same key',
    secret: true,
  },
  PREVIOUS_CLUSTER_KEY: {
    section: 'cluster',
    field: 'previousClusterKey',
    defaultText: 'none',
    parse: (v: string, c: ValueContext): Uint8Array => p.key(v, c, { min: 32 }),
    help: 'the cluster key before a rotation: a data dir tagged under it is re-tagged under COFFER_CLUSTER_KEY at start; unset it afterwards',
    doc: 'base64 of at least 32 bytes; only with `COFFER_CLUSTER_KEY`. During a cluster-key rotation: a data dir tagged under this (old) key is re-tagged under `COFFER_CLUSTER_KEY` at start. Unset it afterwards',
    secret: true,
  },
  INTEGRITY_ADOPT: {
    section: 'cluster',
    field: 'integrityAdopt',
    default: 'false',
    parse: (v: string, c: ValueContext): boolean => p.bool(v, c),
    help: 'once, after upgrading from a version without storage integrity tags: adopt the untagged data dir as it is (trust on first use); unset it afterwards',
    doc: '`true`/`false`. Once, after upgrading from a version without storage integrity tags: adopt the untagged data dir as it is (trust on first use). Without it such a data dir is refused. Unset it afterwards (docs/SECURITY.md, *Storage below the barrier*)',
    boolean: true,
  },
  BOOTSTRAP_TOKEN: {
    section: 'access',
    field: 'bootstrapToken',
    defaultText: 'none',
    parse: (v: string, c: ValueContext): string => p.bootstrapToken(v, c),
    help: 'seeds role admin and token bootstrap-admin on first start',
    doc: '1–512 printable ASCII characters without spaces; shorter than 16 logs a warning (use 32 random bytes, e.g. `openssl rand -base64 32`). Seeds role `admin` and token `bootstrap-admin` exactly once through consensus; the same value on every node; safe to leave set on restart',
    secret: true,
  },
  READ_ALLOWLIST: {
    section: 'access',
    field: 'readAllowlist',
    default: '',
    defaultText: 'empty (deny all reads)',
    parse: (v: string, c: ValueContext): readonly string[] => p.cidrs(v, c),
    help: 'comma-separated CIDRs seeding the replicated allowlist on first start',
    doc: 'comma-separated CIDRs or single addresses (IPv4 dotted decimal, IPv6; single addresses become /32 or /128; host bits are cleared; `::ffff:a.b.c.d` forms become IPv4). Seeds the replicated allowlist on a new cluster\'s first start, with or without `COFFER_BOOTSTRAP_TOKEN`; afterwards the replicated list is what is enforced, and a node whose configured list differs logs a warning saying so. Any invalid entry stops start-up',
  },
  TRUST_PROXY: {
    section: 'access',
    field: 'trustProxy',
    default: 'false',
    parse: (v: string, c: ValueContext): boolean => p.bool(v, c),
    help: 'use X-Forwarded-For for the client IP: the direct peer is the one trusted proxy',
    doc: '`true`/`false`. When true, the direct peer is the one trusted proxy: the client IP is the right-most `X-Forwarded-For` entry; otherwise the header is ignored (unless `COFFER_TRUSTED_PROXIES` lists the peer)',
    boolean: true,
  },
  TRUSTED_PROXIES: {
    section: 'access',
    field: 'trustedProxies',
    default: '',
    defaultText: 'none',
    parse: (v: string, c: ValueContext): readonly string[] => p.cidrs(v, c),
    help: 'comma-separated CIDRs of reverse proxies; the client IP is the right-most X-Forwarded-For address not in this list',
    doc: 'comma-separated CIDRs of reverse proxies. When the socket\'s address is in the list, the client IP is the right-most `X-Forwarded-For` address that is not in the list (entries left of it were written by the client and are never read); an unparseable entry there denies the request',
  },
  TOKEN_MAX_TTL: {
    section: 'access',
    field: 'tokenMaxTtlMs',
    default: '1y',
    parse: (v: string, c: ValueContext): number => p.duration(v, c),
    help: 'longest lifetime of a minted or rotated token (e.g. 30d, 12w, 1y); a role may set a shorter maxTtl',
    doc: 'a duration (`30d`, `12w`, `1y`, …). The longest lifetime of any minted or rotated token; a role\'s `maxTtl` can only shorten it; a token created without `ttl` gets the cap',
  },
  SESSION_TTL: {
    section: 'access',
    field: 'sessionTtlMs',
    default: '1h',
    parse: (v: string, c: ValueContext): number => {
      const ms = p.duration(v, c);
      if (ms < 1_000 || ms > 7 * 86_400_000) throw new ConfigError(c.name, `${c.shown} is not between 1s and 7d`);
      return ms;
    },
    help: 'lifetime of an identity session opened by an Ed25519 login (e.g. 1h, 15min); between 1s and 7d',
    doc: 'a duration between `1s` and `7d`. Lifetime of the session token `POST /v1/auth/login` returns; the session also ends when its identity is disabled or deleted',
  },
  READ_AUTH: {
    section: 'access',
    field: 'readAuth',
    default: 'allowlist',
    parse: (v: string, c: ValueContext): ReadAuthMode => p.oneOf(v, c, ['allowlist', 'token', 'both'] as const),
    help: 'how secret reads are authorised: allowlist (client address), token (a token granting secret.read on the name) or both',
    doc: 'how secret reads (native get, batch, verify, Vault KV data reads) are authorised: `allowlist` (the client address is on the replicated read allowlist; a token is not needed), `token` (a token whose role grants `secret.read` on every name read, from any address; failures count toward lockout), `both` (both must hold). `/metrics` always follows the allowlist',
  },
  TLS_CERT_FILE: {
    section: 'operations',
    defaultText: 'none',
    parse: (v: string, c: ValueContext): string => p.pathInCwd(v, c),
    help: 'PEM certificate: serve the API over HTTPS (with the key file)',
    doc: 'PEM file, must exist and be readable. Set together with the key file to serve the API over HTTPS',
  },
  TLS_KEY_FILE: {
    section: 'operations',
    defaultText: 'none',
    parse: (v: string, c: ValueContext): string => p.pathInCwd(v, c),
    help: 'PEM private key for the certificate',
    doc: 'PEM file, must exist and be readable; required with the certificate and vice versa',
  },
  AUDIT_FILE: {
    section: 'operations',
    field: 'auditFile',
    default: 'audit.jsonl',
    defaultText: '<data>/audit.jsonl',
    parse: (v: string, c: ValueContext): string => p.pathInDataDir(v, c),
    help: 'append-only, hash-chained JSON lines',
    doc: 'path; relative paths resolve against the data dir. Append-only, hash-chained JSON lines (created 0600); `coffer audit verify FILE` checks it',
  },
  KMS_REWRAP_ENABLED: {
    section: 'keys',
    field: 'kmsRewrapEnabled',
    default: 'false',
    parse: (v: string, c: ValueContext): boolean => p.bool(v, c),
    help: 'run the re-wrap worker on the leader',
    doc: '`true`/`false` (also `1`/`0`, any case). Runs the re-wrap worker on the leader',
    boolean: true,
  },
  KMS_REWRAP_POLL_SECS: {
    section: 'keys',
    field: 'kmsRewrapPollSecs',
    default: '86400',
    parse: (v: string, c: ValueContext): number => p.wholeNumber(v, c, 1, 31_536_000),
    help: 'how often the worker asks the KMS for rotations',
    doc: 'whole number 1–31536000',
  },
  KMS_REWRAP_MAX_PER_SEC: {
    section: 'keys',
    field: 'kmsRewrapMaxPerSec',
    default: '50',
    parse: (v: string, c: ValueContext): number => p.wholeNumber(v, c, 1, 100_000),
    help: 'pacing of re-wrap commands',
    doc: 'whole number 1–100000',
  },
  ROTATION_POLL_SECS: {
    section: 'keys',
    field: 'rotationPollSecs',
    default: '15',
    parse: (v: string, c: ValueContext): number => p.wholeNumber(v, c, 1, 86_400),
    help: 'how often the leader looks for secrets due for automatic rotation',
    doc: 'whole number 1–86400; how often the leader looks for secrets due for automatic rotation',
  },
  AUTH_MAX_FAILURES: {
    section: 'access',
    field: 'authMaxFailures',
    default: '5',
    parse: (v: string, c: ValueContext): number => p.wholeNumber(v, c, 0, 1_000_000),
    help: 'auth failures before a client IP is locked out (429); 0 disables',
    doc: 'whole number 0–1000000',
  },
  AUTH_WINDOW_SECS: {
    section: 'access',
    field: 'authWindowSecs',
    default: '300',
    parse: (v: string, c: ValueContext): number => p.wholeNumber(v, c, 0, 31_536_000),
    help: 'window in which failures are counted; 0 disables lockout',
    doc: 'whole number 0–31536000',
  },
  AUTH_LOCKOUT_SECS: {
    section: 'access',
    field: 'authLockoutSecs',
    default: '900',
    parse: (v: string, c: ValueContext): number => p.wholeNumber(v, c, 0, 31_536_000),
    help: 'how long a lockout lasts; 0 disables lockout',
    doc: 'whole number 0–31536000. A client address (IPv4 address or IPv6 /64) with `MAX_FAILURES` auth failures within `WINDOW_SECS` is answered 429 for `LOCKOUT_SECS`, cluster-wide; a successful request does not clear failures. `0` in any of the three disables lockout',
  },
  HEARTBEAT_MS: {
    section: 'operations',
    field: 'heartbeatMs',
    default: '100',
    parse: (v: string, c: ValueContext): number => p.wholeNumber(v, c, 1, 60_000),
    help: 'Raft heartbeat interval in ms',
    doc: 'whole number 1–60000',
  },
  ELECTION_MS: {
    section: 'operations',
    field: 'electionMs',
    default: '1000',
    parse: (v: string, c: ValueContext): number => p.wholeNumber(v, c, 1, 600_000),
    help: 'Raft election timeout in ms (> 2 x heartbeat)',
    doc: 'whole number 1–600000, and **greater than 2 × `COFFER_HEARTBEAT_MS`** (10× is the usual ratio). A follower that hears no leader for a random time in [1, 1.5) × this starts an election; a leader that hears from no majority for this long steps down. With a majority connected, writes succeed again within 2 × this of losing the leader; when two followers stand at once and split the vote, each further election round adds up to 1.5 × this',
  },
  SNAPSHOT_ENTRIES: {
    section: 'operations',
    field: 'snapshotEntries',
    default: '10000',
    parse: (v: string, c: ValueContext): number => p.wholeNumber(v, c, 1, 1_000_000_000),
    help: 'compact the log after this many applied entries',
    doc: 'whole number ≥ 1; compact the log after this many applied entries',
  },
  SNAPSHOT_CATCHUP_ENTRIES: {
    section: 'operations',
    field: 'snapshotCatchUpEntries',
    default: '1000',
    parse: (v: string, c: ValueContext): number => p.wholeNumber(v, c, 0, 1_000_000_000),
    help: 'entries kept behind a snapshot so lagging followers catch up without one',
    doc: 'whole number ≥ 0; log entries kept behind each snapshot so a follower that lags by fewer entries catches up from the log; one further behind is sent the snapshot (counted in `coffer_raft_snapshots_sent_total` / `_installed_total`)',
  },
  SNAPSHOT_INTERVAL: {
    section: 'operations',
    field: 'snapshotIntervalMs',
    default: 'off',
    parse: (v: string, c: ValueContext): number => p.snapshotInterval(v, c),
    help: 'write a sealed backup snapshot this often, on the leader only (e.g. 6h, 30min, 45s; off disables)',
    doc: 'a duration ≥ `1s` such as `6h`, `30min`, `45s`, `1d` (`off` or unset disables). The leader writes a sealed backup snapshot (the same file as `GET /v1/cluster/snapshot`) this often into `COFFER_SNAPSHOT_DIR`; the schedule is replicated, so it goes on across leader changes without skipping or doubling a slot. NB: `30m` is refused as ambiguous — in Coffer durations `m` is a month; minutes are `min`. See OPERATIONS.md, "Scheduled snapshots"',
  },
  SNAPSHOT_DIR: {
    section: 'operations',
    field: 'snapshotDir',
    default: 'snapshots',
    defaultText: '<data>/snapshots',
    parse: (v: string, c: ValueContext): string => p.pathInDataDir(v, c),
    help: 'directory of the scheduled snapshots (relative to the data dir)',
    doc: 'path; relative paths resolve against the data dir. Created (0700) when missing. Files are `coffer-<UTC time of the slot>-<raft index>.snap` (0600)',
  },
  SNAPSHOT_RETAIN: {
    section: 'operations',
    field: 'snapshotRetain',
    default: '7',
    parse: (v: string, c: ValueContext): number => p.wholeNumber(v, c, 1, 100_000),
    help: 'scheduled snapshots kept in the directory; older ones are deleted',
    doc: 'whole number 1–100000; the newest this many scheduled snapshots in the directory are kept, older ones deleted after each write',
  },
  LOG_LEVEL: {
    section: 'operations',
    field: 'logLevel',
    default: 'info',
    parse: (v: string, c: ValueContext): LogLevel => p.oneOf(v, c, p.LOG_LEVELS, true),
    help: 'fatal, error, warn, info, debug, trace or silent',
    doc: '`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent` (any case). Structured JSON logs on stdout',
  },
} as const;

// Every row has the row shape (the table itself keeps its literal types for ServerConfig).
const rowsChecked: Readonly<Record<string, VariableRow>> = CONFIG_TABLE;

type Table = typeof CONFIG_TABLE;
/** A variable's key: its name without `COFFER_`. */
export type ConfigKey = keyof Table;
/** One of the variable names. */
export type ConfigVariable = `COFFER_${ConfigKey}`;

/** The parsed type of a row: `T`, or `T | undefined` when it has no default. */
export type RowValue<R> = R extends { readonly parse: (v: string, c: ValueContext) => infer T } ? (R extends { readonly default: string } ? T : T | undefined) : never;
type DirectKey = { [K in ConfigKey]: Table[K] extends { readonly field: string } ? K : never }[ConfigKey];
type FieldOf<R> = R extends { readonly field: infer F extends string } ? F : never;

/** The `ServerConfig` fields that are table values as parsed (one per row with `field`). */
export type TableValues = { readonly [K in DirectKey as FieldOf<Table[K]>]: RowValue<Table[K]> };

/** Environment variable names, exported so that no other module spells them. */
export const CONFIG_ENV: { readonly [K in ConfigKey]: `COFFER_${K}` } = Object.freeze(
  // NB: the one cast here: Object.fromEntries cannot type a key-to-template mapping.
  Object.fromEntries(Object.keys(rowsChecked).map((k) => [k, `COFFER_${k}`])) as { readonly [K in ConfigKey]: `COFFER_${K}` },
);

/** Description of one variable, for `--help` and docs. */
export interface VariableSpec {
  readonly key: ConfigKey;
  readonly name: ConfigVariable;
  /** Flag spelling, e.g. `--node-id`. */
  readonly flag: string;
  readonly section: ConfigSection;
  /** The section's heading, e.g. `Keys and KMS`. */
  readonly sectionTitle: string;
  /** `ServerConfig` field that takes the parsed value as is, if any. */
  readonly field: string | undefined;
  /** Default text (parsed when the variable is unset), if there is one. */
  readonly default: string | undefined;
  /** Default, as help and docs word it. */
  readonly defaultText: string;
  readonly description: string;
  /** docs/config.md's column. */
  readonly doc: string;
  /** Takes no value as a flag (`--trust-proxy`). */
  readonly boolean: boolean;
  /** Never echoed in errors or logs. */
  readonly secret: boolean;
  readonly parse: (v: string, c: ValueContext) => unknown;
}

function isConfigKey(k: string): k is ConfigKey {
  return Object.hasOwn(CONFIG_TABLE, k);
}

/**
 * @param key - a row key, e.g. `NODE_ID`
 * @returns its flag, e.g. `--node-id`
 */
function flagOf(key: string): string {
  return `--${key.toLowerCase().replaceAll('_', '-')}`;
}

/** Every server variable, in CONTRACT.md's order. */
export const CONFIG_VARIABLES: readonly VariableSpec[] = Object.freeze(
  Object.keys(CONFIG_TABLE).filter(isConfigKey).map((key): VariableSpec => {
    const row: VariableRow = CONFIG_TABLE[key];
    return Object.freeze({
      key,
      name: CONFIG_ENV[key],
      flag: flagOf(key),
      section: row.section,
      sectionTitle: CONFIG_SECTIONS[row.section],
      field: row.field,
      default: row.default,
      defaultText: row.defaultText ?? row.default ?? 'none',
      description: row.help,
      doc: row.doc,
      boolean: row.boolean === true,
      secret: row.secret === true,
      parse: row.parse,
    });
  }),
);

/** Specs by variable name. */
export const SPEC_BY_NAME: ReadonlyMap<string, VariableSpec> = new Map(CONFIG_VARIABLES.map((s) => [s.name, s]));
/** Specs by flag name without dashes (`node-id`). */
export const SPEC_BY_FLAG: ReadonlyMap<string, VariableSpec> = new Map(CONFIG_VARIABLES.map((s) => [s.flag.slice(2), s]));
