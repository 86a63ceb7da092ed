// `pnpm bench node-foundation`: throughput of the node's per-request building blocks — audit group
// commit (write + fsync), peer request sign/verify, allowlist and RBAC checks. Prints numbers;
// never fails on speed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AuditLog, verifyAuditFile, PeerVerifier, derivePeerKey, signPeerRequest, Allowlist, compileRole, isAllowed } from '../../packages/node/dist/index.js';
import { benchOptions } from './lib/options.mjs';

benchOptions({ usage: 'pnpm bench node-foundation' });

function rate(label, n, ms, unit = 'ops') {
  console.log(`${label.padEnd(48)} ${Math.round((n / ms) * 1000).toLocaleString('en-US').padStart(12)} ${unit}/s  (${n} in ${ms.toFixed(0)} ms)`);
}

async function auditBench(concurrency, total) {
  const dir = mkdtempSync(path.join(tmpdir(), 'coffer-bench-audit-'));
  try {
    const log = await AuditLog.open({ path: path.join(dir, 'audit.jsonl'), nodeId: 'n1' });
    let next = 0;
    const latencies = [];
    const worker = async () => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        await log.append({ requestId: `r${i}`, actor: 'bench', clientIp: '127.0.0.1', action: 'secret.write', resource: `bench/s${i % 1000}`, outcome: 'ok', status: 200 });
        latencies.push(performance.now() - t0);
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const ms = performance.now() - t0;
    const s = log.stats();
    await log.close();
    latencies.sort((a, b) => a - b);
    const p = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(2);
    rate(`audit append, ${concurrency} concurrent (fsync'd)`, total, ms, 'lines');
    console.log(`${''.padEnd(48)} fsyncs ${s.syncs}, lines/fsync ${(s.lines / s.syncs).toFixed(1)}, p50 ${p(0.5)} ms, p99 ${p(0.99)} ms`);
    const t1 = performance.now();
    const v = await verifyAuditFile(path.join(dir, 'audit.jsonl'));
    rate('audit verify', v.lines, performance.now() - t1, 'lines');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function peerBench(n) {
  const clusterKey = randomBytes(32);
  const key = derivePeerKey(clusterKey);
  const verifier = new PeerVerifier({ clusterKey, nodeId: 'n2', maxNonces: n + 1 });
  const body = randomBytes(4096);
  const reqs = [];
  let t0 = performance.now();
  for (let i = 0; i < n; i++) reqs.push({ method: 'POST', path: '/raft/v1/msgs', headers: signPeerRequest(key, { method: 'POST', path: '/raft/v1/msgs', from: 'n1', to: 'n2', body }), body });
  rate('peer sign (4 KiB body)', n, performance.now() - t0);
  t0 = performance.now();
  let ok = 0;
  for (const r of reqs) if (verifier.verify(r).ok) ok++;
  rate(`peer verify (4 KiB body, ${ok} accepted)`, n, performance.now() - t0);
}

function checksBench(n) {
  const list = Allowlist.from(['10.8.0.0/24', '192.168.0.0/16', 'fd00::/8', '127.0.0.1']);
  let t0 = performance.now();
  let hits = 0;
  for (let i = 0; i < n; i++) if (list.allows(i % 2 ? '::ffff:10.8.0.9' : '172.16.0.1')) hits++;
  rate('allowlist match (4 entries)', n, performance.now() - t0);
  const role = compileRole('bench', { rules: [{ paths: ['payments/*', 'apps/**/db-*'], actions: ['secret.write', 'secret.list'] }] });
  t0 = performance.now();
  for (let i = 0; i < n; i++) if (isAllowed(role, 'secret.write', i % 2 ? 'apps/web/eu/db-main' : 'payments/stripe')) hits++;
  rate('RBAC isAllowed (glob rules)', n, performance.now() - t0);
  return hits;
}

await auditBench(64, 20_000);
await auditBench(1, 2_000);
peerBench(50_000);
checksBench(500_000);
