/**
 * The loader: reads each variable from the flags or the environment (./table.ts says how to parse
 * it and what it defaults to), then applies the rules between variables. Every bad value throws a
 * {@link ConfigError} whose one-line message names the variable; secret values are never echoed.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../errors.js';
import { advertise, hostPortUrl, isWildcard, showValue, type ClusterMember, type HostPort, type ValueContext } from './parsers.js';
import { CONFIG_ENV, CONFIG_TABLE, CONFIG_VARIABLES, SPEC_BY_FLAG, SPEC_BY_NAME, type ConfigKey, type RowValue, type TableValues, type VariableSpec } from './table.js';

/** Client-side variables that may share the environment with the server without a warning. */
const CLIENT_VARIABLES: ReadonlySet<string> = new Set(['COFFER_ADDR', 'COFFER_TOKEN']);

/**
 * The validated configuration. Key material is held as bytes; see {@link redactConfig}.
 *
 * The fields of {@link TableValues} come straight from the table's rows (./table.ts: the row's
 * `help` says what each is); the ones below are set by rules between variables.
 */
export interface ServerConfig extends TableValues {
  readonly nodeId: string;
  /** Absolute. */
  readonly dataDir: string;
  /** URL (origin) peers and redirects use for this node's API. */
  readonly advertiseApi: string;
  /** URL (origin) peers use for this node's Raft port. */
  readonly advertiseRaft: string;
  /** Members to bootstrap with on a new data dir; just this node when the variable is unset. */
  readonly initialCluster: readonly ClusterMember[];
  /**
   * The local key ring, current key first (32 bytes each), or `undefined` = generate a random key
   * (development only; data is lost on restart). Older keys only unwrap what they wrapped.
   * Always `undefined` in aws mode.
   */
  readonly localMasterKeys: readonly Uint8Array[] | undefined;
  /** AWS mode only. */
  readonly kmsKeyId: string | undefined;
  /** AWS mode only. */
  readonly kmsEndpoint: string | undefined;
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** False when any of the three lockout variables is 0. */
  readonly authLockoutEnabled: boolean;
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
 * const cfg = loadConfig(readEnv(), { 'log-level': 'debug' });
 * ```
 */
export function readEnv(source: Readonly<Record<string, string | undefined>> = process.env): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(source)) if (k.startsWith('COFFER_')) out[k] = v;
  return out;
}

/** Flags first, then the environment; parses each variable once, on first use. */
class Reader {
  private readonly env: Readonly<Record<string, string | undefined>>;
  private readonly flags: ReadonlyMap<string, string | boolean>;
  private readonly io: ConfigIo;
  private readonly parsed = new Map<ConfigKey, unknown>();
  private dataDirCache: string | undefined;

  constructor(env: Readonly<Record<string, string | undefined>>, flags: Readonly<Record<string, string | boolean>>, io: ConfigIo) {
    this.env = env;
    this.io = io;
    const m = new Map<string, string | boolean>();
    for (const [rawName, v] of Object.entries(flags)) {
      const name = rawName.replace(/^--?/, '').toLowerCase();
      if (name === 'help') continue;
      if (!SPEC_BY_FLAG.has(name)) throw new ConfigError(`--${name}`, 'unknown flag (see coffer server --help)');
      m.set(name, v);
    }
    this.flags = m;
  }

  /** Raw text of a variable: flag first, then env; trimmed; empty means unset. */
  text(key: ConfigKey): string | undefined {
    const s = this.spec(key);
    const f = this.flags.get(s.flag.slice(2));
    if (f !== undefined) {
      if (typeof f === 'boolean') {
        if (!s.boolean) throw new ConfigError(s.name, `${s.flag} needs a value`);
        return f ? 'true' : 'false';
      }
      return f.trim() === '' ? undefined : f.trim();
    }
    const e = this.env[s.name];
    return e === undefined || e.trim() === '' ? undefined : e.trim();
  }

  /** The parsed value: the given text, else the row's default text, else `undefined`. */
  value<K extends ConfigKey>(key: K): RowValue<(typeof CONFIG_TABLE)[K]> {
    if (!this.parsed.has(key)) {
      const s = this.spec(key);
      const t = this.text(key) ?? s.default;
      this.parsed.set(key, t === undefined ? undefined : s.parse(t, this.context(s, t)));
    }
    // NB: sound by construction: the stored value is what this key's row parser returned (or
    // undefined for a row without a default); TypeScript cannot correlate the two through K.
    return this.parsed.get(key) as RowValue<(typeof CONFIG_TABLE)[K]>;
  }

  /** Every row with a `field`, parsed. */
  tableValues(): TableValues {
    const out: Record<string, unknown> = {};
    for (const s of CONFIG_VARIABLES) {
      if (s.field !== undefined) out[s.field] = this.value(s.key);
    }
    // NB: sound by construction: one entry per row with a field, typed by that row's parser.
    return out as TableValues;
  }

  nodeId(): string {
    const id = this.value('NODE_ID');
    if (id === undefined) throw new ConfigError(CONFIG_ENV.NODE_ID, 'is required (e.g. n1)');
    return id;
  }

  dataDir(): string {
    this.dataDirCache ??= this.value('DATA_DIR') ?? path.resolve(this.io.cwd, 'data', this.nodeId());
    return this.dataDirCache;
  }

  context(s: VariableSpec, text: string): ValueContext {
    return { name: s.name, shown: showValue(text, s.secret), secret: s.secret, cwd: this.io.cwd, dataDir: () => this.dataDir() };
  }

  private spec(key: ConfigKey): VariableSpec {
    const s = SPEC_BY_NAME.get(CONFIG_ENV[key]);
    if (s === undefined) throw new RangeError(`no spec for ${key}`);
    return s;
  }
}

/**
 * Builds the server configuration from the environment and flags, validating every value and the
 * rules between them.
 *
 * @param env - environment (use {@link readEnv}); only `COFFER_*` keys are looked at
 * @param flags - flags keyed by name (`node-id` or `--node-id`); `true` for a bare boolean flag
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
  const r = new Reader(env, flags, io);
  const E = CONFIG_ENV;
  const warnings: string[] = [];
  for (const key of Object.keys(env)) {
    if (key.startsWith('COFFER_') && !SPEC_BY_NAME.has(key) && !CLIENT_VARIABLES.has(key)) warnings.push(`${key}: unknown variable, ignored (typo?)`);
  }

  const nodeId = r.nodeId();
  const dataDir = r.dataDir();
  const apiAddr = r.value('API_ADDR');
  const raftAddr = r.value('RAFT_ADDR');
  const tls = tlsFiles(r, io);

  if (r.text('INITIAL_CLUSTER') !== undefined && r.text('JOIN') !== undefined) {
    throw new ConfigError(E.JOIN, `cannot be combined with ${E.INITIAL_CLUSTER}: a node either bootstraps a new cluster or joins a running one`);
  }
  const join = r.value('JOIN');
  const explicitMembers = r.value('INITIAL_CLUSTER');
  const self = explicitMembers?.find((m) => m.id === nodeId);
  if (explicitMembers !== undefined && self === undefined) {
    throw new ConfigError(E.INITIAL_CLUSTER, `does not contain ${E.NODE_ID} ${JSON.stringify(nodeId)}`);
  }
  const multiNode = (explicitMembers?.length ?? 1) > 1 || join !== undefined;

  const advApiText = r.value('ADVERTISE_API');
  const advRaftText = r.value('ADVERTISE_RAFT');
  if (multiNode && advRaftText === undefined && self === undefined && isWildcard(raftAddr.host)) {
    throw new ConfigError(E.ADVERTISE_RAFT, `is required when ${E.RAFT_ADDR} listens on a wildcard address (${raftAddr.host})`);
  }
  if (multiNode && advApiText === undefined && isWildcard(apiAddr.host)) {
    throw new ConfigError(E.ADVERTISE_API, `is required when ${E.API_ADDR} listens on a wildcard address (${apiAddr.host})`);
  }
  const loopbackIfWildcard = (hp: HostPort): HostPort => (isWildcard(hp.host) ? { host: hp.host === '0.0.0.0' ? '127.0.0.1' : '::1', port: hp.port } : hp);
  const apiScheme = tls === undefined ? 'http' : 'https';
  const ctx = (key: ConfigKey, text: string): ValueContext => r.context(specOf(key), text);
  const advertiseApi = advApiText === undefined ? hostPortUrl(loopbackIfWildcard(apiAddr), apiScheme) : advertise(advApiText, ctx('ADVERTISE_API', advApiText), apiScheme);
  let advertiseRaft: string;
  if (advRaftText !== undefined) {
    advertiseRaft = advertise(advRaftText, ctx('ADVERTISE_RAFT', advRaftText), 'http');
    if (self !== undefined && self.raftUrl !== advertiseRaft) {
      throw new ConfigError(E.ADVERTISE_RAFT, `${advertiseRaft} differs from this node's entry in ${E.INITIAL_CLUSTER} (${self.raftUrl})`);
    }
  } else {
    // The node's own INITIAL_CLUSTER entry is by definition the URL its peers use.
    advertiseRaft = self?.raftUrl ?? hostPortUrl(loopbackIfWildcard(raftAddr), 'http');
  }
  const initialCluster = explicitMembers ?? Object.freeze([Object.freeze({ id: nodeId, raftUrl: advertiseRaft })]);

  const clusterKey = r.value('CLUSTER_KEY');
  // COFFER_SEAL=shamir: the storage integrity root must not hang on the sealed master key (a
  // sealed node could not even open its data dir), so the cluster key is required on one node too.
  const sealed = r.value('SEAL') === 'shamir';
  if (sealed && clusterKey === undefined) throw new ConfigError(E.CLUSTER_KEY, `is required with ${E.SEAL}=shamir (also on a single node: it roots storage integrity while the node is sealed)`);
  if (clusterKey === undefined && multiNode) {
    throw new ConfigError(E.CLUSTER_KEY, join !== undefined ? `is required with ${E.JOIN}` : `is required when ${E.INITIAL_CLUSTER} has more than one member`);
  }
  if (r.value('PREVIOUS_CLUSTER_KEY') !== undefined && clusterKey === undefined) {
    throw new ConfigError(E.PREVIOUS_CLUSTER_KEY, `is only meaningful with ${E.CLUSTER_KEY} (the new key)`);
  }

  const kms = sealed ? sealSettings(r) : kmsSettings(r, warnings);

  const bootstrapToken = r.value('BOOTSTRAP_TOKEN');
  // A short bootstrap token is allowed (development clusters, scripts) but it is the key to
  // everything until it is rotated: say so loudly.
  if (bootstrapToken !== undefined && bootstrapToken.length < 16) {
    warnings.push(`${E.BOOTSTRAP_TOKEN} is shorter than 16 characters: use 32 random bytes, and rotate it once real admin tokens exist`);
  }

  const values = r.tableValues();
  if (values.electionMs <= 2 * values.heartbeatMs) {
    throw new ConfigError(E.ELECTION_MS, `${values.electionMs} must be greater than 2 x ${E.HEARTBEAT_MS} (${2 * values.heartbeatMs})`);
  }

  const cfg: ServerConfig = {
    ...values,
    nodeId,
    dataDir,
    advertiseApi,
    advertiseRaft,
    initialCluster,
    ...kms,
    tls,
    authLockoutEnabled: values.authMaxFailures > 0 && values.authWindowSecs > 0 && values.authLockoutSecs > 0,
    warnings: Object.freeze(warnings),
  };
  // NB: Object.freeze cannot freeze typed-array contents; the key bytes stay writable so the
  // owner can zero them (best effort) once they are no longer needed.
  return Object.freeze(cfg);
}

