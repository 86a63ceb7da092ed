// `pnpm bench failover [--rounds N] [--writers N]`: how long writes stop when the leader goes away.
// A real three-node cluster on loopback; writers loop PUTs through the two followers (each retries
// at once on any failure). Each round stops the leader — SIGTERM (graceful: it hands leadership
// over first) or SIGKILL (a crash: the others wait out an election timeout) — and reports the time
// from the signal to the first write acknowledged that was sent after it, and how many writes
// failed meanwhile. The node is restarted between rounds. Prints numbers; never fails on speed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import path from 'node:path';
import { benchOptions } from './lib/options.mjs';
import { findLeader, put, sleep, startCluster, stopNode } from './lib/procs.mjs';

const args = benchOptions({
  usage: 'pnpm bench failover [--rounds N] [--writers N] [--keep]',
  options: {
    rounds: { type: 'integer', default: 5, help: 'leader stops (alternating SIGTERM and SIGKILL)' },
    writers: { type: 'integer', default: 4, help: 'concurrent writers through the followers' },
    keep: { type: 'boolean', help: "keep the cluster's temp dir (data, logs)" },
  },
});
const ROUNDS = args.rounds;
const WRITERS = args.writers;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function round(cluster, signal, tag) {
  const { nodes, token, spawnNode } = cluster;
  const leader = await findLeader(nodes);
  const followers = nodes.filter((n) => n !== leader);
  // Warm: every follower takes writes (a node restarted by the previous round may still be
  // learning the leader's address: 503 no_leader for a moment).
  for (const f of followers) {
    for (let deadline = Date.now() + 15_000; ; await sleep(50)) {
      try {
        await put(f, token, `failover/warm-${f.id}`, 'x');
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
    }
  }
  let signalAt = Infinity;
  let firstAfter = Infinity;
  let failed = 0;
  let stop = false;
  const writer = async (w) => {
    for (let i = 0; !stop; i++) {
      const target = followers[(w + i) % followers.length];
      const sent = performance.now();
      try {
        await put(target, token, `failover/${tag}-w${w}`, `v${i}`);
        if (sent >= signalAt && firstAfter === Infinity) firstAfter = performance.now();
      } catch {
        if (sent >= signalAt) failed++;
        await sleep(5);
      }
    }
  };
  const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
  await sleep(500);
  leader.expectExit = true;
  signalAt = performance.now();
  const exited = stopNode(leader, signal);
  const deadline = Date.now() + 20_000;
  while (firstAfter === Infinity && Date.now() < deadline) await sleep(5);
  stop = true;
  await Promise.all(writers);
  await exited;
  const gapMs = firstAfter === Infinity ? null : Math.round(firstAfter - signalAt);
  // Back to three nodes.
  spawnNode(leader);
  leader.expectExit = false;
  await findLeader(nodes);
  for (let i = 0; i < 50; i++) {
    try {
      await put(leader, token, 'failover/rejoined', `r${i}`);
      break;
    } catch {
      await sleep(200);
    }
  }
  return { gapMs, failed };
}

async function main() {
  const root = mkdtempSync(path.join(tmpdir(), 'coffer-bench-failover-'));
  const cluster = await startCluster(root, { logLevel: 'info' });
  let failedRun = false;
  try {
    await findLeader(cluster.nodes);
    for (let i = 0; i < 50; i++) {
      try {
        await put(cluster.nodes[0], cluster.token, 'failover/ready', 'x');
        break;
      } catch {
        await sleep(200);
      }
    }
    console.log(`failover bench: 3 nodes on loopback, election timeout 1000 ms, ${WRITERS} writers through the followers; ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}\n`);
    for (const signal of ['SIGTERM', 'SIGKILL']) {
      const gaps = [];
      let fails = 0;
      for (let r = 0; r < ROUNDS; r++) {
        const { gapMs, failed } = await round(cluster, signal, `${signal}-${r}`);
        if (gapMs === null) throw new Error(`${signal} round ${r}: no write succeeded within 20 s`);
        gaps.push(gapMs);
        fails += failed;
      }
      console.log(`leader ${signal.padEnd(7)}  writes resume after: median ${String(median(gaps)).padStart(5)} ms, max ${String(Math.max(...gaps)).padStart(5)} ms  (${gaps.join(', ')} ms; ${fails} writes refused meanwhile over ${ROUNDS} rounds)`);
    }
  } catch (err) {
    failedRun = true;
    console.error(String(err?.stack ?? err));
    console.error(`node logs kept in ${root}`);
  } finally {
    await cluster.stopCluster();
    if (!args.keep && !failedRun) rmSync(root, { recursive: true, force: true });
  }
  process.exit(failedRun ? 1 : 0);
}

void main();
