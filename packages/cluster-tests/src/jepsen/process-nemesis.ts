/**
 * Process faults on a loopback cluster, chosen by a seeded PRNG:
 *   - `kill-leader`, `kill-random`: SIGKILL, then restart on the same data dir;
 *   - `pause-leader`, `pause-follower`: SIGSTOP, then SIGCONT (a paused leader that wakes must not
 *     serve stale reads nor acknowledge writes it cannot commit — the checker sees to that);
 *   - `pause-majority`: SIGSTOP two nodes; requests to the third must fail fast with 503;
 *   - `kill-all`: SIGKILL every node, restart them all; quorum must re-form with all data;
 *   - `member-readd`: remove a node through the API under load (it must never answer 200 on
 *     health afterwards), then wipe it and let it join again;
 *   - `wipe-rejoin`: SIGKILL a node, lose its data dir, remove it, and let it join afresh: it must
 *     catch up by snapshot.
 * After each fault that leaves a majority, a probe measures how long until a write succeeds again.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { sleep, type NodeHandle } from '../harness.js';
import { nowMs } from './history.js';
import { highestTerm, MAX_ELECTION_ROUNDS, probeWrite, recoveryLimit, type FaultRecord, type LoopbackCluster, type Nemesis, type NemesisContext } from './run.js';

/** Every process fault kind. */
export const PROCESS_FAULTS = ['kill-leader', 'kill-random', 'pause-leader', 'pause-follower', 'pause-majority', 'kill-all', 'member-readd', 'wipe-rejoin'] as const;
export type ProcessFault = (typeof PROCESS_FAULTS)[number];

type Ctx = NemesisContext<LoopbackCluster>;

function alive(n: NodeHandle): boolean {
  return n.proc !== undefined && n.proc.exitCode === null && n.proc.signalCode === null;
}

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  const x = xs[Math.floor(rnd() * xs.length)];
  if (x === undefined) throw new Error('pick from an empty list');
  return x;
}

async function leaderOf(c: LoopbackCluster, among?: NodeHandle[]): Promise<NodeHandle> {
  const candidates = (among ?? c.tc.nodes).filter((n) => alive(n) && !c.paused.has(n));
  return c.tc.leader(30_000, candidates);
}

function indexOf(c: LoopbackCluster, n: NodeHandle): number {
  return c.tc.nodes.indexOf(n);
}

function others(c: LoopbackCluster, n: NodeHandle): NodeHandle[] {
  return c.tc.nodes.filter((m) => m !== n);
}

/** The highest term the nodes that are up report (taken just before a fault). */
async function termNow(ctx: Ctx): Promise<number | undefined> {
  const up = ctx.cluster.tc.nodes.filter((n) => alive(n) && !ctx.cluster.paused.has(n));
  return highestTerm(ctx.cluster, up.map((n) => indexOf(ctx.cluster, n)));
}

/**
 * Probes writes through the nodes that are up and records recovery time and its bound: 2 election
 * timeouts, plus 1.5 for each further election round (split votes; see `recoveryLimit`).
 */
async function measureRecovery(ctx: Ctx, rec: FaultRecord, up: NodeHandle[], termBefore: number | undefined): Promise<void> {
  const idx = up.map((n) => indexOf(ctx.cluster, n));
  rec.recoveryMs = await probeWrite(ctx.cluster, idx, rec.startMs, Math.max(recoveryLimit(ctx.cluster.electionMs, MAX_ELECTION_ROUNDS) + 2_000, 10_000));
  const termAfter = rec.recoveryMs === null ? undefined : await highestTerm(ctx.cluster, idx);
  if (termBefore !== undefined && termAfter !== undefined) rec.electionRounds = termAfter - termBefore;
  rec.recoveryLimitMs = recoveryLimit(ctx.cluster.electionMs, rec.electionRounds);
}

async function restart(ctx: Ctx, n: NodeHandle): Promise<void> {
  await ctx.cluster.tc.spawnNode(n);
}

