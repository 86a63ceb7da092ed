/**
 * A cluster of real `./bin/coffer server` processes, each in its own network namespace.
 *
 * Layout of one run (`<run>` = `cofj-<pid of the test process>-<random>`):
 *   - `<run>-br`: a namespace holding only a bridge `br0`;
 *   - `<run>-n1` … `<run>-nN`: one namespace per node, interface `eth0` with 10.77.0.(10+i)/24,
 *     its veth peer enslaved to the bridge;
 *   - `<run>-cl`: the client namespace (10.77.0.100/24), where the workload and an HTTP relay agent
 *     run.
 * The private addresses exist only inside these namespaces: the root namespace has no route to
 * them and the harness never sends to them from there. The test process reaches node APIs only
 * through the relay agent (`netns-agent.js`, started inside the client namespace) over a Unix
 * socket in the run's temp dir; Unix sockets cross namespaces, IP traffic does not.
 *
 * `stop()` kills every process, deletes every namespace and the temp dir, also after a failure;
 * `cleanupStale()` removes namespaces left behind by a run whose test process is gone.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { COFFER_BIN, REPO_ROOT, sleep } from '../harness.js';

/** Every namespace this harness creates starts with this. */
export const NETNS_PREFIX = 'cofj-';
/** The private subnet used inside the namespaces (never routed from the root namespace). */
export const NETNS_SUBNET = '10.77.0.0/24';
const SUBNET_RE = /^10\.77\.0\.(\d{1,3})$/;
const CLIENT_IP = '10.77.0.100';
export const API_PORT = 8200;
export const RAFT_PORT = 8201;

/** Built scripts run inside the client namespace. */
export const DIST_JEPSEN: string = path.join(REPO_ROOT, 'packages', 'cluster-tests', 'dist', 'jepsen');

/** One node of a {@link NetnsCluster}. */
export interface NetNode {
  id: string;
  /** Its network namespace. */
  ns: string;
  ip: string;
  /** API base URL (reachable only from inside the namespaces). */
  api: string;
  raft: string;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | undefined;
}

export interface NetnsClusterOptions {
  size?: number;
  /** Raft election timeout of every node (COFFER_ELECTION_MS), default 1000. */
  electionMs?: number;
  heartbeatMs?: number;
  snapshotEntries?: number;
  env?: Record<string, string>;
}

/** Answer of a request relayed into the namespaces. `status` 0 = no answer (see `error`). */
export interface RelayResult {
  status: number;
  body: any;
  /** `timeout` or a transport error code when no HTTP answer came back. */
  error?: string;
  /** Milliseconds the relayed request took (measured inside the client namespace). */
  ms: number;
}

/**
 * Throws unless `url` is an address inside this harness's namespaces (10.77.0.0/24).
 *
 * @param url - a node URL
 */
export function assertNamespaceAddress(url: string): void {
  const host = new URL(url).hostname;
  const m = SUBNET_RE.exec(host);
  if (m === null || Number(m[1]) < 1 || Number(m[1]) > 254) throw new Error(`netns harness refuses ${url}: only ${NETNS_SUBNET} addresses inside its namespaces`);
}

/**
 * Runs a command, synchronously, and returns its output; throws with stderr on a non-zero exit.
 *
 * @param cmd - program
 * @param args - arguments
 * @param input - stdin
 * @returns stdout
 */
export function run(cmd: string, args: readonly string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: input ?? '', timeout: 30_000 });
  if (r.error !== undefined) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

