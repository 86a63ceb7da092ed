// Shared by the cluster benchmarks: a real three-node cluster of `./bin/coffer server` processes on
// loopback (free ports, fresh keys and token, logs in the given directory), and small helpers.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createWriteStream, writeFileSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Random ports below the kernel's ephemeral range, so that no outgoing connection can take a port
// between the probe and the node's bind (see packages/cluster-tests/src/harness.ts).
export async function freePort() {
  for (let attempt = 0; attempt < 64; attempt++) {
    const port = 20_000 + randomInt(12_000);
    const ok = await new Promise((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port found');
}

/**
 * Starts three nodes. `profile` writes a V8 CPU profile per node under `root/profiles`. `repo` is
 * the checkout whose build runs (default this one; another one, e.g. a clean clone of HEAD, keeps
 * uncommitted work in this tree out of a measurement). `extraEnv` adds variables to every node's
 * environment (e.g. NODE_OPTIONS, GLIBC_TUNABLES, to measure a runtime setting); the node's own
 * COFFER_* settings win over it.
 * Returns `{ nodes, token, spawnNode(n), stopCluster() }` (each node has `id`, `api`, `proc` and
 * `dataDir`); `spawnNode` (re)starts one node with its data dir, as after a crash or a restart.
 */
export async function startCluster(root, { profile = false, logLevel = 'warn', repo = ROOT, extraEnv = {} } = {}) {
  const clusterKey = randomBytes(32).toString('base64');
  const masterKey = randomBytes(32).toString('base64');
  const token = `cof_bench_${randomBytes(24).toString('base64url')}`;
  const nodes = [];
  for (let i = 1; i <= 3; i++) nodes.push({ id: `n${i}`, apiPort: await freePort(), raftPort: await freePort(), dataDir: path.join(root, `n${i}`) });
  const initial = nodes.map((n) => `${n.id}=http://127.0.0.1:${n.raftPort}`).join(',');
  let stopping = false;
  const spawnNode = (n) => {
    n.api = `http://127.0.0.1:${n.apiPort}`;
    const log = createWriteStream(path.join(root, `${n.id}.log`), { flags: 'a' });
    // --cpu-prof is not allowed in NODE_OPTIONS, so a profiled node runs node directly.
    const [cmd, argv] = profile
      ? [process.execPath, ['--cpu-prof', `--cpu-prof-dir=${path.join(root, 'profiles', n.id)}`, path.join(repo, 'packages', 'cli', 'dist', 'main.js'), 'server']]
      : [path.join(repo, 'bin', 'coffer'), ['server']];
    const env = {
      COFFER_NODE_ID: n.id,
      COFFER_DATA_DIR: n.dataDir,
      COFFER_API_ADDR: `127.0.0.1:${n.apiPort}`,
      COFFER_RAFT_ADDR: `127.0.0.1:${n.raftPort}`,
      COFFER_INITIAL_CLUSTER: initial,
      COFFER_CLUSTER_KEY: clusterKey,
      COFFER_LOCAL_MASTER_KEY: masterKey,
      COFFER_BOOTSTRAP_TOKEN: token,
      COFFER_READ_ALLOWLIST: '127.0.0.0/8',
      COFFER_LOG_LEVEL: logLevel,
    };
    // Beside the data dir (a throwaway temp dir, kept only with --keep): with it a kept node can
    // be started again by hand, e.g. to profile its boot (`env $(cat n1.env) node --cpu-prof …`).
    writeFileSync(path.join(root, `${n.id}.env`), Object.entries(env).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });
    const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', ...extraEnv, ...env } });
    n.proc = proc;
    proc.stdout.pipe(log);
    proc.stderr.pipe(log);
    proc.on('exit', (code, signal) => {
      if (!stopping && !n.expectExit) console.error(`node ${n.id} exited (${code ?? signal}); see ${path.join(root, `${n.id}.log`)}`);
    });
  };
  for (const n of nodes) spawnNode(n);
  const stopCluster = async () => {
    stopping = true;
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGTERM')));
  };
  return { nodes, token, spawnNode, stopCluster };
}

/** Signals one node (or etcd member: anything with a `proc`) and resolves when it has exited (SIGKILL after 5 s). */
export function stopNode(n, signal) {
  return new Promise((resolve) => {
    if (n.proc.exitCode !== null || n.proc.signalCode !== null) return resolve();
    const t = setTimeout(() => n.proc.kill('SIGKILL'), 5000);
    n.proc.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    n.proc.kill(signal);
  });
}

/** The node answering 200 on health (the leader). */
export async function findLeader(nodes, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const n of nodes) {
      try {
        const r = await fetch(`${n.api}/v1/sys/health`, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        if (r.status === 200) return n;
      } catch {
        // not up yet
      }
    }
    await sleep(100);
  }
  throw new Error(`no leader within ${timeoutMs / 1000} s`);
}

/** One write; throws unless 200. */
export async function put(node, token, name, value) {
  const r = await fetch(`${node.api}/v1/secrets/${name}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ value }),
  });
  if (r.status !== 200) throw new Error(`PUT ${name} → ${r.status} ${await r.text()}`);
  await r.arrayBuffer();
}