function specOf(key: ConfigKey): VariableSpec {
  const s = SPEC_BY_NAME.get(CONFIG_ENV[key]);
  if (s === undefined) throw new RangeError(`no spec for ${key}`);
  return s;
}

/** TLS needs both files, each readable. */
function tlsFiles(r: Reader, io: ConfigIo): ServerConfig['tls'] {
  const E = CONFIG_ENV;
  const certText = r.text('TLS_CERT_FILE');
  const keyText = r.text('TLS_KEY_FILE');
  if ((certText === undefined) !== (keyText === undefined)) {
    const missing = certText === undefined ? E.TLS_CERT_FILE : E.TLS_KEY_FILE;
    const given = certText === undefined ? E.TLS_KEY_FILE : E.TLS_CERT_FILE;
    throw new ConfigError(missing, `is required when ${given} is set (TLS needs both)`);
  }
  const certFile = r.value('TLS_CERT_FILE');
  const keyFile = r.value('TLS_KEY_FILE');
  if (certFile === undefined || keyFile === undefined) return undefined;
  if (!io.readable(certFile)) throw new ConfigError(E.TLS_CERT_FILE, `${JSON.stringify(certText)} does not exist or is not readable`);
  if (!io.readable(keyFile)) throw new ConfigError(E.TLS_KEY_FILE, `${JSON.stringify(keyText)} does not exist or is not readable`);
  return Object.freeze({ certFile, keyFile });
}

