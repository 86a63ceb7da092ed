/**
 * A Coffer cluster on a WireGuard overlay, in network namespaces, configured by the operator's own
 * tool (`deploy/wireguard/coffer-wg.mjs`) and brought up with `wg-quick` on userspace
 * `wireguard-go` (no kernel module here).
 *
 * Layout of one run (`<run>` = `cofj-<pid of the test process>-<random>`, so the netns harness's
 * `cleanupStale()` also removes what a crashed run left):
 *   - `<run>-br`: the bridge (the "LAN"), underlay 10.77.0.0/24;
 *   - `<run>-n1..n3`: one node each, underlay 10.77.0.11-13, overlay 10.78.0.1-3 (WireGuard),
 *     API and Raft bound to the overlay address;
 *   - `<run>-svc`: a client peer of the overlay (10.78.0.101), on the read allowlist, with a
 *     relay agent: the test reaches the API only through it;
 *   - `<run>-oth`: a second client peer (10.78.0.102), NOT on the allowlist, with its own agent;
 *   - `<run>-out`: a host on the LAN (10.77.0.100) that is no WireGuard peer.
 * Each WireGuard interface has a name unique on the machine (`cw<pid36>-<rand><k>`): wireguard-go's
 * control socket (/var/run/wireguard/NAME.sock) is global, not per namespace.
 *
 * Nothing here sends IP traffic from the test process: requests go through relay agents and probes
 * started inside the namespaces, which check they are sealed (ns-guard) before sending.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync, type WriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { COFFER_BIN, REPO_ROOT, sleep } from '../harness.js';
import {
  DIST_JEPSEN,
  NETNS_PREFIX,
  attachToBridge,
  cleanupStale,
  createBridge,
  createNamespace,
  execInNamespace,
  namespaceChildEnv,
  relayRequest,
  removeNamespace,
  requireNamespaceSupport,
  run,
  startRelayAgent,
  type RelayResult,
} from '../jepsen/netns.js';

/** The operator's generator under test. */
export const WG_GENERATOR: string = path.join(REPO_ROOT, 'deploy', 'wireguard', 'coffer-wg.mjs');
/** Overlay subnet of the test (inside the namespaces only). */
export const OVERLAY_SUBNET = '10.78.0.0/24';
/** Built scripts run inside the namespaces. */
export const DIST_WIREGUARD: string = path.join(REPO_ROOT, 'packages', 'cluster-tests', 'dist', 'wireguard');
const WG_RUN_DIR = '/var/run/wireguard';
/** Temp dirs are `coffer-wg-<pid>-XXXXXX`; a failed run leaves {@link KEPT_MARKER} in the one it keeps. */
const TMP_PREFIX = 'coffer-wg-';
const KEPT_MARKER = 'KEPT-FOR-DEBUGGING';
/** `cw<pid base 36>-<3 hex><member>`: at most 12 characters (Linux allows 15). */
const IFACE_RE = /^cw([0-9a-z]+)-[0-9a-f]{3}[0-9a-z]$/;

/** What coffer-wg.mjs writes to overlay.json (the parts the test reads). */
export interface OverlayJson {
  subnet: string;
  raftPort: number;
  apiPort: number;
  keygen: string;
  firewallTable: string | null;
  nodes: { id: string; address: string; endpoint: string; publicKey: string; config: string; env: Record<string, string> }[];
  clients: { id: string; address: string; publicKey: string; config: string }[];
}

/** A namespace of the run with a WireGuard interface. */
export interface WgMember {
  id: string;
  ns: string;
  underlay: string;
  overlay: string;
  iface: string;
}

/** A node: a WgMember running `coffer server`. */
export interface OverlayNode extends WgMember {
  api: string;
  raft: string;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | undefined;
}

/**
 * Throws unless the WireGuard userspace tools are installed.
 */