/** Members as the cluster reports them (via any node that answers). */
async function members(ctx: Ctx): Promise<{ id: string; suffrage: string }[] | undefined> {
  for (let i = 0; i < ctx.cluster.tc.nodes.length; i++) {
    const n = ctx.cluster.tc.nodes[i] as NodeHandle;
    if (!alive(n) || ctx.cluster.paused.has(n)) continue;
    try {
      const r = await ctx.cluster.request(i, 'GET', '/v1/cluster', undefined, 2_000);
      const m = (r.body as { members?: { id: string; suffrage: string }[] } | undefined)?.members;
      if (r.status === 200 && Array.isArray(m)) return m;
    } catch {
      // next node
    }
  }
  return undefined;
}

async function removeMember(ctx: Ctx, id: string): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    const leader = await leaderOf(ctx.cluster);
    try {
      const r = await ctx.cluster.request(indexOf(ctx.cluster, leader), 'DELETE', `/v1/cluster/members/${id}`, undefined, 10_000);
      if (r.status === 200 || r.status === 404) return;
    } catch {
      // retry
    }
    if (Date.now() > end) throw new Error(`could not remove ${id}`);
    await sleep(200);
  }
}

/** Raft commit index as the cluster reports it. */
async function commitIndex(ctx: Ctx): Promise<number> {
  for (let i = 0; i < ctx.cluster.tc.nodes.length; i++) {
    const n = ctx.cluster.tc.nodes[i] as NodeHandle;
    if (!alive(n) || ctx.cluster.paused.has(n)) continue;
    try {
      const r = await ctx.cluster.request(i, 'GET', '/v1/cluster', undefined, 2_000);
      const ci = (r.body as { commitIndex?: unknown } | undefined)?.commitIndex;
      if (r.status === 200 && typeof ci === 'number') return ci;
    } catch {
      // next node
    }
  }
  return 0;
}

/**
 * Writes filler until the log is long enough that the leader has compacted past its start
 * (snapshot every 300 entries, 1,000 kept for catching up): a node joining afresh then needs a
 * snapshot.
 */
async function ensureCompactedLog(ctx: Ctx, upTo: number): Promise<void> {
  const up = ctx.cluster.tc.nodes.map((n, i) => (alive(n) && !ctx.cluster.paused.has(n) ? i : -1)).filter((i) => i >= 0);
  const end = Date.now() + 60_000;
  let k = 0;
  while ((await commitIndex(ctx)) < upTo && Date.now() < end) {
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        for (let i = 0; i < 10; i++) {
          try {
            await ctx.cluster.request(up[(w + i) % up.length] as number, 'PUT', `/v1/secrets/probe/fill${w}`, { value: `f${k++}` }, 5_000);
          } catch {
            // filler: outcome does not matter
          }
        }
      }),
    );
  }
}

/** Starts `n` on an empty data dir, joining through another live node, and waits until it is a voter again. */
async function rejoin(ctx: Ctx, n: NodeHandle, rec: FaultRecord, needSnapshot = false): Promise<void> {
  rmSync(n.dataDir, { recursive: true, force: true });
  const via = pick(ctx.rnd, others(ctx.cluster, n).filter((m) => alive(m) && !ctx.cluster.paused.has(m)));
  const logOffset = existsSync(n.logFile) ? statSync(n.logFile).size : 0;
  await ctx.cluster.tc.spawnNode(n, { COFFER_JOIN: via.api });
  const end = Date.now() + 60_000;
  for (;;) {
    const m = await members(ctx);
    if (m?.some((x) => x.id === n.id && x.suffrage === 'voter')) break;
    if (Date.now() > end) {
      (rec.problems ??= []).push(`${n.id} did not become a voter again within 60 s`);
      return;
    }
    await sleep(250);
  }
  const bySnapshot = /restored snapshot/.test(readFileSync(n.logFile, 'utf8').slice(logOffset));
  rec.detail += bySnapshot ? ', caught up by snapshot' : ', caught up by log';
  if (needSnapshot && !bySnapshot) (rec.problems ??= []).push(`${n.id} rejoined on an empty data dir without a snapshot although the log was compacted`);
}

