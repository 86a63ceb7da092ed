import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CONFIG_ENV, CONFIG_VARIABLES, configDocsTables, describeConfig, loadConfig, readEnv, redactConfig, renderConfigDocs, type ConfigIo } from '../src/config.js';

const KEY32 = Buffer.alloc(32, 7).toString('base64');
const KEY48 = Buffer.alloc(48, 9).toString('base64');
const io: ConfigIo = { readable: (f) => f.endsWith('.pem'), cwd: '/srv/coffer' };
const load = (env: Record<string, string | undefined>, flags: Record<string, string | boolean> = {}) =>
  loadConfig({ COFFER_NODE_ID: 'n1', ...env }, flags, io);

function errorOf(fn: () => unknown): { code: string; message: string; variable: string } {
  try {
    fn();
  } catch (e) {
    return e as { code: string; message: string; variable: string };
  }
  throw new Error('expected a ConfigError');
}

describe('defaults (CONTRACT.md table)', () => {
  const cfg = load({});
  test('every default', () => {
    expect(cfg).toMatchObject({
      nodeId: 'n1',
      dataDir: '/srv/coffer/data/n1',
      apiAddr: { host: '127.0.0.1', port: 8200 },
      raftAddr: { host: '127.0.0.1', port: 8201 },
      advertiseApi: 'http://127.0.0.1:8200',
      advertiseRaft: 'http://127.0.0.1:8201',
      initialCluster: [{ id: 'n1', raftUrl: 'http://127.0.0.1:8201' }],
      join: undefined,
      kmsMode: 'local',
      localMasterKeys: undefined,
      kmsKeyId: undefined,
      kmsEndpoint: undefined,
      dekCacheTtlSecs: 300,
      clusterKey: undefined,
      bootstrapToken: undefined,
      readAllowlist: [],
      trustProxy: false,
      tls: undefined,
      auditFile: '/srv/coffer/data/n1/audit.jsonl',
      kmsRewrapEnabled: false,
      kmsRewrapPollSecs: 86400,
      kmsRewrapMaxPerSec: 50,
      rotationPollSecs: 15,
      authMaxFailures: 5,
      authWindowSecs: 300,
      authLockoutSecs: 900,
      authLockoutEnabled: true,
      heartbeatMs: 100,
      electionMs: 1000,
      snapshotEntries: 10000,
      snapshotCatchUpEntries: 1000,
      snapshotIntervalMs: 0,
      snapshotDir: '/srv/coffer/data/n1/snapshots',
      snapshotRetain: 7,
      logLevel: 'info',
    });
  });
  test('a loud warning about the random master key', () => {
    expect(cfg.warnings.join('\n')).toMatch(/COFFER_LOCAL_MASTER_KEY is not set: using a RANDOM master key/);
  });
  test('frozen', () => {
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.initialCluster)).toBe(true);
  });
});

