// `pnpm bench cluster [--duration S] [--connections N]`: a real three-node cluster of `./bin/coffer
// server` processes on loopback, driven with autocannon over HTTP/1.1 keep-alive connections.
// Prints writes/s and linearizable reads/s at 64 connections (p50/p99), the same through a follower,
// stale reads, and the 1-connection write latency. `--vault` drives the Vault KV v2 routes instead. Everything runs on this machine, so the load
// generator competes with the three nodes for the same cores. Never fails on speed; it fails only if
// the cluster cannot start or a phase answers with errors.
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import path from 'node:path';
import { benchOptions } from './lib/options.mjs';
import { cannon } from './lib/measure.mjs';
import { findLeader, put, sleep, startCluster } from './lib/procs.mjs';

const args = benchOptions({
  usage: 'pnpm bench cluster [--duration S] [--connections N] [--keys N] [--value-bytes N] [--max-versions N] [--node-env K=V] [--only PHASES] [--vault] [--keep] [--profile]',
  options: {
    duration: { type: 'number', default: 10, help: 'seconds per phase' },
    connections: { type: 'integer', default: 64, help: 'concurrent HTTP connections' },
    keys: { type: 'integer', default: 1000, help: 'distinct secret names' },
    'value-bytes': { type: 'integer', min: 0, default: 100, help: 'size of each secret value' },
    'max-versions': { type: 'integer', min: 1, help: "versions each secret keeps (set through its metadata before the warm-up; default: the server's, 10)" },
    'node-env': { type: 'string', multiple: true, help: 'KEY=VALUE added to every node\'s environment, e.g. NODE_OPTIONS=--max-semi-space-size=64 (repeatable)' },
    keep: { type: 'boolean', help: "keep the cluster's temp dir (data, logs)" },
    profile: { type: 'boolean', help: 'write a V8 CPU profile per node into the kept temp dir (implies --keep)' },
    only: { type: 'string', help: 'comma-separated subset of phases: writes,reads,fwrites,freads,stale,single,sread' },
    vault: { type: 'boolean', help: 'drive the Vault KV v2 routes (POST/GET /v1/secret/data/…) instead of the native ones' },
  },
});
const DURATION = args.duration;
const CONNECTIONS = args.connections;
const KEYS = args.keys;
const VALUE = 'v'.repeat(args['value-bytes']);
const ONLY = args.only?.split(',');
const VAULT = args.vault;
const NODE_ENV = Object.fromEntries(
  (args['node-env'] ?? []).map((kv) => {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new Error(`--node-env wants KEY=VALUE, got ${JSON.stringify(kv)}`);
    return [kv.slice(0, eq), kv.slice(eq + 1)];
  }),
);

