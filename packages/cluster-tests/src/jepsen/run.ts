/**
 * One fault-injection run: start a cluster, run the workload while a seeded nemesis injects
 * faults, heal, then check everything that must hold:
 *   - the history (with a final linearizable read of every name appended) is linearizable;
 *   - no acknowledged write is missing: the final read of every name on every node reflects the
 *     last acknowledged write unless a later (or concurrent) write or delete may have replaced it;
 *   - every node converges to the same state digest (stale reads of every name on every node);
 *   - availability: after each fault with a majority still up, a write succeeds again within
 *     1.5 × election timeout per election round the terms show (a split vote takes another) plus
 *     a second for the election itself, and within 4 rounds; with no majority, requests fail fast
 *     with 503.
 *
 * The cluster is pluggable ({@link ScenarioCluster}): {@link LoopbackCluster} runs real node
 * processes on 127.0.0.1; the network-namespace cluster implements the same interface.
 */
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, TestCluster, sleep, type ClusterOptions, type NodeHandle } from '../harness.js';
import { checkHistory, describeVerdict, type Verdict } from './checker.js';
import { nowMs, saveHistory, type Op } from './history.js';
import { prng } from '../prng.js';
import { finalRead, perform, runWorkload, statsOf, type NodeFinalState, type WorkloadOptions, type WorkloadStats } from './workload.js';

/** Default secret names the workload uses. */
export const WORKLOAD_KEYS: readonly string[] = ['jepsen/a', 'jepsen/b', 'jepsen/c', 'jepsen/d', 'jepsen/e'];

/** What a scenario needs from a cluster. */
export interface ScenarioCluster {
  /** API base URLs, one per node, stable across restarts. */
  readonly endpoints: string[];
  readonly token: string;
  /** Configured Raft election timeout (ms). */
  readonly electionMs: number;
  start(): Promise<void>;
  /** Stops everything; keeps logs and data when `keep`. */
  stop(keep: boolean): Promise<void>;
  /** Runs the client workload against the cluster (in-process, or inside a namespace). */
  workload(opts: Omit<WorkloadOptions, 'endpoints' | 'token'>): Promise<Op[]>;
  /** Stale reads of `keys` on every node. */
  finalRead(keys: readonly string[]): Promise<NodeFinalState[]>;
  /** One request to one node (index into `endpoints`), with a deadline. */
  request(node: number, method: string, p: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: unknown }>;
  /**
   * Performs a read op (as `perform` does) from where the cluster is reachable; needed when the
   * test process must not send to the endpoints itself (network namespaces).
   */
  performRead?(o: Op, node: number, timeoutMs: number): Promise<void>;
  /** Where logs live (printed when a run fails). */
  readonly logDir: string;
}

/** One injected fault. */
export interface FaultRecord {
  kind: string;
  /** Which nodes, and anything else worth knowing. */
  detail: string;
  startMs: number;
  endMs: number;
  /**
   * With a majority up: ms from the fault starting to the first successful write (`null` = none
   * within the probe's budget). Omitted when the fault leaves no majority.
   */
  recoveryMs?: number | null;
  /**
   * Bound for `recoveryMs`: 1.5 × election timeout per election round the terms show, plus a
   * second for the election itself (see `recoveryLimit`), or for a full restart a looser one.
   */
  recoveryLimitMs?: number;
  /** Raft terms that passed between the fault and the first successful write (election rounds). */
  electionRounds?: number;
  /** No-majority faults: the slowest answer (ms) to a request sent while no quorum existed. */
  noQuorumMaxMs?: number;
  /** No-majority faults: statuses seen (all must be 503). */
  noQuorumStatuses?: number[];
  /** Problems the nemesis saw while injecting (e.g. a removed node answering 200 on health). */
  problems?: string[];
}

/** What a nemesis gets. */
export interface NemesisContext<C extends ScenarioCluster> {
  cluster: C;
  rnd: () => number;
  /** Stop injecting new faults after this time (Date.now() ms). */
  deadline: number;
  log(msg: string): void;
}