describe('table coverage', () => {
  test('one spec per contract variable, flags derived from names', () => {
    expect(CONFIG_VARIABLES.map((s) => s.name)).toEqual(Object.values(CONFIG_ENV));
    // 40 when the table was made; a new variable is one more row.
    expect(CONFIG_VARIABLES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CONFIG_VARIABLES.map((s) => s.flag)).size).toBe(CONFIG_VARIABLES.length);
    expect(CONFIG_VARIABLES.find((s) => s.name === 'COFFER_NODE_ID')?.flag).toBe('--node-id');
    expect(CONFIG_VARIABLES.find((s) => s.name === 'COFFER_DEK_CACHE_TTL_SECS')?.flag).toBe('--dek-cache-ttl-secs');
  });
  test('help lists every variable and flag', () => {
    const help = describeConfig();
    for (const s of CONFIG_VARIABLES) {
      expect(help).toContain(s.name);
      expect(help).toContain(s.flag);
      expect(help).toContain(`${s.description} [default: ${s.defaultText}]`);
    }
  });
  test('a default is written once: the loaded value of an unset variable is its row parsing its default text', () => {
    const cfg: Readonly<Record<string, unknown>> = load({});
    const ctx = { secret: false, cwd: io.cwd, dataDir: () => String(cfg['dataDir']) };
    const withField = CONFIG_VARIABLES.filter((s) => s.field !== undefined);
    expect(withField.length).toBeGreaterThan(25);
    for (const s of withField) {
      const field = s.field ?? '';
      expect(Object.keys(cfg)).toContain(field);
      const expected = s.default === undefined ? undefined : s.parse(s.default, { ...ctx, name: s.name, shown: JSON.stringify(s.default) });
      expect([s.name, cfg[field]]).toEqual([s.name, expected]);
    }
  });
  test('every default text parses (a row cannot ship a default its own parser refuses)', () => {
    for (const s of CONFIG_VARIABLES) {
      if (s.default === undefined) continue;
      expect(() => loadConfig({ COFFER_NODE_ID: 'n1', [s.name]: s.default }, {}, io)).not.toThrow();
    }
  });
  test('docs/config.md holds the tables generated from the table (UPDATE=1 rewrites them)', () => {
    const file = path.join(__dirname, '..', '..', '..', 'docs', 'config.md');
    const current = readFileSync(file, 'utf8');
    const wanted = renderConfigDocs(current);
    if (process.env['UPDATE'] === '1' && wanted !== current) writeFileSync(file, wanted);
    else expect(current).toBe(wanted);
    for (const s of CONFIG_VARIABLES) expect(configDocsTables()).toContain(`| \`${s.name}\` | \`${s.flag}\` |`);
  });
});