// utime + stime of a process in ms (Linux /proc; clock ticks are 100 Hz here).
function cpuMs(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

// The leader's counters of Raft traffic to its peers (coffer_peer_requests_total, …_messages_total).
async function peerCounters(node) {
  const r = await fetch(`${node.api}/metrics`);
  const text = await r.text();
  const sum = (name) => [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
  return { requests: sum('coffer_peer_requests_total'), messages: sum('coffer_peer_messages_total') };
}

// Latencies at sub-millisecond resolution (lib/measure.mjs takes them from every answer).
const ms = (v) => (v === null ? '–' : v < 10 ? v.toFixed(2) : v.toFixed(1));

function report(label, res) {
  const line =
    `${label.padEnd(44)} ${Math.round(res.rps).toLocaleString('en-US').padStart(8)} req/s` +
    `  p50 ${ms(res.p50).padStart(5)} ms  p99 ${ms(res.p99).padStart(5)} ms` +
    `  (${res.total.toLocaleString('en-US')} requests${res.errors > 0 ? `, ${res.non2xx} non-2xx, ${res.errors - res.non2xx} errors or timeouts` : ''})`;
  console.log(line);
  return { rps: res.rps, p50: res.p50, p99: res.p99, errors: res.errors };
}

function writeRequests(token) {
  let i = 0;
  return [
    {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      setupRequest: (req) => {
        i = (i + 1) % KEYS;
        return VAULT
          ? { ...req, method: 'POST', path: `/v1/secret/data/bench/k${i}`, body: JSON.stringify({ data: { value: VALUE } }) }
          : { ...req, path: `/v1/secrets/bench/k${i}`, body: JSON.stringify({ value: VALUE }) };
      },
    },
  ];
}

function readRequests(token, query = '') {
  let i = 0;
  return [
    {
      method: 'GET',
      headers: { authorization: `Bearer ${token}` },
      setupRequest: (req) => {
        i = (i + 1) % KEYS;
        return { ...req, path: `${VAULT ? '/v1/secret/data' : '/v1/secrets'}/bench/k${i}${query}` };
      },
    },
  ];
}

async function main() {
  const root = mkdtempSync(path.join(tmpdir(), 'coffer-bench-cluster-'));
  const { nodes, token, stopCluster } = await startCluster(root, { profile: args.profile, extraEnv: NODE_ENV });
  let failed = false;
  try {
    const leader = await findLeader(nodes);
    const follower = nodes.find((n) => n !== leader);
    console.log(`cluster bench: 3 nodes on loopback, leader ${leader.id}; ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`);
    console.log(`${CONNECTIONS} connections, ${DURATION} s per phase, ${KEYS} secret names, ${VALUE.length}-byte values${VAULT ? ', Vault KV v2 routes' : ''}\n`);
    // The bootstrap token works once the seed command has been applied.
    for (let i = 0; ; i++) {
      const r = await fetch(`${leader.api}/v1/tokens/self`, { headers: { authorization: `Bearer ${token}` } });
      await r.arrayBuffer();
      if (r.status === 200) break;
      if (i > 150) throw new Error('bootstrap token not accepted within 30 s');
      await sleep(200);
    }
    // Seed every name so reads hit existing secrets.
    for (let i = 0; i < KEYS; i += 64) {
      await Promise.all(Array.from({ length: Math.min(64, KEYS - i) }, (_, j) => put(leader, token, `bench/k${i + j}`, VALUE)));
    }
    // A smaller version limit (Vault's max_versions) shrinks each secret's record: what a write re-encodes.
    if (args['max-versions'] !== undefined) {
      for (let i = 0; i < KEYS; i++) {
        const r = await fetch(`${leader.api}/v1/secret/metadata/bench/k${i}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ max_versions: args['max-versions'] }),
        });
        await r.arrayBuffer();
        if (r.status !== 204 && r.status !== 200) throw new Error(`setting max_versions of bench/k${i} → ${r.status}`);
      }
    }
    // Warm-up: JIT, connection pools, DEK cache.
    await cannon({ url: leader.api, connections: CONNECTIONS, duration: 2, requests: writeRequests(token) });
    await cannon({ url: leader.api, connections: CONNECTIONS, duration: 2, requests: readRequests(token) });

    const results = {};
    const phases = [
      ['writes', `writes (leader, ${CONNECTIONS} conns)`, leader, CONNECTIONS, writeRequests(token)],
      ['reads', `linearizable reads (leader, ${CONNECTIONS} conns)`, leader, CONNECTIONS, readRequests(token)],
      ['fwrites', `writes via a follower (${CONNECTIONS} conns)`, follower, CONNECTIONS, writeRequests(token)],
      ['freads', `linearizable reads (follower, ${CONNECTIONS} conns)`, follower, CONNECTIONS, readRequests(token)],
      ['stale', `stale reads (follower, ${CONNECTIONS} conns)`, follower, CONNECTIONS, readRequests(token, '?consistency=stale')],
      ['single', 'writes (leader, 1 connection)', leader, 1, writeRequests(token)],
      ['sread', 'linearizable reads (leader, 1 connection)', leader, 1, readRequests(token)],
    ];
    for (const [key, label, node, connections, requests] of phases) {
      if (ONLY !== undefined && !ONLY.includes(key)) continue;
      const before = nodes.map((n) => cpuMs(n.proc.pid));
      const peerBefore = await peerCounters(leader);
      const res = await cannon({ url: node.api, connections, duration: DURATION, requests });
      const peerAfter = await peerCounters(leader);
      results[key] = report(label, res);
      // CPU each node spent per request: independent of how busy the machine is otherwise.
      const per = nodes.map((n, i) => ((cpuMs(n.proc.pid) - before[i]) * 1000) / Math.max(1, res.total));
      console.log(`${''.padEnd(44)} cpu/request: ${nodes.map((n, i) => `${n.id}${n === leader ? '(leader)' : ''} ${per[i].toFixed(0)} µs`).join(', ')}; total ${per.reduce((a, b) => a + b, 0).toFixed(0)} µs`);
      const reqs = peerAfter.requests - peerBefore.requests;
      const msgs = peerAfter.messages - peerBefore.messages;
      console.log(`${''.padEnd(44)} leader → peers: ${(reqs / Math.max(1, res.total)).toFixed(2)} batches and ${(msgs / Math.max(1, res.total)).toFixed(2)} Raft messages per client request (${(msgs / Math.max(1, reqs)).toFixed(1)} per batch)`);
    }

    console.log('');
    if (results.writes) console.log(`target writes ≥ 3,000/s: ${Math.round(results.writes.rps).toLocaleString('en-US')}/s`);
    if (results.reads) console.log(`target linearizable reads ≥ 6,000/s: ${Math.round(results.reads.rps).toLocaleString('en-US')}/s`);
    if (results.single) console.log(`1-connection write latency: p50 ${ms(results.single.p50)} ms, p99 ${ms(results.single.p99)} ms`);
    if (results.sread) console.log(`1-connection linearizable read latency: p50 ${ms(results.sread.p50)} ms, p99 ${ms(results.sread.p99)} ms`);
    const errs = Object.entries(results).filter(([, r]) => r.errors > 0);
    if (errs.length > 0) {
      console.error(`phases with errors: ${errs.map(([k]) => k).join(', ')} (see ${root})`);
      failed = true;
    }
  } finally {
    await stopCluster();
    if (!args.keep && !args.profile && !failed) rmSync(root, { recursive: true, force: true });
  }
  if (args.profile) console.log(`profiles: ${path.join(root, 'profiles')}`);
  if (failed) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