export function requireWireguardTools(): void {
  for (const [tool, args] of [['wireguard-go', ['--version']], ['wg', ['--version']], ['wg-quick', ['-h']]] as const) {
    const r = spawnSync(tool, args, { encoding: 'utf8' });
    if (r.error !== undefined) throw new Error(`the WireGuard test needs \`${tool}\` (scripts/system-deps.sh installs wireguard-go and wireguard-tools)`);
  }
  if (!existsSync('/dev/net/tun')) throw new Error('the WireGuard test needs /dev/net/tun (wireguard-go creates a tun device)');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function ownerOf(iface: string): number | undefined {
  const m = IFACE_RE.exec(iface);
  return m === null ? undefined : parseInt(m[1] as string, 36);
}

/**
 * Removes what crashed runs left: their namespaces (netns harness), wireguard-go daemons still
 * alive outside them, and control sockets — only for interface names of this harness whose test
 * process is gone.
 *
 * @returns what was removed
 */
export function cleanupStaleOverlay(): string[] {
  const removed = cleanupStale();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (path.basename(argv[0] ?? '') !== 'wireguard-go') continue;
    const owner = ownerOf(argv[argv.length - 2] ?? '') ?? ownerOf(argv[1] ?? '');
    if (owner === undefined || pidAlive(owner)) continue;
    try {
      process.kill(Number(pid), 'SIGTERM');
      removed.push(`wireguard-go ${pid}`);
    } catch {
      // gone
    }
  }
  if (existsSync(WG_RUN_DIR)) {
    for (const f of readdirSync(WG_RUN_DIR)) {
      const owner = ownerOf(f.replace(/\.(sock|name)$/, ''));
      if (owner === undefined || pidAlive(owner)) continue;
      rmSync(path.join(WG_RUN_DIR, f), { force: true });
      removed.push(path.join(WG_RUN_DIR, f));
    }
  }
  // Temp dirs of crashed runs (a failed run that kept its logs on purpose marks its dir).
  for (const d of readdirSync(os.tmpdir())) {
    const m = new RegExp(`^${TMP_PREFIX}(\\d+)-`).exec(d);
    if (m === null || pidAlive(Number(m[1])) || existsSync(path.join(os.tmpdir(), d, KEPT_MARKER))) continue;
    rmSync(path.join(os.tmpdir(), d), { recursive: true, force: true });
    removed.push(path.join(os.tmpdir(), d));
  }
  return removed;
}

/** Options of {@link OverlayCluster}. */
export interface OverlayClusterOptions {
  /** COFFER_READ_ALLOWLIST of the nodes (default: the `svc` client only). */
  readAllowlist?: string;
  electionMs?: number;
}