describe('values', () => {
  test('a full multi-node configuration', () => {
    const cfg = load({
      COFFER_DATA_DIR: 'var/n1',
      COFFER_API_ADDR: '0.0.0.0:9200',
      COFFER_RAFT_ADDR: '[::]:9201',
      COFFER_ADVERTISE_API: 'https://n1.internal:9200/',
      COFFER_INITIAL_CLUSTER: 'n1=http://10.0.0.1:9201, n2=http://10.0.0.2:9201,n3=http://[fd00::3]:9201',
      COFFER_CLUSTER_KEY: KEY48,
      COFFER_LOCAL_MASTER_KEY: KEY32,
      COFFER_BOOTSTRAP_TOKEN: 'a-very-long-bootstrap-token',
      COFFER_READ_ALLOWLIST: '10.0.0.0/8, ::1',
      COFFER_TRUST_PROXY: 'TRUE',
      COFFER_TLS_CERT_FILE: 'tls/cert.pem',
      COFFER_TLS_KEY_FILE: '/etc/coffer/key.pem',
      COFFER_AUDIT_FILE: '/var/log/coffer/audit.jsonl',
      COFFER_KMS_REWRAP_ENABLED: '1',
      COFFER_AUTH_MAX_FAILURES: '0',
      COFFER_HEARTBEAT_MS: '50',
      COFFER_ELECTION_MS: '500',
      COFFER_LOG_LEVEL: 'DEBUG',
    });
    expect(cfg.dataDir).toBe('/srv/coffer/var/n1');
    expect(cfg.apiAddr).toEqual({ host: '0.0.0.0', port: 9200 });
    expect(cfg.raftAddr).toEqual({ host: '::', port: 9201 });
    expect(cfg.advertiseApi).toBe('https://n1.internal:9200');
    expect(cfg.advertiseRaft).toBe('http://10.0.0.1:9201');
    expect(cfg.initialCluster.map((m) => m.raftUrl)).toEqual(['http://10.0.0.1:9201', 'http://10.0.0.2:9201', 'http://[fd00::3]:9201']);
    expect(Buffer.from(cfg.clusterKey ?? []).length).toBe(48);
    expect(cfg.localMasterKeys?.length).toBe(1);
    expect(Buffer.from(cfg.localMasterKeys?.[0] ?? []).equals(Buffer.alloc(32, 7))).toBe(true);
    expect(cfg.readAllowlist).toEqual(['10.0.0.0/8', '::1/128']);
    expect(cfg.trustProxy).toBe(true);
    expect(cfg.tls).toEqual({ certFile: '/srv/coffer/tls/cert.pem', keyFile: '/etc/coffer/key.pem' });
    expect(cfg.auditFile).toBe('/var/log/coffer/audit.jsonl');
    expect(cfg.kmsRewrapEnabled).toBe(true);
    expect(cfg.authLockoutEnabled).toBe(false);
    expect(cfg.logLevel).toBe('debug');
    expect(cfg.warnings).toEqual([]);
  });

  test('a local key ring: current key first, older keys after it', () => {
    const older = Buffer.alloc(32, 3).toString('base64');
    const cfg = load({ COFFER_LOCAL_MASTER_KEY: `${KEY32}, ${older}` });
    expect(cfg.localMasterKeys?.map((k) => Buffer.from(k).toString('base64'))).toEqual([KEY32, older]);
  });

  test('aws mode', () => {
    const cfg = load({ COFFER_KMS_MODE: 'aws', COFFER_KMS_KEY_ID: 'alias/coffer', COFFER_KMS_ENDPOINT: 'http://127.0.0.1:5000' });
    expect(cfg).toMatchObject({ kmsMode: 'aws', kmsKeyId: 'alias/coffer', kmsEndpoint: 'http://127.0.0.1:5000' });
    expect(cfg.warnings).toEqual([]);
  });

  test('join', () => {
    const cfg = load({ COFFER_JOIN: 'http://10.0.0.1:8200', COFFER_CLUSTER_KEY: KEY32, COFFER_LOCAL_MASTER_KEY: KEY32 });
    expect(cfg.join).toBe('http://10.0.0.1:8200');
  });

  test('scheduled snapshots: interval as a duration (off by default), dir relative to the data dir', () => {
    expect(load({ COFFER_SNAPSHOT_INTERVAL: '6h', COFFER_SNAPSHOT_DIR: 'backups', COFFER_SNAPSHOT_RETAIN: '30' })).toMatchObject({
      snapshotIntervalMs: 6 * 3_600_000,
      snapshotDir: '/srv/coffer/data/n1/backups',
      snapshotRetain: 30,
    });
    expect(load({ COFFER_SNAPSHOT_INTERVAL: '30min', COFFER_SNAPSHOT_DIR: '/mnt/backup/coffer' })).toMatchObject({ snapshotIntervalMs: 1_800_000, snapshotDir: '/mnt/backup/coffer' });
    expect(load({ COFFER_SNAPSHOT_INTERVAL: '45s' }).snapshotIntervalMs).toBe(45_000);
    expect(load({ COFFER_SNAPSHOT_INTERVAL: 'off' }).snapshotIntervalMs).toBe(0);
  });
  test('empty variables count as unset', () => {
    expect(load({ COFFER_JOIN: '', COFFER_API_ADDR: '  ' }).apiAddr.port).toBe(8200);
  });

  test('unknown COFFER_ variables warn; client variables do not', () => {
    const cfg = load({ COFFER_NODEID: 'x', COFFER_ADDR: 'http://x', COFFER_TOKEN: 't' });
    expect(cfg.warnings.filter((w) => w.includes('unknown'))).toEqual(['COFFER_NODEID: unknown variable, ignored (typo?)']);
  });
});

describe('flags', () => {
  test('flags win over env; every variable is a flag', () => {
    const cfg = load({ COFFER_API_ADDR: '127.0.0.1:1' }, { 'api-addr': '127.0.0.1:2', '--trust-proxy': true, 'log-level': 'warn' });
    expect(cfg.apiAddr.port).toBe(2);
    expect(cfg.trustProxy).toBe(true);
    expect(cfg.logLevel).toBe('warn');
    expect(loadConfig({}, { 'node-id': 'n9' }, io).nodeId).toBe('n9');
  });
  test('unknown flag and valueless flag', () => {
    expect(errorOf(() => load({}, { 'node-idd': 'x' })).message).toBe('--node-idd: unknown flag (see coffer server --help)');
    expect(errorOf(() => load({}, { 'api-addr': true })).message).toBe('COFFER_API_ADDR: --api-addr needs a value');
  });
  test('readEnv keeps only COFFER_ variables', () => {
    expect(readEnv({ COFFER_NODE_ID: 'n1', HOME: '/root', AWS_REGION: 'x' })).toEqual({ COFFER_NODE_ID: 'n1' });
  });
});