function listNamespaces(): string[] {
  const out = run('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

function killNamespaceProcesses(ns: string): void {
  let pids: string[] = [];
  try {
    pids = run('ip', ['netns', 'pids', ns]).split(/\s+/).filter((p) => /^\d+$/.test(p));
  } catch {
    return;
  }
  for (const p of pids) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function deleteNamespace(ns: string): void {
  if (!ns.startsWith(NETNS_PREFIX)) throw new Error(`refusing to delete namespace ${ns}`);
  killNamespaceProcesses(ns);
  try {
    run('ip', ['netns', 'del', ns]);
  } catch {
    // already gone
  }
}

/**
 * Kills every process in a namespace of this harness and deletes it (no error if already gone).
 *
 * @param ns - namespace name, starting with {@link NETNS_PREFIX}
 */
export function removeNamespace(ns: string): void {
  deleteNamespace(ns);
  liveNamespaces.delete(ns);
}

/**
 * Creates a namespace of this harness with loopback up; it is deleted at process exit unless
 * {@link removeNamespace} ran first. Name it `${NETNS_PREFIX}<pid>-…` so that
 * {@link cleanupStale} can remove it after a crash.
 *
 * @param ns - namespace name
 */
export function createNamespace(ns: string): void {
  if (!ns.startsWith(NETNS_PREFIX)) throw new Error(`refusing to create namespace ${ns}: names start with ${NETNS_PREFIX}`);
  if (!exitHook) {
    process.once('exit', onExit);
    exitHook = true;
  }
  run('ip', ['netns', 'add', ns]);
  liveNamespaces.add(ns);
  run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
}

/**
 * Creates the bridge (`br0`) inside an existing namespace.
 *
 * @param bridgeNs - namespace that holds only the bridge
 */
export function createBridge(bridgeNs: string): void {
  run('ip', ['-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
  run('ip', ['-n', bridgeNs, 'link', 'set', 'br0', 'up']);
}

/**
 * Gives a namespace an `eth0` with `ip`/24 whose veth peer is enslaved to the bridge.
 *
 * @param bridgeNs - namespace of the bridge
 * @param ns - member namespace
 * @param ip - its address on the bridge subnet
 * @param peer - name of the veth end in the bridge namespace (unique there)
 */
export function attachToBridge(bridgeNs: string, ns: string, ip: string, peer: string): void {
  // Created inside the namespace, its peer moved straight into the bridge namespace: no
  // interface of a run ever exists in the root namespace.
  run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', peer, 'netns', bridgeNs]);
  run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  run('ip', ['-n', bridgeNs, 'link', 'set', peer, 'master', 'br0']);
  run('ip', ['-n', bridgeNs, 'link', 'set', peer, 'up']);
}

/**
 * Environment of processes run inside a namespace: PATH, and the test process's own namespace so
 * that their guard (ns-guard) refuses to run in it.
 *
 * @returns the environment
 */
/**
 * Runs `argv` inside namespace `ns` (`ip netns exec`), capturing its output; SIGKILLed after
 * `timeoutMs`.
 *
 * @returns exit code and output
 */
export function execInNamespace(ns: string, argv: readonly string[], env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

export function namespaceChildEnv(): Record<string, string> {
  let own = '';
  try {
    own = readlinkSync('/proc/self/ns/net');
  } catch {
    // unknown: the child's default-route check still applies
  }
  return { PATH: process.env['PATH'] ?? '', ...(own === '' ? {} : { COFFER_JEPSEN_PARENT_NETNS: own }) };
}

/**
 * Starts the HTTP relay agent (`netns-agent.js`) inside a namespace, listening on a Unix socket,
 * and waits for the socket.
 *
 * @param ns - namespace to run it in
 * @param socket - Unix socket path (in a temp dir of the run)
 * @param subnet - the only `10.x.y.0/24` it relays to
 * @param log - where its output goes
 * @returns the agent process
 */
export async function startRelayAgent(ns: string, socket: string, subnet: string, log: WriteStream): Promise<ChildProcess> {
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(DIST_JEPSEN, 'netns-agent.js'), '--socket', socket, '--subnet', subnet], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: namespaceChildEnv(),
  });
  p.stdout?.pipe(log, { end: false });
  p.stderr?.pipe(log, { end: false });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (p.exitCode !== null) throw new Error(`relay agent in ${ns} exited with ${p.exitCode}; see ${log.path.toString()}`);
    if (existsSync(socket)) return p;
    await sleep(50);
  }
  p.kill('SIGKILL');
  throw new Error(`relay agent in ${ns} did not start`);
}

/**
 * One HTTP request performed by a relay agent inside its namespace.
 *
 * @param socket - the agent's Unix socket
 * @param target - base URL (the agent refuses one outside its subnet)
 * @param method - HTTP method
 * @param p - path and query
 * @param body - JSON body
 * @param token - bearer token, or null for none
 * @param timeoutMs - request timeout inside the namespace
 * @returns the answer, or status 0 with `error` when none came back in time
 */
export function relayRequest(socket: string, target: string, method: string, p: string, body: unknown, token: string | null, timeoutMs: number): Promise<RelayResult> {
  const payload = JSON.stringify({ target, method, path: p, token, body, timeoutMs });
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath: socket, path: '/relay', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as RelayResult);
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs + 10_000, () => req.destroy(new Error('relay agent did not answer')));
    req.on('error', reject);
    req.end(payload);
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes namespaces (and kills their processes) left by earlier runs of this harness whose test
 * process no longer exists. Namespaces of live runs (parallel tests) are left alone.
 *
 * @returns the namespaces deleted
 */
export function cleanupStale(): string[] {
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    if (!ns.startsWith(NETNS_PREFIX)) continue;
    const pid = Number(ns.slice(NETNS_PREFIX.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) continue;
    deleteNamespace(ns);
    removed.push(ns);
  }
  return removed;
}

/**
 * Fails loudly when network namespaces or nftables cannot be used here (not root, no `ip`, no
 * `nft`, or a kernel without namespaces).
 */
export function requireNamespaceSupport(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new Error('network-namespace tests need root (they create namespaces and nftables rules)');
  for (const tool of ['ip', 'nft']) {
    const r = spawnSync(tool, ['-V'], { encoding: 'utf8' });
    if (r.error !== undefined || r.status !== 0) throw new Error(`network-namespace tests need \`${tool}\` (scripts/system-deps.sh installs iproute2 and nftables)`);
  }
}

/** Namespaces of this process's live clusters, removed synchronously if the process exits early. */
const liveNamespaces = new Set<string>();
let exitHook = false;
function onExit(): void {
  for (const ns of liveNamespaces) deleteNamespace(ns);
  liveNamespaces.clear();
}

/** A cluster of real node processes in network namespaces. */
export class NetnsCluster {
  readonly run: string = `${NETNS_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly bridgeNs: string = `${this.run}-br`;
  readonly clientNs: string = `${this.run}-cl`;
  readonly nodes: NetNode[] = [];
  readonly root: string;
  readonly clusterKey: string = randomBytes(32).toString('base64');
  readonly masterKey: string = randomBytes(32).toString('base64');
  readonly bootstrapToken: string = `cof_test_${randomBytes(24).toString('base64url')}`;
  readonly tokenFile: string;
  readonly agentSocket: string;
  readonly electionMs: number;
  private readonly opts: NetnsClusterOptions;
  private readonly created: string[] = [];
  private agent: ChildProcess | undefined;
  private logs: WriteStream[] = [];

  constructor(opts: NetnsClusterOptions = {}) {
    this.opts = opts;
    this.electionMs = opts.electionMs ?? 1000;
    this.root = mkdtempSync(path.join(os.tmpdir(), 'coffer-netns-'));
    this.tokenFile = path.join(this.root, 'token');
    writeFileSync(this.tokenFile, this.bootstrapToken, { mode: 0o600 });
    this.agentSocket = path.join(this.root, 'agent.sock');
    const size = opts.size ?? 3;
    for (let i = 1; i <= size; i++) {
      const ip = `10.77.0.${10 + i}`;
      this.nodes.push({
        id: `n${i}`,
        ns: `${this.run}-n${i}`,
        ip,
        api: `http://${ip}:${API_PORT}`,
        raft: `http://${ip}:${RAFT_PORT}`,
        dataDir: path.join(this.root, `n${i}`),
        logFile: path.join(this.root, `n${i}.log`),
        proc: undefined,
      });
    }
  }

  /** Creates the namespaces and links, starts the relay agent and every node. */
  async start(): Promise<void> {
    requireNamespaceSupport();
    if (!existsSync(path.join(DIST_JEPSEN, 'netns-agent.js'))) throw new Error(`${DIST_JEPSEN}/netns-agent.js is missing: build first (tsc -b)`);
    this.addNs(this.bridgeNs);
    createBridge(this.bridgeNs);
    const members: [string, string, string][] = [...this.nodes.map((n): [string, string, string] => [n.ns, n.ip, `v${n.id}`]), [this.clientNs, CLIENT_IP, 'vcl']];
    for (const [ns, ip, peer] of members) {
      this.addNs(ns);
      attachToBridge(this.bridgeNs, ns, ip, peer);
    }
    // Sanity: inside a node namespace the subnet is on eth0; there is no default route anywhere.
    const route = run('ip', ['-n', this.nodes[0]!.ns, 'route', 'get', this.nodes[1]?.ip ?? CLIENT_IP]);
    if (!/dev eth0/.test(route)) throw new Error(`unexpected route inside ${this.nodes[0]!.ns}: ${route}`);
    await this.startAgent();
    await Promise.all(this.nodes.map((n) => this.spawnNode(n)));
  }

  private addNs(ns: string): void {
    createNamespace(ns);
    this.created.push(ns);
  }

  private async startAgent(): Promise<void> {
    const log = createWriteStream(path.join(this.root, 'agent.log'), { flags: 'a' });
    this.logs.push(log);
    this.agent = await startRelayAgent(this.clientNs, this.agentSocket, NETNS_SUBNET, log);
  }

  /** Environment of processes run in the client namespace (they check they are not in ours). */
  private clientEnv(): Record<string, string> {
    return namespaceChildEnv();
  }

  /** Environment of one node. */
  envFor(n: NetNode, extra: Record<string, string> = {}): Record<string, string> {
    return {
      PATH: process.env['PATH'] ?? '',
      COFFER_NODE_ID: n.id,
      COFFER_DATA_DIR: n.dataDir,
      COFFER_API_ADDR: `${n.ip}:${API_PORT}`,
      COFFER_RAFT_ADDR: `${n.ip}:${RAFT_PORT}`,
      COFFER_INITIAL_CLUSTER: this.nodes.map((m) => `${m.id}=${m.raft}`).join(','),
      COFFER_CLUSTER_KEY: this.clusterKey,
      COFFER_LOCAL_MASTER_KEY: this.masterKey,
      COFFER_BOOTSTRAP_TOKEN: this.bootstrapToken,
      COFFER_READ_ALLOWLIST: `${NETNS_SUBNET},127.0.0.0/8`,
      COFFER_LOG_LEVEL: 'info',
      COFFER_ELECTION_MS: String(this.electionMs),
      COFFER_HEARTBEAT_MS: String(this.opts.heartbeatMs ?? 100),
      COFFER_SNAPSHOT_ENTRIES: String(this.opts.snapshotEntries ?? 10000),
      ...this.opts.env,
      ...extra,
    };
  }

  /** Starts (or restarts) one node inside its namespace and waits for its API. */
  async spawnNode(n: NetNode, extra: Record<string, string> = {}): Promise<void> {
    const log = createWriteStream(n.logFile, { flags: 'a' });
    this.logs.push(log);
    // `ip netns exec` execs the command (and bin/coffer execs node): the pid is the node's.
    const proc = spawn('ip', ['netns', 'exec', n.ns, COFFER_BIN, 'server'], { env: this.envFor(n, extra), stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
    n.proc = proc;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${n.id} exited (${proc.exitCode ?? proc.signalCode}); see ${n.logFile}`);
      const r = await this.http(n, 'GET', '/v1/sys/health?standbyok=true', undefined, { token: null, timeoutMs: 1_000 });
      if (r.status !== 0) return;
      await sleep(100);
    }
    throw new Error(`${n.id} did not come up; see ${n.logFile}`);
  }

  /** Whether the node's process is running (possibly paused). */
  alive(n: NetNode): boolean {
    return n.proc !== undefined && n.proc.exitCode === null && n.proc.signalCode === null;
  }

  /** Sends a signal to a node and, for a kill, waits for it to be gone. */
  async kill(n: NetNode, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = n.proc;
    if (p === undefined || !this.alive(n)) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await gone;
  }

  /**
   * One HTTP request to a node, relayed by the agent inside the client namespace.
   *
   * @param n - target node (or an API base URL inside the namespaces)
   * @param method - HTTP method
   * @param p - path and query
   * @param body - JSON body
   * @param o - `token` (default the bootstrap token; null = none), `timeoutMs` (default 5000)
   * @returns the answer, or status 0 with `error` when none came back in time
   */
  http(n: NetNode | string, method: string, p: string, body?: unknown, o: { token?: string | null; timeoutMs?: number } = {}): Promise<RelayResult> {
    const target = typeof n === 'string' ? n : n.api;
    assertNamespaceAddress(target);
    const timeoutMs = o.timeoutMs ?? 5_000;
    const token = o.token === undefined ? this.bootstrapToken : o.token;
    return relayRequest(this.agentSocket, target, method, p, body, token, timeoutMs);
  }

  /** The node that reports itself leader (health 200), among running nodes, waiting for one. */
  async leader(timeoutMs = 20_000, among: NetNode[] = this.nodes): Promise<NetNode> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const n of among) {
        if (!this.alive(n)) continue;
        const r = await this.http(n, 'GET', '/v1/sys/health', undefined, { token: null, timeoutMs: 1_000 });
        if (r.status === 200) return n;
      }
      await sleep(100);
    }
    throw new Error('no leader emerged in time');
  }

  /**
   * Runs a command inside a namespace and collects its output (bounded by `timeoutMs`).
   *
   * @param ns - namespace
   * @param argv - program and arguments
   * @param timeoutMs - SIGKILL after this long
   * @returns exit code and output
   */
  exec(ns: string, argv: readonly string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    if (!this.created.includes(ns)) throw new Error(`${ns} is not a namespace of this run`);
    return execInNamespace(ns, argv, this.clientEnv(), timeoutMs);
  }

  /** Runs a built script of this package (`dist/jepsen/<script>`) with node inside the client namespace. */
  runClient(script: string, args: readonly string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return this.exec(this.clientNs, [process.execPath, path.join(DIST_JEPSEN, script), ...args], timeoutMs);
  }

  /** Applies an nftables script inside a namespace of this run. */
  nft(ns: string, script: string): void {
    if (!this.created.includes(ns)) throw new Error(`${ns} is not a namespace of this run`);
    run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], script);
  }

  /** Node log text (for failure messages). */
  logOf(n: NetNode): string {
    return existsSync(n.logFile) ? readFileSync(n.logFile, 'utf8') : '';
  }

  /** Kills every process, deletes every namespace of this run and (unless kept) the temp dir. */
  async stop(keepOnFailure = false): Promise<void> {
    for (const n of this.nodes) {
      if (this.alive(n)) {
        n.proc?.kill('SIGCONT');
        n.proc?.kill('SIGKILL');
      }
    }
    if (this.agent !== undefined && this.agent.exitCode === null) this.agent.kill('SIGKILL');
    await Promise.all(
      [...this.nodes.map((n) => n.proc), this.agent].map(
        (p) =>
          new Promise<void>((r) => {
            if (p === undefined || p.exitCode !== null || p.signalCode !== null) return r();
            p.once('exit', () => r());
            setTimeout(r, 5_000).unref();
          }),
      ),
    );
    for (const ns of [...this.created].reverse()) removeNamespace(ns);
    this.created.length = 0;
    for (const l of this.logs) l.end();
    if (!keepOnFailure) rmSync(this.root, { recursive: true, force: true });
  }
}
