// `pnpm bench vs-etcd [--rounds N] [--duration S] [--only PHASES] [--scale 1m] [--write-doc]`: Coffer vs etcd
// Races a three-member etcd cluster and a three-node Coffer cluster on this machine, on loopback,
// with the same load generator (autocannon in this process), connections, names and value sizes,
// and prints one table of both with the ratio Coffer/etcd. Rounds alternate which system goes
// first and start fresh clusters, so drift in the machine's load does not favour one side; the
// table shows medians over rounds. Coffer runs its production configuration (encryption, fsync,
// audit log on, a bearer token on every request); etcd runs its defaults (fsync on). Writes a JSON
// result file; `--write-doc` renders docs/PERFORMANCE.md's results section from it. Prints numbers;
// exits non-zero only when a system fails to start or a phase answers with errors.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { benchOptions } from './lib/options.mjs';
import { ROOT, findLeader, sleep, startCluster, stopNode } from './lib/procs.mjs';
import { ensureEtcd, startEtcd } from './lib/etcd.mjs';
import { cannon, failures, diskUsage, fetchLocal, machineFacts, renderDocSection, renderGoals, renderTable, replaceDocSection, rssBytes, stats, summarize } from './lib/measure.mjs';

const PHASES = ['writes', 'fwrites', 'reads', 'freads', 'stale', 'single', 'failover', 'restart', 'rss', 'disk'];
const args = benchOptions({
  usage: 'pnpm bench vs-etcd [--rounds N] [--duration S] [--only PHASES] [--scale 1m] [--restart-keys N] [--overwrites N] [--out FILE] [--write-doc] [--from-json FILE] [--keep]',
  options: {
    rounds: { type: 'integer', default: 3, help: 'rounds, alternating which system goes first; fresh clusters each round' },
    duration: { type: 'number', default: 10, help: 'seconds per throughput/latency phase' },
    warmup: { type: 'number', default: 2, help: 'seconds of writes, then of reads, before the phases' },
    connections: { type: 'integer', default: 64, help: 'concurrent HTTP connections in the throughput phases' },
    keys: { type: 'integer', default: 1000, help: 'distinct names written and read (and overwritten by the disk phase)' },
    'value-bytes': { type: 'integer', min: 0, default: 100, help: 'value size in the throughput phases and the disk phase' },
    only: { type: 'string', help: `comma-separated subset of phases: ${PHASES.join(',')}` },
    kills: { type: 'integer', default: 3, help: 'leader SIGKILLs per round in the failover phase (median reported)' },
    'restart-keys': { type: 'integer', default: 100_000, help: 'secrets loaded before the restart and RSS phases' },
    'rss-value-bytes': { type: 'integer', min: 0, default: 1024, help: 'value size of those secrets' },
    'load-connections': { type: 'integer', default: 128, help: 'connections of the bulk loads (restart keys, overwrites)' },
    overwrites: { type: 'integer', default: 1_000_000, help: 'writes to the --keys names before the data dirs are measured' },
    scale: { type: 'string', help: '`1m`: 1,000,000 restart/RSS secrets (the scale of the restart and RSS goals)' },
    out: { type: 'string', help: 'JSON result file (default .bench-results/vs-etcd-<timestamp>.json)' },
    'write-doc': { type: 'boolean', help: "regenerate docs/PERFORMANCE.md's results section from the JSON (a --scale 1m run: its 1M section)" },
    'from-json': { type: 'string', help: 'run nothing: print the table of an existing result file (with --write-doc, render the doc from it)' },
    doc: { type: 'string', default: 'docs/PERFORMANCE.md', help: 'the doc --write-doc rewrites (between its vs-etcd markers)' },
    keep: { type: 'boolean', help: "keep the clusters' temp dirs (data, logs)" },
    'coffer-repo': { type: 'string', help: 'run Coffer from the build of this checkout, e.g. a clean clone of HEAD while this tree has uncommitted work (default this repository)' },
  },
});