describe('bad values: one line naming the variable', () => {
  test.each<[Record<string, string>, string]>([
    [{ COFFER_NODE_ID: '' }, 'COFFER_NODE_ID: is required (e.g. n1)'],
    [{ COFFER_NODE_ID: 'n 1' }, 'COFFER_NODE_ID: node name "n 1" may contain only A-Z a-z 0-9 . _ -'],
    [{ COFFER_API_ADDR: 'abc' }, 'COFFER_API_ADDR: "abc" is not host:port'],
    [{ COFFER_API_ADDR: '127.0.0.1:99999' }, 'COFFER_API_ADDR: "127.0.0.1:99999": port must be 1-65535'],
    [{ COFFER_API_ADDR: '127.0.0.1:0' }, 'COFFER_API_ADDR: "127.0.0.1:0": port must be 1-65535'],
    [{ COFFER_RAFT_ADDR: '::1:8201' }, 'COFFER_RAFT_ADDR: "::1:8201" is not host:port (write IPv6 addresses as [::1]:8200)'],
    [{ COFFER_RAFT_ADDR: 'http://h:1' }, 'COFFER_RAFT_ADDR: "http://h:1" is not host:port (no scheme here)'],
    [{ COFFER_RAFT_ADDR: '[zz]:1' }, 'COFFER_RAFT_ADDR: "[zz]:1" is not host:port'],
    [{ COFFER_ADVERTISE_API: 'ftp://h:1' }, 'COFFER_ADVERTISE_API: "ftp://h:1" must use http:// or https://'],
    [{ COFFER_ADVERTISE_API: 'http://h:1/v1' }, 'COFFER_ADVERTISE_API: "http://h:1/v1" must be a bare origin with no path, query or fragment (expected http://host:port)'],
    [{ COFFER_INITIAL_CLUSTER: 'n2=http://h2:8201,n3=http://h3:8201', COFFER_CLUSTER_KEY: KEY32 }, 'COFFER_INITIAL_CLUSTER: does not contain COFFER_NODE_ID "n1"'],
    [{ COFFER_INITIAL_CLUSTER: 'n1=http://h1:8201,n2' }, 'COFFER_INITIAL_CLUSTER: entry "n2" is not id=URL (e.g. n1=http://10.0.0.1:8201)'],
    [{ COFFER_INITIAL_CLUSTER: 'n1=h1:8201' }, 'COFFER_INITIAL_CLUSTER: entry "n1=h1:8201": "h1:8201" must use http:// or https://'],
    [{ COFFER_INITIAL_CLUSTER: 'n1=http://h1:8201,n1=http://h2:8201' }, 'COFFER_INITIAL_CLUSTER: member id "n1" appears twice'],
    [{ COFFER_INITIAL_CLUSTER: 'n1=http://h1:8201,n2=http://h1:8201' }, 'COFFER_INITIAL_CLUSTER: URL http://h1:8201 appears twice'],
    [{ COFFER_INITIAL_CLUSTER: 'n1=http://h1:8201,n2=http://h2:8201' }, 'COFFER_CLUSTER_KEY: is required when COFFER_INITIAL_CLUSTER has more than one member'],
    [{ COFFER_JOIN: 'http://h1:8200' }, 'COFFER_CLUSTER_KEY: is required with COFFER_JOIN'],
    [{ COFFER_JOIN: 'http://h1:8200', COFFER_INITIAL_CLUSTER: 'n1=http://h1:8201' }, 'COFFER_JOIN: cannot be combined with COFFER_INITIAL_CLUSTER: a node either bootstraps a new cluster or joins a running one'],
    [{ COFFER_INITIAL_CLUSTER: 'n1=http://h1:8201', COFFER_ADVERTISE_RAFT: 'http://h9:8201' }, "COFFER_ADVERTISE_RAFT: http://h9:8201 differs from this node's entry in COFFER_INITIAL_CLUSTER (http://h1:8201)"],
    [{ COFFER_JOIN: 'http://h1:8200', COFFER_CLUSTER_KEY: KEY32, COFFER_RAFT_ADDR: '0.0.0.0:8201' }, 'COFFER_ADVERTISE_RAFT: is required when COFFER_RAFT_ADDR listens on a wildcard address (0.0.0.0)'],
    [{ COFFER_CLUSTER_KEY: 'not base64!' }, 'COFFER_CLUSTER_KEY: is not valid base64'],
    [{ COFFER_CLUSTER_KEY: Buffer.alloc(31).toString('base64') }, 'COFFER_CLUSTER_KEY: decodes to 31 bytes; at least 32 are required'],
    [{ COFFER_LOCAL_MASTER_KEY: KEY48 }, 'COFFER_LOCAL_MASTER_KEY: decodes to 48 bytes; exactly 32 are required'],
    [{ COFFER_LOCAL_MASTER_KEY: `${KEY32},${KEY48}` }, 'COFFER_LOCAL_MASTER_KEY: decodes to 48 bytes; exactly 32 are required (key 2 of 2)'],
    [{ COFFER_LOCAL_MASTER_KEY: `${KEY32},` }, 'COFFER_LOCAL_MASTER_KEY: is not valid base64 (key 2 of 2)'],
    [{ COFFER_LOCAL_MASTER_KEY: `${KEY32},${KEY32}` }, 'COFFER_LOCAL_MASTER_KEY: key 2 of 2 repeats an earlier key'],
    [{ COFFER_KMS_MODE: 'gcp' }, 'COFFER_KMS_MODE: "gcp" is not local or aws'],
    [{ COFFER_KMS_MODE: 'aws' }, 'COFFER_KMS_KEY_ID: is required when COFFER_KMS_MODE=aws (key id, ARN or alias/name)'],
    [{ COFFER_KMS_MODE: 'aws', COFFER_KMS_KEY_ID: 'a', COFFER_KMS_ENDPOINT: 'localhost:5000' }, 'COFFER_KMS_ENDPOINT: "localhost:5000" must use http:// or https://'],
    [{ COFFER_BOOTSTRAP_TOKEN: 'with a space in it, long enough' }, 'COFFER_BOOTSTRAP_TOKEN: must be 1-512 printable ASCII characters without spaces'],
    [{ COFFER_READ_ALLOWLIST: '10.0.0.0/8,10.0.0.0/99' }, 'COFFER_READ_ALLOWLIST: allowlist entry "10.0.0.0/99" has an invalid prefix length (0-32)'],
    [{ COFFER_TRUST_PROXY: 'yes please' }, 'COFFER_TRUST_PROXY: "yes please" is not true or false'],
    [{ COFFER_TLS_CERT_FILE: 'c.pem' }, 'COFFER_TLS_KEY_FILE: is required when COFFER_TLS_CERT_FILE is set (TLS needs both)'],
    [{ COFFER_TLS_KEY_FILE: 'k.pem' }, 'COFFER_TLS_CERT_FILE: is required when COFFER_TLS_KEY_FILE is set (TLS needs both)'],
    [{ COFFER_TLS_CERT_FILE: 'c.crt', COFFER_TLS_KEY_FILE: 'k.pem' }, 'COFFER_TLS_CERT_FILE: "c.crt" does not exist or is not readable'],
    [{ COFFER_DEK_CACHE_TTL_SECS: '-1' }, 'COFFER_DEK_CACHE_TTL_SECS: "-1" is not a whole number'],
    [{ COFFER_DEK_CACHE_TTL_SECS: '1.5' }, 'COFFER_DEK_CACHE_TTL_SECS: "1.5" is not a whole number'],
    [{ COFFER_KMS_REWRAP_POLL_SECS: '0' }, 'COFFER_KMS_REWRAP_POLL_SECS: 0 is too small (minimum 1)'],
    [{ COFFER_KMS_REWRAP_MAX_PER_SEC: '0' }, 'COFFER_KMS_REWRAP_MAX_PER_SEC: 0 is too small (minimum 1)'],
    [{ COFFER_ROTATION_POLL_SECS: '100000' }, 'COFFER_ROTATION_POLL_SECS: 100000 is too large (maximum 86400)'],
    [{ COFFER_AUTH_WINDOW_SECS: 'x' }, 'COFFER_AUTH_WINDOW_SECS: "x" is not a whole number'],
    [{ COFFER_AUTH_LOCKOUT_SECS: '1e3' }, 'COFFER_AUTH_LOCKOUT_SECS: "1e3" is not a whole number'],
    [{ COFFER_HEARTBEAT_MS: '0' }, 'COFFER_HEARTBEAT_MS: 0 is too small (minimum 1)'],
    [{ COFFER_HEARTBEAT_MS: '500' }, 'COFFER_ELECTION_MS: 1000 must be greater than 2 x COFFER_HEARTBEAT_MS (1000)'],
    [{ COFFER_SNAPSHOT_ENTRIES: '0' }, 'COFFER_SNAPSHOT_ENTRIES: 0 is too small (minimum 1)'],
    [{ COFFER_SNAPSHOT_INTERVAL: '30m' }, 'COFFER_SNAPSHOT_INTERVAL: "30m" is ambiguous: write 30min for minutes, or use d/w for longer periods'],
    [{ COFFER_SNAPSHOT_INTERVAL: 'hourly' }, 'COFFER_SNAPSHOT_INTERVAL: duration "hourly" is not <positive integer><unit> with unit s, min, h, d, w, m (months) or y (or off)'],
    [{ COFFER_SNAPSHOT_RETAIN: '0' }, 'COFFER_SNAPSHOT_RETAIN: 0 is too small (minimum 1)'],
    [{ COFFER_LOG_LEVEL: 'loud' }, 'COFFER_LOG_LEVEL: "loud" is not one of fatal, error, warn, info, debug, trace, silent'],
  ])('%j', (env, message) => {
    const e = errorOf(() => load(env));
    expect(e.code).toBe('NODE_CONFIG_INVALID');
    expect(e.message).toBe(message);
    expect(e.message).not.toContain('\n');
  });

  test('secret values are never echoed', () => {
    const secret = 'SUPERSECRET-not-base64-!!';
    for (const name of ['COFFER_CLUSTER_KEY', 'COFFER_LOCAL_MASTER_KEY']) {
      expect(errorOf(() => load({ [name]: secret })).message).not.toContain('SUPERSECRET');
    }
  });
});

