/**
 * Test harness: starts real `./bin/coffer server` processes on free loopback ports and drives them
 * over HTTP. Every process and temp dir it makes is removed by `stop()`, also after a failure.
 *
 * Network rule: everything here talks to 127.0.0.1 only; `assertLoopback` guards every URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync, createWriteStream, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes, randomInt } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

export const REPO_ROOT: string = path.resolve(__dirname, '../../..');
export const COFFER_BIN: string = path.join(REPO_ROOT, 'bin', 'coffer');

/** Refuses any URL that is not on the loopback network. */
export function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (!(host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host))) {
    throw new Error(`harness refuses to send to non-loopback address ${url}`);
  }
}

/** Ports {@link freePort} returned in this process. */
const handedOut = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 for a node to listen on.
 *
 * Picked at random below the kernel's ephemeral range (32768–60999 here): a port the OS hands out
 * with `listen(0)` is also what it hands out for outgoing connections, so between our probe and the
 * node's bind another process's client socket could take it. Below the range only another listener
 * can collide, and a random pick makes that unlikely; the probe bind rules out ports in use.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 64; attempt++) {
    const port = 20_000 + randomInt(12_000);
    // The probe reserves nothing: a port handed out earlier in this process and not bound yet (the
    // next node of the same cluster) would pass it again, and two members with one peer URL make a
    // COFFER_INITIAL_CLUSTER that every node refuses. Never hand out a port twice.
    if (handedOut.has(port)) continue;
    if (await canBind(port)) {
      handedOut.add(port);
      return port;
    }
  }
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Whether a listener can bind `port` on 127.0.0.1 right now. */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export interface NodeHandle {
  id: string;
  apiPort: number;
  raftPort: number;
  api: string;
  raft: string;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | undefined;
}

export interface ClusterOptions {
  size?: number;
  env?: Record<string, string>;
  snapshotEntries?: number;
  /** Host the API listeners bind (default `127.0.0.1`; `::1` for IPv6). Raft stays on 127.0.0.1. */
  apiHost?: string;
}

export interface HttpResult {
  status: number;
  body: any;
  headers: Headers;
}

/** A cluster of real node processes. */
export class TestCluster {
  readonly nodes: NodeHandle[] = [];
  readonly root: string;
  readonly clusterKey: string = randomBytes(32).toString('base64');
  readonly masterKey: string = randomBytes(32).toString('base64');
  readonly bootstrapToken: string = `cof_test_${randomBytes(24).toString('base64url')}`;
  private readonly opts: ClusterOptions;
  private logs: WriteStream[] = [];

  constructor(opts: ClusterOptions = {}) {
    this.opts = opts;
    this.root = mkdtempSync(path.join(os.tmpdir(), 'coffer-e2e-'));
  }

  /** Allocates ports and starts every node. */
  async start(): Promise<void> {
    const size = this.opts.size ?? 3;
    for (let i = 0; i < size; i++) this.nodes.push(await this.allocate(`n${i + 1}`));
    await Promise.all(this.nodes.map((n) => this.spawnNode(n)));
  }

  private async allocate(id: string): Promise<NodeHandle> {
    const apiPort = await freePort();
    const raftPort = await freePort();
    return {
      id,
      apiPort,
      raftPort,
      api: `http://${this.apiHostInUrl()}:${apiPort}`,
      raft: `http://127.0.0.1:${raftPort}`,
      dataDir: path.join(this.root, id),
      logFile: path.join(this.root, `${id}.log`),
      proc: undefined,
    };
  }

  private apiHostInUrl(): string {
    const h = this.opts.apiHost ?? '127.0.0.1';
    return h.includes(':') ? `[${h}]` : h;
  }

  /** Environment of one node. */
  envFor(n: NodeHandle, extra: Record<string, string> = {}): Record<string, string> {
    return {
      PATH: process.env['PATH'] ?? '',
      COFFER_NODE_ID: n.id,
      COFFER_DATA_DIR: n.dataDir,
      COFFER_API_ADDR: `${this.apiHostInUrl()}:${n.apiPort}`,
      COFFER_RAFT_ADDR: `127.0.0.1:${n.raftPort}`,
      COFFER_CLUSTER_KEY: this.clusterKey,
      COFFER_LOCAL_MASTER_KEY: this.masterKey,
      COFFER_BOOTSTRAP_TOKEN: this.bootstrapToken,
      COFFER_READ_ALLOWLIST: '127.0.0.0/8,::1/128',
      COFFER_LOG_LEVEL: 'info',
      COFFER_SNAPSHOT_ENTRIES: String(this.opts.snapshotEntries ?? 10000),
      ...this.opts.env,
      ...extra,
    };
  }