/** COFFER_SEAL=shamir: local mode, and no configured master key (init makes it, shares unseal it). */
function sealSettings(r: Reader): Pick<ServerConfig, 'localMasterKeys' | 'kmsKeyId' | 'kmsEndpoint'> {
  const E = CONFIG_ENV;
  if (r.value('KMS_MODE') !== 'local') throw new ConfigError(E.KMS_MODE, `must be local with ${E.SEAL}=shamir (the sealed master key is a local key)`);
  if (r.text('LOCAL_MASTER_KEY') !== undefined) {
    throw new ConfigError(E.LOCAL_MASTER_KEY, `must not be set with ${E.SEAL}=shamir: the master key is made by \`coffer operator init\` and rebuilt from shares on unseal`);
  }
  if (r.text('KMS_KEY_ID') !== undefined) throw new ConfigError(E.KMS_KEY_ID, `must not be set with ${E.SEAL}=shamir (local mode)`);
  if (r.text('KMS_ENDPOINT') !== undefined) throw new ConfigError(E.KMS_ENDPOINT, `must not be set with ${E.SEAL}=shamir (local mode)`);
  return { localMasterKeys: undefined, kmsKeyId: undefined, kmsEndpoint: undefined };
}

/** The KMS fields: only the chosen mode's settings are read; the other mode's draw a warning. */
function kmsSettings(r: Reader, warnings: string[]): Pick<ServerConfig, 'localMasterKeys' | 'kmsKeyId' | 'kmsEndpoint'> {
  const E = CONFIG_ENV;
  const kmsMode = r.value('KMS_MODE');
  const kmsKeyId = r.value('KMS_KEY_ID');
  const kmsEndpoint = r.value('KMS_ENDPOINT');
  if (kmsMode === 'aws') {
    if (kmsKeyId === undefined) throw new ConfigError(E.KMS_KEY_ID, `is required when ${E.KMS_MODE}=aws (key id, ARN or alias/name)`);
    if (kmsKeyId.length > 2048 || /\s/.test(kmsKeyId)) throw new ConfigError(E.KMS_KEY_ID, `${showValue(kmsKeyId, false)} is not a key id, ARN or alias`);
    if (r.text('LOCAL_MASTER_KEY') !== undefined) warnings.push(`${E.LOCAL_MASTER_KEY} is ignored because ${E.KMS_MODE}=aws`);
    return { localMasterKeys: undefined, kmsKeyId, kmsEndpoint };
  }
  const localMasterKeys = r.value('LOCAL_MASTER_KEY');
  if (localMasterKeys === undefined) {
    warnings.push(
      `${E.LOCAL_MASTER_KEY} is not set: using a RANDOM master key. Everything written now becomes unreadable after a restart, and nodes cannot read each other's data. Development only.`,
    );
  }
  if (kmsKeyId !== undefined) warnings.push(`${E.KMS_KEY_ID} is ignored because ${E.KMS_MODE}=local`);
  if (kmsEndpoint !== undefined) warnings.push(`${E.KMS_ENDPOINT} is ignored because ${E.KMS_MODE}=local`);
  return { localMasterKeys, kmsKeyId: undefined, kmsEndpoint: undefined };
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