/** Three real nodes whose API and Raft listen on a WireGuard overlay. */
export class OverlayCluster {
  readonly run: string = `${NETNS_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly root: string;
  readonly wgDir: string;
  readonly bridgeNs: string;
  readonly nodes: OverlayNode[] = [];
  /** Client peer on the allowlist. */
  svc!: WgMember;
  /** Client peer outside the allowlist. */
  oth!: WgMember;
  /** LAN host that is no WireGuard peer. */
  readonly out: { ns: string; underlay: string };
  overlay!: OverlayJson;
  readonly clusterKey: string = randomBytes(32).toString('base64');
  readonly masterKey: string = randomBytes(32).toString('base64');
  readonly bootstrapToken: string = `cof_test_${randomBytes(24).toString('base64url')}`;
  readonly tokenFile: string;
  private readonly opts: OverlayClusterOptions;
  private readonly ifaceTag: string = `cw${process.pid.toString(36)}-${randomBytes(2).toString('hex').slice(0, 3)}`;
  private readonly created: string[] = [];
  private readonly ifaces: WgMember[] = [];
  private readonly agents = new Map<string, { proc: ChildProcess; socket: string }>();
  private readonly logs: WriteStream[] = [];
  /** Milliseconds per phase of start() and stop(), for the test's summary line. */
  readonly timings: Record<string, number> = {};

  constructor(opts: OverlayClusterOptions = {}) {
    this.opts = opts;
    this.root = mkdtempSync(path.join(os.tmpdir(), `${TMP_PREFIX}${process.pid}-`));
    this.wgDir = path.join(this.root, 'wg');
    this.bridgeNs = `${this.run}-br`;
    this.out = { ns: `${this.run}-out`, underlay: '10.77.0.100' };
    this.tokenFile = path.join(this.root, 'token');
    writeFileSync(this.tokenFile, this.bootstrapToken, { mode: 0o600 });
  }

  /** The arguments the test passes to coffer-wg.mjs (the n3 port differs on purpose). */
  static generatorArgs(out: string, keygen = 'auto'): string[] {
    return ['--nodes', 'n1=10.77.0.11,n2=10.77.0.12,n3=10.77.0.13:51821', '--clients', 'svc,oth', '--subnet', OVERLAY_SUBNET, '--keepalive', '0', '--keygen', keygen, '--out', out];
  }

  /**
   * Generates the overlay with coffer-wg.mjs, builds the namespaces, brings every WireGuard
   * interface up with `wg-quick up` on the generated config, starts the relay agents and the nodes.
   */
  async start(): Promise<void> {
    let t = Date.now();
    const phase = (name: string): void => {
      this.timings[name] = Date.now() - t;
      t = Date.now();
    };
    requireNamespaceSupport();
    requireWireguardTools();
    for (const f of [path.join(DIST_JEPSEN, 'netns-agent.js'), path.join(DIST_JEPSEN, 'workload-main.js'), path.join(DIST_WIREGUARD, 'tcp-probe.js')]) {
      if (!existsSync(f)) throw new Error(`${f} is missing: build first (tsc -b)`);
    }
    const gen = spawnSync(process.execPath, [WG_GENERATOR, ...OverlayCluster.generatorArgs(this.wgDir)], { encoding: 'utf8', timeout: 30_000 });
    if (gen.status !== 0) throw new Error(`coffer-wg.mjs failed (${gen.status}): ${gen.stderr}`);
    writeFileSync(path.join(this.root, 'coffer-wg.out'), gen.stdout);
    this.overlay = JSON.parse(readFileSync(path.join(this.wgDir, 'overlay.json'), 'utf8')) as OverlayJson;
    phase('generate');

    const member = (id: string, underlay: string, overlay: string, k: string): WgMember => ({ id, ns: `${this.run}-${id}`, underlay, overlay, iface: `${this.ifaceTag}${k}` });
    this.overlay.nodes.forEach((n, i) => {
      const m = member(n.id, (n.endpoint.split(':')[0] as string), n.address, String(i + 1));
      this.nodes.push({ ...m, api: `http://${n.address}:${this.overlay.apiPort}`, raft: `http://${n.address}:${this.overlay.raftPort}`, dataDir: path.join(this.root, n.id), logFile: path.join(this.root, `${n.id}.log`), proc: undefined });
    });
    const client = (id: string): { address: string } => {
      const c = this.overlay.clients.find((x) => x.id === id);
      if (c === undefined) throw new Error(`overlay.json has no client ${id}`);
      return c;
    };
    this.svc = member('svc', '10.77.0.101', client('svc').address, 's');
    this.oth = member('oth', '10.77.0.102', client('oth').address, 'o');

    this.addNs(this.bridgeNs);
    createBridge(this.bridgeNs);
    for (const m of [...this.nodes, this.svc, this.oth, { id: 'out', ns: this.out.ns, underlay: this.out.underlay }]) {
      this.addNs(m.ns);
      attachToBridge(this.bridgeNs, m.ns, m.underlay, `v${m.id}`);
    }
    phase('namespaces');
    for (const m of [...this.nodes, this.svc, this.oth]) this.wgQuickUp(m);
    phase('wg-quick');

    for (const m of [this.svc, this.oth]) {
      const socket = path.join(this.root, `${m.id}.sock`);
      const log = createWriteStream(path.join(this.root, `${m.id}-agent.log`), { flags: 'a' });
      this.logs.push(log);
      this.agents.set(m.id, { proc: await startRelayAgent(m.ns, socket, OVERLAY_SUBNET, log), socket });
    }
    phase('agents');
    await Promise.all(this.nodes.map((n) => this.spawnNode(n)));
    phase('nodes');
  }

  private addNs(ns: string): void {
    createNamespace(ns);
    this.created.push(ns);
  }

  /** `wg-quick up` of the generated config, under this run's interface name, inside the member's namespace. */
  private wgQuickUp(m: WgMember): void {
    const conf = path.join(this.wgDir, `${m.iface}.conf`); // wg-quick names the interface after the file
    copyFileSync(path.join(this.wgDir, `${m.id}.conf`), conf);
    this.ifaces.push(m);
    const r = spawnSync('ip', ['netns', 'exec', m.ns, 'wg-quick', 'up', conf], { encoding: 'utf8', timeout: 30_000, env: namespaceChildEnv() });
    writeFileSync(path.join(this.root, `${m.id}-wg-quick.log`), `${r.stdout}${r.stderr}`);
    if (r.status !== 0) throw new Error(`wg-quick up in ${m.ns} failed (${r.status ?? r.error?.message}): ${r.stderr}`);
  }

  /** Environment of one node: the generator's COFFER_* addresses plus the shared secrets. */
  envFor(n: OverlayNode): Record<string, string> {
    const gen = this.overlay.nodes.find((x) => x.id === n.id)?.env;
    if (gen === undefined) throw new Error(`overlay.json has no env for ${n.id}`);
    return {
      PATH: process.env['PATH'] ?? '',
      ...gen,
      COFFER_DATA_DIR: n.dataDir,
      COFFER_READ_ALLOWLIST: this.opts.readAllowlist ?? `${this.svc.overlay}/32`,
      COFFER_CLUSTER_KEY: this.clusterKey,
      COFFER_LOCAL_MASTER_KEY: this.masterKey,
      COFFER_BOOTSTRAP_TOKEN: this.bootstrapToken,
      COFFER_LOG_LEVEL: 'info',
      COFFER_ELECTION_MS: String(this.opts.electionMs ?? 1000),
      COFFER_HEARTBEAT_MS: '100',
    };
  }

  private async spawnNode(n: OverlayNode): Promise<void> {
    const log = createWriteStream(n.logFile, { flags: 'a' });
    this.logs.push(log);
    // `ip netns exec` execs the command (and bin/coffer execs node): the pid is the node's.
    const proc = spawn('ip', ['netns', 'exec', n.ns, COFFER_BIN, 'server'], { env: this.envFor(n), stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
    n.proc = proc;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${n.id} exited (${proc.exitCode ?? proc.signalCode}); see ${n.logFile}:\n${this.logOf(n).slice(-2000)}`);
      const r = await this.http('svc', n, 'GET', '/v1/sys/health?standbyok=true', undefined, { token: null, timeoutMs: 1_000 });
      if (r.status !== 0) return;
      await sleep(100);
    }
    throw new Error(`${n.id} did not answer on the overlay; see ${n.logFile}`);
  }

  /**
   * One HTTP request from a client peer's namespace (its relay agent) to a node on the overlay.
   *
   * @param from - which client peer sends it
   * @param n - node (or overlay base URL)
   * @param method - HTTP method
   * @param p - path and query
   * @param body - JSON body
   * @param o - `token` (default the bootstrap token; null = none), `timeoutMs` (default 5000)
   * @returns the answer, or status 0 with `error`
   */
  http(from: 'svc' | 'oth', n: OverlayNode | string, method: string, p: string, body?: unknown, o: { token?: string | null; timeoutMs?: number } = {}): Promise<RelayResult> {
    const agent = this.agents.get(from);
    if (agent === undefined) throw new Error(`no relay agent in ${from}`);
    const target = typeof n === 'string' ? n : n.api;
    if (!/^http:\/\/10\.78\.0\.\d{1,3}:\d+$/.test(target)) throw new Error(`refusing ${target}: only overlay addresses (${OVERLAY_SUBNET})`);
    return relayRequest(agent.socket, target, method, p, body, o.token === undefined ? this.bootstrapToken : o.token, o.timeoutMs ?? 5_000);
  }

  /** The node whose health says leader (200), waiting for one. */
  async leader(timeoutMs = 20_000): Promise<OverlayNode> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const n of this.nodes) {
        const r = await this.http('svc', n, 'GET', '/v1/sys/health', undefined, { token: null, timeoutMs: 1_000 });
        if (r.status === 200) return n;
      }
      await sleep(100);
    }
    throw new Error('no leader emerged on the overlay in time');
  }

  /**
   * TCP handshakes from inside a namespace of the run (tcp-probe.js, which checks it is sealed).
   *
   * @param ns - namespace to probe from
   * @param targets - `10.x.y.z:port` each
   * @returns per target: connected, refused, timeout, unreachable (or an error code)
   */
  async probe(ns: string, targets: readonly string[]): Promise<Record<string, string>> {
    const r = await this.exec(ns, [process.execPath, path.join(DIST_WIREGUARD, 'tcp-probe.js'), '--timeout-ms', '3000', ...targets], 20_000);
    if (r.code !== 0) throw new Error(`tcp-probe in ${ns} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, string>;
  }

  /**
   * `ip route get` inside a namespace (asks the kernel; sends nothing).
   *
   * @param ns - namespace
   * @param addr - destination
   * @returns the route line, or the error text when there is none
   */
  routeGet(ns: string, addr: string): string {
    const r = spawnSync('ip', ['-n', ns, 'route', 'get', addr], { encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 ? r.stdout.trim() : `error: ${r.stderr.trim()}`;
  }

  /**
   * Listening TCP sockets inside a namespace (`ss -Hltn`), as `address:port`.
   *
   * @param ns - namespace
   * @returns local addresses
   */
  listeners(ns: string): string[] {
    return run('ip', ['netns', 'exec', ns, 'ss', '-Hltn'])
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[3] ?? '')
      .filter((a) => a !== '')
      .sort();
  }

  /**
   * `wg show IFACE DUMP-FIELD` for one member (its own interface: `wg show` alone would list every
   * run's interfaces, the control sockets being global).
   *
   * @param m - member
   * @param what - e.g. `latest-handshakes`, `peers`, `transfer`
   * @returns the output
   */
  wgShow(m: WgMember, what: string): string {
    return run('ip', ['netns', 'exec', m.ns, 'wg', 'show', m.iface, what]);
  }

  /**
   * Runs a command inside a namespace of this run (bounded by `timeoutMs`).
   *
   * @param ns - namespace
   * @param argv - program and arguments
   * @param timeoutMs - SIGKILL after this long
   * @returns exit code and output
   */
  exec(ns: string, argv: readonly string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    if (!this.created.includes(ns)) throw new Error(`${ns} is not a namespace of this run`);
    return execInNamespace(ns, argv, namespaceChildEnv(), timeoutMs);
  }

  /** Node log text (for failure messages). */
  logOf(n: OverlayNode): string {
    return existsSync(n.logFile) ? readFileSync(n.logFile, 'utf8') : '';
  }

  /**
   * Stops everything of the run, also after a failure: nodes and agents, every WireGuard interface
   * (deleting the link ends its wireguard-go, which removes its control socket), every namespace,
   * and the temp dir unless `keep`.
   *
   * @param keep - keep the temp dir (logs) for a failed run
   */
  async stop(keep = false): Promise<void> {
    const t = Date.now();
    const procs = [...this.nodes.map((n) => n.proc), ...[...this.agents.values()].map((a) => a.proc)];
    for (const p of procs) if (p !== undefined && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((r) => {
            if (p === undefined || p.exitCode !== null || p.signalCode !== null) return r();
            p.once('exit', () => r());
            setTimeout(r, 5_000).unref();
          }),
      ),
    );
    for (const m of this.ifaces) spawnSync('ip', ['-n', m.ns, 'link', 'delete', 'dev', m.iface], { timeout: 10_000 });
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline && this.ifaces.some((m) => existsSync(path.join(WG_RUN_DIR, `${m.iface}.sock`)))) await sleep(50);
    for (const ns of [...this.created].reverse()) removeNamespace(ns);
    this.created.length = 0;
    // A daemon killed with its namespace leaves its socket behind.
    for (const m of this.ifaces) {
      try {
        unlinkSync(path.join(WG_RUN_DIR, `${m.iface}.sock`));
      } catch {
        // removed by wireguard-go
      }
    }
    for (const l of this.logs) l.end();
    if (keep) writeFileSync(path.join(this.root, KEPT_MARKER), 'logs of a failed run, kept on purpose\n');
    else rmSync(this.root, { recursive: true, force: true });
    this.timings['stop'] = Date.now() - t;
  }

  /** Interface names of this run (for leak checks). */
  interfaceNames(): string[] {
    return this.ifaces.map((m) => m.iface);
  }
}