/** A source of faults. `run` injects faults until the deadline; `heal` undoes whatever is left. */
export interface Nemesis<C extends ScenarioCluster> {
  name: string;
  run(ctx: NemesisContext<C>): Promise<FaultRecord[]>;
  heal(ctx: NemesisContext<C>): Promise<void>;
}

export interface ScenarioOptions<C extends ScenarioCluster> {
  name: string;
  seed: number;
  /** Length of the workload (the nemesis stops injecting a little before its end). */
  durationMs: number;
  nemesis: Nemesis<C>;
  /** The cluster to run on (default: a three-node {@link LoopbackCluster}). */
  makeCluster?: () => C;
  workers?: number;
  keys?: readonly string[];
  requestTimeoutMs?: number;
  /** Where histories of failing runs go (default `<repo>/.test-results/jepsen`). */
  outDir?: string;
  /** Keep the history file of a passing run too. */
  keepHistory?: boolean;
  log?: (msg: string) => void;
}

export interface ScenarioResult {
  name: string;
  seed: number;
  ops: number;
  stats: WorkloadStats;
  faults: FaultRecord[];
  /** Names with a linearizability violation (see `verdict`). */
  violations: number;
  verdict: Verdict;
  /** Acknowledged writes that the final state does not reflect and nothing could have replaced. */
  missingAcked: { key: string; opId: number; value: string }[];
  digestsEqual: boolean;
  finalStates: NodeFinalState[];
  /** Availability and no-quorum problems, one sentence each (empty = fine). */
  availabilityProblems: string[];
  /** Saved history (always for a failing run). */
  historyFile: string | null;
  /** True when everything held. */
  passed: boolean;
  /** Human-readable account of what failed. */
  failures: string[];
  elapsedMs: number;
}

/** A three-node loopback cluster of real `./bin/coffer server` processes. */
export class LoopbackCluster implements ScenarioCluster {
  readonly tc: TestCluster;
  readonly electionMs: number;
  /** Nodes currently SIGSTOPped (so that `stop` can SIGCONT them first). */
  readonly paused: Set<NodeHandle> = new Set();

  /** @param opts - harness options; `electionMs` sets COFFER_ELECTION_MS */
  constructor(opts: ClusterOptions & { electionMs?: number } = {}) {
    this.electionMs = opts.electionMs ?? 1000;
    this.tc = new TestCluster({ snapshotEntries: opts.snapshotEntries ?? 300, ...opts, env: { COFFER_ELECTION_MS: String(this.electionMs), COFFER_LOG_LEVEL: 'info', ...opts.env } });
  }

  get endpoints(): string[] {
    return this.tc.nodes.map((n) => n.api);
  }

  get token(): string {
    return this.tc.bootstrapToken;
  }

  get logDir(): string {
    return this.tc.root;
  }

  async start(): Promise<void> {
    await this.tc.start();
  }

  async stop(keep: boolean): Promise<void> {
    for (const n of this.paused) n.proc?.kill('SIGCONT');
    this.paused.clear();
    await this.tc.stop(keep);
  }

  workload(opts: Omit<WorkloadOptions, 'endpoints' | 'token'>): Promise<Op[]> {
    return runWorkload({ ...opts, endpoints: this.endpoints, token: this.token });
  }

  finalRead(keys: readonly string[]): Promise<NodeFinalState[]> {
    return Promise.all(this.endpoints.map((e) => finalRead(e, this.token, keys, 5_000)));
  }

  async request(node: number, method: string, p: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: unknown }> {
    const n = this.tc.nodes[node];
    if (n === undefined) throw new Error(`no node ${node}`);
    const { call } = await import('./workload.js');
    return call(n.api, method, p, this.token, body, timeoutMs);
  }
}

/**
 * Writes to a probe name through each of the given nodes, starting a new attempt on every node
 * every 100 ms without waiting for the previous one (a request hanging on a paused leader does not
 * delay the measurement), until a write succeeds anywhere.
 *
 * @param cluster - the cluster
 * @param nodes - indexes of nodes to try
 * @param since - the fault's start (history clock), the origin of the returned time
 * @param budgetMs - give up after this long
 * @returns ms from `since` to the first successful write, or null
 */