function usageError(msg) {
  console.error(`${msg}\n(see --help)`);
  process.exit(2);
}
if (args.scale !== undefined && args.scale !== '1m') usageError(`--scale takes only 1m, got ${JSON.stringify(args.scale)}`);
const ONLY = args.only === undefined ? PHASES : args.only.split(',').map((s) => s.trim()).filter((s) => s !== '');
for (const p of ONLY) if (!PHASES.includes(p)) usageError(`--only: unknown phase ${JSON.stringify(p)} (phases: ${PHASES.join(',')})`);
const has = (...ps) => ps.some((p) => ONLY.includes(p));
const C = args.connections;
const KEYS = args.keys;
const RESTART_KEYS = args.scale === '1m' ? 1_000_000 : args['restart-keys'];
// Random printable values: neither system's storage gets a compressible value for free.
const randomValue = (n) => randomBytes(Math.ceil((n * 3) / 4) + 3).toString('base64url').slice(0, n);
const VALUE = randomValue(args['value-bytes']);
const BIG_VALUE = randomValue(args['rss-value-bytes']);
const MIB = 1024 * 1024;
const COFFER_REPO = path.resolve(args['coffer-repo'] ?? ROOT);
if (args['from-json'] === undefined && !existsSync(path.join(COFFER_REPO, 'packages', 'cli', 'dist', 'main.js'))) {
  usageError(`${COFFER_REPO} has no build: run \`pnpm install --offline && ./node_modules/.bin/tsc -b\` there first`);
}

// ---- Coffer, with the same shape as lib/etcd.mjs's system ------------------------------------