/** Checks that a removed node never answers 200 on health. */
async function removedHealth(n: NodeHandle, rec: FaultRecord): Promise<void> {
  for (const q of ['', '?standbyok=true']) {
    try {
      const r = await fetch(`${n.api}/v1/sys/health${q}`, { signal: AbortSignal.timeout(2_000) });
      await r.arrayBuffer();
      if (r.status === 200) (rec.problems ??= []).push(`removed node ${n.id} answered 200 on /v1/sys/health${q}`);
    } catch {
      // not answering is fine
    }
  }
}

/** Injects one fault and undoes it; returns its record. */
export async function injectProcessFault(ctx: Ctx, kind: ProcessFault): Promise<FaultRecord> {
  const c = ctx.cluster;
  const E = c.electionMs;
  const nodes = c.tc.nodes;
  const holdMs = (): number => 1_000 + Math.floor(ctx.rnd() * 2_000);
  const rec: FaultRecord = { kind, detail: '', startMs: nowMs(), endMs: 0 };
  switch (kind) {
    case 'kill-leader':
    case 'kill-random': {
      const victim = kind === 'kill-leader' ? await leaderOf(c) : pick(ctx.rnd, nodes);
      rec.detail = victim.id;
      const termBefore = await termNow(ctx);
      rec.startMs = nowMs();
      await c.tc.kill(victim);
      await measureRecovery(ctx, rec, others(c, victim), termBefore);
      await sleep(holdMs());
      await restart(ctx, victim);
      break;
    }
    case 'pause-leader':
    case 'pause-follower': {
      const leader = await leaderOf(c);
      const victim = kind === 'pause-leader' ? leader : pick(ctx.rnd, others(c, leader));
      rec.detail = victim.id;
      const termBefore = await termNow(ctx);
      rec.startMs = nowMs();
      victim.proc?.kill('SIGSTOP');
      c.paused.add(victim);
      await measureRecovery(ctx, rec, others(c, victim), termBefore);
      await sleep(holdMs());
      victim.proc?.kill('SIGCONT');
      c.paused.delete(victim);
      break;
    }
    case 'pause-majority': {
      const survivor = pick(ctx.rnd, nodes);
      const victims = others(c, survivor);
      rec.detail = `paused ${victims.map((v) => v.id).join('+')}, ${survivor.id} alone`;
      rec.startMs = nowMs();
      for (const v of victims) {
        v.proc?.kill('SIGSTOP');
        c.paused.add(v);
      }
      // Requests sent at once may wait out the server's own timeouts (proposal 10 s, read 5 s);
      // after 2 × election timeout the survivor knows it has no leader and must answer at once.
      const statuses: number[] = [];
      let maxMs = 0;
      const si = indexOf(c, survivor);
      const one = async (method: string, p: string, body: unknown): Promise<void> => {
        const t = nowMs();
        try {
          const r = await c.request(si, method, p, body, 15_000);
          statuses.push(r.status);
        } catch (err) {
          statuses.push(0);
          (rec.problems ??= []).push(`${method} ${p} to ${survivor.id} without quorum: ${(err as Error).name} after ${Math.round(nowMs() - t)} ms`);
        }
        maxMs = Math.max(maxMs, nowMs() - t);
      };
      await Promise.all([one('PUT', '/v1/secrets/probe/noquorum', { value: 'x' }), one('GET', '/v1/secrets/probe/noquorum', undefined)]);
      const settledAt = rec.startMs + 2 * E;
      const wait = settledAt - nowMs();
      if (wait > 0) await sleep(wait);
      for (let i = 0; i < 3; i++) {
        const t = nowMs();
        const before = statuses.length;
        await one('PUT', '/v1/secrets/probe/noquorum', { value: `y${i}` });
        await one('GET', '/v1/secrets/probe/noquorum', undefined);
        const took = nowMs() - t;
        if (took > 2 * 1_000 && statuses.length > before) (rec.problems ??= []).push(`without quorum, two requests to ${survivor.id} took ${Math.round(took)} ms after the cluster settled (want fast 503s)`);
      }
      rec.noQuorumStatuses = statuses;
      rec.noQuorumMaxMs = Math.round(maxMs);
      if (maxMs > 12_000) (rec.problems ??= []).push(`a request without quorum took ${Math.round(maxMs)} ms (server timeouts are 10 s)`);
      for (const v of victims) {
        v.proc?.kill('SIGCONT');
        c.paused.delete(v);
      }
      break;
    }
    case 'kill-all': {
      rec.detail = 'all nodes';
      rec.startMs = nowMs();
      await Promise.all(nodes.map((n) => c.tc.kill(n)));
      await sleep(500 + Math.floor(ctx.rnd() * 1_000));
      const restartAt = nowMs();
      await Promise.all(nodes.map((n) => restart(ctx, n)));
      // No majority existed while all were down; the bound is from the restart.
      const r = await probeWrite(c, nodes.map((_, i) => i), restartAt, 30_000);
      rec.recoveryLimitMs = 20_000;
      rec.recoveryMs = r;
      break;
    }
    case 'member-readd': {
      const victim = pick(ctx.rnd, nodes);
      rec.detail = victim.id;
      const termBefore = await termNow(ctx);
      rec.startMs = nowMs();
      await removeMember(ctx, victim.id);
      await measureRecovery(ctx, rec, others(c, victim), termBefore);
      // The removed node may not hear of its removal (the leader stops talking to it); it must
      // stop claiming health once it has gone an election timeout without a leader.
      const wait = rec.startMs + 2 * E + 500 - nowMs();
      if (wait > 0) await sleep(wait);
      await removedHealth(victim, rec);
      await c.tc.kill(victim);
      await rejoin(ctx, victim, rec);
      break;
    }
    case 'wipe-rejoin': {
      const victim = pick(ctx.rnd, nodes);
      rec.detail = victim.id;
      const termBefore = await termNow(ctx);
      rec.startMs = nowMs();
      await c.tc.kill(victim);
      rmSync(victim.dataDir, { recursive: true, force: true });
      await measureRecovery(ctx, rec, others(c, victim), termBefore);
      await sleep(holdMs());
      await removeMember(ctx, victim.id);
      await ensureCompactedLog(ctx, 1_500);
      await rejoin(ctx, victim, rec, true);
      break;
    }
  }
  rec.endMs = nowMs();
  ctx.log(`fault ${kind} ${rec.detail}: recovery ${rec.recoveryMs === undefined ? '-' : rec.recoveryMs === null ? 'never' : `${Math.round(rec.recoveryMs)} ms`}${rec.electionRounds === undefined ? '' : `, ${rec.electionRounds} election round(s)`}`);
  return rec;
}