export async function probeWrite(cluster: ScenarioCluster, nodes: readonly number[], since: number, budgetMs: number): Promise<number | null> {
  const end = Date.now() + budgetMs;
  let first: number | null = null;
  const attempts: Promise<void>[] = [];
  for (let i = 0; first === null && Date.now() < end; i++) {
    for (const node of nodes) {
      attempts.push(
        cluster.request(node, 'PUT', `/v1/secrets/probe/n${node}-${i % 8}`, { value: `p${i}` }, 2_000).then(
          (r) => {
            if (r.status !== 200) return;
            const at = nowMs() - since;
            if (first === null || at < first) first = at;
          },
          () => undefined,
        ),
      );
    }
    await sleep(100);
  }
  await Promise.all(attempts);
  return first;
}

/**
 * The highest Raft term that any of `nodes` reports on health, or undefined when none answers.
 *
 * @param cluster - the cluster
 * @param nodes - indexes of the nodes to ask (ones that are up)
 * @returns the term
 */
export async function highestTerm(cluster: ScenarioCluster, nodes: readonly number[]): Promise<number | undefined> {
  const terms = await Promise.all(
    nodes.map((i) =>
      cluster.request(i, 'GET', '/v1/sys/health?standbyok=true', undefined, 2_000).then(
        (r) => (r.body as { term?: unknown } | undefined)?.term,
        () => undefined,
      ),
    ),
  );
  const known = terms.filter((t): t is number => typeof t === 'number');
  return known.length === 0 ? undefined : Math.max(...known);
}

/**
 * What an election round and the first commits cost beyond the randomized timeout: pre-vote and
 * vote round trips, the fsyncs of term, vote and the new leader's first entry on two nodes, and
 * the probe's next attempt (every 100 ms). About 200 ms on an idle machine; on a 2-core CI machine
 * running two clusters at once up to ~600 ms was seen, so the allowance is a second.
 */
const ELECTION_WORK_MS = 1_000;

/**
 * How long a majority that lost its leader may go without acknowledging a write. A follower starts
 * an election within [1, 1.5) election timeouts of the last heartbeat; the round itself and the
 * first commits take `ELECTION_WORK_MS` at most. When two survivors time out together both stand,
 * split the vote, and wait out another randomized timeout in the next term — Raft's expected
 * behaviour, not a fault — so each extra term adds 1.5 timeouts. Anything slower (a node that has a
 * leader but cannot commit, serve, or learn of it) breaks the bound. More than 4 rounds for one
 * fault is an election storm and fails the run by itself (see `runOn`).
 *
 * @param electionMs - the configured election timeout
 * @param rounds - terms that passed between the fault and recovery (undefined: not known, 1)
 * @returns the bound in ms
 */
export function recoveryLimit(electionMs: number, rounds: number | undefined): number {
  return Math.max(1, rounds ?? 1) * 1.5 * electionMs + ELECTION_WORK_MS;
}

/** Most election rounds one fault may take before the run counts an election storm. */
export const MAX_ELECTION_ROUNDS = 4;

/**
 * Waits until a write succeeds through every node and a linearizable read answers on every node.
 *
 * @param cluster - the cluster
 * @param timeoutMs - overall budget
 * @throws {Error} when the cluster does not become ready
 */
export async function waitReady(cluster: ScenarioCluster, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (let node = 0; node < cluster.endpoints.length; node++) {
    for (;;) {
      let last = '';
      try {
        const w = await cluster.request(node, 'PUT', `/v1/secrets/probe/ready${node}`, { value: 'r' }, 2_000);
        const r = await cluster.request(node, 'GET', `/v1/secrets/probe/ready${node}`, undefined, 2_000);
        if (w.status === 200 && r.status === 200) break;
        last = `${w.status}/${r.status}`;
      } catch (err) {
        last = String((err as Error).name);
      }
      if (Date.now() > end) throw new Error(`node ${node} did not become ready in ${timeoutMs} ms (${last})`);
      await sleep(200);
    }
  }
}