  private initialCluster(): string {
    return this.nodes.map((n) => `${n.id}=${n.raft}`).join(',');
  }

  /** Starts (or restarts) one node process. */
  spawnNode(n: NodeHandle, extra: Record<string, string> = {}): Promise<void> {
    const env = { COFFER_INITIAL_CLUSTER: this.initialCluster(), ...this.envFor(n, extra) };
    if (extra['COFFER_JOIN'] !== undefined) delete (env as Record<string, string | undefined>)['COFFER_INITIAL_CLUSTER'];
    const log = createWriteStream(n.logFile, { flags: 'a' });
    this.logs.push(log);
    const proc = spawn(COFFER_BIN, ['server'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
    n.proc = proc;
    return this.waitUp(n);
  }

  /** Waits until the node's API answers. */
  async waitUp(n: NodeHandle, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (n.proc?.exitCode !== null && n.proc?.exitCode !== undefined) throw new Error(`${n.id} exited with ${n.proc.exitCode}; see ${n.logFile}`);
      try {
        const r = await fetch(`${n.api}/v1/sys/health?standbyok=true`, { signal: AbortSignal.timeout(1_000) });
        await r.arrayBuffer();
        return;
      } catch {
        await sleep(100);
      }
    }
    throw new Error(`${n.id} did not come up in ${timeoutMs} ms; see ${n.logFile}`);
  }

  /** SIGKILLs one node and waits for it to be gone. */
  async kill(n: NodeHandle, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = n.proc;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await gone;
  }

  /** The node that says it is the leader (health 200), waiting for one to emerge. */
  async leader(timeoutMs = 15_000, among: NodeHandle[] = this.nodes): Promise<NodeHandle> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const n of among) {
        if (n.proc === undefined || n.proc.exitCode !== null || n.proc.signalCode !== null) continue;
        try {
          const r = await fetch(`${n.api}/v1/sys/health`, { signal: AbortSignal.timeout(1_000) });
          await r.arrayBuffer();
          if (r.status === 200) return n;
        } catch {
          // not up
        }
      }
      await sleep(100);
    }
    throw new Error('no leader emerged in time');
  }

  /** Waits until a leader exists and has applied the bootstrap seed (the bootstrap token works). */
  async bootstrapped(timeoutMs = 30_000): Promise<NodeHandle> {
    const leader = await this.leader(timeoutMs);
    await this.eventually(async () => (await this.http(leader, 'GET', '/v1/tokens/self')).status === 200, timeoutMs, 'bootstrap applied');
    return leader;
  }

  /**
   * Waits until a leader exists and every running node accepts a write (followers know the
   * leader's API address and forward), writing `e2e/ready` through each.
   *
   * @returns the leader then, and the other nodes
   */
  async ready(timeoutMs = 30_000): Promise<{ leader: NodeHandle; followers: NodeHandle[] }> {
    await this.leader(timeoutMs);
    for (const n of this.nodes.filter((x) => x.proc !== undefined && x.proc.exitCode === null && x.proc.signalCode === null)) {
      await this.eventually(async () => (await this.http(n, 'PUT', '/v1/secrets/e2e/ready', { value: n.id })).status === 200, timeoutMs, `${n.id} accepts writes`);
    }
    const leader = await this.leader(timeoutMs);
    return { leader, followers: this.nodes.filter((n) => n !== leader) };
  }

  /** One HTTP call with the bootstrap token (unless `token` is given; null = none). */
  async http(n: NodeHandle, method: string, p: string, body?: unknown, token: string | null = this.bootstrapToken, headers: Record<string, string> = {}): Promise<HttpResult> {
    const url = `${n.api}${p}`;
    assertLoopback(url);
    const h: Record<string, string> = { ...headers };
    if (token !== null) h['authorization'] = `Bearer ${token}`;
    if (body !== undefined) h['content-type'] = 'application/json';
    const r = await fetch(url, { method, headers: h, ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(15_000) });
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = text;
    }
    return { status: r.status, body: parsed, headers: r.headers };
  }

  /**
   * One HTTP call from a chosen loopback source address (e.g. `127.0.0.2`), to test the read
   * allowlist and per-IP lockout with distinct clients. Same answer shape as {@link http}.
   */
  httpFrom(n: NodeHandle, localAddress: string, method: string, p: string, body?: unknown, token: string | null = this.bootstrapToken, headers: Record<string, string> = {}): Promise<HttpResult> {
    const url = new URL(`${n.api}${p}`);
    assertLoopback(url.href);
    assertLoopback(`http://${localAddress.includes(':') ? `[${localAddress}]` : localAddress}/`);
    const h: Record<string, string> = { ...headers };
    if (token !== null) h['authorization'] = `Bearer ${token}`;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload !== undefined) {
      h['content-type'] = 'application/json';
      h['content-length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port, path: url.pathname + url.search, method, headers: h, localAddress, agent: false, timeout: 15_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text === '' ? undefined : JSON.parse(text);
            } catch {
              parsed = text;
            }
            const headers = new Headers();
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
            resolve({ status: res.statusCode ?? 0, body: parsed, headers });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`request to ${url.href} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /**
   * The value of one Prometheus series on a node's `/metrics` (summed over label sets when
   * `labels` is omitted; 0 when absent).
   */
  async metric(n: NodeHandle, name: string): Promise<number> {
    const r = await this.http(n, 'GET', '/metrics', undefined, null);
    if (r.status !== 200) throw new Error(`/metrics on ${n.id} answered ${r.status}`);
    let sum = 0;
    for (const line of String(r.body).split('\n')) {
      if (line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (m !== null && m[1] === name) sum += Number(m[3]);
    }
    return sum;
  }

  /** Whether a node's process is running. */
  isRunning(n: NodeHandle): boolean {
    return n.proc !== undefined && n.proc.exitCode === null && n.proc.signalCode === null;
  }

  /**
   * Sends `signal` (default SIGTERM) and waits for the process to exit (SIGKILL after
   * `timeoutMs`); reports how it ended and how long it took.
   */
  async terminate(n: NodeHandle, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const p = n.proc;
    if (p === undefined) throw new Error(`${n.id} was never started`);
    const started = Date.now();
    if (p.exitCode !== null || p.signalCode !== null) return { code: p.exitCode, signal: p.signalCode, ms: 0 };
    const gone = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => p.once('exit', (code, sig) => r({ code, signal: sig })));
    p.kill(signal);
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    const out = await gone;
    clearTimeout(t);
    return { ...out, ms: Date.now() - started };
  }

  /**
   * Like {@link http}, but a 503 (no leader yet, leadership moving, shutting down: always with
   * Retry-After) is retried for up to `timeoutMs`, as a client would. Any other answer is returned.
   */
  async call(n: NodeHandle, method: string, p: string, body?: unknown, token: string | null = this.bootstrapToken, headers: Record<string, string> = {}, timeoutMs = 20_000): Promise<HttpResult> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.http(n, method, p, body, token, headers);
      if (r.status !== 503 || Date.now() > deadline) return r;
      await sleep(200);
    }
  }

  /** Retries `fn` until it returns true or the deadline passes. */
  async eventually(fn: () => Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        if (await fn()) return;
      } catch (err) {
        last = err;
      }
      await sleep(100);
    }
    throw new Error(`${what} did not hold within ${timeoutMs} ms${last === undefined ? '' : `: ${String(last)}`}`);
  }

  /** Stops every process (SIGKILL after a grace period) and removes the temp dir. */
  async stop(keepOnFailure = false): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        const p = n.proc;
        if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
        const gone = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), 5_000);
        await gone;
        clearTimeout(t);
      }),
    );
    for (const l of this.logs) l.end();
    if (!keepOnFailure) rmSync(this.root, { recursive: true, force: true });
  }

  /** Adds a node handle (not started) with fresh ports. */
  async addHandle(id: string): Promise<NodeHandle> {
    const n = await this.allocate(id);
    this.nodes.push(n);
    return n;
  }
}

/** What a finished `./bin/coffer` command printed, and its exit code (null when killed). */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `./bin/coffer ARGS` with only PATH and `env` in its environment; killed after `timeoutMs`.
 *
 * @param args - command line after `coffer`
 * @param env - e.g. COFFER_ADDR and COFFER_TOKEN
 * @returns exit code and output
 */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(COFFER_BIN, args, { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
