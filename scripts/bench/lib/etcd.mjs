// A real three-member etcd cluster on loopback for scripts/bench/vs-etcd.mjs, driven through etcd's
// HTTP/JSON gateway (grpc-gateway inside each member: `/v3/kv/put`, `/v3/kv/range`, base64 keys and
// values), so both systems are measured through HTTP/1.1 + JSON with the same load generator.
// The returned object has the same shape as the Coffer one in vs-etcd.mjs (see `System` there).
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { freePort, sleep, stopNode } from './procs.mjs';
import { fetchLocal } from './measure.mjs';

export const ETCD_INSTALL = 'apt-get update && apt-get install -y --no-install-recommends etcd-server etcd-client';

/** `etcd --version`'s first line, or undefined when etcd is not on PATH. */
function etcdVersion() {
  const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) return undefined;
  return /etcd Version: (\S+)/.exec(r.stdout)?.[1] ?? r.stdout.split('\n')[0];
}

/**
 * Makes sure etcd is on PATH: installs Debian's package when running as root, otherwise exits 2
 * with the command to run (a benchmark must not half-run against one system).
 * @returns {string} the etcd version
 */
export function ensureEtcd() {
  const have = etcdVersion();
  if (have !== undefined) return have;
  if (process.getuid?.() !== 0) {
    console.error(`etcd is not on PATH. Install it (as root) with:\n  ${ETCD_INSTALL}`);
    process.exit(2);
  }
  console.log(`etcd is not on PATH; installing it: ${ETCD_INSTALL}`);
  const r = spawnSync('sh', ['-c', ETCD_INSTALL], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  const v = r.status === 0 ? etcdVersion() : undefined;
  if (v === undefined) throw new Error(`installing etcd failed (${ETCD_INSTALL})`);
  return v;
}

const b64 = (s) => Buffer.from(s).toString('base64');

/** One JSON-gateway call; resolves to the parsed body, throws on a non-2xx answer. */
async function gateway(m, route, body, timeoutMs = 5000, signal = undefined) {
  const r = await fetchLocal(`${m.url}${route}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, signal: signal ?? AbortSignal.timeout(timeoutMs) });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`etcd ${m.id} ${route} → ${r.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

/**
 * Starts three etcd members under `root` (one data dir each) and waits until they are healthy and
 * agree on a leader. Defaults are kept — fsync on every WAL write, election timeout 1000 ms,
 * heartbeat 100 ms, no auto-compaction — except two settings that change no speed: the log level
 * (warn, as the Coffer nodes run) and the backend quota (8 GiB instead of 2 GiB, so a 1M × 1 KiB
 * load is not refused with "database space exceeded"; etcd keeps every revision until compacted).
 * @param {string} root a fresh directory
 * @param {{ onExit?: (member: object, code: number | null, signal: string | null) => void }} [hooks]
 */
export async function startEtcd(root, hooks = {}) {
  const token = `vs-etcd-${randomBytes(6).toString('hex')}`;
  const members = [];
  for (let i = 1; i <= 3; i++) {
    const clientPort = await freePort();
    const peerPort = await freePort();
    members.push({ id: `m${i}`, clientPort, peerPort, url: `http://127.0.0.1:${clientPort}`, dataDir: path.join(root, `m${i}`) });
  }
  const initial = members.map((m) => `${m.id}=http://127.0.0.1:${m.peerPort}`).join(',');
  let stopping = false;
  const spawnMember = (m) => {
    mkdirSync(m.dataDir, { recursive: true });
    const log = createWriteStream(path.join(root, `${m.id}.log`), { flags: 'a' });
    // On a restart with an existing data dir etcd ignores the --initial-* flags and rejoins from its WAL.
    const argv = [
      '--name', m.id,
      '--data-dir', m.dataDir,
      '--listen-client-urls', m.url,
      '--advertise-client-urls', m.url,
      '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-cluster', initial,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      '--quota-backend-bytes', String(8 * 1024 ** 3),
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      '--log-level', 'warn',
    ];
    // A clean environment: no ETCD_* variable from the caller changes the configuration.
    const proc = spawn('etcd', argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    m.proc = proc;
    m.logFile = path.join(root, `${m.id}.log`);
    proc.stdout.pipe(log);
    proc.stderr.pipe(log);
    proc.on('exit', (code, signal) => {
      if (!stopping && !m.expectExit) hooks.onExit?.(m, code, signal);
    });
  };
  for (const m of members) spawnMember(m);

  /** The member every other member names as leader (status' `leader` equals its own `member_id`). */
  const findLeader = async (timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const m of members) {
        try {
          const s = await gateway(m, '/v3/maintenance/status', {}, 1000);
          if (s.leader !== undefined && s.leader === s.header?.member_id) return m;
        } catch {
          // not up, or no leader yet
        }
      }
      await sleep(100);
    }
    throw new Error(`etcd: no leader within ${timeoutMs / 1000} s`);
  };

  const put = (m, key, value, signal) => gateway(m, '/v3/kv/put', { key: b64(key), value: b64(value) }, 5000, signal);

  const sys = {
    name: 'etcd',
    nodes: members,
    root,
    findLeader,
    put,
    /** A linearizable range on `m` that finds the key (etcd's default: serializable false). */
    async serves(m, key) {
      try {
        const r = await gateway(m, '/v3/kv/range', { key: b64(key) }, 2000);
        return Array.isArray(r.kvs) && r.kvs.length === 1;
      } catch {
        return false;
      }
    },
    kill(m, signal) {
      m.expectExit = true;
      return stopNode(m, signal);
    },
    respawn(m) {
      spawnMember(m);
      m.expectExit = false;
    },
    procs: () => members.map((m) => m.proc),
    async stop() {
      stopping = true;
      await Promise.all(members.map((m) => stopNode(m, 'SIGTERM')));
    },
    /**
     * autocannon request lists. Bodies for the `keys` names are built once, as for Coffer, so the
     * load generator spends the same per request on both systems.
     */
    writeRequests(prefix, keys, value) {
      const v = b64(value);
      const bodies = Array.from({ length: keys }, (_, i) => JSON.stringify({ key: b64(`${prefix}${i}`), value: v }));
      let i = 0;
      return [{ method: 'POST', path: '/v3/kv/put', headers: { 'content-type': 'application/json' }, setupRequest: (req) => ({ ...req, body: bodies[(i = (i + 1) % keys)] }) }];
    },
    /** Writes of distinct names `prefix<start>`, `prefix<start+1>`, … (bulk loads; bodies built per request). */
    uniqueWriteRequests(prefix, start, value) {
      const v = b64(value);
      let i = start;
      return [{ method: 'POST', path: '/v3/kv/put', headers: { 'content-type': 'application/json' }, setupRequest: (req) => ({ ...req, body: JSON.stringify({ key: b64(`${prefix}${i++}`), value: v }) }) }];
    },
    readRequests(prefix, keys, stale) {
      const bodies = Array.from({ length: keys }, (_, i) => JSON.stringify(stale ? { key: b64(`${prefix}${i}`), serializable: true } : { key: b64(`${prefix}${i}`) }));
      let i = 0;
      return [{ method: 'POST', path: '/v3/kv/range', headers: { 'content-type': 'application/json' }, setupRequest: (req) => ({ ...req, body: bodies[(i = (i + 1) % keys)] }) }];
    },
  };

  // Healthy = every member answers a linearizable request (a leader exists and each member reaches it).
  const deadline = Date.now() + 30_000;
  for (const m of members) {
    for (;;) {
      try {
        const r = await fetchLocal(`${m.url}/health`, { signal: AbortSignal.timeout(1000) });
        const body = await r.json();
        if (r.status === 200 && body.health === 'true') break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await sys.stop();
        throw new Error(`etcd member ${m.id} not healthy within 30 s (log: ${m.logFile})`);
      }
      await sleep(100);
    }
  }
  await findLeader();
  return sys;
}