/** Acknowledged writes that no later or concurrent mutation can explain the absence of. */
function missingAcked(ops: readonly Op[], finals: readonly NodeFinalState[]): { key: string; opId: number; value: string }[] {
  const out: { key: string; opId: number; value: string }[] = [];
  const byKey = new Map<string, Op[]>();
  for (const o of ops) if (o.kind !== 'read' && o.outcome !== 'fail') (byKey.get(o.key) ?? byKey.set(o.key, []).get(o.key))?.push(o);
  for (const [key, muts] of byKey) {
    for (const w of muts) {
      if (w.outcome !== 'ok' || (w.kind !== 'write' && w.kind !== 'cas')) continue;
      // Could anything have been linearized after w? Then w may be legitimately gone.
      const later = muts.some((m) => m !== w && (m.completeMs === null || m.completeMs > w.invokeMs));
      if (later) continue;
      for (const f of finals) {
        const s = f.state[key];
        if (s === undefined) continue; // the node did not answer: reported elsewhere
        if (s === null || s.value !== w.value) {
          out.push({ key, opId: w.id, value: w.value ?? '' });
          break;
        }
      }
    }
  }
  return out;
}

/**
 * Runs one scenario end to end. Never throws for a failed check: the result says what failed.
 *
 * @param opts - see {@link ScenarioOptions}
 * @returns counts, verdict and the saved history's path
 */
export function runScenario(opts: ScenarioOptions<LoopbackCluster>): Promise<ScenarioResult>;
/**
 * Runs one scenario on the cluster `makeCluster` builds (its nemesis is typed for that cluster).
 *
 * @param opts - see {@link ScenarioOptions}
 * @returns counts, verdict and the saved history's path
 */
export function runScenario<C extends ScenarioCluster>(opts: ScenarioOptions<C> & { makeCluster: () => C }): Promise<ScenarioResult>;
export function runScenario(opts: ScenarioOptions<ScenarioCluster>): Promise<ScenarioResult> {
  // NB: the overloads keep a nemesis written for another cluster type from getting the default
  // LoopbackCluster: without `makeCluster` the nemesis must be one for a LoopbackCluster.
  return runOn(opts, opts.makeCluster !== undefined ? opts.makeCluster() : new LoopbackCluster());
}