/**
 * A nemesis that injects process faults from `kinds` (random order, seeded) until the deadline,
 * with quiet gaps of 0.5–2 s between them.
 *
 * @param kinds - fault kinds to draw from (default: all)
 * @param opts - `sequence`: inject exactly these faults in order instead (then stop)
 * @returns the nemesis
 */
export function processNemesis(kinds: readonly ProcessFault[] = PROCESS_FAULTS, opts: { sequence?: readonly ProcessFault[] } = {}): Nemesis<LoopbackCluster> {
  return {
    name: `process(${(opts.sequence ?? kinds).join(',')})`,
    async run(ctx: Ctx): Promise<FaultRecord[]> {
      const out: FaultRecord[] = [];
      await sleep(1_000);
      for (let i = 0; ; i++) {
        if (Date.now() >= ctx.deadline) break;
        let kind: ProcessFault;
        if (opts.sequence !== undefined) {
          const k = opts.sequence[i];
          if (k === undefined) break;
          kind = k;
        } else {
          kind = pick(ctx.rnd, kinds);
        }
        out.push(await injectProcessFault(ctx, kind));
        await sleep(500 + Math.floor(ctx.rnd() * 1_500));
      }
      return out;
    },
    async heal(ctx: Ctx): Promise<void> {
      for (const n of ctx.cluster.paused) n.proc?.kill('SIGCONT');
      ctx.cluster.paused.clear();
      for (const n of ctx.cluster.tc.nodes) if (!alive(n)) await ctx.cluster.tc.spawnNode(n);
    },
  };
}