describe('redactConfig', () => {
  test('accepts a short bootstrap token but warns about it', () => {
    const cfg = load({ COFFER_BOOTSTRAP_TOKEN: 'short' });
    expect(cfg.bootstrapToken).toBe('short');
    expect(cfg.warnings.some((w) => w.startsWith('COFFER_BOOTSTRAP_TOKEN is shorter than 16 characters'))).toBe(true);
    expect(cfg.warnings.join('\n')).not.toContain('short"');
  });

  test('hides key material and the bootstrap token', () => {
    const cfg = load({ COFFER_CLUSTER_KEY: KEY32, COFFER_LOCAL_MASTER_KEY: KEY32, COFFER_BOOTSTRAP_TOKEN: 'bootstrap-token-value-1234' });
    const text = JSON.stringify(redactConfig(cfg));
    expect(text).not.toContain('bootstrap-token-value-1234');
    expect(text).toContain('"clusterKey":"[set]"');
    expect(text).toContain('"bootstrapToken":"[set]"');
    expect(redactConfig(load({})).clusterKey).toBe('[unset]');
  });

  test('hides the previous cluster key, which needs a current one', () => {
    const previous = Buffer.alloc(32, 9).toString('base64');
    const cfg = load({ COFFER_CLUSTER_KEY: KEY32, COFFER_PREVIOUS_CLUSTER_KEY: previous });
    expect(cfg.previousClusterKey).toEqual(new Uint8Array(32).fill(9));
    const text = JSON.stringify(redactConfig(cfg));
    expect(text).not.toContain(previous);
    expect(text).toContain('"previousClusterKey":"[set]"');
    expect(() => load({ COFFER_PREVIOUS_CLUSTER_KEY: previous })).toThrow(/COFFER_PREVIOUS_CLUSTER_KEY/);
  });
});

test('default data dir is ./data/<id> relative to the working directory', () => {
  const cfg = loadConfig({ COFFER_NODE_ID: 'n2' }, {}, { readable: () => false, cwd: path.resolve('/tmp/x') });
  expect(cfg.dataDir).toBe('/tmp/x/data/n2');
});