async function runOn(opts: ScenarioOptions<ScenarioCluster>, cluster: ScenarioCluster): Promise<ScenarioResult> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  const keys = opts.keys ?? WORKLOAD_KEYS;
  const failures: string[] = [];
  let ops: Op[] = [];
  let faults: FaultRecord[] = [];
  let finals: NodeFinalState[] = [];
  let digestsEqual = false;
  let keep = false;
  const outDir = opts.outDir ?? path.join(REPO_ROOT, '.test-results', 'jepsen');
  const historyFile = path.join(outDir, `${opts.name}-seed${opts.seed}.jsonl`);
  try {
    await cluster.start();
    await waitReady(cluster);
    const rnd = prng(opts.seed);
    const ctx: NemesisContext<ScenarioCluster> = { cluster, rnd, deadline: Date.now() + Math.max(0, opts.durationMs - 2_000), log };
    const workloadP = cluster.workload({
      durationMs: opts.durationMs,
      workers: opts.workers ?? 8,
      keys: [...keys],
      seed: opts.seed,
      requestTimeoutMs: opts.requestTimeoutMs ?? 5_000,
    });
    const nemesisP = opts.nemesis.run(ctx).catch((err: unknown) => {
      failures.push(`nemesis failed: ${(err as Error).stack ?? String(err)}`);
      return [] as FaultRecord[];
    });
    [ops, faults] = await Promise.all([workloadP, nemesisP]);
    await opts.nemesis.heal(ctx);
    await waitReady(cluster, 90_000);
    // Final linearizable read of every name, recorded into the history.
    let nextId = ops.reduce((m, o) => Math.max(m, o.id), 0) + 1;
    for (const key of keys) {
      for (let attempt = 0; attempt < 20; attempt++) {
        const o: Op = { id: nextId++, process: -1, key, kind: 'read', invokeMs: 0, completeMs: null, outcome: 'unknown' };
        const node = attempt % cluster.endpoints.length;
        if (cluster.performRead !== undefined) await cluster.performRead(o, node, 5_000);
        else await perform(o, cluster.endpoints[node] as string, cluster.token, 5_000);
        ops.push(o);
        if (o.outcome === 'ok') break;
        await sleep(250);
      }
    }
    // Convergence: every node holds the same state.
    const end = Date.now() + 30_000;
    for (;;) {
      finals = await cluster.finalRead(keys);
      digestsEqual = finals.every((f) => f.complete && f.digest === finals[0]?.digest);
      if (digestsEqual || Date.now() > end) break;
      await sleep(250);
    }
  } catch (err) {
    failures.push(`run failed: ${(err as Error).stack ?? String(err)}`);
  }
  const verdict = checkHistory(ops);
  const missing = missingAcked(ops, finals);
  const availabilityProblems: string[] = [];
  for (const f of faults) {
    if (f.recoveryMs !== undefined && f.recoveryLimitMs !== undefined && (f.recoveryMs === null || f.recoveryMs > f.recoveryLimitMs)) {
      availabilityProblems.push(`${f.kind} (${f.detail}): writes recovered after ${f.recoveryMs === null ? 'never' : `${Math.round(f.recoveryMs)} ms`}, limit ${f.recoveryLimitMs} ms`);
    }
    if (f.electionRounds !== undefined && f.electionRounds > MAX_ELECTION_ROUNDS) availabilityProblems.push(`${f.kind} (${f.detail}): ${f.electionRounds} election rounds before writes recovered (an election storm)`);
    if (f.noQuorumStatuses !== undefined && f.noQuorumStatuses.some((s) => s !== 503)) availabilityProblems.push(`${f.kind} (${f.detail}): without quorum got statuses ${f.noQuorumStatuses.join(',')}, want only 503`);
    for (const p of f.problems ?? []) availabilityProblems.push(`${f.kind} (${f.detail}): ${p}`);
  }
  if (!verdict.valid) failures.push(describeVerdict(verdict));
  if (missing.length > 0) failures.push(`acknowledged writes missing: ${JSON.stringify(missing)}`);
  if (!digestsEqual) failures.push(`nodes did not converge: ${JSON.stringify(finals.map((f) => ({ endpoint: f.endpoint, digest: f.digest, errors: f.errors })))}`);
  failures.push(...availabilityProblems);
  if (statsOf(ops).unexpected > 0) failures.push(`${statsOf(ops).unexpected} unexpected 4xx answers (harness bug)`);
  const passed = failures.length === 0;
  let saved: string | null = null;
  if (!passed || opts.keepHistory === true) {
    mkdirSync(outDir, { recursive: true });
    saveHistory(historyFile, ops);
    writeFileSync(historyFile.replace(/\.jsonl$/, '.verdict.txt'), `scenario ${opts.name} seed ${opts.seed}\n${failures.join('\n')}\nfaults: ${JSON.stringify(faults, null, 1)}\nlogs: ${cluster.logDir}\n`);
    saved = historyFile;
    keep = !passed;
  } else {
    rmSync(historyFile, { force: true });
  }
  await cluster.stop(keep).catch(() => undefined);
  return {
    name: opts.name,
    seed: opts.seed,
    ops: ops.length,
    stats: statsOf(ops),
    faults,
    violations: verdict.violations.length,
    verdict,
    missingAcked: missing,
    digestsEqual,
    finalStates: finals,
    availabilityProblems,
    historyFile: saved,
    passed,
    failures,
    elapsedMs: Date.now() - started,
  };
}

/**
 * One summary line for a set of runs.
 *
 * @param results - finished runs
 * @returns `runs N, operations N, faults injected N, violations N, …`
 */
export function summaryLine(results: readonly ScenarioResult[]): string {
  const sum = (f: (r: ScenarioResult) => number): number => results.reduce((a, r) => a + f(r), 0);
  return (
    `runs ${results.length}, operations ${sum((r) => r.ops)}, faults injected ${sum((r) => r.faults.length)}, ` +
    `violations ${sum((r) => r.violations)}, missing acknowledged writes ${sum((r) => r.missingAcked.length)}, ` +
    `diverged ${sum((r) => (r.digestsEqual ? 0 : 1))}, availability problems ${sum((r) => r.availabilityProblems.length)}, failed runs ${sum((r) => (r.passed ? 0 : 1))}`
  );
}
