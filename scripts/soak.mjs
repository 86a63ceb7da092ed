#!/usr/bin/env node
// Soak: many randomised fault-injection runs against real node processes, then one summary line.
//   node scripts/soak.mjs [--runs 20] [--seed S] [--duration-ms 40000] [--scenarios a,b]
// Each run draws a scenario and a seed from the master seed; a failing run keeps its history
// (.test-results/jepsen/<scenario>-seed<N>.jsonl, with a .verdict.txt) and its node logs.
// Exit status 1 when any run failed. Builds first (the runs spawn the built ./bin/coffer).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchOptions } from './bench/lib/options.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const values = benchOptions({
  usage: 'pnpm soak [--runs N] [--seed S] [--duration-ms MS] [--scenarios a,b] [--no-build]',
  options: {
    runs: { type: 'integer', default: 20, help: 'fault-injection runs' },
    seed: { type: 'integer', min: Number.MIN_SAFE_INTEGER, default: Date.now() % 1_000_000, help: 'master seed (the default comes from the clock)' },
    'duration-ms': { type: 'integer', min: 5_000, default: 40_000, help: 'length of each run' },
    scenarios: { type: 'string', help: 'comma-separated scenarios to draw from (default: all)' },
    'no-build': { type: 'boolean', help: 'skip `tsc -b`' },
  },
});
if (!values['no-build']) execFileSync(path.join(root, 'node_modules/.bin/tsc'), ['-b'], { cwd: root, stdio: 'inherit' });

const require = createRequire(import.meta.url);
const { runScenario, summaryLine } = require(path.join(root, 'packages/cluster-tests/dist/jepsen/run.js'));
const { prng } = require(path.join(root, 'packages/cluster-tests/dist/prng.js'));
const { processNemesis, PROCESS_FAULTS } = require(path.join(root, 'packages/cluster-tests/dist/jepsen/process-nemesis.js'));
const { NamespaceScenarioCluster, netNemesis } = require(path.join(root, 'packages/cluster-tests/dist/jepsen/net-scenario.js'));
const { cleanupStale } = require(path.join(root, 'packages/cluster-tests/dist/jepsen/netns.js'));

/** Scenario name → nemesis factory. Network scenarios are added next to these. */
const SCENARIOS = {
  'process-all': () => processNemesis(PROCESS_FAULTS),
  'process-kill': () => processNemesis(['kill-leader', 'kill-random', 'kill-all']),
  'process-pause': () => processNemesis(['pause-leader', 'pause-follower', 'pause-majority']),
  'process-membership': () => processNemesis(['member-readd', 'wipe-rejoin', 'kill-leader']),
  // Network faults: nodes in network namespaces, nftables rules (needs root, ip and nft).
  'net-all': () => netNemesis({ kinds: ['isolate-leader', 'split', 'one-way', 'loss'] }),
  'net-partition': () => netNemesis({ kinds: ['isolate-leader', 'split'] }),
  'net-one-way': () => netNemesis({ kinds: ['one-way'] }),
  'net-loss': () => netNemesis({ kinds: ['loss'] }),
};
/** Scenarios whose cluster runs in network namespaces. */
const clusterFor = (name) => (name.startsWith('net-') ? { makeCluster: () => new NamespaceScenarioCluster() } : {});

const runs = values.runs;
const masterSeed = values.seed;
const durationMs = values['duration-ms'];
const names = values.scenarios === undefined ? Object.keys(SCENARIOS) : values.scenarios.split(',');
for (const n of names) if (!(n in SCENARIOS)) throw new Error(`unknown scenario ${n}; known: ${Object.keys(SCENARIOS).join(', ')}`);

if (names.some((n) => n.startsWith('net-'))) cleanupStale(); // namespaces left by a killed run
const rnd = prng(masterSeed);
const results = [];
console.log(`soak: ${runs} runs, master seed ${masterSeed}, ${durationMs} ms each, scenarios ${names.join(', ')}`);
for (let i = 0; i < runs; i++) {
  const name = names[Math.floor(rnd() * names.length)];
  const seed = Math.floor(rnd() * 1_000_000_000);
  const r = await runScenario({ name, seed, durationMs, nemesis: SCENARIOS[name](), ...clusterFor(name) });
  results.push(r);
  const rec = r.faults.map((f) => (f.recoveryMs === undefined ? f.kind : `${f.kind}:${f.recoveryMs === null ? 'never' : Math.round(f.recoveryMs)}ms`)).join(' ');
  console.log(`run ${i + 1}/${runs} ${name} seed ${seed}: ${r.passed ? 'ok' : 'FAILED'}; ${r.ops} ops (${r.stats.ok} ok, ${r.stats.fail} fail, ${r.stats.unknown} unknown), faults: ${rec}`);
  if (!r.passed) console.log(`  history: ${r.historyFile}\n  ${r.failures.join('\n  ')}`);
}
console.log(`soak summary: ${summaryLine(results)}`);
process.exit(results.every((r) => r.passed) ? 0 : 1);
