// `pnpm bench transit [--duration S] [--connections N] [--bytes N] [--type T]`: transit encrypt and decrypt per second through the API of a real 3-node cluster (autocannon)
//
// Three `./bin/coffer server` processes on loopback; one transit key; autocannon drives
// `POST /v1/transit/encrypt/{key}` and `POST /v1/transit/decrypt/{key}` (1 KiB plaintexts by
// default) on the leader and on a follower. Each request runs on the node it reaches, after the
// linearizable read barrier (a ReadIndex round, coalesced across concurrent requests), with no Raft
// write. Everything runs on this machine, so autocannon competes with the three nodes for the same
// cores. Never fails on speed; fails only when the cluster cannot start or a phase answers errors.
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir, cpus, loadavg } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { benchOptions } from './lib/options.mjs';
import { findLeader, sleep, startCluster } from './lib/procs.mjs';

const args = benchOptions({
  usage: 'pnpm bench transit [--duration S] [--connections N] [--bytes N] [--type T] [--keep]',
  options: {
    duration: { type: 'number', default: 5, help: 'seconds per phase' },
    connections: { type: 'integer', default: 64, help: 'concurrent HTTP connections' },
    bytes: { type: 'integer', min: 0, default: 1024, help: 'plaintext size' },
    type: { type: 'string', default: 'xchacha20-poly1305', help: 'key type: xchacha20-poly1305 or aes256-gcm' },
    keep: { type: 'boolean', help: "keep the cluster's temp dir (data, logs)" },
  },
});

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

function cannon(opts) {
  return new Promise((resolve, reject) => {
    autocannon({ ...opts, timeout: 10 }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

function report(label, res) {
  const errors = res.errors + res.timeouts + res.non2xx;
  console.log(
    `${label.padEnd(40)} ${Math.round(res.requests.average).toLocaleString('en-US').padStart(8)} req/s` +
      `  p50 ${String(res.latency.p50).padStart(4)} ms  p99 ${String(res.latency.p99).padStart(4)} ms` +
      `  (${res.requests.total.toLocaleString('en-US')} requests${errors > 0 ? `, ${res.non2xx} non-2xx, ${res.errors} errors, ${res.timeouts} timeouts` : ''})`,
  );
  return { rps: res.requests.average, errors };
}

async function call(node, token, method, p, body) {
  const r = await fetch(`${node.api}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return JSON.parse(text);
}

async function main() {
  const root = mkdtempSync(path.join(tmpdir(), 'coffer-bench-transit-'));
  const { nodes, token, stopCluster } = await startCluster(root);
  let failed = false;
  try {
    const leader = await findLeader(nodes);
    const follower = nodes.find((n) => n !== leader);
    for (let i = 0; ; i++) {
      const r = await fetch(`${leader.api}/v1/tokens/self`, { headers: { authorization: `Bearer ${token}` } });
      await r.arrayBuffer();
      if (r.status === 200) break;
      if (i > 150) throw new Error('bootstrap token not accepted within 30 s');
      await sleep(200);
    }
    console.log(`transit bench: 3 nodes on loopback, leader ${leader.id}; ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`);
    console.log(`${args.connections} connections, ${args.duration} s per phase, ${args.bytes}-byte plaintexts, key type ${args.type}\n`);
    await call(leader, token, 'POST', '/v1/transit/keys/bench', { type: args.type });
    const plaintext = randomBytes(args.bytes).toString('base64');
    const { data } = await call(leader, token, 'POST', '/v1/transit/encrypt/bench', { plaintext });
    const back = await call(follower, token, 'POST', '/v1/transit/decrypt/bench', { ciphertext: data.ciphertext });
    if (back.data.plaintext !== plaintext) throw new Error('round trip through a follower did not return the plaintext');
    const encBody = JSON.stringify({ plaintext });
    const decBody = JSON.stringify({ ciphertext: data.ciphertext });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const enc = [{ method: 'POST', path: '/v1/transit/encrypt/bench', headers, body: encBody }];
    const dec = [{ method: 'POST', path: '/v1/transit/decrypt/bench', headers, body: decBody }];
    // Warm-up: JIT, connection pools, the DEK cache.
    await cannon({ url: leader.api, connections: args.connections, duration: 2, requests: enc });
    await cannon({ url: leader.api, connections: args.connections, duration: 2, requests: dec });

    const results = {};
    for (const [key, label, node, requests] of [
      ['encrypt', `encrypt ${args.bytes} B (leader)`, leader, enc],
      ['decrypt', `decrypt ${args.bytes} B (leader)`, leader, dec],
      ['fencrypt', `encrypt ${args.bytes} B (follower)`, follower, enc],
      ['fdecrypt', `decrypt ${args.bytes} B (follower)`, follower, dec],
    ]) {
      const before = nodes.map((n) => cpuMs(n.proc.pid));
      const res = await cannon({ url: node.api, connections: args.connections, duration: args.duration, requests });
      results[key] = report(label, res);
      const per = nodes.map((n, i) => ((cpuMs(n.proc.pid) - before[i]) * 1000) / Math.max(1, res.requests.total));
      console.log(`${''.padEnd(40)} cpu/request: ${nodes.map((n, i) => `${n.id}${n === leader ? '(leader)' : ''} ${per[i].toFixed(0)} µs`).join(', ')}`);
    }
    const errs = Object.entries(results).filter(([, r]) => r.errors > 0);
    if (errs.length > 0) {
      console.error(`phases with errors: ${errs.map(([k]) => k).join(', ')} (see ${root})`);
      failed = true;
    }
  } finally {
    await stopCluster();
    if (!args.keep && !failed) rmSync(root, { recursive: true, force: true });
  }
  if (failed) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