async function startCoffer(root, hooks) {
  const c = await startCluster(root, { repo: COFFER_REPO });
  // startCluster reports unexpected exits itself; the hook only records them.
  const watch = (n) => n.proc.on('exit', (code, sig) => !n.expectExit && hooks.onExit?.(n, code, sig));
  const nodes = c.nodes;
  for (const n of nodes) n.url = n.api;
  const sys = {
    name: 'Coffer',
    nodes,
    root,
    token: c.token,
    findLeader: () => findLeader(nodes),
    async put(n, name, value, signal) {
      const r = await fetchLocal(`${n.url}/v1/secrets/${name}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ value }),
        signal: signal ?? AbortSignal.timeout(5000),
      });
      const text = await r.text();
      if (r.status !== 200) throw new Error(`Coffer ${n.id} PUT ${name} → ${r.status} ${text.slice(0, 200)}`);
    },
    /** Ready (health 200, `standbyok` so a follower counts) and then a linearizable read 200. */
    async serves(n, name) {
      try {
        const h = await fetchLocal(`${n.url}/v1/sys/health?standbyok=true`, { signal: AbortSignal.timeout(2000) });
        await h.arrayBuffer();
        if (h.status !== 200) return false;
        const r = await fetchLocal(`${n.url}/v1/secrets/${name}`, { headers: { authorization: `Bearer ${c.token}` }, signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
        return r.status === 200;
      } catch {
        return false;
      }
    },
    kill(n, signal) {
      n.expectExit = true;
      return stopNode(n, signal);
    },
    respawn(n) {
      c.spawnNode(n);
      n.url = n.api;
      n.expectExit = false;
      watch(n);
    },
    procs: () => nodes.map((n) => n.proc),
    stop: () => c.stopCluster(),
    writeRequests(prefix, keys, value) {
      const body = JSON.stringify({ value });
      const paths = Array.from({ length: keys }, (_, i) => `/v1/secrets/${prefix}${i}`);
      let i = 0;
      return [{ method: 'PUT', body, headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json' }, setupRequest: (req) => ({ ...req, path: paths[(i = (i + 1) % keys)] }) }];
    },
    uniqueWriteRequests(prefix, start, value) {
      const body = JSON.stringify({ value });
      let i = start;
      return [{ method: 'PUT', body, headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json' }, setupRequest: (req) => ({ ...req, path: `/v1/secrets/${prefix}${i++}` }) }];
    },
    readRequests(prefix, keys, stale) {
      const paths = Array.from({ length: keys }, (_, i) => `/v1/secrets/${prefix}${i}${stale ? '?consistency=stale' : ''}`);
      let i = 0;
      return [{ method: 'GET', headers: { authorization: `Bearer ${c.token}` }, setupRequest: (req) => ({ ...req, path: paths[(i = (i + 1) % keys)] }) }];
    },
  };
  try {
    const leader = await sys.findLeader();
    // The bootstrap token works once the seed command has been applied (as in cluster.mjs).
    await waitFor(async () => {
      const r = await fetchLocal(`${leader.url}/v1/tokens/self`, { headers: { authorization: `Bearer ${c.token}` } });
      await r.arrayBuffer();
      return r.status === 200;
    }, 30_000, 'Coffer: bootstrap token not accepted');
  } catch (err) {
    await sys.stop();
    throw err;
  }
  for (const n of nodes) watch(n);
  return sys;
}

// ---- running ---------------------------------------------------------------------------------

async function waitFor(check, timeoutMs, what, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs / 1000} s`);
    await sleep(intervalMs);
  }
}

const live = new Set(); // started systems, for cleanup on error and signals
let tmpRoot;
const log = (s) => console.log(s);
const fmt = (v) => Math.round(v).toLocaleString('en-US');
const ms = (v) => (v === null ? '–' : v < 10 ? v.toFixed(2) : v.toFixed(1));

/** Starts one system in its own dir under the run's temp dir, runs `fn`, always stops it. */
async function withCluster(kind, label, fn) {
  const dir = path.join(tmpRoot, `${kind}-${label}`);
  mkdirSync(dir, { recursive: true });
  const unexpected = [];
  const hooks = { onExit: (n, code, sig) => unexpected.push(`${n.id} exited (${code ?? sig})`) };
  let sys;
  try {
    sys = kind === 'etcd' ? await startEtcd(dir, hooks) : await startCoffer(dir, hooks);
  } catch (err) {
    const e = new Error(`${kind} failed to start: ${err instanceof Error ? err.message : String(err)} (logs in ${dir}${args.keep ? '' : '; rerun with --keep to keep them'})`);
    e.startFailure = true;
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  live.add(sys);
  try {
    await fn(sys);
    if (unexpected.length > 0) throw new Error(`${kind}: ${unexpected.join(', ')}`);
  } finally {
    await sys.stop();
    live.delete(sys);
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs a phase, recording its result, its seconds, and any error (the run goes on to the next). */
async function phase(out, key, fn) {
  const t0 = performance.now();
  try {
    out.phases[key] = await fn();
    const r = out.phases[key];
    if (r?.errors > 0) out.errors.push(`${out.system} ${key}: ${r.errors.toLocaleString('en-US')} of ${(r.total ?? r.ok + r.errors).toLocaleString('en-US')} requests failed${r.codes ? failures(r) : ''}`);
  } catch (err) {
    out.phases[key] = { error: err instanceof Error ? err.message : String(err) };
    out.errors.push(`${out.system} ${key}: ${out.phases[key].error}`);
    console.error(`  ${out.system} ${key}: ${out.phases[key].error}`);
  }
  out.seconds[key] = Math.round((performance.now() - t0) / 100) / 10;
}

function line(sys, label, r) {
  log(`  ${sys.name.padEnd(6)} ${label.padEnd(38)} ${fmt(r.rps).padStart(7)}/s  p50 ${ms(r.p50).padStart(6)} ms  p99 ${ms(r.p99).padStart(6)} ms  (${r.ok.toLocaleString('en-US')} ok)${failures(r)}`);
}

/** Throughput and latency phases and failover, on one cluster. */
async function mainPhases(sys, out) {
  const leader = await sys.findLeader();
  const follower = sys.nodes.find((n) => n !== leader);
  for (let i = 0; i < KEYS; i += 64) {
    await Promise.all(Array.from({ length: Math.min(64, KEYS - i) }, (_, j) => sys.put(leader, `bench/k${i + j}`, VALUE)));
  }
  // Warm-up: JIT, connection pools, caches — the same for both systems.
  await cannon({ url: leader.url, connections: C, duration: args.warmup, requests: sys.writeRequests('bench/k', KEYS, VALUE) });
  await cannon({ url: leader.url, connections: C, duration: args.warmup, requests: sys.readRequests('bench/k', KEYS, false) });
  const runs = [
    ['writes', 'writes', `writes, leader (${C} conns)`, leader, C, () => sys.writeRequests('bench/k', KEYS, VALUE)],
    ['fwrites', 'fwrites', `writes via a follower (${C} conns)`, follower, C, () => sys.writeRequests('bench/k', KEYS, VALUE)],
    ['reads', 'reads', `linearizable reads, leader (${C} conns)`, leader, C, () => sys.readRequests('bench/k', KEYS, false)],
    ['freads', 'freads', `linearizable reads, follower (${C} conns)`, follower, C, () => sys.readRequests('bench/k', KEYS, false)],
    ['stale', 'stale', `stale reads, follower (${C} conns)`, follower, C, () => sys.readRequests('bench/k', KEYS, true)],
    ['single', 'single', 'writes, leader (1 connection)', leader, 1, () => sys.writeRequests('bench/k', KEYS, VALUE)],
    ['single', 'singleReads', 'linearizable reads, leader (1 conn)', leader, 1, () => sys.readRequests('bench/k', KEYS, false)],
  ];
  for (const [sel, key, label, node, connections, requests] of runs) {
    if (!has(sel)) continue;
    await phase(out, key, async () => {
      const r = await cannon({ url: node.url, connections, duration: args.duration, requests: requests() });
      line(sys, label, r);
      // A leader change under load would make "leader"/"follower" wrong for this phase: say so.
      const now = await sys.findLeader();
      if (now !== leader) console.error(`  ${sys.name}: the leader changed during ${key} (${leader.id} → ${now.id})`);
      return { ...r, node: node.id, leaderChanged: now !== leader };
    });
  }
  if (has('failover')) await phase(out, 'failover', () => failover(sys));
}

/**
 * SIGKILL the leader while a light, open-loop load (100 writes/s, alternating between the other
 * two) runs, and time from the kill to the acknowledgement of the first write sent after it. Open
 * loop because a write that reached the dead leader hangs until a timeout (etcd: ~7 s) and a
 * closed-loop writer stuck on it would measure that timeout, not the election.
 */
async function failover(sys) {
  const gaps = [];
  let refused = 0;
  for (let k = 0; k < args.kills; k++) {
    const leader = await sys.findLeader();
    const others = sys.nodes.filter((n) => n !== leader);
    const ctl = new AbortController();
    let seq = 0;
    let inFlight = 0;
    let killAt = Infinity;
    let firstAck = null;
    const timer = setInterval(() => {
      if (inFlight >= 256) return;
      const s = seq++;
      const sent = performance.now();
      inFlight++;
      sys.put(others[s % 2], `failover/p${s % 100}`, `v${s}`, AbortSignal.any([ctl.signal, AbortSignal.timeout(10_000)])).then(
        () => {
          if (sent >= killAt && firstAck === null) firstAck = performance.now();
        },
        () => {
          if (sent >= killAt) refused++;
        },
      ).finally(() => inFlight--);
    }, 10);
    try {
      await sleep(1000);
      killAt = performance.now();
      const dead = sys.kill(leader, 'SIGKILL');
      const deadline = Date.now() + 20_000;
      while (firstAck === null && Date.now() < deadline) await sleep(2);
      await dead;
    } finally {
      clearInterval(timer);
      ctl.abort();
    }
    sys.respawn(leader);
    await waitFor(() => sys.serves(leader, 'bench/k1'), 60_000, `${sys.name}: ${leader.id} not serving again after a restart`);
    if (firstAck === null) throw new Error(`no write acknowledged within 20 s of killing the leader ${leader.id}`);
    gaps.push(firstAck - killAt);
  }
  const medianMs = stats(gaps).median;
  log(`  ${sys.name.padEnd(6)} ${'failover (SIGKILL leader)'.padEnd(38)} next acked write after median ${fmt(medianMs)} ms (${gaps.map(fmt).join(', ')} ms; ${refused} writes refused meanwhile)`);
  return { medianMs, gapsMs: gaps, refused };
}

/** `total` writes from fresh request lists, in tenths with a progress line after each. */
async function bulk(sys, node, label, total, requestsFor) {
  let done = 0;
  let ok = 0;
  let errors = 0;
  let non2xx = 0;
  let timeouts = 0;
  const codes = {};
  const t0 = performance.now();
  for (let c = 1; c <= 10; c++) {
    const n = Math.floor((total * c) / 10) - done;
    if (n === 0) continue;
    const r = await cannon({ url: node.url, connections: Math.min(args['load-connections'], n), amount: n, requests: requestsFor(done) });
    done += n;
    ok += r.ok;
    errors += r.errors;
    non2xx += r.non2xx;
    timeouts += r.timeouts;
    for (const [code, k] of Object.entries(r.codes)) codes[code] = (codes[code] ?? 0) + k;
    log(`  ${sys.name.padEnd(6)} ${label}: ${c * 10} % (${done.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}), ${fmt(r.rps)}/s, p99 ${ms(r.p99)} ms${failures(r)}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  // A leader that steps down under the load fails the writes in flight (503s): say when it did.
  const now = await sys.findLeader();
  if (now !== node) console.error(`  ${sys.name}: the leader changed during the ${label} (${node.id} → ${now.id})`);
  return { total, ok, errors, non2xx, timeouts, codes, seconds, rps: ok / seconds, leaderChanged: now !== node };
}

/** Loads the restart keys, measures RSS, then times a follower's restart until it serves. */
async function restartPhases(sys, out) {
  const leader = await sys.findLeader();
  let loaded = null;
  await phase(out, 'load', async () => {
    loaded = await bulk(sys, leader, `load ${(args['rss-value-bytes'] / 1024).toFixed(1)} KiB secrets`, RESTART_KEYS, (start) => sys.uniqueWriteRequests('load/k', start, BIG_VALUE));
    return loaded;
  });
  if (loaded === null) return;
  // Written last, so a member that serves it has caught up with the whole load.
  await sys.put(leader, 'restart/probe', 'x');
  await sleep(3000); // let followers apply and the runtimes settle before RSS is read
  if (has('rss')) {
    await phase(out, 'rss', async () => {
      const perNode = sys.nodes.map((n) => rssBytes(n.proc.pid));
      log(`  ${sys.name.padEnd(6)} ${'RSS after the load'.padEnd(38)} ${perNode.map((b, i) => `${sys.nodes[i].id} ${(b / MIB).toFixed(0)} MiB`).join(', ')}`);
      return { perNodeBytes: perNode, maxBytes: Math.max(...perNode), keys: loaded.ok };
    });
  }
  if (has('restart')) {
    await phase(out, 'restart', async () => {
      const now = await sys.findLeader();
      const f = sys.nodes.find((n) => n !== now);
      await sys.kill(f, 'SIGTERM');
      const t0 = performance.now();
      sys.respawn(f);
      await waitFor(() => sys.serves(f, 'restart/probe'), 300_000, `${sys.name}: restarted ${f.id} not serving`, 20);
      const restartMs = performance.now() - t0;
      log(`  ${sys.name.padEnd(6)} ${'restart-to-serving (follower)'.padEnd(38)} ${fmt(restartMs)} ms with ${loaded.ok.toLocaleString('en-US')} secrets`);
      return { ms: restartMs, node: f.id, keys: loaded.ok };
    });
  }
}

/** Overwrites the --keys names --overwrites times, then sizes each member's data dir. */
async function diskPhase(sys, out) {
  const leader = await sys.findLeader();
  await phase(out, 'disk', async () => {
    const w = await bulk(sys, leader, `overwrites of ${KEYS.toLocaleString('en-US')} names`, args.overwrites, () => sys.writeRequests('disk/k', KEYS, VALUE));
    await sleep(2000);
    const du = sys.nodes.map((n) => diskUsage(n.dataDir));
    const auditBytes = sys.name === 'Coffer' ? sys.nodes.map((n) => fileSize(path.join(n.dataDir, 'audit.jsonl'))) : undefined;
    const sumBytes = du.reduce((a, d) => a + d.allocated, 0);
    log(`  ${sys.name.padEnd(6)} ${'data dirs after the overwrites (du)'.padEnd(38)} ${du.map((d, i) => `${sys.nodes[i].id} ${(d.allocated / MIB).toFixed(1)} MiB`).join(', ')}; sum ${(sumBytes / MIB).toFixed(1)} MiB`);
    return { ...w, perNodeBytes: du.map((d) => d.allocated), apparentBytes: du.map((d) => d.apparent), sumBytes, auditBytes };
  });
}

function fileSize(p) {
  try {
    return statSync(p).size;
  } catch {
    return null;
  }
}

async function runSystem(kind, round) {
  const out = { system: kind === 'etcd' ? 'etcd' : 'Coffer', phases: {}, errors: [], seconds: {} };
  log(`round ${round}: ${out.system}`);
  const groups = [
    ['main', has('writes', 'fwrites', 'reads', 'freads', 'stale', 'single', 'failover'), mainPhases],
    ['restart', has('restart', 'rss'), restartPhases],
    ['disk', has('disk'), diskPhase],
  ];
  for (const [label, wanted, fn] of groups) {
    if (!wanted) continue;
    try {
      await withCluster(kind, `r${round}-${label}`, (sys) => fn(sys, out));
    } catch (err) {
      // A system that does not start ends the run; a cluster that breaks later fails its group only.
      if (err.startFailure) throw err;
      out.errors.push(`${out.system} ${label}: ${err.message}`);
      console.error(`  ${out.system} ${label}: ${err.message}`);
    }
  }
  return out;
}

// ---- output ----------------------------------------------------------------------------------

function writeDoc(result, jsonFile) {
  const docPath = path.resolve(ROOT, args.doc);
  const rel = path.relative(ROOT, path.resolve(jsonFile));
  // A --scale 1m run has its own section (the 1M goals), so it does not replace the main run's.
  const section = result.options.scale === '1m' ? 'vs-etcd-1m' : 'vs-etcd';
  writeFileSync(docPath, replaceDocSection(readFileSync(docPath, 'utf8'), renderDocSection(result, rel), section));
  log(`\n${path.relative(ROOT, docPath)}: ${section} results section regenerated from ${rel}`);
}

function printSummary(result) {
  log(`\n${renderTable(result.summary)}\n\n${result.summary.notes.map((n) => `- ${n}`).join('\n')}\n\nGoals (Coffer):\n${renderGoals(result.summary)}`);
}

// ---- main --------------------------------------------------------------------------------------

async function cleanupAll() {
  await Promise.all([...live].map((s) => s.stop().catch(() => undefined)));
  live.clear();
  if (tmpRoot !== undefined && !args.keep) rmSync(tmpRoot, { recursive: true, force: true });
}

async function main() {
  if (args['from-json'] !== undefined) {
    const result = JSON.parse(readFileSync(args['from-json'], 'utf8'));
    printSummary(result);
    if (args['write-doc']) writeDoc(result, args['from-json']);
    return 0;
  }
  const t0 = Date.now();
  const etcdVersion = ensureEtcd();
  tmpRoot = mkdtempSync(path.join(tmpdir(), 'coffer-vs-etcd-'));
  const out = path.resolve(ROOT, args.out ?? path.join('.bench-results', `vs-etcd-${new Date(t0).toISOString().replace(/[:.]/g, '-')}.json`));
  mkdirSync(path.dirname(out), { recursive: true });
  const result = {
    benchmark: 'vs-etcd',
    version: 1,
    startedAt: new Date(t0).toISOString(),
    command: `pnpm bench vs-etcd ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { ...machineFacts(COFFER_REPO, tmpRoot), cofferRepo: COFFER_REPO, etcdVersion },
    options: { ...args, restartKeys: RESTART_KEYS, phases: ONLY },
    rounds: [],
  };
  log(`vs-etcd: etcd ${etcdVersion} vs Coffer ${result.machine.gitCommit.slice(0, 12)}, 3 members each on loopback; ${result.machine.cores} cores, load ${loadavg()[0].toFixed(2)}; data in ${tmpRoot} (${result.machine.dataFs})`);
  if (result.machine.gitDirty) {
    console.error(`NB: Coffer runs from ${COFFER_REPO}, whose build includes uncommitted changes (${result.machine.gitDirtyFiles.join(', ')}); --coffer-repo takes a clean checkout`);
  }
  log(`${args.rounds} round(s); phases ${ONLY.join(',')}; ${C} conns, ${KEYS} names, ${VALUE.length}-byte values, ${args.duration} s per phase; results → ${path.relative(ROOT, out)}\n`);
  let failed = false;
  try {
    for (let r = 1; r <= args.rounds; r++) {
      const round = { round: r };
      // Alternate which system goes first, so a trend in the machine's load hits both alike.
      const order = r % 2 === 1 ? ['etcd', 'coffer'] : ['coffer', 'etcd'];
      round.order = order;
      for (const kind of order) {
        round[kind] = await runSystem(kind, r);
        if (round[kind].errors.length > 0) failed = true;
      }
      result.rounds.push(round);
      // Saved after every round: a long run that dies later keeps what it measured.
      writeFileSync(out, `${JSON.stringify({ ...result, summary: summarize(result.rounds, result.options) }, null, 2)}\n`);
    }
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    await cleanupAll();
    return 1;
  }
  await cleanupAll();
  result.machine.loadAfter = loadavg();
  result.elapsedSeconds = Math.round((Date.now() - t0) / 1000);
  result.summary = summarize(result.rounds, result.options);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  printSummary(result);
  log(`\n${Math.round(result.elapsedSeconds / 60)} min (${result.elapsedSeconds} s); results: ${path.relative(ROOT, out)}`);
  if (args['write-doc']) writeDoc(result, out);
  const errors = result.rounds.flatMap((r) => [...r.etcd.errors, ...r.coffer.errors]);
  if (failed) console.error(`\nphases with errors:\n  ${errors.join('\n  ')}`);
  return failed ? 1 : 0;
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: stopping the clusters`);
    void cleanupAll().finally(() => process.exit(130));
  });
}
// Last resort (an exit from anywhere): no member outlives the benchmark.
process.on('exit', () => {
  for (const s of live) for (const p of s.procs()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

main().then(
  (code) => process.exit(code),
  async (err) => {
    console.error(err);
    await cleanupAll();
    process.exit(1);
  },
);
